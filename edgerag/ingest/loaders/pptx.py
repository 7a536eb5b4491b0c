"""PowerPoint .pptx: one section per slide (page = slide number, heading = slide title).

Slides come in presentation order (ppt/presentation.xml), not file-name order. Per slide: text frames, tables
(Markdown), group shapes, charts (as a small category | series table) and the speaker notes, which
often hold the prose a slide only hints at (docling's references leave notes out, which costs 0.009 of word F1
in bench/parsers.py; we keep them on purpose). A slide that fails to parse is skipped with a warning.
"""

from __future__ import annotations

from .base import LoadedDocument, Section, clean, markdown_table
from .ooxml import Package, attr, child, chart_text, local, para_text, rel_id

_TITLE_TYPES = {"title", "ctrTitle"}


def _text_body(tx) -> str:
    if tx is None:
        return ""
    return "\n".join(para_text(p) for p in tx if local(p.tag) == "p")


def _table(tbl) -> str:
    """A Markdown table; a merged cell (gridSpan/rowSpan) is repeated where its hMerge/vMerge stand-ins sit."""
    rows: list[list[str]] = []
    for tr in (el for el in tbl if local(el.tag) == "tr"):
        row: list[str] = []
        for tc in (c for c in tr if local(c.tag) == "tc"):
            text = " ".join(_text_body(child(tc, "txBody")).split())
            if attr(tc, "hMerge") in ("1", "true") and row:
                text = row[-1]
            elif attr(tc, "vMerge") in ("1", "true") and rows and len(row) < len(rows[-1]):
                text = rows[-1][len(row)]
            row.append(text)
        rows.append(row)
    return markdown_table(rows)


def _shapes(tree, pkg: Package, part: str, title: list[str], out: list[str]) -> None:
    """Collect the text of one shape tree in document (z-) order; the title placeholder goes to `title`."""
    for el in tree:
        name = local(el.tag)
        if name == "grpSp":
            _shapes(el, pkg, part, title, out)
        elif name == "AlternateContent":
            choice = child(el, "Choice")
            _shapes(choice if choice is not None else (), pkg, part, title, out)
        elif name == "sp":
            ph = next((e for e in el.iter() if local(e.tag) == "ph"), None)
            text = _text_body(child(el, "txBody"))
            if ph is not None and attr(ph, "type") in _TITLE_TYPES and not title:
                title.append(" ".join(text.split()))
            else:
                out.append(text)
        elif name == "graphicFrame":
            for sub in el.iter():
                if local(sub.tag) == "tbl":
                    out.append(_table(sub))
                elif local(sub.tag) == "chart":
                    target = pkg.rels(part).get(rel_id(sub) or "")
                    chart = pkg.xml(target[1]) if target else None
                    if chart is not None:
                        out.append(chart_text(chart))


def _notes(pkg: Package, slide: str) -> str:
    for part in pkg.related(slide, "notesSlide"):
        root = pkg.xml(part)
        for sp in (e for e in (root.iter() if root is not None else ()) if local(e.tag) == "sp"):
            ph = next((e for e in sp.iter() if local(e.tag) == "ph"), None)
            if ph is not None and attr(ph, "type") == "body":  # not the slide image or the page number
                return _text_body(child(sp, "txBody"))
    return ""


def load(data: bytes, suffix: str = "") -> LoadedDocument:
    pkg = Package(data, "pptx")
    main = pkg.main_part("ppt/presentation.xml")
    pres, rels = pkg.xml(main), pkg.rels(main)
    ids = child(pres, "sldIdLst") if pres is not None else None
    slides = [rels[rid][1] for rid in (rel_id(s) for s in (ids if ids is not None else ())) if rid in rels]
    sections, warnings = [], []
    for number, part in enumerate(slides, 1):
        try:
            root = pkg.xml(part)
            tree = next((e for e in root.iter() if local(e.tag) == "spTree"), ()) if root is not None else ()
            title, out = [], []
            _shapes(tree, pkg, part, title, out)
            out.append(_notes(pkg, part))
        except Exception as exc:  # one broken slide should not cost the others
            warnings.append(f"slide {number} skipped ({type(exc).__name__})")
            continue
        text = clean("\n\n".join(clean(t) for t in out if t.strip()))
        heading = title[0] if title and title[0] else None
        if text or heading:
            sections.append(Section(text or heading, page=number, heading=heading))
    return LoadedDocument(sections, "pptx", sections[0].heading if sections else None, warnings)
