"""Text from scanned pages: image files and the image-only pages of PDFs, by Tesseract.

The only module that runs the OCR engine or renders PDF pages (pypdfium2). Tesseract
is a Debian package (`tesseract-ocr` with `tesseract-ocr-chi-sim` and
`tesseract-ocr-chi-tra`); without it a scan is skipped with a reason that names them
(`ocr_missing`).

A page becomes text the way a printed page does in qa.ingest.clean: Tesseract's
layout analysis gives the lines in reading order (columns one after the other), they
are joined into paragraphs by `join_printed_lines`, a line set in type much larger
than the body at the top of the first page is the headline, and the spaces Tesseract
puts between Chinese characters are removed. Every choice here (the models, the
resolution, what confidence to keep) was measured: docs/measurements.md#ocr.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from qa.errors import CorpusError
from qa.ingest.clean import join_printed_lines

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
# Each model reads Latin letters and digits too; adding `eng` made the error rate
# higher and the read twice as slow (docs/measurements.md#ocr). A page is read in the
# script it is printed in, chosen from a first read (see _read_page).
SIMPLIFIED, TRADITIONAL = "chi_sim", "chi_tra"
# PDF pages are rendered at this resolution, and an image without a recorded one is
# taken to be at it.
DPI = 300
# An image below this resolution is scaled up to DPI first. Measured on rendered pages:
# at 100 dpi scaling up lowers the error rate (2.1% to 1.3%), at 150 it raises it
# (1.0% to 2.1% on the traditional page).
UPSCALE_BELOW_DPI = 120
# A page is at most this many pixels, after scaling: an A3 newspaper page at 300 dpi
# is 17 million. Beyond it an image is a poster, a mosaic or a decompression bomb.
MAX_PIXELS = 40_000_000
# A TIFF or PDF may hold at most this many pages to be read; a scanned book is not an
# article, and at about 10 s a page it would hold the build for hours.
MAX_PAGES = 40
# Words Tesseract reads with a confidence below this (0-100) are dropped. Measured on
# rendered pages (docs/measurements.md#ocr), dropping any raised the error rate (from
# 0.8% to 1.2% at 10, 1.6% at 30, single column): the rare characters of names and
# set phrases are read right with low confidence. Nothing is dropped; the citation
# says the text is OCR.
MIN_CONFIDENCE = 0
# A first read (simplified model) at least this confident (0-100, by character) is
# kept; below it the traditional model reads the page too (see _read_page).
SURE_CONFIDENCE = 90
# A page that takes longer than this is skipped (a page takes 2-5 s on one core).
PAGE_TIMEOUT_S = 120
# A line this much taller than the page's median is a headline.
HEADLINE_RATIO = 1.5

ENGINE_NOTE = "OCR"  # what a citation says of text that came from a scan

PageHook = Callable[[str], None]  # told the file's name after each page is read


def ocr_missing() -> str | None:
    """Why scans cannot be read on this machine, naming what to install; None when they can."""
    if _tesseract() is None:
        return (
            "the Tesseract OCR engine is not installed "
            "(apt-get install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra)"
        )
    missing = {"chi_sim", "chi_tra"} - _languages()
    if missing:
        packages = " ".join(f"tesseract-ocr-{name.replace('_', '-')}" for name in sorted(missing))
        return f"Tesseract has no {'/'.join(sorted(missing))} language data (apt-get install {packages})"
    return None


def _tesseract() -> str | None:
    return shutil.which(os.environ.get("QA_TESSERACT", "tesseract"))


@cache
def _languages() -> frozenset[str]:
    try:
        listed = subprocess.run([_tesseract(), "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):  # an engine that does not start reads nothing
        return frozenset()
    return frozenset(line.strip() for line in listed.stdout.splitlines()[1:])


@dataclass(frozen=True)
class ScanText:
    """What OCR read off one file's pages."""

    paragraphs_of: dict[int, list[str]]  # by page number, from 1; pages with no text are absent
    title: str  # the headline of the first page read, "" when none stood out
    pages: int  # pages read, text or not
    skipped: list[str]  # "page 3: reason" for pages that could not be read

    @property
    def paragraphs(self) -> list[str]:
        return [paragraph for number in sorted(self.paragraphs_of) for paragraph in self.paragraphs_of[number]]


