"""Read one article file of any supported format into raw text plus metadata.

Text (`.txt`, `.md`) is decoded (a byte-order mark, else UTF-8, else the Chinese
legacy encoding whose reading is plausible Chinese) and may open with front matter;
`.html`/`.htm` go through trafilatura (the article, not navigation or comments),
`.pdf` through pypdf (its text layer, printed lines joined), `.docx` through
python-docx. Each parser is imported inside its reader, so importing this module
(and `qa.ingest.corpus`) stays cheap.

Leaves out: cleaning (qa.ingest.clean), title/date guessing from the text and the size
and emptiness checks (qa.ingest.corpus), OCR of scanned PDFs, UTF-16 without a BOM.
Every problem is a CorpusError whose message starts with the file's path.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError
from qa.ingest.clean import join_printed_lines
from qa.ingest.decode import decode_text
from qa.ingest.ocr import IMAGE_SUFFIXES, PageHook, ocr_missing, read_image_file, read_pdf_pages
from qa.text.sentences import SENTENCE_END

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")

# What one article may become. The file-size limit (qa.ingest.corpus.MAX_FILE_BYTES)
# bounds a file's bytes, not what they unpack to: a 200 KB DOCX held 90 MB of XML in
# 30,000 paragraphs (2 GB of memory, 150,000 texts to embed, hours). These are checked
# while reading, before the bulk is parsed where the format allows it.
# A long report is about 100,000 characters; a whole book 500,000.
MAX_ARTICLE_CHARS = 1_000_000
# A paragraph per sentence for a whole book stays below this.
MAX_PARAGRAPHS = 20_000
# A web page's source (markup and scripts) may be many times its text, but not without end.
MAX_PAGE_CHARS = 10 * MAX_ARTICLE_CHARS
# A newspaper's whole issue is under 200 pages.
MAX_PDF_PAGES = 2_000
# A Word file is a zip of ~20 parts (a few hundred with many images). Its XML packs
# 5-10 times smaller; photos do not shrink at all. A part that unpacks 100 times larger
# than it is packed is made to, not written.
MAX_ZIP_ENTRIES = 1_000
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
MAX_ZIP_RATIO = 100


@dataclass(frozen=True)
class RawDocument:
    """What a reader got out of one file, before cleaning."""

    text: str  # the article text as found: hard line breaks, boilerplate and all
    # title/date/publication/...: front matter, or the document's own metadata. These
    # win over anything guessed from the text.
    meta: dict[str, str] = field(default_factory=dict)
    # The file's creation date (PDF info, DOCX core properties), YYYY-MM-DD. It says
    # when the file was made, often an export long after publication, so it is used
    # only when the text itself shows no date.
    file_date: str = ""
    encoding: str = ""  # how text or HTML bytes were decoded ("utf-8", "gb18030", "cp950", ...)
    ocr_pages: int = 0  # pages whose text came from OCR (qa.ingest.ocr), not from the file's text


def read_document(data: bytes, path: Path, on_page: PageHook | None = None) -> RawDocument:
    """Read the bytes of one article file by its suffix.

    Args:
        data: the whole file.
        path: its path, for the suffix and for error messages.
        on_page: called after each scanned page is read by OCR (a build's progress).

    Returns:
        RawDocument with the raw text and whatever metadata the file carries.

    Raises:
        CorpusError: the file cannot be read as an article of its format; the message
            starts with `path` and says what to do.
    """
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        document = read_text(data, path)
    elif suffix in HTML_SUFFIXES:
        document = read_html(data, path)
    elif suffix == ".pdf":
        document = read_pdf(data, path, on_page)
    elif suffix == ".docx":
        document = read_docx(data, path)
    elif suffix in IMAGE_SUFFIXES:
        document = read_image(data, path, on_page)
    else:
        raise CorpusError(
            f"{path}: {suffix or 'no suffix'} is not an article format; "
            "use .txt, .md, .html, .htm, .pdf, .docx or a scan (.png, .jpg, .tif, .webp)"
        )
    check_extracted(document.text, path)
    meta = {key: _valid_text(fix_radicals(value)) for key, value in document.meta.items()}
    text = _valid_text(fix_radicals(document.text))
    return RawDocument(text, meta, document.file_date, document.encoding, document.ocr_pages)


def check_extracted(text: str, path: Path) -> None:
    """Raise CorpusError when `text` is more than one article may be (MAX_ARTICLE_CHARS,
    MAX_PARAGRAPHS)."""
    if len(text) > MAX_ARTICLE_CHARS:
        raise CorpusError(
            f"{path}: holds over {MAX_ARTICLE_CHARS:,} characters of text, the limit for one article; "
            "split it into articles, or remove it"
        )
    if text.count("\n") >= MAX_PARAGRAPHS:
        raise CorpusError(
            f"{path}: holds over {MAX_PARAGRAPHS:,} paragraphs, the limit for one article; "
            "split it into articles, or remove it"
        )


def _valid_text(text: str) -> str:
    """`text` with lone surrogates (a PDF's broken UTF-16 string) replaced by U+FFFD: the
    index is written as UTF-8, which cannot hold them, and one title must not fail a build."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


# ---------------------------------------------------------------------- text files

_FRONT_MATTER_KEY = re.compile(r"^\s*([\w-]+)\s*:(.*)$")


def read_text(data: bytes, path: Path) -> RawDocument:
    """A `.txt`/`.md` article: decoded, with its front matter split off."""
    decoded = decode_text(data, path)
    check_extracted(decoded.text, path)  # before front matter and cleaning copy it
    meta, body = split_front_matter(decoded.text, path)
    return RawDocument(body, meta, encoding=decoded.encoding)


def split_front_matter(raw: str, path: Path) -> tuple[dict[str, str], str]:
    """Split a leading `---` block of `key: value` lines from the body.

    A first line `---` followed by `key: value` lines opens front matter, which must
    be closed by another `---` line and hold only `key: value`, blank and `#` lines.
    A broken block is refused rather than read as article text: its `title:` line
    would become the first paragraph and the title would be lost without a word.
    A `---` followed by ordinary text is a rule, and the file is all text.

    Raises:
        CorpusError: an unclosed block, or a line in it that is not `key: value`.
    """
    lines = raw.lstrip("\ufeff").split("\n")
    if lines[0].strip() != "---":
        return {}, raw
    closing = next((index for index in range(1, len(lines)) if lines[index].strip() == "---"), None)
    if closing is None:
        first = next((line for line in lines[1:] if line.strip()), "")
        if _FRONT_MATTER_KEY.match(first):
            raise CorpusError(
                f"{path}: front matter opened by '---' on line 1 is never closed; add a "
                f"'---' line after its last 'key: value' line"
            )
        return {}, raw
    meta: dict[str, str] = {}
    for number, line in enumerate(lines[1:closing], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _FRONT_MATTER_KEY.match(line)
        if not match:
            raise CorpusError(
                f"{path}: line {number} of the front matter is not 'key: value' "
                f"({line.strip()[:40]!r}); fix it, or move it below the closing '---'"
            )
        meta[match.group(1).lower()] = match.group(2).strip().strip('"')
    return meta, "\n".join(lines[closing + 1 :])


# ---------------------------------------------------------------------------- HTML

_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
# A headline's site suffix: "标题_新浪新闻", "标题 - 南方网", "标题|南方日报".
_TITLE_SEPARATORS = "_-|｜–—:："


def read_html(data: bytes, path: Path) -> RawDocument:
    """A web page: its article text and title, date and site name, by trafilatura."""
    head = data[:4096]
    match = _XML_ENCODING.search(head) or _DECLARED_CHARSET.search(head)
    declared = match.group(1).decode("ascii").lower() if match else None
    if declared in ("gb2312", "gbk", "x-gbk"):
        declared = "gb18030"  # pages labelled GB2312 routinely use GBK's extra characters
    elif declared == "big5":
        declared = "cp950"
    decoded = decode_text(data, path, declared)
    if len(decoded.text) > MAX_PAGE_CHARS:  # parsed, a page takes ten times its size in memory
        raise CorpusError(
            f"{path}: the page is over {MAX_PAGE_CHARS:,} characters long, too long for one article; "
            "save the article's own page, or its text as .txt"
        )

    import trafilatura

    try:
        document = trafilatura.bare_extraction(
            decoded.text,
            include_comments=False,  # readers' comments are not the article
            favor_precision=True,  # drops navigation that sits next to the article
            with_metadata=True,
            # Only dates the page states (meta tags, <time>): the extensive search
            # guesses a date from any number in the text, often a wrong one.
            date_extraction_params={"original_date": True, "extensive_search": False},
        )
    except Exception as error:  # a parser's failure on a malformed page, any kind
        raise CorpusError(f"{path}: cannot parse the page ({error}); save it again or remove it") from error
    text = (document.text or "").strip() if document is not None else ""
    # Without one sentence, what was found is menu or link text, not an article.
    if not text or (len(text) < 50 and not any(mark in text for mark in SENTENCE_END + ".")):
        raise CorpusError(
            f"{path}: no article text found in the page (only navigation, links or scripts); "
            f"save the article's own page, or its text as .txt"
        )
    meta = {}
    title = _strip_site_suffix(document.title or "", document.sitename or "", text)
    if title:
        meta["title"] = title
    if document.date:
        meta["date"] = document.date
    if document.sitename:
        meta["publication"] = document.sitename
    return RawDocument(text, meta, encoding=decoded.encoding)


def _strip_site_suffix(title: str, sitename: str, text: str) -> str:
    title = title.strip()
    headline = text.split("\n", 1)[0].strip()
    # The article's own headline, when the <title> is it plus the site's name.
    if headline and title.startswith(headline) and title[len(headline) :].lstrip()[:1] in _TITLE_SEPARATORS:
        return headline
    if sitename and title.endswith(sitename):
        stem = title[: -len(sitename)].rstrip()
        if stem and stem[-1] in _TITLE_SEPARATORS:
            return stem[:-1].rstrip()
    return title


# ----------------------------------------------------------------------------- PDF


# A page whose text layer has fewer characters than this (a page number, a running
# head) and which holds an image is a scan, read by OCR.
SCANNED_PAGE_CHARS = 20


def read_pdf(data: bytes, path: Path, on_page: PageHook | None = None) -> RawDocument:
    """A PDF's text layer, printed lines joined into paragraphs; title and date from its info.

    Pages without a text layer (scans) are read by OCR, in their place among the others.
    """
    import pypdf

    # pypdf logs what it repairs in a damaged file ("EOF marker not found") as warnings,
    # stray lines in a build's output; a file it cannot read is skipped with its reason.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorpusError(f"{path}: the PDF is password-protected; save an unprotected copy")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise CorpusError(
                f"{path}: has {len(reader.pages):,} pages, over the limit of {MAX_PDF_PAGES:,} for one article; "
                "split it into articles, or remove it"
            )
        # Radicals fixed first: the line widths that decide the joins count ideographs.
        pages = [fix_radicals(page.extract_text() or "") for page in reader.pages]
        scanned = [
            number
            for number, (page, text) in enumerate(zip(reader.pages, pages, strict=True), 1)
            if len("".join(text.split())) < SCANNED_PAGE_CHARS and _has_image(page)
        ]
        info = reader.metadata
    except CorpusError:
        raise
    except Exception as error:  # pypdf raises many kinds on a damaged file
        raise CorpusError(
            f"{path}: is not a readable PDF ({type(error).__name__}: {error}); export it again, or remove it"
        ) from error
    if scanned and len(scanned) < len(pages) and ocr_missing():
        # Without OCR a PDF with text is still read: its scanned pages are left out
        # (a PDF of scans only is skipped with the reason, by read_pdf_pages).
        scanned = []
    scans = read_pdf_pages(data, path, scanned, on_page) if scanned else None
    paragraphs: list[str] = []
    lines: list[str] = []  # the text-layer lines of the pages since the last scan
    for number, page in enumerate(pages, 1):
        if number in scanned:
            paragraphs.extend(join_printed_lines(lines))
            lines = []
            paragraphs.extend(scans.paragraphs_of.get(number, []))
        else:
            lines.extend(line.strip() for line in page.split("\n") if line.strip())
    paragraphs.extend(join_printed_lines(lines))
    meta: dict[str, str] = {}
    if scans is not None and scans.title and len(scanned) == len(pages):
        meta["title"] = scans.title
    file_date = ""
    if info is not None:
        title = _usable_title(info.title or "")
        # The file's own name is what scanners and image converters put there.
        if title and title != path.stem:
            meta["title"] = title
        try:
            created = info.creation_date
        except ValueError:  # a malformed date string in the info dictionary
            created = None
        if created is not None:
            file_date = f"{created:%Y-%m-%d}"
    if not paragraphs:
        raise CorpusError(
            f"{path}: the PDF has no text (no text layer, no scanned page to read); check it, or remove it"
        )
    return RawDocument("\n".join(paragraphs), meta, file_date, ocr_pages=scans.pages if scans else 0)


def read_image(data: bytes, path: Path, on_page: PageHook | None = None) -> RawDocument:
    """A scan's text by OCR; the headline, when one stands out, is the title."""
    scans = read_image_file(data, path, on_page)
    meta = {"title": scans.title} if scans.title else {}
    return RawDocument("\n".join(scans.paragraphs), meta, ocr_pages=scans.pages)


def _has_image(page) -> bool:
    """Whether a PDF page draws an image (what a scanned page is); listing them decodes nothing."""
    try:
        return len(page.images) > 0
    except Exception:  # a damaged resource dictionary: let OCR try the page
        return True


def _usable_title(title: str) -> str:
    """A PDF /Title, unless it is a tool's placeholder or a file name."""
    title = title.strip()
    if re.search(r"\.(docx?|pdf|html?|indd|txt|wps)$", title, re.IGNORECASE):
        return ""
    if re.match(r"^(microsoft (word|powerpoint) - |untitled|无标题|無標題)", title, re.IGNORECASE):
        return ""
    return title


# ---------------------------------------------------------------------------- DOCX

# python-docx's own template carries this creation time; a file made from it without
# setting one would otherwise be dated 2013.
_PYTHON_DOCX_TEMPLATE_CREATED = "2013-12-23"


def read_docx(data: bytes, path: Path) -> RawDocument:
    """A Word document's paragraphs and tables, in order; title and date from its core properties."""
    import docx
    from docx.table import Table

    _check_zip(data, path)
    try:
        document = docx.Document(io.BytesIO(data))
        paragraphs: list[str] = []
        characters = 0  # of "\n".join(paragraphs), counted as they come
        for block in document.iter_inner_content():
            before = len(paragraphs)
            if isinstance(block, Table):  # one paragraph per row
                for row in block.rows:
                    cells = list(dict.fromkeys(cell.text.strip() for cell in row.cells if cell.text.strip()))
                    paragraphs.append(" | ".join(cells))
            else:
                paragraphs.append(block.text)
            characters += sum(len(paragraph) + 1 for paragraph in paragraphs[before:])
            if characters - 1 > MAX_ARTICLE_CHARS or len(paragraphs) > MAX_PARAGRAPHS:
                check_extracted("\n".join(paragraphs), path)  # over a limit: raises, the rest is not read
        properties = document.core_properties
        title, created = properties.title or "", properties.created
    except CorpusError:
        raise
    except Exception as error:  # python-docx raises many kinds on a damaged file
        raise CorpusError(
            f"{path}: is not a readable DOCX file ({type(error).__name__}: {error}); "
            f"save it again as .docx from Word or LibreOffice, or remove it"
        ) from error
    meta = {"title": title.strip()} if title.strip() else {}
    file_date = f"{created:%Y-%m-%d}" if created is not None else ""
    if file_date == _PYTHON_DOCX_TEMPLATE_CREATED:
        file_date = ""
    return RawDocument("\n".join(paragraphs), meta, file_date)


def _check_zip(data: bytes, path: Path) -> None:
    """Refuse a DOCX whose zip would unpack to more than an article's file may hold
    (MAX_ZIP_ENTRIES, MAX_UNZIPPED_BYTES, MAX_ZIP_RATIO), from its directory alone,
    before any part is unpacked. zipfile never reads past a part's stated size."""
    import zipfile

    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip at all: python-docx says the file is damaged
    unzipped = sum(entry.file_size for entry in entries)
    packed_too_well = [
        entry
        for entry in entries
        if entry.file_size > 1024 * 1024 and entry.file_size > MAX_ZIP_RATIO * max(entry.compress_size, 1)
    ]
    if len(entries) > MAX_ZIP_ENTRIES or unzipped > MAX_UNZIPPED_BYTES or packed_too_well:
        why = (
            f"{len(entries):,} parts"
            if len(entries) > MAX_ZIP_ENTRIES
            else f"{packed_too_well[0].filename} unpacks to {packed_too_well[0].file_size / 2**20:.0f} MB, "
            f"{packed_too_well[0].file_size // max(packed_too_well[0].compress_size, 1)} times its packed size"
            if packed_too_well
            else f"it unpacks to {unzipped / 2**20:.0f} MB"
        )
        raise CorpusError(
            f"{path}: is not an ordinary Word file ({why}; the limits are {MAX_ZIP_ENTRIES:,} parts, "
            f"{MAX_UNZIPPED_BYTES // 2**20} MB unpacked, {MAX_ZIP_RATIO} times packed); remove it, or save its text as .txt"
        )


# ---------------------------------------------------------------------- radicals

# PDF fonts that share one glyph between a character and its radical (Noto/Source
# Han CJK, as Chrome prints with) write the radical into the text layer: 首页 comes
# out as ⾸⻚. Kangxi radicals (U+2F00-U+2FD5) map back by NFKC; the CJK Radicals
# Supplement has no such mapping, so this table pairs each with the ideograph that
# shares its glyph in Noto Sans/Serif CJK (read from the fonts' cmaps).
_SUPPLEMENT_RADICALS = str.maketrans(
    (
        "⺂⺃⺅⺇⺉⺋⺍⺎⺏⺐⺒⺓⺔⺕⺖⺘⺙⺛⺞⺟⺠⺡⺣⺤⺦⺨⺩⺫⺭⺮"
        "⺯⺰⺱⺲⺳⺹⺺⺽⺾⺿⻁⻂⻃⻄⻅⻆⻇⻈⻉⻊⻋⻌⻍⻎⻐⻑⻒⻓⻔⻕"
        "⻖⻘⻙⻚⻛⻜⻝⻞⻟⻠⻡⻢⻣⻤⻥⻦⻧⻨⻩⻪⻫⻬⻭⻮⻯⻰⻱⻲⻳"
    ),
    (
        "乛乚亻𠘨刂㔾𭕄兀尣尢巳幺彑彐忄扌攵旡歺母民氵灬爫丬犭𤣩罒礻𥫗"
        "糹纟罓罒㓁耂肀𦥑艹艹虎衤覀西见角𧢲讠贝𧾷车辶辶辶钅長镸长门𨸏"
        "阝青韦页风飞食𩙿飠饣𩠐马骨鬼鱼鸟卤麦黄黾斉齐歯齿竜龙龜亀龟"
    ),
)
_RADICAL_RUN = re.compile("[\u2e80-\u2fdf]")


def fix_radicals(text: str) -> str:
    """Radical code points a PDF font put in place of ideographs, turned back into them."""
    if not _RADICAL_RUN.search(text):
        return text
    import unicodedata

    text = text.translate(_SUPPLEMENT_RADICALS)
    return _RADICAL_RUN.sub(lambda match: unicodedata.normalize("NFKC", match.group()), text)
