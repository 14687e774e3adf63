"""Stand-in corpora for scale measurements: articles made of real sentences (the bundled
corpus's and, when present, the shared benchmarks'), recombined in an order fixed by a
seed, so chunking, tokenising and BM25 see realistic Chinese text; only the article
boundaries are invented.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path

from qa.eval.checkout import ROOT
from qa.text.sentences import CJK_FULL_STOPS, CLOSING_QUOTES

SHARED = ROOT.parent / "shared"
BUNDLED = ROOT / "corpus"

# Bump when the generator's output changes, so kept corpora are regenerated.
GENERATOR_VERSION = 1
# A sentence ends at a Chinese full stop and keeps the closing quote or bracket after it.
_SENTENCE = re.compile(f"[^{CJK_FULL_STOPS}]*[{CJK_FULL_STOPS}][{CLOSING_QUOTES}】]*")
# Sentences shorter than this are headings or fragments; longer ones are run-on
# extraction artefacts (a table flattened into one line) that would make paragraphs
# of one sentence.
MIN_SENTENCE, MAX_SENTENCE = 8, 200
ARTICLE_CHARS = (1200, 2000)
PARAGRAPH_SENTENCES = (2, 6)
_LAST_DAY = date(2025, 12, 31)


def default_sources() -> list[Path]:
    """The bundled corpus, then every `../shared/bench/*/corpus/` that exists."""
    bench = sorted(path for path in (SHARED / "bench").glob("*/corpus") if path.is_dir())
    return [BUNDLED, *bench]


def _article_text(path: Path) -> str:
    """An article's clean body text. The project's loader undoes PDF line breaks
    (the bundled articles are PDF extractions); a bare front-matter split is the
    fallback if the loader's API changes under us."""
    try:
        from qa.ingest.corpus import load_article

        return load_article(path).text
    except Exception:  # noqa: BLE001 - any failure of the engine falls back to plain reading
        raw = path.read_text(encoding="utf-8", errors="replace")
        lines = raw.split("\n")
        if lines and lines[0].strip() == "---" and "---" in (line.strip() for line in lines[1:]):
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
            lines = lines[end + 1 :]
        return "\n".join(lines)


def harvest_sentences(sources: Iterable[Path]) -> list[str]:
    """The distinct sentences of every article under `sources`, in a fixed order."""
    found: set[str] = set()
    for folder in sources:
        for path in sorted(Path(folder).rglob("*")):
            if not path.is_file() or path.suffix.lower() not in (".txt", ".md") or path.name.startswith("."):
                continue
            if path.name.lower() == "readme.md":
                continue
            for paragraph in _article_text(path).split("\n"):
                for match in _SENTENCE.finditer(paragraph):
                    sentence = match.group().strip()
                    if (
                        MIN_SENTENCE <= len(sentence) <= MAX_SENTENCE
                        and sentence[0] not in "。！？，、；：”’」』）)】》"
                    ):
                        found.add(sentence)
    # Sorted, so the seed alone decides the order whatever the file system lists first.
    return sorted(found)


def _title(first_sentence: str, number: int) -> str:
    # A headline-like phrase from the article's first clause; the number keeps
    # titles distinct when two articles start alike (sentences recur at 10k articles).
    phrase = re.split(r"[，,。！？；;：:、（(“”「」『』\"]", first_sentence, maxsplit=1)[0].strip()[:18]
    return f"{phrase or '综合报道'}（第{number}篇）"


