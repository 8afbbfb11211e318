"""Knowledge-base loaders: turn one uploaded file into text sections.

Reads text, Markdown, HTML, PDF, Word .docx and FAQ sheets (.csv/.xlsx with a
question and an answer column). Sections carry ``source`` (file name),
``title``, ``section`` (heading path such as "退货政策 > 运费", "" before the
first heading) and, for PDFs only, ``page`` (1-based). A FAQ row is one
*atomic* section the splitter never cuts, so an answer is never retrieved
without its question. Every failure is a :class:`LoadError` naming the file
and the reason in words fit to show the owner.

Files are read with pypdf, python-docx, openpyxl and BeautifulSoup, not
LangChain's document loaders, which drop the heading structure kept here and
leak each library's raw exceptions. No OCR, no legacy .doc/.xls.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv", ".xlsx")
ENCODINGS = ("utf-8-sig", "gb18030")  # utf-8-sig also reads plain UTF-8
QUESTION_HEADERS = frozenset({"question", "q", "问题", "问", "标题"})
ANSWER_HEADERS = frozenset({"answer", "a", "答案", "答", "回答", "内容"})
HEADER_ROWS = 5  # a sheet may have a title row or two above its header row
MB = 1024 * 1024
# HTML elements that never hold page content.
HTML_NOISE = ("script", "style", "nav", "noscript", "template", "svg", "iframe", "head")
HTML_BLOCKS = ("p", "div", "li", "tr", "section", "article", "main", "header", "footer",
               "aside", "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "form")
HEADING_MARK = "\x1f"  # a control character cannot occur in parsed HTML text

Block = tuple[int, str]  # (heading level 1-6, or 0 for a body line; text)


@dataclass
class Section:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    atomic: bool = False  # FAQ pairs: never split


class LoadError(ValueError):
    """A file that cannot be turned into sections; the message is user-facing."""


def load(path: Path, *, max_bytes: int) -> list[Section]:
    """Read ``path`` into sections, or raise :class:`LoadError`."""
    path = Path(path)
    name = path.name
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        kind = ext or "(no extension)"
        raise LoadError(f"{name}: unsupported file type {kind} (supported: {', '.join(SUPPORTED)})")
    try:
        size = path.stat().st_size
        # Checked before reading so an oversized upload never lands in memory.
        if size > max_bytes:
            raise LoadError(f"{name}: {_size(size)} is over the {_size(max_bytes, exact=False)} limit")
        data = path.read_bytes()
    except OSError as e:
        raise LoadError(f"{name}: cannot read the file ({e.strerror or e})") from e
    if not data.strip():
        raise LoadError(f"{name}: the file is empty")

    base = {"source": name, "title": path.stem}
    if ext in (".pdf", ".docx", ".xlsx"):
        sections = {".pdf": _pdf, ".docx": _docx, ".xlsx": _xlsx}[ext](name, data, base)
    elif not (text := _decode(name, data)).strip():
        raise LoadError(f"{name}: the file is empty")
    elif ext == ".csv":
        sections = _csv(name, text, base)
    elif ext in (".html", ".htm"):
        sections = _html(text, base)
    elif ext == ".txt":
        sections = _sections([(0, line) for line in text.splitlines()], base)
    else:
        sections = _sections(_markdown_blocks(text), base)
    if not sections:
        raise LoadError(f"{name}: no text found in the file")
    return sections


def _size(n: int, *, exact: bool = True) -> str:
    """31.0 MB, 12.5 KB, 80 bytes; ``exact=False`` drops a trailing .0 (limits)."""
    for unit, scale in (("MB", MB), ("KB", 1024)):
        if n >= scale:
            value = f"{n / scale:.1f}"
            return f"{value if exact else value.removesuffix('.0')} {unit}"
    return f"{n} bytes"


def _decode(name: str, data: bytes) -> str:
    # GB18030 accepts most byte soup, so NULs and control characters are
    # what tell a binary file from legacy Chinese text.
    for encoding in ENCODINGS if b"\x00" not in data else ():
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for c in text if c not in "\t\n\r\f\v" and unicodedata.category(c) == "Cc")
        if controls <= len(text) // 100:
            return text
        break
    raise LoadError(f"{name}: not UTF-8 text (tried utf-8, utf-8-sig, gb18030)")


def _clean(line: str) -> str:
    return re.sub(r"[ \t\u00a0\u3000]+", " ", line).strip()


def _sections(blocks: Iterable[Block], base: dict[str, Any], title: str | None = None) -> list[Section]:
    """Body lines grouped under their heading path; title: ``title``, first heading or stem."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    first_heading = ""

    def flush() -> None:
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(body)).strip()
        body.clear()
        if text:
            # The heading stays in the text too, so a chunk reads on its own.
            full = f"{path[-1][1]}\n{text}" if path else text
            sections.append(Section(full, {**base, "section": " > ".join(h for _, h in path)}))

    for level, text in blocks:
        if level == 0:
            body.append(text.rstrip())
        elif text:
            flush()
            first_heading = first_heading or text
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, text))
    flush()
    doc_title = (title or "").strip() or first_heading or base["title"]
    for s in sections:
        s.metadata["title"] = doc_title
    return sections


