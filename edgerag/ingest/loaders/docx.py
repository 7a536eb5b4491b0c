"""Word .docx: the main document's paragraphs and tables in body order, with heading paths from paragraph styles.

Headers, footers, comments and footnotes are left out: they repeat on every page or sit outside the reading
flow, and docling's references leave them out too.
"""

from __future__ import annotations

import re

from .base import LoadedDocument, SectionBuilder, UnreadableFile, markdown_table
from .ooxml import Package, attr, chart_text, child, local, para_text, rel_id, val

_HEADING_NAME = re.compile(r"heading\s*(\d)", re.IGNORECASE)
_TITLE = 0  # pseudo heading level of the "Title" style


def _outline(ppr) -> int | None:
    """Heading level from w:outlineLvl (0-8 are outline levels 1-9; 9 means body text)."""
    v = val(ppr, "outlineLvl")
    return int(v) + 1 if v and v.isdigit() and int(v) < 9 else None


def _style_levels(styles) -> tuple[dict[str, int], set[str]]:
    """styleId -> heading level (following basedOn, as Word does), and the ids of list styles."""
    info = {}
    for st in styles if styles is not None else ():
        if local(st.tag) != "style":
            continue
        ppr = child(st, "pPr")
        numbered = child(ppr, "numPr") is not None
        info[attr(st, "styleId")] = (val(st, "name") or "", val(st, "basedOn"), _outline(ppr), numbered)
    levels, lists = {}, set()
    for sid in info:
        seen, cur = set(), sid
        while cur in info and cur not in seen:  # walk basedOn; a cycle in a broken file must not hang us
            seen.add(cur)
            name, based, outline, numbered = info[cur]
            m = _HEADING_NAME.fullmatch(name.strip())
            level = int(m.group(1)) if m else (_TITLE if name.strip().lower() == "title" else outline)
            if numbered:
                lists.add(sid)
            if level is not None:
                levels[sid] = level
                break
            cur = based
    return levels, lists


def _blocks(container):
    """w:p and w:tbl children in order, looking through content controls, custom XML, tracked insertions and
    (for a cell wrapped in a content control) w:tc."""
    for el in container:
        name = local(el.tag)
        if name in ("p", "tbl"):
            yield el
        elif name in ("sdt", "sdtContent", "customXml", "ins", "moveTo", "tc"):
            yield from _blocks(el)


def _grid(tbl) -> list[list[str]]:
    """Cell texts row by row, a merged cell repeated in every grid cell it covers (as docling writes them), so
    each row reads complete on its own."""
    rows: list[list[str]] = []
    for tr in _direct_rows(tbl):
        row: list[str] = []
        for tc in (c for c in tr if local(c.tag) in ("tc", "sdt")):
            tcpr = child(tc, "tcPr")
            span = val(tcpr, "gridSpan")
            merge = child(tcpr, "vMerge")
            text = " ".join(_cell_lines(tc))
            if merge is not None and attr(merge, "val") in (None, "continue") and rows:
                above = rows[-1]
                text = above[len(row)] if len(row) < len(above) else text  # continues the cell above
            row += [text] * (int(span) if span and span.isdigit() else 1)
        rows.append(row)
    return rows


def _rows(tbl) -> list[str]:
    """A nested table's rows as lines (it lives inside one cell of the outer table)."""
    return [" | ".join(r) for r in _grid(tbl) if any(r)]


def _direct_rows(tbl):
    for el in tbl:
        if local(el.tag) == "tr":
            yield el
        elif local(el.tag) in ("sdt", "sdtContent", "customXml"):
            yield from _direct_rows(el)


def _cell_lines(container) -> list[str]:
    out = []
    for block in _blocks(container):
        if local(block.tag) == "tbl":
            out += _rows(block)  # a nested table flattens into its cell
            continue
        boxes: list = []
        out.append(" ".join(para_text(block, boxes).split()))
        for box in boxes:
            out += _cell_lines(box)
    return [line for line in out if line]


def load(data: bytes, suffix: str = "") -> LoadedDocument:
    pkg = Package(data, "docx")
    main = pkg.main_part("word/document.xml")
    root = pkg.xml(main)
    body = child(root, "body") if root is not None else None
    if body is None:
        raise UnreadableFile("corrupt docx (no document body)")
    styles = pkg.related(main, "styles")
    levels, list_styles = _style_levels(pkg.xml(styles[0]) if styles else None)
    b, title = SectionBuilder(), None
    rels, seen = pkg.rels(main), set()

    def charts(p) -> None:
        for el in p.iter():  # c:chart sits deep inside w:drawing; its data is a separate part
            rid = rel_id(el) if local(el.tag) == "chart" else None
            if rid in rels and rid not in seen:  # seen: a chart in a text box is also inside the outer paragraph
                seen.add(rid)
                chart = pkg.xml(rels[rid][1])
                if chart is not None:
                    b.add(chart_text(chart))

    def walk(container) -> None:
        nonlocal title
        for block in _blocks(container):
            if local(block.tag) == "tbl":
                cells = [tc for tr in _direct_rows(block) for tc in tr if local(tc.tag) in ("tc", "sdt")]
                if len(cells) == 1:
                    walk(cells[0])  # a one-cell table is a frame around content (often another table)
                else:
                    b.add(markdown_table(_grid(block)))
                continue
            boxes: list = []
            text = para_text(block, boxes)
            ppr = child(block, "pPr")
            style = val(ppr, "pStyle")
            level = _outline(ppr)  # direct formatting beats the style
            level = levels.get(style) if level is None else level
            numpr = child(ppr, "numPr")
            listed = (numpr is not None and val(numpr, "numId") != "0") or style in list_styles
            if level == _TITLE and text.strip():
                title = title or " ".join(text.split())
                b.add(text)
            elif level is not None and text.strip():
                b.set_heading(level, text)
            else:
                b.add(("- " if listed and text.strip() else "") + text)
            for box in boxes:
                walk(box)
            charts(block)

    walk(body)
    return LoadedDocument(b.done(), "docx", title)
