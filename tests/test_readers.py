"""Reading articles of every format and encoding, and refusing files that cannot be articles.

Loading only: no model, no index (retrievability is tested through the index elsewhere).
The PDF is printed by headless Chromium, as a user would make one; those tests are
skipped when Chromium is missing (scripts/setup.sh installs it).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from test_corpus import paragraph_breaks_inside_sentences

import qa.ingest.corpus
from qa.bench.ocr import chromium, print_pdf
from qa.errors import CorpusError
from qa.ingest.clean import clean_text, join_printed_lines
from qa.ingest.corpus import ARTICLE_SUFFIXES, article_files, load_article, load_corpus
from qa.ingest.decode import decode_text
from qa.ingest.readers import fix_radicals

# Real-looking news in both scripts; the traditional one is the Big5 case that used to
# be read as GB18030 and indexed as mojibake.
SIMPLIFIED = (
    "昆山高新区：学史力行用心筑牢安全根基\n"
    "本报讯近日，昆山高新区召开安全生产工作会议，部署下一阶段重点任务。会议要求，"
    "各单位要压实安全生产责任，深入开展隐患排查整治，坚决防范遏制重特大事故发生。\n"
    "会议指出，今年以来全区安全生产形势总体平稳，但仍有部分企业主体责任落实不到位。\n"
)
TRADITIONAL = (
    "推動中新廣州知識城在因地制宜發展新質生產力方面走在前列研討會\n"
    "2024年11月20日，研討會在廣州舉行，會議由廣州市科技局主辦，約60人參加。"
    "知識城與新加坡的合作日益緊密，簽署了81份合作備忘錄。\n"
    "與會專家認為，知識城應當繼續深化國際合作，加快集聚高端創新資源。\n"
)
# A two-line article: a headline and one sentence, the least text to judge an encoding by.
SHORT_SIMPLIFIED = "知识城签署合作备忘录\n知识城与新加坡签署了81份合作备忘录。\n"
SHORT_TRADITIONAL = "知識城簽署合作備忘錄\n知識城與新加坡簽署了81份合作備忘錄。\n"


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------ encodings


@pytest.mark.parametrize(
    "text, encoding, decoded_as",
    [
        (SIMPLIFIED, "gbk", "gb18030"),
        (TRADITIONAL, "gbk", "gb18030"),  # GBK holds traditional characters too
        (TRADITIONAL, "big5", "cp950"),
        (SHORT_SIMPLIFIED, "gbk", "gb18030"),
        (SHORT_TRADITIONAL, "big5", "cp950"),
        (SHORT_TRADITIONAL, "gbk", "gb18030"),
        (SIMPLIFIED, "utf-16", "UTF-16 with BOM"),  # Python writes the BOM, little-endian here
        (TRADITIONAL, "utf-16", "UTF-16 with BOM"),
        (SIMPLIFIED, "utf-8-sig", "UTF-8 with BOM"),
        (TRADITIONAL, "utf-32", "UTF-32 with BOM"),
        (SHORT_TRADITIONAL, "utf-8", "utf-8"),
    ],
)
def test_legacy_and_unicode_encodings_load_with_the_right_text(tmp_path, text, encoding, decoded_as):
    path = write(tmp_path, "article.txt", text.encode(encoding))
    assert decode_text(path.read_bytes(), path).encoding == decoded_as
    article = load_article(path, tmp_path)
    headline, first_sentence = text.split("\n")[:2]
    assert article.title == headline
    assert first_sentence.split("，")[-1] in article.text  # the words themselves, searchable
    assert article.text.startswith(headline + "\n")


def test_big_endian_utf16_with_bom(tmp_path):
    path = write(tmp_path, "be.txt", b"\xfe\xff" + SIMPLIFIED.encode("utf-16-be"))
    assert load_article(path).title == "昆山高新区：学史力行用心筑牢安全根基"


def test_big5_article_is_not_read_as_gb18030(tmp_path):
    # Every Big5 byte pair is also a valid GB18030 pair, so the old reader decoded this
    # without an error, into characters nobody could search for.
    data = TRADITIONAL.encode("big5")
    misread = data.decode("gb18030")
    assert misread != TRADITIONAL
    article = load_article(write(tmp_path, "big5.txt", data), tmp_path)
    assert "簽署了81份合作備忘錄" in article.text
    assert article.date == "2024-11-20"
    assert article.content_hash == hashlib.sha256(data).hexdigest()


def test_bytes_already_read_are_used_as_given(tmp_path):
    data = SHORT_TRADITIONAL.encode("big5")
    path = tmp_path / "never-written.txt"
    article = load_article(path, tmp_path, data=data)
    assert article.source == "never-written.txt"
    assert article.title == "知識城簽署合作備忘錄"
    assert article.content_hash == hashlib.sha256(data).hexdigest()


def test_a_corpus_of_mixed_encodings_loads(tmp_path):
    write(tmp_path, "a-gbk.txt", SIMPLIFIED.encode("gbk"))
    write(tmp_path, "b-big5.md", TRADITIONAL.encode("big5"))
    write(tmp_path, "c-utf16.txt", SHORT_SIMPLIFIED.encode("utf-16"))
    titles = [article.title for article in load_corpus(tmp_path)]
    assert titles == [
        "昆山高新区：学史力行用心筑牢安全根基",
        "推動中新廣州知識城在因地制宜發展新質生產力方面走在前列研討會",
        "知识城签署合作备忘录",
    ]


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"\x00\x01\x02\x03binary" * 20, "binary"),
        (bytes(range(128, 256)) * 4, "does not decode"),  # random high bytes, no NUL
        ("日本語の記事です。東京で会議が開かれました。".encode("shift_jis"), "mojibake"),
        ("Grüße aus München, schöne Straßen.".encode("latin-1"), "mojibake"),
        # UTF-8 Chinese read as Latin-1 and saved again: valid UTF-8, but mojibake.
        (SIMPLIFIED.encode("utf-8").decode("latin-1").encode("utf-8"), "mojibake"),
        # The same through cp1252, which has no letter for five bytes: some are lost.
        (SIMPLIFIED.encode("utf-8").decode("cp1252", errors="ignore").encode("utf-8"), "mojibake"),
        # GBK read as Latin-1 and saved as UTF-8.
        (SIMPLIFIED.encode("gbk").decode("latin-1").encode("utf-8"), "mojibake"),
        (b"\xff\xfe" + b"\x00\xd8", "not valid UTF-16"),  # a BOM, then a lone surrogate
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document; give it a .pdf suffix"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "PNG image"),
    ],
)
def test_text_that_does_not_decode_cleanly_is_refused_by_name(tmp_path, data, problem):
    write(tmp_path, "good.txt", SHORT_SIMPLIFIED.encode("utf-8"))
    write(tmp_path, "bad.txt", data)
    with pytest.raises(CorpusError, match=rf"^{re.escape(str(tmp_path))}/bad\.txt: .*{problem}") as caught:
        load_corpus(tmp_path)
    assert "\n" not in str(caught.value)
    assert "UTF-8" in str(caught.value) or "suffix" in str(caught.value) or "remove" in str(caught.value)


@pytest.mark.parametrize("cut", [1, 2])
def test_utf8_cut_inside_its_last_character_is_read_without_that_character(tmp_path, cut):
    """A copy that stopped short was refused whole as a GBK reading of rare characters."""
    text = SHORT_SIMPLIFIED.rstrip("\n")  # ends in 。, three bytes
    path = write(tmp_path, "cut.txt", text.encode("utf-8")[:-cut])
    assert load_article(path).text.endswith("知识城与新加坡签署了81份合作备忘录")


def test_latin_text_in_utf8_is_not_taken_for_mojibake(tmp_path):
    path = write(tmp_path, "de.txt", "Grüße aus München. Die Äpfel sind schön.".encode())
    assert load_article(path).text == "Grüße aus München. Die Äpfel sind schön."


# ------------------------------------------------------------------------ bad files


def test_empty_and_blank_files_are_refused(tmp_path):
    for name, data in (("empty.txt", b""), ("blank.md", b" \n\t\r\n"), ("blank.pdf", b"")):
        with pytest.raises(CorpusError, match=rf"{name}: the file is empty"):
            load_article(write(tmp_path, name, data))


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(qa.ingest.corpus, "MAX_FILE_BYTES", 1000)
    path = write(tmp_path, "huge.txt", SIMPLIFIED.encode("utf-8") * 10)
    with pytest.raises(CorpusError, match=r"huge\.txt: .* MB is over the .* limit"):
        load_article(path)
    with pytest.raises(CorpusError, match="over the"):
        load_article(path, data=path.read_bytes())


def test_the_size_limit_leaves_room_for_a_pdf_with_photos(tmp_path):
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment("photo.jpg", os.urandom(8 * 2**20))  # photos that do not compress
    buffer = io.BytesIO()
    writer.write(buffer)
    # Read, not refused for its size: what it lacks is text (none in it, none read by OCR).
    with pytest.raises(CorpusError, match="the PDF has no text"):
        load_article(write(tmp_path, "photos.pdf", buffer.getvalue()))


def test_an_unreadable_file_is_refused_with_the_fix(tmp_path, monkeypatch):
    path = write(tmp_path, "locked.txt", SHORT_SIMPLIFIED.encode("utf-8"))

    # chmod 000 does not stop root, who runs these tests in CI, so the refusal is staged.
    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(CorpusError, match=r"locked\.txt: cannot read it \(Permission denied\); fix its permissions"):
        load_article(path)


def test_a_file_gone_between_listing_and_loading_is_refused(tmp_path):
    write(tmp_path, "a.txt", SHORT_SIMPLIFIED.encode("utf-8"))
    path = write(tmp_path, "b.txt", SHORT_SIMPLIFIED.encode("utf-8"))
    [_, listed] = article_files(tmp_path)
    path.unlink()
    with pytest.raises(CorpusError, match=r"b\.txt: cannot read it \(No such file"):
        load_article(listed, tmp_path)


# ---------------------------------------------------------------------- front matter


def test_front_matter_gives_the_metadata(tmp_path):
    path = write(
        tmp_path,
        "fm.md",
        '---\ntitle: 标题\ndate: 2021-08-24\n# a comment\n\npublication: "南方日报"\n---\n正文一句。\n'.encode("gbk"),
    )
    article = load_article(path)
    assert (article.title, article.date, article.publication, article.text) == (
        "标题",
        "2021-08-24",
        "南方日报",
        "正文一句。",
    )


def test_unclosed_front_matter_is_refused_rather_than_indexed_as_text(tmp_path):
    path = write(tmp_path, "half.txt", "---\ntitle: 标题\n正文第一句。正文第二句。\n".encode())
    with pytest.raises(CorpusError, match=r"half\.txt: front matter .* never closed; add a '---' line"):
        load_article(path)


def test_a_front_matter_line_that_is_not_key_value_is_refused_with_its_number(tmp_path):
    path = write(tmp_path, "typo.txt", "---\ntitle: 标题\ndate 2021\n---\n正文。\n".encode())
    with pytest.raises(CorpusError, match=r"typo\.txt: line 3 of the front matter is not 'key: value' \('date 2021'\)"):
        load_article(path)


def test_a_rule_followed_by_text_is_not_front_matter(tmp_path):
    path = write(tmp_path, "rule.txt", "---\n正文第一句。正文第二句。\n".encode())
    assert "正文第一句。" in load_article(path).text


# ------------------------------------------------------------------------------ HTML

PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head>
<meta http-equiv="Content-Type" content="text/html; charset={charset}">
<title>{title}_南方网</title>
<meta property="og:site_name" content="南方网">
<meta property="article:published_time" content="2024-11-20T09:30:00+08:00">
</head><body>
<nav><ul><li><a href="/">首页</a></li><li><a href="/news">新闻中心</a></li><li><a href="/about">关于我们</a></li></ul></nav>
<article><h1>{title}</h1>
{paragraphs}
</article>
<section class="comments"><h3>网友评论</h3>
<div class="comment"><p>写得真好，支持知识城发展！期待更多报道。</p></div></section>
<footer><p>版权所有 南方网 粤ICP备00000000号</p><a href="/contact">联系我们</a></footer>
</body></html>"""


