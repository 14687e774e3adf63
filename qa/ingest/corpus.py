"""Load articles from the corpus folder: each file read by its format, then cleaned.

Formats (qa.ingest.readers): `.txt`/`.md` in UTF-8 (with or without BOM), UTF-16 with BOM,
GB18030/GBK or Big5; `.html`/`.htm` web pages; `.pdf`, its scanned pages read by OCR;
`.docx`; scans as images (`.png`, `.jpg`, `.jpeg`, `.tif`, `.tiff`, `.webp`; qa.ingest.ocr).
A text file may start with a front-matter block (`---` lines around `key: value`
pairs: title, date, publication, author, seed); an opening `---` with no closing
line is refused, not read as text. Web pages, PDFs and Word files give their title
and date from their own metadata. Without either, the title comes from the text,
else the file name, and the date from the text.

Every file that cannot be an article (empty, binary, too large, unreadable,
undecodable, broken front matter, a scan with no OCR engine, a damaged document) raises a
CorpusError whose message starts with the file's path and says what to do.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from qa.errors import CorpusError
from qa.ingest.clean import BYLINE_MARKS, clean_text
from qa.ingest.ocr import IMAGE_SUFFIXES, PageHook
from qa.ingest.readers import HTML_SUFFIXES, TEXT_SUFFIXES, read_document
from qa.schema import Article, is_date
from qa.text.sentences import SENTENCE_END

ARTICLE_SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".docx", *IMAGE_SUFFIXES)
# One article file may be at most this large. A news article is tens of KB of text;
# as a PDF with photos a few MB (a full newspaper page at print resolution, 10-15 MB).
# A file beyond this is a book, an archive or a scan batch, not an article, and would
# be read whole into memory, so it is refused instead.
MAX_FILE_BYTES = 32 * 1024 * 1024
# Front-matter fields that hold article text cleaning moved out of the body (the
# subtitle, the byline, a photo caption). They go back in as the article's last
# paragraphs, so every sentence a reader can see is searchable, while the body keeps
# its paragraph numbers for citations.
SEARCHABLE_FIELDS = ("subtitle", "author", "caption")
_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_ANY_DATE = re.compile(
    r"(\d{4})(?:\s*(?:[-/.]|年)\s*(\d{1,2})(?:\s*(?:[-/.]|月)\s*(\d{1,2})\s*日?|\s*月)?)?\s*年?(?:$|[\sT])"
)
_SUFFIX_LIST = ", ".join(ARTICLE_SUFFIXES)


def article_files(corpus_dir: Path) -> list[Path]:
    """The article files of a corpus folder, in a stable order.

    Dotfiles, README.md and Office lock files (`~$name.docx`) are not articles.

    Raises:
        CorpusError: the folder is missing or holds no article file.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"corpus folder {corpus_dir} does not exist; create it and put articles "
            f"({_SUFFIX_LIST}) in it, or set QA_CORPUS_DIR"
        )
    files = sorted(
        path
        for path in corpus_dir.rglob("*")
        if path.is_file() and path.suffix.lower() in ARTICLE_SUFFIXES and may_be_article(path.name)
    )
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} holds no article file ({_SUFFIX_LIST})")
    return files


def may_be_article(name: str) -> bool:
    """Whether a file of this name may be an article: dotfiles, README.md and Office
    lock files (`~$name.docx`) never are, whatever they hold."""
    return not name.startswith((".", "~$")) and name.lower() != "readme.md"


def source_name(path: Path, corpus_dir: Path | None = None) -> str:
    """The name an article is indexed and cited under: its path relative to the corpus
    folder (else its file name), with `/`. Bytes of the name that are not UTF-8 (a file
    copied from an old Windows or a zip) are written `\\xff`, so the name can be
    stored, printed and compared; `load_article` refuses such a file by this name."""
    name = Path(path).relative_to(corpus_dir).as_posix() if corpus_dir is not None else Path(path).name
    return _printable(name)


def _printable(name: str) -> str:
    # A name Python could not decode holds its bytes as lone surrogates (PEP 383).
    return os.fsencode(name).decode("utf-8", "backslashreplace") if _undecodable(name) else name


def _undecodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def load_corpus(corpus_dir: Path) -> list[Article]:
    """Load and clean every article in `corpus_dir`.

    Raises:
        CorpusError: the first file that cannot be read as an article; its name and
            the fix are in the message.
    """
    corpus_dir = Path(corpus_dir)
    return [load_article(path, corpus_dir) for path in article_files(corpus_dir)]