def read_image_file(data: bytes, path: Path, on_page: PageHook | None = None) -> ScanText:
    """OCR of an image file (PNG, JPEG, TIFF with its pages, WebP).

    Raises:
        CorpusError: no OCR engine, an image that cannot be decoded or is too large,
            or no page with text.
    """
    _require_engine(path)
    from PIL import Image

    try:
        image = _open_image(data, path)
        frames = getattr(image, "n_frames", 1)
        if frames > MAX_PAGES:
            raise CorpusError(f"{path}: has {frames} pages, over the {MAX_PAGES}-page limit for one article; split it")
        pages = []
        for number in range(frames):
            image.seek(number)
            pages.append(image.copy())
    except CorpusError:
        raise
    except Image.UnidentifiedImageError as error:
        raise CorpusError(
            f"{path}: is not an image (its bytes are no PNG, JPEG, TIFF or WebP); save it again, or remove it"
        ) from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise CorpusError(
            f"{path}: is not a readable image ({type(error).__name__}: {error}); save it again, or remove it"
        ) from error
    return _read_pages(((number + 1, lambda page=page: page) for number, page in enumerate(pages)), path, on_page)


def read_pdf_pages(data: bytes, path: Path, numbers: list[int], on_page: PageHook | None = None) -> ScanText:
    """OCR of some pages of a PDF (1-based numbers), each rendered at DPI."""
    _require_engine(path)
    import pypdfium2

    if len(numbers) > MAX_PAGES:
        raise CorpusError(
            f"{path}: has {len(numbers)} scanned pages, over the {MAX_PAGES}-page limit for one article; split it"
        )
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        raise CorpusError(f"{path}: is not a readable PDF ({error}); export it again, or remove it") from error

    def render(number: int):
        page = document[number - 1]
        width, height = page.get_size()  # in points, 72 to the inch
        scale = DPI / 72
        if width * height * scale * scale > MAX_PIXELS:
            scale = (MAX_PIXELS / (width * height)) ** 0.5
        return page.render(scale=scale, grayscale=True).to_pil()

    try:
        return _read_pages(((number, lambda number=number: render(number)) for number in numbers), path, on_page)
    finally:
        document.close()


# The skip reason of a scan read without the engine. A build finds such scans by it in the
# last manifest's skipped files (a reason is all a manifest keeps) to read them again.
NEEDS_OCR = "is a scan and needs OCR"


def _require_engine(path: Path) -> None:
    missing = ocr_missing()
    if missing:
        raise CorpusError(f"{path}: {NEEDS_OCR}, but {missing}; install it, or remove the file")


def _open_image(data: bytes, path: Path):
    from PIL import Image

    # Checked from the header, before anything is decoded. Pillow has its own check, at
    # a limit another library may have changed; its error is given the same words.
    limit = f"over the {MAX_PIXELS // 1_000_000} megapixel limit for one page; scale it down or crop it"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            raise CorpusError(f"{path}: the image is {limit}") from error
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise CorpusError(f"{path}: the image is {width}x{height} pixels, {limit}")
    return image


def _read_pages(pages: Iterator, path: Path, on_page: PageHook | None) -> ScanText:
    """Each page read by OCR, one per core at a time; the pages are produced (rendered,
    decoded) here, in order, as pdfium is not safe to call from several threads."""
    workers = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 4))
    read: dict[int, Future] = {}
    skipped: list[str] = []
    count = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for number, load in pages:
            count += 1
            try:
                image = load()
            except Exception as error:  # a page the renderer cannot draw
                skipped.append(f"page {number}: {type(error).__name__}: {error}")
                continue
            read[number] = pool.submit(_read_page, image)
            read[number].add_done_callback(lambda _: on_page(path.name) if on_page else None)
    paragraphs_of: dict[int, list[str]] = {}
    title = ""
    for number, future in read.items():
        try:
            lines = future.result()
        except Exception as error:  # the engine failed or timed out on this page
            skipped.append(f"page {number}: {type(error).__name__}: {error}")
            continue
        if not paragraphs_of and not title:
            title, lines = _headline(lines)
        if lines:
            paragraphs_of[number] = _paragraphs(lines)
    if not paragraphs_of and not title:
        reasons = f" ({'; '.join(skipped)})" if skipped else ""
        raise CorpusError(f"{path}: OCR found no text on its {count} page(s){reasons}; check the scan, or remove it")
    return ScanText(paragraphs_of, title, count, skipped)


@dataclass(frozen=True)
class _Line:
    block: int
    text: str
    height: float


