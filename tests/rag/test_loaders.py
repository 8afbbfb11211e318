"""rag.loaders: each format to sections with metadata, and plain-worded errors for bad files.

Fixture files are made in tmp_path: PDFs by hand, .docx and .xlsx with python-docx and openpyxl.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import docx
import openpyxl
import pytest
from pypdf import PdfWriter

from rag.loaders import SUPPORTED, LoadError, Section, load

MB = 1024 * 1024
LIMIT = 20 * MB


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF, one page per ASCII string (no parentheses or backslashes)."""
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objects, kids = ["<< /Type /Catalog /Pages 2 0 R >>", "", font], []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def pdf_bytes(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def write(path: Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def sections_of(path: Path) -> list[Section]:
    return load(path, max_bytes=LIMIT)


def failure(path: Path, max_bytes: int = LIMIT) -> str:
    with pytest.raises(LoadError) as info:
        load(path, max_bytes=max_bytes)
    message = str(info.value)
    assert message.startswith(f"{path.name}: "), message  # names the file
    return message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("name", ["须知.txt", "须知.markdown"])
def test_chinese_text_in_each_encoding_titled_by_file_stem(tmp_path, encoding, name):
    text = "退货须知\n\n签收后七天内可申请退货，运费由买家承担。\n"
    [section] = sections_of(write(tmp_path / name, text, encoding))
    assert section.text == text.strip()  # no BOM, no mojibake
    assert section.metadata == {"source": name, "title": "须知", "section": ""}
    assert section.atomic is False


def test_markdown_nested_headings_become_section_paths(tmp_path):
    md = (
        "# 退货政策\n本店支持退货。\n\n"
        "## 运费\n运费由买家承担。\n"
        "### 偏远地区\n另计十元。\n"
        "```\n# 代码里的井号不是标题\n```\n"
        "## 时限\n签收后七天内。\n"
        "# 保修\n一年保修。\n"
    )
    sections = sections_of(write(tmp_path / "policy.md", md))
    assert [s.metadata["section"] for s in sections] == [
        "退货政策", "退货政策 > 运费", "退货政策 > 运费 > 偏远地区", "退货政策 > 时限", "保修"]
    assert {s.metadata["title"] for s in sections} == {"退货政策"}
    assert {s.metadata["source"] for s in sections} == {"policy.md"}
    assert sections[1].text == "运费\n运费由买家承担。"
    assert "# 代码里的井号不是标题" in sections[2].text
    assert all("page" not in s.metadata for s in sections)


def test_html_keeps_title_and_headings_and_strips_scripts(tmp_path):
    html = """<!doctype html><html><head><title>帮助中心</title>
    <style>.x { color: red }</style><script>var secret = "SCRIPT";</script></head>
    <body><nav>首页 | 关于我们</nav>
    <h1>退货政策</h1><p>支持<b>七天</b>无理由退货。</p>
    <h2>运费</h2><ul><li>买家承担</li><li>偏远另计</li></ul>
    <script>alert("SCRIPT")</script>
    <h1>联系我们</h1><table><tr><td>电话</td><td>400-123</td></tr></table>
    </body></html>"""
    sections = sections_of(write(tmp_path / "help.html", html))
    assert [s.metadata["section"] for s in sections] == ["退货政策", "退货政策 > 运费", "联系我们"]
    assert {s.metadata["title"] for s in sections} == {"帮助中心"}
    assert sections[0].text == "退货政策\n支持七天无理由退货。"
    assert "买家承担" in sections[1].text and "偏远另计" in sections[1].text
    assert "电话 400-123" in sections[2].text
    everything = "\n".join(s.text for s in sections)
    assert [w for w in ("SCRIPT", "secret", "color", "首页", "关于我们") if w in everything] == []


def test_html_without_title_uses_first_heading(tmp_path):
    [section] = sections_of(write(tmp_path / "page.htm", "<h2>Shipping</h2><p>Free over 99.</p>"))
    assert section.metadata["title"] == "Shipping"
    assert section.metadata["section"] == "Shipping"


def test_pdf_one_section_per_page_with_page_numbers(tmp_path):
    pdf = write(tmp_path / "price.pdf", make_pdf(["Returns within seven days.", "Shipping is free over 99."]))
    sections = sections_of(pdf)
    assert [s.metadata["page"] for s in sections] == [1, 2]
    assert [s.text for s in sections] == ["Returns within seven days.", "Shipping is free over 99."]
    assert sections[0].metadata == {"source": "price.pdf", "title": "price", "section": "", "page": 1}


def encrypted_pdf(path: Path, user_password: str) -> Path:
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(["Open to read."])))
    writer.encrypt(user_password, owner_password="owner", algorithm="RC4-128")
    return write(path, pdf_bytes(writer))