def page(text: str, charset: str = "utf-8") -> str:
    title, *paragraphs = text.strip().split("\n")
    return PAGE.format(charset=charset, title=title, paragraphs="\n".join(f"<p>{p}</p>" for p in paragraphs))


def test_web_page_gives_the_article_without_navigation_or_comments(tmp_path):
    path = write(tmp_path, "page.html", page(SIMPLIFIED).encode("utf-8"))
    article = load_article(path, tmp_path)
    assert article.title == "昆山高新区：学史力行用心筑牢安全根基"  # the site's name left off
    assert article.date == "2024-11-20"  # from the page's metadata
    assert article.publication == "南方网"
    assert "部署下一阶段重点任务。" in article.text and "主体责任落实不到位。" in article.text
    for noise in ("首页", "新闻中心", "网友评论", "写得真好", "版权所有", "联系我们"):
        assert noise not in article.text
    assert paragraph_breaks_inside_sentences(article.text) == []


@pytest.mark.parametrize(
    "text, encoding, declared",
    [
        (SIMPLIFIED, "gbk", "gb2312"),  # the usual label for GBK pages
        (TRADITIONAL, "big5", "big5"),
        (TRADITIONAL, "big5", "gb2312"),  # mislabelled: the declaration is overruled
        (SHORT_TRADITIONAL, "big5", None),  # no declaration at all
    ],
)
def test_web_page_in_a_legacy_encoding(tmp_path, text, encoding, declared):
    html = page(text, declared or "utf-8")
    if declared is None:
        html = html.replace('<meta http-equiv="Content-Type" content="text/html; charset=utf-8">', "")
    # The site chrome is simplified Chinese; what Big5 lacks goes in as &#...; references.
    path = write(tmp_path, "legacy.htm", html.encode(encoding, errors="xmlcharrefreplace"))
    article = load_article(path)
    assert article.title == text.split("\n")[0]
    assert text.split("\n")[1][-12:] in article.text


