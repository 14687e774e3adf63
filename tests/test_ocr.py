"""Scans are searchable like text: real Tesseract on pages the tests print themselves.

Each page is laid out by headless Chromium (the CJK fonts come with setup), rasterised
by pdfium, and saved as a user would have it: a PNG clipping or an image-only PDF.
The articles are made up here, in both scripts; nothing comes from the evaluation sets.
"""

from __future__ import annotations

import re
import shutil
import zlib
from pathlib import Path

import pytest

import qa.ingest.ocr
from qa.bench.ocr import chromium, error_rate, page_html, print_pdf, rasterise, scan_files
from qa.errors import CorpusError
from qa.ingest.corpus import load_article
from qa.ingest.ocr import ocr_missing

pytestmark = pytest.mark.skipif(
    chromium() is None or ocr_missing() is not None,
    reason=f"needs Chromium and Tesseract ({ocr_missing() or 'apt-get install chromium fonts-noto-cjk'})",
)

LIBRARY = (
    "青石镇新图书馆正式开放",
    [
        "本报讯 11月8日，青石镇新图书馆在镇中心广场北侧正式向市民开放，首日接待读者2300余人次。",
        "新馆建筑面积6500平方米，总投资3800万元，共有藏书12万册，设有少儿阅览区、古籍修复室和24小时自助借还区。",
        "镇文化站站长林晓燕介绍，图书馆每周一闭馆，其余时间开放至晚上9点，读者凭身份证即可免费办理借阅证。",
    ],
)
DRAGON_BOAT = (
    "港灣區舉辦第十屆龍舟邀請賽",
    [
        "本報訊 6月22日，第十屆港灣區龍舟邀請賽在東湖水域舉行，吸引了約1.5萬名市民到場觀看。",
        "本屆比賽共有46支隊伍參賽，其中包括來自澳門和新加坡的8支客隊，賽道全長500米。",
        "最終，漁港村代表隊以2分03秒的成績奪得男子組冠軍，組委會為前三名頒發了獎盃和獎金。",
    ],
)


def _scan(folder: Path, article: tuple[str, list[str]], name: str, kind: str, dpi: int = 200, columns: int = 1):
    title, paragraphs = article
    lang = "zh-TW" if article is DRAGON_BOAT else "zh-CN"
    pdf = print_pdf(page_html(title, paragraphs, columns, lang), folder, f"{name}-source")
    (path,) = scan_files(rasterise(pdf, dpi), folder, name, kind, dpi)
    pdf.unlink()
    return path


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """A corpus of two scans: a simplified PNG clipping and a traditional image-only PDF."""
    folder = tmp_path_factory.mktemp("scans")
    corpus = folder / "corpus"
    corpus.mkdir()
    png = _scan(folder, LIBRARY, "library", "png")
    pdf = _scan(folder, DRAGON_BOAT, "dragon-boat", "pdf")
    shutil.move(png, corpus / png.name)
    shutil.move(pdf, corpus / pdf.name)
    return corpus


def test_png_clipping_reads_as_its_article(scans):
    article = load_article(scans / "library.png", scans)
    body = "\n".join(LIBRARY[1])
    assert article.title == LIBRARY[0]  # the headline, set large, is the title
    assert article.ocr
    assert error_rate(article.text, body) <= 0.03, article.text
    # Chinese text with no spaces between characters; numbers whole.
    assert "12万册" in article.text and "3800万元" in article.text
    assert not re.search(r"[\u4e00-\u9fff] +[\u4e00-\u9fff]", article.text)


def test_image_only_pdf_in_traditional_reads_in_its_own_script(scans):
    article = load_article(scans / "dragon-boat.pdf", scans)
    body = "\n".join(DRAGON_BOAT[1])
    assert error_rate(article.title, DRAGON_BOAT[0]) <= 0.1, article.title  # large type: a character may go
    assert error_rate(article.text, body) <= 0.03, article.text
    assert "46支隊伍參賽" in article.text  # traditional characters, not the simplified model's guesses