def test_pdf_locked_only_against_editing_still_loads(tmp_path):
    [section] = sections_of(encrypted_pdf(tmp_path / "open.pdf", ""))
    assert section.text == "Open to read."


def test_docx_paragraphs_grouped_under_heading_styles(tmp_path):
    document = docx.Document()
    document.core_properties.title = "售后手册"
    document.add_paragraph("前言：本手册适用于所有门店。")
    document.add_heading("退货", level=1)
    document.add_paragraph("七天无理由退货。")
    document.add_heading("运费", level=2)
    document.add_paragraph("运费由买家承担。")
    table = document.add_table(rows=3, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "地区", "运费"
    table.cell(1, 0).text, table.cell(1, 1).text = "新疆", "20元"
    table.cell(2, 0).merge(table.cell(2, 1)).text = "其余全国包邮"
    document.add_heading("保修", level=1)
    document.add_paragraph("一年保修。")
    document.save(tmp_path / "manual.docx")
    sections = sections_of(tmp_path / "manual.docx")
    assert [s.metadata["section"] for s in sections] == ["", "退货", "退货 > 运费", "保修"]
    assert {s.metadata["title"] for s in sections} == {"售后手册"}
    assert sections[0].text == "前言：本手册适用于所有门店。"
    assert sections[2].text.startswith("运费\n运费由买家承担。")
    assert "新疆 | 20元" in sections[2].text
    assert sections[2].text.endswith("\n其余全国包邮")  # a merged cell once, not once per column


@pytest.mark.parametrize("title_paragraph", [None, "Service Guide"])
def test_docx_without_core_title_uses_title_style_else_first_heading(tmp_path, title_paragraph):
    document = docx.Document()
    if title_paragraph:
        document.add_heading(title_paragraph, level=0)  # the "Title" style
    document.add_heading("Warranty", level=1)
    document.add_paragraph("One year.")
    document.save(tmp_path / "w.docx")
    [section] = sections_of(tmp_path / "w.docx")
    assert section.metadata["title"] == (title_paragraph or "Warranty")
    assert section.metadata["section"] == "Warranty"
    assert section.text == "Warranty\nOne year."


def test_csv_faq_with_chinese_headers_in_gb18030(tmp_path):
    csv_text = '问题,答案,备注\n怎么退货？,联系客服申请。,常见\n,,\n运费谁出？,"买家承担，\n偏远另计。",\n只有问题,,\n'
    sections = sections_of(write(tmp_path / "faq.csv", csv_text, "gb18030"))
    assert [s.text for s in sections] == ["问：怎么退货？\n答：联系客服申请。", "问：运费谁出？\n答：买家承担，\n偏远另计。"]
    assert all(s.atomic for s in sections)
    assert sections[1].metadata == {"source": "faq.csv", "title": "faq", "section": "运费谁出？"}


def test_csv_faq_with_english_headers_any_case(tmp_path):
    csv_text = "ID,QUESTION,Answer\n1,How do I return?,Contact support.\n2,Who pays shipping?,The buyer.\n"
    sections = sections_of(write(tmp_path / "faq.csv", csv_text))
    assert [s.text for s in sections] == [
        "Q: How do I return?\nA: Contact support.", "Q: Who pays shipping?\nA: The buyer."]
    assert [s.metadata["section"] for s in sections] == ["How do I return?", "Who pays shipping?"]
    assert all(s.atomic for s in sections)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [(("问", "回答"), "问：能开发票吗？\n答：可以。"), (("Q", "A"), "Q: 能开发票吗？\nA: 可以。")],
)
def test_xlsx_faq_from_first_sheet_with_matching_headers(tmp_path, headers, expected):
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.active.append(["这张表是客服问答"])
    faq = book.create_sheet("FAQ")
    # A title row above the header row, an empty row, a number for an answer.
    for row in (["常见问题"], list(headers), ["能开发票吗？", "可以。"], [None, None], ["几点发货？", 16]):
        faq.append(row)
    book.save(tmp_path / "faq.xlsx")
    sections = sections_of(tmp_path / "faq.xlsx")
    assert sections[0].text == expected
    assert sections[1].text.endswith("16")
    assert len(sections) == 2 and all(s.atomic for s in sections)
    assert sections[0].metadata == {"source": "faq.xlsx", "title": "faq", "section": "能开发票吗？"}


