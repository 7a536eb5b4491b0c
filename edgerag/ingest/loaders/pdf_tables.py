"""Ruled tables in PDF pages, found by pdfplumber's table finder and written as Markdown tables.

bench/tables.py (docling's PDFs, table-cell F1): PDFium's text stream has no tables at all (cell F1 0), and
pdfplumber's "lines" strategy (cells from ruling lines) finds most real tables; its "text" strategy (cells from
word alignment) finds tables in every paragraph (precision 0.02) and is not used. pdfplumber parses the page
again with pdfminer (~0.2-0.5 s a page), so only pages that draw enough line/rectangle paths to hold a ruled
table are given to it. The table's characters are then taken out of PDFium's text by their boxes, and the
Markdown table goes where the table began, so nothing is read twice.
"""

from __future__ import annotations

import io

MIN_EDGES = 3  # horizontal and vertical rules (a rectangle gives both) a ruled table of 2x2 cells draws at least
MAX_PATHS = 1500  # more paths than this is a vector drawing or chart, where pdfminer would crawl for nothing
MIN_ROWS, MIN_COLS = 2, 2


def _rules(page) -> tuple[int, int, int]:
    """(horizontal lines, vertical lines, rectangles) among the page's path objects, by their bounds."""
    import pypdfium2.raw as pdfium_c

    h = v = r = n = 0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=2):
        n += 1
        if n > MAX_PATHS:
            return 0, 0, 0
        left, bottom, right, top = obj.get_bounds()
        width, height = right - left, top - bottom
        if height < 3 and width > 10:
            h += 1
        elif width < 3 and height > 10:
            v += 1
        elif width > 10 and height > 5:
            r += 1
    return h, v, r


def candidate_pages(doc) -> list[int]:
    """0-based indices of the pages whose vector paths could draw a ruled table (cheap: no text parsing)."""
    out = []
    for i in range(len(doc)):
        page = doc[i]
        h, v, r = _rules(page)
        page.close()
        if h + r >= MIN_EDGES and v + r >= MIN_EDGES:
            out.append(i)
    return out


def _plausible(rows: list[list[str | None]]) -> bool:
    """Two rows and two columns with text, and at most half of the cells empty (a frame around a paragraph
    or a form's boxes is not a table)."""
    cells = [c for r in rows for c in r]
    filled = [c for c in cells if c and c.strip()]
    wide = sum(1 for r in rows if sum(1 for c in r if c and c.strip()) >= MIN_COLS)
    return len(rows) >= MIN_ROWS and wide >= MIN_ROWS and len(filled) >= 0.5 * len(cells)


def find(data: bytes, pages: list[int]) -> dict[int, list[tuple[tuple[float, float, float, float], list]]]:
    """page index -> [(bbox in PDF points, top-left origin (x0, top, x1, bottom)), rows of cell texts]."""
    import pdfplumber

    found: dict[int, list] = {}
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for i in pages:
            page = pdf.pages[i]
            for table in page.find_tables():
                rows = table.extract()
                if _plausible(rows):
                    found.setdefault(i, []).append((table.bbox, [[c or "" for c in r] for r in rows]))
            page.close()
    return found


def split_text(textpage, height: float, tables: list) -> list[tuple[str, int | None]]:
    """PDFium's page text cut around the tables: [(raw text, None) | ("", table index)] in reading order. A
    character belongs to a table when its box centre lies inside the table's box."""
    boxes = []
    for (x0, top, x1, bottom), _rows in tables:
        boxes.append((x0, height - bottom, x1, height - top))  # to PDF coordinates (origin bottom-left)
    pieces: list[tuple[str, int | None]] = []
    n = textpage.count_chars()
    start, current = 0, None  # current: table index of the run being read, None for text
    for i in range(n + 1):
        owner = None
        if i < n:
            left, bottom, right, top = textpage.get_charbox(i)
            cx, cy = (left + right) / 2, (bottom + top) / 2
            owner = next((k for k, (a, b, c, d) in enumerate(boxes) if a <= cx <= c and b <= cy <= d), None)
            if left == right == 0 and current is not None:
                owner = current  # generated spaces/line breaks have empty boxes: they go with their run
        if i == n or owner != current:
            if current is None and i > start:
                pieces.append((textpage.get_text_range(start, i - start), None))
            elif current is not None and not any(t == current for _, t in pieces):
                pieces.append(("", current))
            start, current = i, owner
    for k in range(len(tables)):  # a table PDFium gave no characters for still belongs on the page
        if not any(t == k for _, t in pieces):
            pieces.append(("", k))
    return pieces