def _markdown_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    fence = ""
    for line in text.splitlines():
        stripped = line.strip()
        if fence or stripped.startswith(("```", "~~~")):
            # A '#' inside a code block is code, not a heading.
            fence = "" if fence and stripped.startswith(fence) else fence or stripped[:3]
            blocks.append((0, line))
        elif m := re.match(r" {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$", line):
            blocks.append((len(m.group(1)), (m.group(2) or "").strip()))
        else:
            blocks.append((0, line))
    return blocks


def _html(text: str, base: dict[str, Any]) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup.find_all(HTML_NOISE):
        tag.decompose()
    for tag in soup.find_all(("br", "td", "th", *HTML_BLOCKS)):
        gap = " " if tag.name in ("td", "th") else "\n"  # table cells share a line
        tag.insert_before(gap)
        tag.insert_after(gap)
    # Headings become marked lines so the text keeps its outline.
    for tag in soup.find_all(re.compile(r"^h[1-6]$")):
        tag.replace_with(f"\n{HEADING_MARK}{tag.name[1]}{tag.get_text(' ', strip=True)}\n")
    blocks = [
        (int(line[1]), _clean(line[2:])) if line.startswith(HEADING_MARK) else (0, _clean(line))
        for line in soup.get_text().splitlines()
    ]
    return _sections(blocks, base, title)


def _pdf(name: str, data: bytes, base: dict[str, Any]) -> list[Section]:
    from pypdf import PdfReader

    # pypdf raises many exception types on damaged input; all mean the same
    # thing to the owner. decrypt("") opens PDFs locked only against editing.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PermissionError("it needs a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
        title = (meta.title if meta and isinstance(meta.title, str) else "").strip() or base["title"]
    except Exception as e:
        raise LoadError(f"{name}: the PDF is corrupt or encrypted ({e})") from e
    sections = [Section(text.strip(), {**base, "title": title, "section": "", "page": number})
                for number, text in enumerate(pages, start=1) if text.strip()]
    if not sections:
        raise LoadError(f"{name}: the PDF has no extractable text (scanned? it would need OCR)")
    return sections


def _docx(name: str, data: bytes, base: dict[str, Any]) -> list[Section]:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[Block] = []
        title_style = ""
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    cells = [_clean(cell.text.replace("\n", " ")) for cell in row.cells]
                    # A merged cell is reported once per grid column it spans.
                    kept = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                    blocks.append((0, " | ".join(kept)))
                blocks.append((0, ""))
                continue
            style = (item.style.name if item.style is not None else "").lower()
            text = item.text.strip()
            if style == "title":
                title_style = title_style or text
            elif m := re.fullmatch(r"heading ([1-9])", style):
                blocks.append((min(int(m.group(1)), 6), text))
            else:
                blocks += [(0, text), (0, "")]  # a blank line keeps paragraphs apart for the splitter
        title = document.core_properties.title or title_style
    except Exception as e:
        raise LoadError(f"{name}: not a valid Word .docx file ({e})") from e
    return _sections(blocks, base, title)


def _faq(name: str, rows: list[list[str]], base: dict[str, Any]) -> list[Section] | None:
    """One atomic section per question/answer row, or None without such headers."""
    for r, row in enumerate(rows[:HEADER_ROWS]):
        names = [c.strip().strip(":：").strip().lower() for c in row]
        q = next((i for i, n in enumerate(names) if n in QUESTION_HEADERS), -1)
        a = next((i for i, n in enumerate(names) if n in ANSWER_HEADERS), -1)
        if q >= 0 and a >= 0:
            break
    else:
        return None
    ask, reply = ("问：", "答：") if re.search(r"[\u4e00-\u9fff]", names[q]) else ("Q: ", "A: ")
    sections = []
    for row in rows[r + 1:]:
        question = row[q].strip() if q < len(row) else ""
        answer = row[a].strip() if a < len(row) else ""
        # Half a pair answers nothing, so such rows are skipped.
        if question and answer:
            text = f"{ask}{question}\n{reply}{answer}"
            sections.append(Section(text, {**base, "section": question}, atomic=True))
    if not sections:
        raise LoadError(f"{name}: no rows with both a question and an answer")
    return sections


def _no_columns(name: str, sheets: list[tuple[str, list[list[str]]]]) -> LoadError:
    found = []
    for sheet, rows in sheets:
        first = next((r for r in rows if any(c.strip() for c in r)), [])
        found.append(sheet + (", ".join(c.strip() for c in first if c.strip()) or "none"))
    return LoadError(f"{name}: no question and answer columns (headers found: {'; '.join(found)}; "
                     "expected e.g. 问题/答案 or question/answer)")


def _csv(name: str, text: str, base: dict[str, Any]) -> list[Section]:
    # Excel exports use commas, tabs or semicolons; the one that yields the
    # header pair wins.
    for delimiter in (",", "\t", ";"):
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        if (sections := _faq(name, rows, base)) is not None:
            return sections
    raise _no_columns(name, [("", list(csv.reader(io.StringIO(text))))])


def _xlsx(name: str, data: bytes, base: dict[str, Any]) -> list[Section]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheets = [
            (ws.title, [["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)])
            for ws in book.worksheets
        ]
        book.close()
    except Exception as e:  # openpyxl, zipfile and lxml errors alike
        raise LoadError(f"{name}: not a valid Excel .xlsx file ({e})") from e
    for _, rows in sheets:
        if (sections := _faq(name, rows, base)) is not None:
            return sections
    raise _no_columns(name, [(f"sheet {title}: ", rows) for title, rows in sheets])