def _read_page(image) -> list[_Line]:
    """The page's lines in reading order, from Tesseract's layout analysis."""
    image, dpi = _prepared(image)
    png = io.BytesIO()
    image.save(png, format="PNG")
    lines, confidence = _ocr_lines(png.getvalue(), dpi, SIMPLIFIED)
    # Each model reads the other script's characters as look-alikes of its own (the
    # simplified model turns 龍 into 龙 or drops it), so the output's script cannot
    # tell which model fits; the engine's confidence can: about 91 for the model that
    # fits and 86 for the other, on clean pages. Below SURE_CONFIDENCE the page is read
    # with the traditional model too, and the more confident read kept.
    if confidence < SURE_CONFIDENCE:
        other, other_confidence = _ocr_lines(png.getvalue(), dpi, TRADITIONAL)
        if other_confidence > confidence:
            lines = other
    return lines


def _prepared(image):
    """Greyscale, scaled up when coarse, and the resolution to tell Tesseract.

    A scan records its resolution; without it (a photo, a screenshot) DPI is assumed.
    Tesseract must be told: it assumes 70 dpi for an image without one, and its layout
    analysis then drops parts of lines (a character error rate of 70% against 0.7%).
    """
    image = image.convert("L")
    recorded = image.info.get("dpi")
    dpi = round(recorded[0]) if isinstance(recorded, tuple) and recorded[0] >= 50 else DPI
    if dpi < UPSCALE_BELOW_DPI:
        factor = min(DPI / dpi, 4.0)
        if image.width * image.height * factor * factor <= MAX_PIXELS:
            image = image.resize((round(image.width * factor), round(image.height * factor)))
            dpi = round(dpi * factor)
    return image, dpi


def _ocr_lines(png: bytes, dpi: int, language: str) -> tuple[list[_Line], float]:
    """One read by the tesseract command: its TSV gives each word's block, line, height and confidence.

    The command is run directly, not through a wrapper, for the two settings that
    matter here: one thread (its OpenMP threads spin against each other and against
    the build, four times slower on 2 cores), and a time limit per page.
    """
    command = [_tesseract(), "stdin", "stdout", "-l", language, "--dpi", str(dpi), "tsv"]
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    result = subprocess.run(command, input=png, capture_output=True, timeout=PAGE_TIMEOUT_S, env=environment)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(message[-1] if message else f"tesseract exited with {result.returncode}")
    words: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
    confidences: list[tuple[float, int]] = []  # each word's, with its length
    for row in result.stdout.decode("utf-8", "replace").splitlines()[1:]:
        fields = row.split("\t")
        if len(fields) < 12 or fields[0] != "5":  # level 5: a word
            continue
        word = fields[11].strip()
        if not word:
            continue
        confidences.append((float(fields[10]), len(word)))
        if float(fields[10]) < MIN_CONFIDENCE:
            continue
        # Dictionaries keep insertion order: the lines come out in Tesseract's reading order.
        words.setdefault((fields[2], fields[3], fields[4]), []).append((word, int(fields[9])))
    lines = []
    for (block, _, _), found in words.items():
        text = _join_words([word for word, _ in found])
        if text:
            lines.append(_Line(int(block), text, statistics.median(height for _, height in found)))
    characters = sum(length for _, length in confidences)
    return lines, sum(value * length for value, length in confidences) / max(1, characters)


def _join_words(words: list[str]) -> str:
    """A line's words, with a space only between two Latin words or numbers.

    Tesseract separates every character of Chinese text as a word; the spaces it puts
    between them are not the page's.
    """
    text = ""
    for word in words:
        word = unicodedata.normalize("NFC", word)
        if text and _latin(text[-1]) and _latin(word[0]):
            text += " "
        text += word
    return text


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _headline(lines: list[_Line]) -> tuple[str, list[_Line]]:
    """The first page's headline (its leading lines set much larger than the body), and the rest."""
    if len(lines) < 3:
        return "", lines
    body = statistics.median(line.height for line in lines)
    top = 0
    while top < min(len(lines), 3) and lines[top].height >= HEADLINE_RATIO * body:
        top += 1
    if top == 0:
        return "", lines
    return "".join(line.text for line in lines[:top]), lines[top:]


def _paragraphs(lines: list[_Line]) -> list[str]:
    """The page's lines, in reading order, joined into paragraphs by the printed-page rule.

    Across blocks too: a paragraph that runs off the foot of one column goes on at the
    head of the next, and Tesseract sometimes makes a paragraph's last line a block
    of its own; the rule (a line that fills its column goes on) decides both.
    """
    return join_printed_lines([line.text for line in lines])