def generate_corpus(out_dir: Path, articles: int, seed: int = 0, sources: list[Path] | None = None) -> None:
    """Write `articles` article files into `out_dir`, made of recombined real sentences.

    Sentences of `sources` (default: `default_sources()`) are shuffled by `seed`,
    grouped into paragraphs of 2-6 sentences and articles of about 1,200-2,000
    characters, each with a distinct title and date, in the front-matter format of
    `corpus/`. The same sources and seed give the same bytes.

    Raises:
        ValueError: `articles` is below 1, or the sources hold too few sentences.
    """
    if articles < 1:
        raise ValueError(f"articles must be at least 1, got {articles}")
    sentences = harvest_sentences(sources if sources is not None else default_sources())
    if len(sentences) < 2 * PARAGRAPH_SENTENCES[1]:
        raise ValueError(
            f"the sources hold {len(sentences)} usable sentences; at least {2 * PARAGRAPH_SENTENCES[1]} are needed"
        )
    # random.Random, not numpy: its shuffle and randint sequences are stable across
    # versions, so "deterministic for a seed" holds on other machines too.
    rng = random.Random(seed)
    pool = list(sentences)
    rng.shuffle(pool)
    position = 0

    def next_sentence() -> str:
        nonlocal position
        if position == len(pool):  # every sentence used once: start a new order
            rng.shuffle(pool)
            position = 0
        position += 1
        return pool[position - 1]

    # Distinct dates: a sample of distinct days ending at _LAST_DAY, wide enough
    # that dates are spread like a real archive's.
    span = max(3650, articles * 3 // 2)
    days = rng.sample(range(span), articles)
    width = max(5, len(str(articles)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for number in range(1, articles + 1):
        target = rng.randint(*ARTICLE_CHARS)
        paragraphs: list[list[str]] = []
        current: list[str] = []
        wanted = rng.randint(*PARAGRAPH_SENTENCES)
        length = 0
        # Stop at the target length, but never leave a one-sentence last paragraph:
        # the overshoot is at most one sentence.
        while length < target or 0 < len(current) < PARAGRAPH_SENTENCES[0]:
            sentence = next_sentence()
            current.append(sentence)
            length += len(sentence)
            if len(current) == wanted:
                paragraphs.append(current)
                current, wanted = [], rng.randint(*PARAGRAPH_SENTENCES)
        if current:
            paragraphs.append(current)
        title = _title(paragraphs[0][0], number)
        day = _LAST_DAY - timedelta(days=days[number - 1])
        body = "\n".join("".join(paragraph) for paragraph in paragraphs)
        text = (
            "---\n"
            f"title: {title}\n"
            f"date: {day.isoformat()}\n"
            "publication: scale.py 合成语料\n"
            f"seed: scale-{seed}-{number:0{width}d}\n"
            "---\n"
            f"{body}\n"
        )
        (out_dir / f"scale-{number:0{width}d}.txt").write_bytes(text.encode("utf-8"))


# ---------------------------------------------------------------- questions


def load_questions(count: int, fallback_sentences: Sequence[str] = ()) -> list[str]:
    """`count` questions: the dev set first, then bench questions spread over each file.

    The questions are about other articles than the generated ones; that does not
    matter for timing, which is all this script measures.
    """
    files = [ROOT / "eval" / "dev_questions.jsonl", *sorted((SHARED / "bench").glob("*/questions.jsonl"))]
    per_file: list[list[str]] = []
    for path in files:
        if not path.is_file():
            continue
        with open(path, encoding="utf-8") as lines:
            questions = [json.loads(line).get("q", "") for line in lines if line.strip()]
        per_file.append([q.strip() for q in questions if q and q.strip()])
    chosen: list[str] = []
    if per_file:
        chosen.extend(per_file[0][:count])
        rest = per_file[1:]
        # Round robin over the bench files, evenly spaced within each.
        if rest and len(chosen) < count:
            need = count - len(chosen)
            share = -(-need // len(rest))
            picks = [qs[:: max(1, len(qs) // share)][:share] for qs in rest]
            for i in range(share):
                for qs in picks:
                    if i < len(qs) and len(chosen) < count:
                        chosen.append(qs[i])
    if len(chosen) < count:
        chosen.extend(s[:200] for s in fallback_sentences[: count - len(chosen)])
    return chosen[:count]