@pytest.mark.parametrize(
    "html, problem",
    [
        ("<html><body><nav><a href='/'>首页</a> <a href='/n'>新闻</a></nav></body></html>", "no article text"),
        ("<html><head><script>var a = 1;</script></head><body></body></html>", "no article text"),
    ],
)
def test_web_page_without_an_article_is_refused(tmp_path, html, problem):
    with pytest.raises(CorpusError, match=rf"menu\.html: {problem}"):
        load_article(write(tmp_path, "menu.html", html.encode("utf-8")))


# ------------------------------------------------------------------------------ PDF


def print_to_pdf(html: str, folder: Path, name: str) -> Path:
    """The page printed to PDF by headless Chromium, as a user would save an article."""
    if chromium() is None:
        pytest.skip("Chromium not found (apt-get install chromium fonts-noto-cjk, or set QA_CHROMIUM)")
    return print_pdf(html, folder, name)


def article_page(text: str) -> str:
    title, *paragraphs = text.strip().split("\n")
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>body {{ font-size: 14pt; margin: 2cm; }}</style></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


LONG_ARTICLE = (
    "知识城与新加坡合作再上新台阶\n"
    "2024年11月20日，中新广州知识城在因地制宜发展新质生产力方面走在前列研讨会在广州举行。"
    "会议由广州市科技局主办，约60人参加。\n"
    "知识城与新加坡的合作日益紧密，目前已签署了81份合作备忘录，涵盖科技创新、人才培养和城市管理等多个领域。"
    "与会专家认为，知识城应当继续深化国际合作，加快集聚高端创新资源，打造具有全球影响力的创新高地。\n"
    "研讨会上，多位专家围绕集成电路、生物医药和新能源等产业的发展路径展开讨论，并就如何完善创新生态提出了具体建议。\n"
)


