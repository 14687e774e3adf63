"""CI: read an HTML, a PDF and a DOCX article with qa as a plain `pip install .` installs it."""

import io
import tempfile
from pathlib import Path

import docx

import qa
from qa.ingest.corpus import load_article

assert "site-packages" in qa.__file__, f"qa comes from {qa.__file__}, not the installed package"
folder = Path(tempfile.mkdtemp())
(folder / "page.html").write_text(
    "<html><head><title>知识城合作</title></head><body><article><h1>知识城合作</h1>"
    "<p>知识城与新加坡签署了81份合作备忘录，涵盖数字经济和生物医药。</p></article></body></html>",
    encoding="utf-8",
)
document = docx.Document()
document.add_paragraph("知识城与新加坡签署了81份合作备忘录。")
buffer = io.BytesIO()
document.save(buffer)
(folder / "memo.docx").write_bytes(buffer.getvalue())
# The smallest PDF with a text layer (a standard font, so no font file); pypdf finds its
# objects without the cross-reference table.
text = "Knowledge City signed 81 memoranda with Singapore."
stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
objects = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
]
pdf = b"%PDF-1.4\n"
offsets = []
for number, body in enumerate(objects, 1):
    offsets.append(len(pdf))
    pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
xref = len(pdf)
pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
(folder / "memo.pdf").write_bytes(pdf)
for name, words in (("page.html", "81份合作备忘录"), ("memo.docx", "81份合作备忘录"), ("memo.pdf", "81 memoranda")):
    article = load_article(folder / name, folder)
    assert words in article.text, (name, article.text)
    print(f"base install reads {name}: {article.text.splitlines()[0][:40]}")
