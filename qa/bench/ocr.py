"""How well are scans read? Character error rate and pages a minute on pages rendered from the bundled articles.

Usage: python scripts/bench_ocr.py [--dpi 150,200,300] [--columns 1,2] [--engine tesseract,rapidocr]
       [--retrieval] [--json OUT]

Each bundled article (both scripts) is laid out as a newspaper page would be (headline,
body in one or two columns, 11 pt Noto CJK), printed to PDF by headless Chromium,
rasterised by pdfium at each resolution, and read back by the OCR engine. The error
rate is the edit distance between what OCR read (its paragraphs, headline first) and
the article's text, over the text's length, both with whitespace removed and NFKC
normalised (full-width and half-width punctuation are the same character to a reader).
Pages a minute are wall-clock on this machine, one page at a time.

`--retrieval` also builds one index from the text corpus and one from the same articles
given as scans (a PNG per page for one, an image-only PDF for the others), and asks
the seed questions of both (R@5 and the verdict).

The renderer is also the tests' (tests/test_ocr.py): they print their own pages.
Nothing here is a test.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.eval.checkout import ROOT

PAGE_CSS = """
@page { size: A4; margin: 1.6cm; }
body { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", serif; font-size: 11pt; line-height: 1.5; }
h1 { font-size: 22pt; margin: 0 0 0.6em 0; }
.body { column-count: %(columns)d; column-gap: 1cm; }
p { text-indent: 2em; margin: 0 0 0.3em 0; text-align: justify; }
"""


def chromium() -> str | None:
    """Debian's Chromium, or QA_CHROMIUM."""
    for candidate in (os.environ.get("QA_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def page_html(title: str, paragraphs: list[str], columns: int = 1, lang: str = "zh-CN") -> str:
    """An article laid out as a printed page: headline, then the body in `columns` columns."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    css = PAGE_CSS % {"columns": columns}
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><style>{css}</style></head>'
        f'<body><h1>{html.escape(title)}</h1><div class="body">{body}</div></body></html>'
    )


def print_pdf(page: str, folder: Path, name: str) -> Path:
    """The page printed to a PDF (with a text layer) by headless Chromium."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("Chromium not found (apt-get install chromium fonts-noto-cjk, or set QA_CHROMIUM)")
    source = folder / f"{name}.html"
    source.write_text(page, encoding="utf-8")
    target = folder / f"{name}.pdf"
    subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={folder / 'chromium-profile'}",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def rasterise(pdf: Path, dpi: int) -> list:
    """Each page of `pdf` as a greyscale PIL image at `dpi`, with the resolution recorded."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        images = []
        for page in document:
            image = page.render(scale=dpi / 72, grayscale=True).to_pil()
            image.info["dpi"] = (dpi, dpi)
            images.append(image)
        return images
    finally:
        document.close()


def scan_files(images: list, folder: Path, name: str, kind: str, dpi: int) -> list[Path]:
    """Scans as a user has them: one PNG per page ("png"), or an image-only PDF ("pdf")."""
    if kind == "png":
        paths = []
        for number, image in enumerate(images, 1):
            path = folder / (f"{name}.png" if len(images) == 1 else f"{name}-p{number}.png")
            image.save(path, dpi=(dpi, dpi))
            paths.append(path)
        return paths
    path = folder / f"{name}.pdf"
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return [path]


def error_rate(read: str, truth: str) -> float:
    """Character error rate: edit distance over the truth's length, whitespace removed, NFKC."""
    from rapidfuzz.distance import Levenshtein

    a, b = _comparable(read), _comparable(truth)
    return Levenshtein.distance(a, b) / max(1, len(b))


_SHOW_ERRORS = False


def _print_errors(read: str, truth: str) -> None:
    from rapidfuzz.distance import Levenshtein

    a, b = _comparable(read), _comparable(truth)
    for op in Levenshtein.opcodes(a, b):
        if op.tag != "equal":
            print(f"      {op.tag}: {a[op.src_start : op.src_end]!r} -> {b[op.dest_start : op.dest_end]!r}")


def _comparable(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@dataclass
class Case:
    article: str
    script: str
    columns: int
    dpi: int
    pages: int
    seconds: float
    cer: float


def _articles() -> list:
    from qa.ingest.corpus import article_files, load_article

    corpus = ROOT / "corpus"
    return [load_article(path, corpus) for path in article_files(corpus)]


def _body(article) -> list[str]:
    return [p for p in article.text.split("\n") if p.strip()]


def measure(engine: str, dpis: list[int], columns: list[int], work: Path) -> list[Case]:
    from qa.text.script import script_of

    read = _engine(engine)
    cases = []
    for article in _articles():
        paragraphs = _body(article)
        script = script_of(article.text)
        for column in columns:
            page = page_html(article.title, paragraphs, column, "zh-TW" if script == "zh-Hant" else "zh-CN")
            pdf = print_pdf(page, work, f"{Path(article.source).stem}-{column}col")
            for dpi in dpis:
                images = rasterise(pdf, dpi)
                start = time.perf_counter()
                text = read(images)
                seconds = getattr(read, "seconds", time.perf_counter() - start)
                truth = "\n".join([article.title, *paragraphs])
                if _SHOW_ERRORS:
                    _print_errors(text, truth)
                cases.append(Case(article.source, script, column, dpi, len(images), seconds, error_rate(text, truth)))
                print(
                    f"  {engine:10} {article.source[:40]:40} {script} {column}col {dpi}dpi "
                    f"{len(images)}p {seconds:6.1f}s CER {cases[-1].cer:.4f}",
                    flush=True,
                )
    return cases


def _engine(name: str):
    if name == "tesseract":
        from qa.ingest.ocr import _headline, _paragraphs, _read_page

        def read(images):
            parts = []
            for number, image in enumerate(images):
                lines = _read_page(image)
                if number == 0:
                    title, lines = _headline(lines)
                    parts.append(title)
                parts.extend(_paragraphs(lines))
            return "\n".join(parts)

        return read
    if name == "rapidocr":
        # RapidOCR pins opencv and is not a dependency here: it runs in the Python named
        # by RAPIDOCR_PYTHON (a venv with `pip install rapidocr_onnxruntime`, whose wheel
        # ships its ONNX models). Its model load is not counted: the script reports
        # the seconds spent reading pages, and `read` waits that long in total.
        python = os.environ.get("RAPIDOCR_PYTHON", sys.executable)

        def read(images):
            with tempfile.TemporaryDirectory() as folder:
                paths = []
                for number, image in enumerate(images):
                    paths.append(str(Path(folder) / f"{number}.png"))
                    image.save(paths[-1])
                result = subprocess.run(
                    [python, "-c", _RAPIDOCR_SCRIPT, *paths], capture_output=True, check=True, text=True
                )
            read.seconds = float(result.stderr.strip().splitlines()[-1])
            return result.stdout

        return read
    raise SystemExit(f"unknown engine {name!r}: tesseract or rapidocr")


_RAPIDOCR_SCRIPT = """
import sys, time
from rapidocr_onnxruntime import RapidOCR
engine = RapidOCR()
seconds = 0.0
for path in sys.argv[1:]:
    start = time.perf_counter()
    result, _ = engine(path)
    seconds += time.perf_counter() - start
    sys.stdout.write("\\n".join(item[1] for item in (result or [])) + "\\n")
print(seconds, file=sys.stderr)
"""


def summarise(cases: list[Case]) -> list[dict]:
    rows = []
    keys = sorted({(c.columns, c.dpi, c.script) for c in cases})
    for columns, dpi, script in keys:
        group = [c for c in cases if (c.columns, c.dpi, c.script) == (columns, dpi, script)]
        pages = sum(c.pages for c in group)
        seconds = sum(c.seconds for c in group)
        rows.append(
            {
                "columns": columns,
                "dpi": dpi,
                "script": script,
                "articles": len(group),
                "pages": pages,
                "cer_max": max(c.cer for c in group),
                "cer_mean": sum(c.cer for c in group) / len(group),
                "pages_per_minute": 60 * pages / seconds if seconds else 0.0,
            }
        )
    return rows


def retrieval(work: Path, dpi: int) -> dict:
    """The seed questions (dev and extra) over the text corpus and over the same articles as scans.

    The scans: articles in turn one and two columns, a PNG per page for the first
    article and an image-only PDF for the others.
    """
    from qa.api import build_index
    from qa.eval.evaluate import evaluate, load_questions
    from qa.search.retriever import Retriever
    from qa.settings import Settings

    scans = work / "scan-corpus"
    scans.mkdir(exist_ok=True)
    for number, article in enumerate(_articles()):
        page = page_html(article.title, _body(article), 1 + number % 2)
        pdf = print_pdf(page, work, f"retrieval-{number}")
        kind = "png" if number == 0 else "pdf"
        scan_files(rasterise(pdf, dpi), scans, Path(article.source).stem, kind, dpi)
    results: dict = {}
    for name, corpus in (("text", ROOT / "corpus"), ("scans", scans)):
        settings = Settings.load(corpus_dir=corpus, index_dir=work / f"index-{name}")
        start = time.perf_counter()
        build_index(settings)
        results[name] = {"build_s": round(time.perf_counter() - start, 1)}
        retriever = Retriever.from_settings(settings)
        for set_name in ("dev", "extra"):
            questions = load_questions(ROOT / "eval" / f"{set_name}_questions.jsonl")
            metrics, _ = evaluate(questions, retriever)
            results[name][set_name] = {
                "R@1": round(metrics.recall_at_1, 3),
                "R@5": round(metrics.recall_at_5, 3),
                "MRR@10": round(metrics.mrr_at_10, 3),
                "unanswerable_flagged": round(metrics.unanswerable_flagged, 3),
                "answerable_hidden": round(metrics.answerable_hidden, 3),
            }
        print(f"retrieval over the {name} corpus: {json.dumps(results[name])}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dpi", default="150,200,300")
    parser.add_argument("--columns", default="1,2")
    parser.add_argument("--engine", default="tesseract")
    parser.add_argument("--retrieval", action="store_true")
    parser.add_argument("--retrieval-dpi", type=int, default=200)
    parser.add_argument("--min-confidence", type=float, help="override qa.ingest.ocr.MIN_CONFIDENCE")
    parser.add_argument("--show-errors", action="store_true", help="print each case's differing stretches")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.min_confidence is not None:
        import qa.ingest.ocr

        qa.ingest.ocr.MIN_CONFIDENCE = args.min_confidence
    global _SHOW_ERRORS
    _SHOW_ERRORS = args.show_errors
    dpis = [int(value) for value in args.dpi.split(",") if value]
    columns = [int(value) for value in args.columns.split(",") if value]
    report: dict = {"cpu_cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="qa-ocr-bench-") as folder:
        work = Path(folder)
        for engine in [name for name in args.engine.split(",") if name]:
            cases = measure(engine, dpis, columns, work)
            report[engine] = {"cases": [case.__dict__ for case in cases], "summary": summarise(cases)}
            for row in report[engine]["summary"]:
                print(
                    f"{engine:10} {row['columns']} col {row['dpi']:3} dpi {row['script']}: CER max "
                    f"{row['cer_max']:.2%} mean {row['cer_mean']:.2%}, {row['pages_per_minute']:.1f} pages/min"
                )
        if args.retrieval:
            report["retrieval"] = retrieval(work, args.retrieval_dpi)
            print(json.dumps(report["retrieval"], ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