def test_pdf_printed_from_a_page_reads_as_the_article(tmp_path):
    path = print_to_pdf(article_page(LONG_ARTICLE), tmp_path, "knowledge-city")
    article = load_article(path, tmp_path)
    # Paragraphs read whole again: the printed line breaks are joined, and the
    # radicals the CJK font writes into the text layer (⾸ for 首) are ideographs again.
    assert article.text.split("\n") == LONG_ARTICLE.strip().split("\n")
    assert article.title == "知识城与新加坡合作再上新台阶"  # from the PDF's info
    # The date printed in the article, not the day the PDF was made.
    assert article.date == "2024-11-20"


def test_pdf_without_a_date_in_its_text_takes_its_creation_date(tmp_path):
    import pypdf

    undated = LONG_ARTICLE.replace("2024年11月20日，", "")
    printed = print_to_pdf(article_page(undated), tmp_path, "printed")
    writer = pypdf.PdfWriter(clone_from=printed)
    writer.add_metadata({"/Title": "知识城合作研讨会", "/CreationDate": "D:20241121083000+08'00'"})
    path = tmp_path / "undated.pdf"
    writer.write(path)
    article = load_article(path)
    assert article.title == "知识城合作研讨会"
    assert article.date == "2024-11-21"
    assert "约60人参加。" in article.text


