"""Table extraction scored against docling's reference Markdown: does a table come out as a table, cell by cell?

For every docling test file (pdf, docx, html, pptx, md) each candidate returns the document's tables as lists of
rows of cell texts; the reference tables are the pipe tables in groundtruth/*.md. Cells are compared as
normalized text (lowercase, words only) in multisets over the whole document:
  cell F1   every non-empty cell of every table (did the cells come out, as cells?)
  row F1    every row as the tuple of its non-empty cells (is each row kept whole, spans repeated, in order?)
Files without reference tables count too: a table found there is a false positive (precision). A candidate
that finds no table scores 0; a crash scores 0 for that file. Scores are means over files that have a
reference table or a found table (micro counts summed over those files are printed as well).

Run: .venv/bin/python bench/tables.py [-v] [format ...]     (needs the `bench` extra for the alternatives)
"""

from __future__ import annotations

import logging
import re
import sys
import time
import warnings
from collections import Counter
from pathlib import Path


def _parsers():
    """bench/parsers.py by file path (same data and reference lookup as the text benchmark)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_parsers", Path(__file__).resolve().parent / "parsers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DATA, reference = _parsers().DATA, _parsers().reference

Table = list[list[str]]
_WORDS = re.compile(r"\w+")
_SPLIT = re.compile(r"(?<!\\)\|")
_RULE = re.compile(r"^\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*$")


def norm(cell: str) -> str:
    return " ".join(_WORDS.findall(cell.lower()))


def markdown_tables(text: str) -> list[Table]:
    """Pipe tables of a Markdown text (rule rows dropped)."""
    tables, cur = [], []
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("|") and line.count("|") >= 2:
            if not _RULE.match(line):
                cur.append([c.strip() for c in _SPLIT.split(line.strip("|"))])
            continue
        if cur:
            tables.append(cur)
            cur = []
    if cur:
        tables.append(cur)
    return tables


def bags(tables: list[Table]) -> tuple[Counter, Counter]:
    cells, rows = Counter(), Counter()
    for t in tables:
        for row in t:
            normed = tuple(c for c in (norm(x) for x in row) if c)
            cells.update(normed)
            if normed:
                rows[normed] += 1
    return cells, rows


def f1(got: Counter, ref: Counter) -> tuple[float, int, int, int]:
    common = sum((got & ref).values())
    n_got, n_ref = sum(got.values()), sum(ref.values())
    score = 2 * common / (n_got + n_ref) if common else 0.0
    return score, common, n_got, n_ref


# ---- candidates: Path -> list of tables --------------------------------------------------------------------------


def edgerag_tables(p: Path) -> list[Table]:
    from edgerag.ingest.loaders import load_document

    return [t for s in load_document(p).sections for t in markdown_tables(s.text)]


def pdf_pdfplumber_lines(p: Path) -> list[Table]:
    import pdfplumber

    with pdfplumber.open(p) as pdf:
        return [[[c or "" for c in row] for row in t] for page in pdf.pages for t in page.extract_tables()]


def pdf_pdfplumber_text(p: Path) -> list[Table]:
    import pdfplumber

    opts = {"vertical_strategy": "text", "horizontal_strategy": "text"}
    with pdfplumber.open(p) as pdf:
        return [[[c or "" for c in row] for row in t] for page in pdf.pages for t in page.extract_tables(opts)]


def docx_python_docx(p: Path) -> list[Table]:
    import docx

    def walk(tables):
        for t in tables:
            yield [[c.text for c in row.cells] for row in t.rows]  # python-docx repeats a merged cell per grid
    return list(walk(docx.Document(str(p)).tables))


def html_bs4(p: Path) -> list[Table]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(p.read_bytes(), "lxml")
    return [[[c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"], recursive=False)]
             for tr in t.find_all("tr")] for t in soup.find_all("table")]


def pptx_python_pptx(p: Path) -> list[Table]:
    from pptx import Presentation

    def shapes(coll):
        for s in coll:
            if s.shape_type == 6:  # group
                yield from shapes(s.shapes)
            else:
                yield s

    return [[[c.text for c in row.cells] for row in s.table.rows]
            for slide in Presentation(str(p)).slides for s in shapes(slide.shapes)
            if getattr(s, "has_table", False) and s.has_table]


def md_markdown_it(p: Path) -> list[Table]:
    return markdown_tables(p.read_text(encoding="utf-8", errors="replace"))  # the source's own pipe tables


CANDIDATES = {
    "pdf": {"pdfplumber find_tables (lines)": pdf_pdfplumber_lines,
            "pdfplumber find_tables (text)": pdf_pdfplumber_text},
    "docx": {"python-docx tables": docx_python_docx},
    "html": {"bs4 td/th per tr": html_bs4},
    "pptx": {"python-pptx tables": pptx_python_pptx},
    "md": {"pipe tables in the source": md_markdown_it},
}


def run(fmt: str) -> dict[str, tuple[float, float]]:
    sources = sorted(p for p in (DATA / fmt / "sources").iterdir() if reference(p))
    refs = {p: bags(markdown_tables(reference(p).read_text(encoding="utf-8"))) for p in sources}
    with_tables = sum(1 for p in sources if refs[p][0])
    print(f"\n## {fmt}: {len(sources)} files, {with_tables} with reference tables")
    print(f"{'extractor':34} {'cell F1':>8} {'row F1':>7} {'cells P/R (micro)':>18} {'s/file':>7} {'fail':>5}")
    results = {}
    for name, fn in dict(CANDIDATES[fmt], edgerag=edgerag_tables).items():
        cell_f1s, row_f1s, secs, fails = [], [], 0.0, []
        micro = [0, 0, 0]
        for p in sources:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tables = fn(p)
            except ModuleNotFoundError as exc:
                print(f"{name:34} not installed (missing '{exc.name}': pip install 'edgerag[bench]')")
                break
            except Exception as exc:  # a crash is a data point
                tables = []
                fails.append(f"{p.name}: {type(exc).__name__}")
            secs += time.perf_counter() - t0
            cells, rows = bags(tables)
            ref_cells, ref_rows = refs[p]
            if not cells and not ref_cells:
                continue  # no table on either side: nothing to score
            c, common, n_got, n_ref = f1(cells, ref_cells)
            r = f1(rows, ref_rows)[0]
            micro = [micro[0] + common, micro[1] + n_got, micro[2] + n_ref]
            cell_f1s.append(c)
            row_f1s.append(r)
            if VERBOSE:
                print(f"    {p.name:50} cell F1 {c:.3f} row F1 {r:.3f} ({n_got} cells, reference {n_ref})")
        else:
            n = max(1, len(cell_f1s))
            prec = micro[0] / micro[1] if micro[1] else 0.0
            rec = micro[0] / micro[2] if micro[2] else 0.0
            results[name] = (sum(cell_f1s) / n, sum(row_f1s) / n)
            print(f"{name:34} {results[name][0]:8.3f} {results[name][1]:7.3f} {prec:8.3f} / {rec:.3f}"
                  f" {secs / len(sources):7.3f} {len(fails):5d}" + (f"  ({'; '.join(fails[:3])})" if fails else ""))
    return results


VERBOSE = "-v" in sys.argv

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    logging.disable(logging.WARNING)
    for fmt in [a for a in sys.argv[1:] if a != "-v"] or list(CANDIDATES):
        run(fmt)
