"""Load articles from the corpus folder: front matter (optional) plus raw text, cleaned.

A file may start with a front-matter block (`---` lines around `key: value` pairs:
title, date, publication, author, seed). A raw file with none is taken as one
article: its title comes from the text, else from the file name.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from qa.clean import BYLINE_MARKS, SENTENCE_END, clean_text
from qa.errors import CorpusError
from qa.schema import Article

ARTICLE_SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 50 * 1024 * 1024  # provisional; the readers set the real limit
# Front-matter fields that hold article text cleaning moved out of the body (the
# subtitle, the byline, a photo caption). They go back in as the article's last
# paragraphs, so every sentence a reader can see is searchable, while the body keeps
# its paragraph numbers for citations.
SEARCHABLE_FIELDS = ("subtitle", "author", "caption")
_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")


def article_files(corpus_dir: Path) -> list[Path]:
    """The article files of a corpus folder, in a stable order.

    Raises:
        CorpusError: the folder is missing or holds no article file.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"corpus folder {corpus_dir} does not exist; create it and put articles "
            f"(.txt or .md, UTF-8) in it, or set QA_CORPUS_DIR"
        )
    files = sorted(
        path
        for path in corpus_dir.rglob("*")
        if path.is_file()
        and path.suffix.lower() in ARTICLE_SUFFIXES
        and not path.name.startswith(".")
        and path.name.lower() != "readme.md"
    )
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} holds no .txt or .md article")
    return files


def load_corpus(corpus_dir: Path) -> list[Article]:
    """Load and clean every article in `corpus_dir`.

    Raises:
        CorpusError: a file cannot be read as text; its name and the fix are in the message.
    """
    corpus_dir = Path(corpus_dir)
    return [load_article(path, corpus_dir) for path in article_files(corpus_dir)]


def load_article(path: Path, corpus_dir: Path | None = None, data: bytes | None = None) -> Article:
    """Load one article file (with or without front matter) and clean its text."""
    path = Path(path)
    try:
        data = path.read_bytes() if data is None else data
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror or error}; fix its permissions or remove it") from error
    raw = decode_text(data, path)
    meta, body = split_front_matter(raw)
    cleaned = clean_text(body)
    if not cleaned.text.strip():
        raise CorpusError(f"{path} has no article text after cleaning; remove it or add the text")
    source = path.relative_to(corpus_dir).as_posix() if corpus_dir else path.name
    extra = [meta[name] for name in SEARCHABLE_FIELDS if meta.get(name) and meta[name] not in cleaned.text]
    return Article(
        source=source,
        title=meta.get("title") or guess_title(cleaned.text, path),
        text="\n".join([cleaned.text.rstrip("\n"), *extra]),
        date=meta.get("date") or guess_date(cleaned.text),
        publication=meta.get("publication") or cleaned.publication_hint,
        seed=meta.get("seed", ""),
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def decode_text(data: bytes, path: Path) -> str:
    """Decode UTF-8 (with or without BOM), falling back to GB18030 for older Chinese files."""
    if b"\x00" in data[:4096]:
        raise CorpusError(f"{path} looks like a binary file, not text; remove it from the corpus folder")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CorpusError(f"{path} is not UTF-8 or GB18030 text; convert it to UTF-8")


def split_front_matter(raw: str) -> tuple[dict[str, str], str]:
    """Split a leading `---` block of `key: value` lines from the body."""
    lines = raw.lstrip("\ufeff").split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, raw
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            meta = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    meta[key.strip().lower()] = value.strip().strip('"')
            return meta, "\n".join(lines[end + 1 :])
    return {}, raw  # no closing line: treat the whole file as text rather than lose it


def guess_title(text: str, path: Path) -> str:
    """The first short paragraph that reads like a headline, else the file name."""
    for paragraph in text.split("\n")[:6]:
        candidate = paragraph.strip()
        if not candidate or candidate.startswith(BYLINE_MARKS):
            continue  # bylines ("▶ 本报记者 ...")
        if len(candidate) <= 40 and candidate[-1] not in SENTENCE_END + "，,":
            return candidate
        break
    return path.stem


def guess_date(text: str) -> str:
    """The first `YYYY年M月D日` near the start of the text, as YYYY-MM-DD, or ""."""
    match = _DATE.search(text[:600])
    if not match:
        return ""
    year, month, day = (int(group) for group in match.groups())
    return f"{year:04d}-{month:02d}-{day:02d}"