def test_pdf_with_no_text_in_its_layer_or_its_image_says_so(tmp_path):
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)  # no text layer, and nothing for OCR to read
    buffer = io.BytesIO()
    writer.write(buffer)
    # tests/test_ocr.py has scans, which do hold text.
    with pytest.raises(CorpusError, match=r"scan\.pdf: the PDF has no text \(no text layer, no scanned page"):
        load_article(write(tmp_path, "scan.pdf", buffer.getvalue()))


@pytest.mark.parametrize("data", [b"%PDF-1.4\n1 0 obj garbage\n", b"<html>not a pdf</html>", os.urandom(2000)])
def test_damaged_pdf_is_refused(tmp_path, data):
    with pytest.raises(CorpusError, match=r"broken\.pdf: is not a readable PDF"):
        load_article(write(tmp_path, "broken.pdf", data))


def test_a_pdf_pypdf_repairs_is_read_without_pypdfs_warnings(tmp_path, caplog, capsys):
    """pypdf's repair notes ("invalid pdf header") were stray lines in a build's output."""
    import logging

    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    junk = b"junk" + buffer.getvalue()  # bytes before the header: pypdf warns and repairs
    with caplog.at_level(logging.WARNING), pytest.raises(CorpusError, match=r"junk\.pdf: the PDF has no text"):
        load_article(write(tmp_path, "junk.pdf", junk))
    assert not [record for record in caplog.records if record.name.startswith("pypdf")]
    assert "invalid pdf header" not in capsys.readouterr().err


def test_password_protected_pdf_is_refused(tmp_path):
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(CorpusError, match=r"locked\.pdf: the PDF is password-protected"):
        load_article(write(tmp_path, "locked.pdf", buffer.getvalue()))


def test_printed_lines_join_into_paragraphs_on_a_narrow_newspaper_page(seeds_dir):
    # The seed page is the text layer of a newspaper PDF, columns of ~20 characters.
    raw = (seeds_dir / "000_5e5f0162cd1f913f.txt").read_text(encoding="utf-8")
    paragraphs = join_printed_lines([line.strip() for line in raw.split("\n") if line.strip()])
    text = clean_text("\n".join(paragraphs)).text  # as load_article does next
    assert paragraph_breaks_inside_sentences(text) == []
    assert "中国城市规划设计研究院副总规划师靳东晓对中新广州知识城" in text


def test_font_radicals_become_ideographs():
    assert fix_radicals("⾸⻚ ⽹友评论 ⻓江 ⻢上") == "首页 网友评论 长江 马上"


# ------------------------------------------------------------------------------ DOCX