@pytest.mark.model
def test_scans_are_found_by_questions_about_their_facts(scans, tmp_path, monkeypatch):
    from qa.api import answer, build_index
    from qa.settings import Settings

    corpus = tmp_path / "corpus"
    shutil.copytree(scans, corpus)
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index")
    summary = build_index(settings)
    assert summary.added == 2 and not summary.skipped

    result = answer("新馆共有藏书多少册？", settings=settings)
    assert result.verdict == "found"
    assert result.passages[0].source == "library.png"
    assert "12万册" in result.passages[0].text
    assert "OCR" in result.passages[0].citation  # a reader knows to check the scan

    result = answer("龍舟邀請賽共有多少支隊伍參賽？", settings=settings)
    assert result.verdict == "found"
    assert result.passages[0].source == "dragon-boat.pdf"
    assert "46支" in result.passages[0].text

    # An unchanged scan is never read again; a changed one is.
    pages = []
    read_page = qa.ingest.ocr._read_page
    monkeypatch.setattr(qa.ingest.ocr, "_read_page", lambda image: pages.append(1) or read_page(image))
    summary = build_index(settings)
    assert pages == [] and summary.unchanged == 2

    changed = (LIBRARY[0], [*LIBRARY[1][:2], "图书馆二期工程预计明年5月动工，将新增一座可容纳300人的报告厅。"])
    _scan(tmp_path, changed, "library", "png")
    shutil.move(tmp_path / "library.png", corpus / "library.png")
    summary = build_index(settings)
    assert len(pages) == 1 and summary.changed == 1
    result = answer("图书馆的报告厅能容纳多少人？", settings=settings, show_unrelated=True)
    assert result.passages[0].source == "library.png" and "300人" in result.passages[0].text


def test_two_column_page_keeps_reading_order(tmp_path):
    numbers = "一二三四五六七八"
    paragraphs = [f"第{number}段：{LIBRARY[1][i % 3]}" for i, number in enumerate(numbers)]
    path = _scan(tmp_path, (LIBRARY[0], paragraphs), "columns", "png", dpi=300, columns=2)
    article = load_article(path)
    assert error_rate(article.text, "\n".join(paragraphs)) <= 0.05, article.text
    order = [article.text.find(f"第{number}段") for number in numbers]
    assert order == sorted(order) and -1 not in order, order


def _joined(target: Path, *pdfs: Path) -> Path:
    """The PDFs' pages one after the other in one file, as a scanner's software joins them."""
    import pypdf

    writer = pypdf.PdfWriter()
    for source in pdfs:
        for page in pypdf.PdfReader(source).pages:
            writer.add_page(page)
    with target.open("wb") as out:
        writer.write(out)
    return target


def test_mixed_pdf_reads_text_pages_and_scanned_pages_in_order(tmp_path):
    text_pdf = print_pdf(page_html(*LIBRARY), tmp_path, "text")
    scanned = _scan(tmp_path, (LIBRARY[0], DRAGON_BOAT[1]), "scan", "pdf")
    mixed = _joined(tmp_path / "mixed.pdf", text_pdf, scanned)
    article = load_article(mixed)
    assert article.ocr
    text_at, scan_at = article.text.find("12万册"), article.text.find("46支隊伍")
    assert 0 <= text_at < scan_at


def test_without_the_engine_a_pdf_with_text_is_read_without_its_scanned_pages(tmp_path, monkeypatch):
    text_pdf = print_pdf(page_html(*LIBRARY), tmp_path, "text")
    scanned = _scan(tmp_path, DRAGON_BOAT, "scan", "pdf")
    mixed = _joined(tmp_path / "mixed.pdf", text_pdf, scanned)
    monkeypatch.setenv("QA_TESSERACT", "/nonexistent/tesseract")
    qa.ingest.ocr._languages.cache_clear()
    try:
        article = load_article(mixed)
        assert "12万册" in article.text and "46支" not in article.text and not article.ocr
        with pytest.raises(CorpusError, match=r"scan\.pdf: is a scan and needs OCR, but the Tesseract OCR engine"):
            load_article(scanned)
    finally:
        qa.ingest.ocr._languages.cache_clear()


def test_broken_image_is_skipped_with_its_reason(tmp_path):
    good = _scan(tmp_path, LIBRARY, "page", "png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:2000])  # a download cut short
    with pytest.raises(CorpusError, match=r"broken\.png: is not a readable image"):
        load_article(broken)


def test_decompression_bomb_image_is_refused_before_decoding(tmp_path):
    # A 40,000 x 40,000 greyscale PNG of zeros: 1.6 GB decoded from a file of about 2 MB.
    width = height = 40_000
    row = b"\x00" + bytes(width)
    data = zlib.compress(row * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    with pytest.raises(CorpusError, match=r"bomb\.png: the image is .*over the 40 megapixel limit for one page"):
        load_article(bomb)


def test_without_the_engine_a_scan_is_skipped_naming_the_package(tmp_path, monkeypatch, scans):
    from qa.index.build import build_index
    from qa.settings import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(scans / "library.png", corpus)
    (corpus / "text.txt").write_text("青石镇\n" + "\n".join(LIBRARY[1]), encoding="utf-8")
    monkeypatch.setenv("QA_TESSERACT", "/nonexistent/tesseract")
    qa.ingest.ocr._languages.cache_clear()
    from conftest import FakeEncoder

    summary = build_index(Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index"), encoder=FakeEncoder())
    (skipped,) = summary.skipped
    assert skipped.source == "library.png"
    assert "apt-get install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra" in skipped.reason
    qa.ingest.ocr._languages.cache_clear()
