"""OpenDocument text (.odt): content.xml walked with the standard library, like the OOXML loaders.

odfpy would add a dependency (sdist only) to walk the same XML: its teletype.extractText flattens a document
without headings, lists or tables, so we would still walk the tree ourselves. Headings (text:h with an outline
level) become heading paths, lists "- " items, tables Markdown tables; notes, annotations and tracked deletions
are left out (they sit outside the reading flow, as in the DOCX loader).
"""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree as ET

from .base import LoadedDocument, SectionBuilder, UnreadableFile, markdown_table
from .ooxml import attr, local

_SKIP = {"note", "annotation", "tracked-changes", "sequence-decls", "variable-decls", "user-field-decls",
         "table-of-content", "alphabetical-index", "bookmark-ref"}
_MAX_PART = 256 * 2**20


def _inline(el) -> str:
    """The text of a paragraph or heading: spans, links, spaces (text:s), tabs and line breaks."""
    out = [el.text or ""]
    for sub in el:
        name = local(sub.tag)
        if name == "s":
            out.append(" " * int(attr(sub, "c", "1") or 1))
        elif name == "tab":
            out.append("\t")
        elif name == "line-break":
            out.append("\n")
        elif name not in _SKIP and name != "frame":  # a text box is walked as blocks of its own
            out.append(_inline(sub))
        out.append(sub.tail or "")
    return "".join(out)


def _table(tbl) -> str:
    rows: list[list[str]] = []
    for tr in tbl.iter():
        if local(tr.tag) != "table-row":
            continue
        row: list[str] = []
        for cell in tr:
            if local(cell.tag) not in ("table-cell", "covered-table-cell"):
                continue
            text = " ".join(" ".join(_inline(p).split()) for p in cell.iter() if local(p.tag) in ("p", "h"))
            if local(cell.tag) == "covered-table-cell" and row:
                text = row[-1]  # under a horizontal span: repeat the spanning cell, as the other loaders do
            # spreadsheets-in-text repeat empty cells thousands of times; cap what an empty run can cost
            repeat = min(int(attr(cell, "number-columns-repeated", "1") or 1), 64 if not text else 1024)
            row += [text] * repeat
        rows.append(row)
    return markdown_table(rows)


def _walk(container, b: SectionBuilder, listed: bool = False) -> None:
    for el in container:
        name = local(el.tag)
        if name in _SKIP:
            continue
        if name == "h":
            level = attr(el, "outline-level", "1") or "1"
            b.set_heading(int(level) if level.isdigit() else 1, _inline(el))
        elif name == "p":
            text = _inline(el)
            b.add(("- " if listed and text.strip() else "") + text)
            for frame in (e for e in el.iter() if local(e.tag) == "frame"):
                _walk(frame, b)  # text boxes anchored in the paragraph
        elif name == "table":
            b.add(_table(el))
        elif name in ("list", "list-item", "list-header"):
            _walk(el, b, listed=True)
        else:  # sections, text boxes, frames, index bodies...
            _walk(el, b, listed)


def _part(zf: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > _MAX_PART:
        raise UnreadableFile(f"corrupt odt ({name} is too large)")
    return zf.read(info)


def load(data: bytes, suffix: str = "") -> LoadedDocument:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UnreadableFile("corrupt odt (not a zip archive)") from None
    manifest = _part(zf, "META-INF/manifest.xml") or b""
    if b"encryption-data" in manifest:
        raise UnreadableFile("encrypted ODT (password required)")
    content = _part(zf, "content.xml")
    if content is None:
        raise UnreadableFile("corrupt odt (no content.xml)")
    root = ET.fromstring(content)
    body = next((e for e in root.iter() if local(e.tag) == "text"), None)
    if body is None:
        raise UnreadableFile("not a text document (no office:text; spreadsheets and slides are other formats)")
    b = SectionBuilder()
    _walk(body, b)
    title = None
    meta = _part(zf, "meta.xml")
    if meta:
        node = next((e for e in ET.fromstring(meta).iter() if local(e.tag) == "title"), None)
        title = " ".join((node.text or "").split()) or None if node is not None else None
    return LoadedDocument(b.done(), "odt", title or b.first_heading)