def make_docx(text: str, title: str = "", created: datetime | None = None) -> bytes:
    import docx

    document = docx.Document()
    headline, *paragraphs = text.strip().split("\n")
    document.add_heading(headline, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("项目", "数量"), ("合作备忘录", "81份")]):
        for cell, value in zip(row.cells, cells):
            cell.text = value
    document.core_properties.title = title
    if created is not None:
        document.core_properties.created = created
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_word_document_gives_text_title_and_date(tmp_path):
    undated = SIMPLIFIED  # no date in the text: the document's creation date is used
    path = write(tmp_path, "kunshan.docx", make_docx(undated, "昆山高新区筑牢安全根基", datetime(2021, 8, 24, 9, 0)))
    article = load_article(path, tmp_path)
    assert article.title == "昆山高新区筑牢安全根基"
    assert article.date == "2021-08-24"
    assert article.text.split("\n")[:2] == undated.split("\n")[:2]
    assert "合作备忘录 | 81份" in article.text  # table rows are text too


def test_word_document_without_properties_falls_back_to_its_text(tmp_path):
    # python-docx's template carries a 2013 creation time; it is not the article's date.
    path = write(tmp_path, "untitled.docx", make_docx(TRADITIONAL))
    article = load_article(path)
    assert article.title == TRADITIONAL.split("\n")[0]
    assert article.date == "2024-11-20"


@pytest.mark.parametrize("data", [b"PK\x03\x04 not really a zip", os.urandom(3000)])
def test_damaged_word_document_is_refused(tmp_path, data):
    with pytest.raises(CorpusError, match=r"broken\.docx: is not a readable DOCX file .*save it again"):
        load_article(write(tmp_path, "broken.docx", data))


# -------------------------------------------------------------------------- listing


def test_every_format_is_listed_and_lock_files_are_not(tmp_path):
    articles = ["a.txt", "b.md", "c.html", "d.HTM", "e.pdf", "f.docx"]
    for name in (*articles, "~$f.docx", ".hidden.txt", "README.md", "g.doc"):
        (tmp_path / name).write_bytes(b"x")
    assert {".txt", ".md", ".html", ".htm", ".pdf", ".docx"} <= set(ARTICLE_SUFFIXES)
    assert [path.name for path in article_files(tmp_path)] == articles


def test_importing_the_corpus_module_loads_no_parser():
    code = "import sys, qa.ingest.corpus; print(sorted({'trafilatura', 'pypdf', 'docx'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------ what one file may unpack to


def docx_bomb(paragraphs: int, chars: int) -> bytes:
    """A real Word file whose document.xml holds `paragraphs` paragraphs of `chars`
    characters each, packed as Word packs it (deflate): tiny on disk, huge unpacked."""
    import zipfile

    plain = make_docx("知识城签署合作备忘录\n知识城与新加坡签署了81份合作备忘录。\n")
    source = zipfile.ZipFile(io.BytesIO(plain))
    body = "<w:p><w:r><w:t>" + "知" * chars + "</w:t></w:r></w:p>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "word/document.xml":
                text = data.decode("utf-8")
                start = text.index("<w:body>") + len("<w:body>")
                data = (text[:start] + body * paragraphs + text[start:]).encode("utf-8")
            bomb.writestr(entry.filename, data)
    return out.getvalue()