def test_corrupt_pdf(tmp_path):
    garbage = random.Random(7).randbytes(4096)
    message = failure(write(tmp_path / "报价单.pdf", garbage))
    assert "the PDF is corrupt or encrypted" in message


def test_password_protected_pdf(tmp_path):
    message = failure(encrypted_pdf(tmp_path / "locked.pdf", "secret"))
    assert "encrypted" in message and "password" in message


def test_pdf_without_extractable_text(tmp_path):
    writer = PdfWriter()
    for _ in range(2):  # two pages, neither with text
        writer.add_blank_page(width=200, height=200)
    message = failure(write(tmp_path / "scan.pdf", pdf_bytes(writer)))
    assert "no extractable text (scanned?" in message


@pytest.mark.parametrize("name", ["a.txt", "b.md", "c.pdf", "d.docx", "e.csv"])
@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  "])
def test_empty_file(tmp_path, name, content):
    assert failure(write(tmp_path / name, content)) == f"{name}: the file is empty"


def test_unsupported_type(tmp_path):
    message = failure(write(tmp_path / "setup.exe", b"MZ\x90\x00"))
    assert message.startswith("setup.exe: unsupported file type .exe (supported: ")
    assert all(ext in message for ext in SUPPORTED)
    assert "no extension" in failure(write(tmp_path / "README", "text"))


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "c.pdf"
    with path.open("wb") as f:
        f.truncate(31 * MB)  # sparse: no 31 MB actually written
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read an oversized file"))
    assert failure(path, max_bytes=20 * MB) == "c.pdf: 31.0 MB is over the 20 MB limit"


def test_binary_garbage_named_txt(tmp_path):
    message = failure(write(tmp_path / "b.txt", bytes(range(256)) * 8))
    assert message == "b.txt: not UTF-8 text (tried utf-8, utf-8-sig, gb18030)"


def test_control_characters_are_not_text_even_when_they_decode(tmp_path):
    # No NUL and valid UTF-8, yet mostly control codes: a binary file.
    assert "not UTF-8 text" in failure(write(tmp_path / "x.md", bytes(range(1, 32)) * 20 + b"ok"))


@pytest.mark.parametrize("header", ["商品,价格", "问题,备注", "备注,答案"])
def test_csv_without_question_and_answer_headers(tmp_path, header):
    message = failure(write(tmp_path / "prices.csv", f"{header}\n杯子,25\n"))
    assert "no question and answer columns" in message
    assert f"headers found: {header.replace(',', ', ')}" in message


def test_xlsx_without_question_and_answer_headers_names_each_sheet(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Stock"
    book.active.append(["sku", "count"])
    book.create_sheet("Prices").append(["sku", "price"])
    book.save(tmp_path / "s.xlsx")
    message = failure(tmp_path / "s.xlsx")
    assert "sheet Stock: sku, count" in message and "sheet Prices: sku, price" in message


def test_faq_with_headers_but_no_complete_pair(tmp_path):
    message = failure(write(tmp_path / "faq.csv", "question,answer\nOnly a question?,\n"))
    assert message == "faq.csv: no rows with both a question and an answer"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("d.docx", b"PK\x03\x04 not really a zip", "not a valid Word .docx file"),
        ("e.xlsx", b"PK\x03\x04 not really a zip", "not a valid Excel .xlsx file"),
        ("x.html", b"<script>only()</script><style>p{}</style>", "no text found in the file"),
        ("gone.txt", None, "cannot read the file"),
    ],
)
def test_other_unreadable_files(tmp_path, name, content, reason):
    path = tmp_path / name if content is None else write(tmp_path / name, content)
    assert reason in failure(path)