def load_article(
    path: Path, corpus_dir: Path | None = None, data: bytes | None = None, on_page: PageHook | None = None
) -> Article:
    """Load one article file of any supported format and clean its text.

    Args:
        path: the file.
        corpus_dir: the corpus folder; `source` is the path relative to it (else the file name).
        data: the file's bytes when the caller already read them (to hash them); read
            from `path` otherwise.
        on_page: called after each page of a scan is read by OCR (a build's progress).

    Returns:
        The Article; `content_hash` is the sha256 of the file's bytes.

    Raises:
        CorpusError: the file cannot be an article; the message starts with its path.

    Example:
        >>> load_article(Path("corpus/luoyang-science-bureau.txt")).title
        '党建引领洛阳科技创新提质增效'
    """
    path = Path(path)
    if _undecodable(str(path)):
        # The index is UTF-8 (JSON): such a name cannot be stored or shown as it is.
        raise CorpusError(
            f"{_printable(str(path))}: the file name is not valid UTF-8 (an old Windows or zip encoding?); "
            "rename the file, e.g. to article.txt"
        )
    if corpus_dir is not None and path.is_symlink() and not _inside(path, Path(corpus_dir)):
        # A link in the corpus may point anywhere (/etc/passwd); what it points at
        # would be served to every reader of the chat.
        raise CorpusError(
            f"{path}: is a link to a file outside the corpus folder, which is not indexed; "
            "copy the article into the corpus folder instead"
        )
    if data is None:
        data = _read_bytes(path)
    if len(data) > MAX_FILE_BYTES:
        raise CorpusError(_too_large(path, len(data)))
    if not data or data.isspace():
        raise CorpusError(f"{path}: the file is empty; put the article's text in it, or remove it")
    document = read_document(data, path, on_page)
    meta = document.meta
    cleaned = clean_text(document.text)
    if not cleaned.text.strip():
        raise CorpusError(f"{path}: has no article text after cleaning; add the text, or remove it")
    source = source_name(path, corpus_dir)
    date = normalize_date(meta.get("date", ""))
    if meta.get("date") and not date and path.suffix.lower() in TEXT_SUFFIXES:
        # A front-matter date the filters would compare as text (2023年5月1日 sorts after
        # 2023-12-31): refused like any other broken front matter, so it gets fixed.
        raise CorpusError(
            f"{path}: the front matter's date {meta['date'][:40]!r} is not a date; write it as YYYY-MM-DD"
        )
    extra = [meta[name] for name in SEARCHABLE_FIELDS if meta.get(name) and meta[name] not in cleaned.text]
    return Article(
        source=source,
        title=meta.get("title") or guess_title(cleaned.text, path),
        text="\n".join([cleaned.text.rstrip("\n"), *extra]),
        date=date or guess_date(cleaned.text) or document.file_date,
        publication=meta.get("publication") or cleaned.publication_hint,
        seed=meta.get("seed", ""),
        content_hash=hashlib.sha256(data).hexdigest(),
        ocr=document.ocr_pages > 0,
        subtitle=meta.get("subtitle", ""),
    )


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path`, its links followed, is a file in `folder`."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def _read_bytes(path: Path) -> bytes:
    try:
        # Checked before reading, so a huge file is never loaded into memory.
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CorpusError(_too_large(path, size))
        return path.read_bytes()
    except OSError as error:
        raise CorpusError(
            f"{path}: cannot read it ({error.strerror or error}); fix its permissions, or remove it"
        ) from error


def _too_large(path: Path, size: int) -> str:
    return (
        f"{path}: {size / 2**20:.1f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit for one "
        f"article; split it into articles, or remove it"
    )


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
    return normalize_date(match.group(0)) if match else ""


def normalize_date(value: str) -> str:
    """`value` as YYYY-MM-DD, YYYY-MM or YYYY (as precise as it is) when it is a real
    date written 2023-05-01, 2023/5/1, 2023.05.01 or 2023年5月1日 (a time after it
    ignored), else "". The date filters compare these strings, so every stored date
    must have this one form.

    Example:
        >>> normalize_date("2023年5月1日"), normalize_date("2021-8"), normalize_date("2024-02-30")
        ('2023-05-01', '2021-08', '')
    """
    match = _ANY_DATE.match(value.strip())
    if not match:
        return ""
    year, *rest = (int(group) for group in match.groups() if group)
    stored = "-".join([f"{year:04d}", *(f"{part:02d}" for part in rest)])
    return stored if is_date(stored) else ""  # not 2024-02-30, not month 13