def test_a_word_file_that_unpacks_to_millions_of_characters_is_refused_unread(tmp_path):
    import tracemalloc

    # The probe: 30,000 paragraphs of 999 characters (90 MB of XML) in a file of ~200 KB.
    data = docx_bomb(30_000, 999)
    assert len(data) < qa.ingest.corpus.MAX_FILE_BYTES // 100
    path = write(tmp_path, "bomb.docx", data)
    tracemalloc.start()
    with pytest.raises(CorpusError, match=r"bomb\.docx: is not an ordinary Word file .*times its packed size"):
        load_article(path, tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB used to refuse it: it was unpacked"


def test_a_word_file_with_too_much_text_stops_being_read_at_the_limit(tmp_path, monkeypatch):
    # Not packed suspiciously (no part over 1 MB), yet more paragraphs than an article has.
    monkeypatch.setattr(qa.ingest.readers, "MAX_PARAGRAPHS", 500)
    path = write(tmp_path, "long.docx", docx_bomb(600, 20))
    with pytest.raises(CorpusError, match=r"long\.docx: holds over 500 paragraphs.*split it"):
        load_article(path, tmp_path)
    monkeypatch.setattr(qa.ingest.readers, "MAX_ARTICLE_CHARS", 5_000)
    path = write(tmp_path, "wide.docx", docx_bomb(300, 20))
    with pytest.raises(CorpusError, match=r"wide\.docx: holds over 5,000 characters"):
        load_article(path, tmp_path)


def test_text_and_web_pages_over_the_article_limits_are_refused(tmp_path):
    limit = qa.ingest.readers.MAX_ARTICLE_CHARS
    long_text = ("知识城与新加坡签署了81份合作备忘录。" * (limit // 18 + 10)).encode("utf-8")
    with pytest.raises(CorpusError, match=r"book\.txt: holds over 1,000,000 characters"):
        load_article(write(tmp_path, "book.txt", long_text), tmp_path)
    lines = ("第一段。\n" * qa.ingest.readers.MAX_PARAGRAPHS).encode("utf-8")
    with pytest.raises(CorpusError, match=r"lines\.md: holds over 20,000 paragraphs"):
        load_article(write(tmp_path, "lines.md", lines), tmp_path)
    page = b"<html><body>" + b"<div>x</div>" * (qa.ingest.readers.MAX_PAGE_CHARS // 12 + 1) + b"</body></html>"
    with pytest.raises(CorpusError, match=r"huge\.html: the page is over 10,000,000 characters"):
        load_article(write(tmp_path, "huge.html", page), tmp_path)


def test_a_pdf_of_thousands_of_pages_is_refused_before_its_text_is_read(tmp_path):
    import pypdf

    writer = pypdf.PdfWriter()
    for _ in range(qa.ingest.readers.MAX_PDF_PAGES + 1):
        writer.add_blank_page(200, 200)
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(CorpusError, match=r"pages\.pdf: has 2,001 pages, over the limit of 2,000"):
        load_article(write(tmp_path, "pages.pdf", buffer.getvalue()), tmp_path)


def test_a_bomb_in_the_corpus_is_skipped_and_the_rest_is_indexed(tmp_path, fake_encoder):
    from qa.index.build import build_index
    from qa.settings import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "news.txt").write_text(SIMPLIFIED, encoding="utf-8")
    (corpus / "bomb.docx").write_bytes(docx_bomb(30_000, 999))
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")
    summary = build_index(settings, encoder=fake_encoder)
    assert summary.articles == 1 and summary.embedded < 100
    assert [item.source for item in summary.skipped] == ["bomb.docx"]
    assert "not an ordinary Word file" in summary.skipped[0].reason


# ---------------------------------------------------------------- file names


def test_a_file_name_that_is_not_utf8_is_skipped_by_a_printable_name(tmp_path, fake_encoder):
    from qa.index.build import build_index
    from qa.index.freshness import index_status
    from qa.settings import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "news.txt").write_text(SIMPLIFIED, encoding="utf-8")
    with open(os.fsencode(corpus) + b"/bad\xff\xfe.txt", "wb") as handle:
        handle.write(TRADITIONAL.encode("utf-8"))
    settings = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="fake")
    summary = build_index(settings, encoder=fake_encoder)  # was: UnicodeEncodeError writing the index
    assert summary.articles == 1
    skipped = {item.source: item.reason for item in summary.skipped}
    assert list(skipped) == ["bad\\xff\\xfe.txt"]
    assert "not valid UTF-8" in skipped["bad\\xff\\xfe.txt"] and "rename" in skipped["bad\\xff\\xfe.txt"]
    str(summary).encode("utf-8")  # printable
    status = index_status(settings)
    assert status["state"] == "ready" and status["skipped"][0]["source"] == "bad\\xff\\xfe.txt"
    # Renamed, it is indexed by the next build.
    os.rename(os.fsencode(corpus) + b"/bad\xff\xfe.txt", corpus / "good.txt")
    assert build_index(settings, encoder=fake_encoder).articles == 2
