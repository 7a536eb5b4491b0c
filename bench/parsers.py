"""Pick a parser per document format by measurement, not by reputation.

For every source file in the docling test data (pdf, html, docx, md, pptx, epub) each candidate parser extracts
plain text, which is scored against docling's reference Markdown (groundtruth/) with two word-level measures:
  F1    token F1 over lowercased word multisets (did the words come out at all?)
  seq   difflib ratio over the lowercased word sequences (did they come out in reading order?)
A failure (exception, or no text) scores 0 for both, so robustness is part of the mean.
The "edgerag" row is the shipped loader (edgerag.ingest.loaders) with heading text put back in, for comparison.

Two more measures live alongside (issue 17):
  tables   table-cell F1 and row F1 per format against the reference pipe tables (bench/tables.py)
  ocr      OCR character accuracy: text pages of docling's PDFs rendered at the loader's 144 dpi and read by the
           `ocr` extra, scored against the page's own text layer (in-order matched characters / reference
           characters, whitespace ignored; word F1 with whitespace, which shows words run together)

Run: .venv/bin/python -P bench/parsers.py [-v] [format ... | tables | ocr]   (-v: per-file scores)
"""

from __future__ import annotations

import difflib
import logging
import re
import sys
import time
import warnings
import zipfile
from collections import Counter
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "documents" / "docling_testdata"
WORD = re.compile(r"\w+")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)  # docling's "<!-- image -->" placeholders are not document text


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def score(got: str, ref: str) -> tuple[float, float]:
    a, b = words(got), words(ref)
    if not a or not b:
        return 0.0, 0.0
    common = sum((Counter(a) & Counter(b)).values())
    f1 = 0.0 if not common else 2 * common / (len(a) + len(b))
    # autojunk=False: with it, frequent words ("the") are ignored and long documents score near 0
    return f1, difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def reference(src: Path) -> Path | None:
    gt = src.parent.parent / "groundtruth"
    for cand in (gt / (src.name + ".md"), gt / (src.stem + ".md")):  # pdf uses stem.md, the rest name.md
        if cand.exists():
            return cand
    return None


# ---- candidates: each takes a Path and returns plain text -----------------------------------------------------


def pdf_pypdfium2(p: Path) -> str:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(p.read_bytes())
    try:
        return "\n\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    finally:
        doc.close()


def pdf_pdfplumber(p: Path) -> str:
    import pdfplumber

    with pdfplumber.open(p) as pdf:
        return "\n\n".join(page.extract_text() or "" for page in pdf.pages)


def pdf_pypdf(p: Path) -> str:
    import pypdf

    return "\n\n".join(page.extract_text() or "" for page in pypdf.PdfReader(p).pages)


def pdf_pdfminer(p: Path) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(str(p))


def _drop(tree, tags=("script", "style", "nav", "noscript", "head")):
    for node in tree.css(",".join(tags)):
        node.decompose()
    return tree


def html_selectolax_text(p: Path) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = _drop(LexborHTMLParser(p.read_bytes()))
    return (tree.body or tree.root).text(separator="\n")


def html_bs4_lxml(p: Path) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(p.read_bytes(), "lxml")
    for node in soup(["script", "style", "nav", "noscript", "head"]):
        node.decompose()
    return soup.get_text("\n")


def html_lxml(p: Path) -> str:
    import lxml.html

    root = lxml.html.fromstring(p.read_bytes())
    for node in root.xpath("//script|//style|//nav|//noscript|//head"):
        node.drop_tree()
    return "\n".join(t for t in root.itertext())


def html_trafilatura(p: Path) -> str:
    import trafilatura

    return trafilatura.extract(p.read_bytes(), include_tables=True, include_comments=False, favor_recall=True) or ""


def html_html2text(p: Path) -> str:
    import html2text

    from edgerag.ingest.loaders import decode_text

    h = html2text.HTML2Text()
    h.ignore_links = h.ignore_images = True
    return h.handle(decode_text(p.read_bytes()))


def docx_paragraphs(p: Path) -> str:
    import docx

    return "\n\n".join(par.text for par in docx.Document(str(p)).paragraphs)


def docx_body_order(p: Path) -> str:
    import docx
    from docx.table import Table

    out = []
    for block in docx.Document(str(p)).iter_inner_content():
        if isinstance(block, Table):
            out += [" | ".join(c.text for c in row.cells) for row in block.rows]
        else:
            out.append(block.text)
    return "\n\n".join(out)


def _xml_paragraphs(data: bytes, para: str, text: str) -> str:
    from lxml import etree

    root = etree.fromstring(data)
    return "\n\n".join("".join(t.text or "" for t in p.iter(text)) for p in root.iter(para))


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def docx_raw_xml(p: Path) -> str:
    with zipfile.ZipFile(p) as z:
        return _xml_paragraphs(z.read("word/document.xml"), W + "p", W + "t")


def md_raw(p: Path) -> str:
    return p.read_text(encoding="utf-8", errors="replace")


def md_markdown_it_text(p: Path) -> str:
    from markdown_it import MarkdownIt
    from selectolax.lexbor import LexborHTMLParser

    html = MarkdownIt("commonmark").enable("table").render(md_raw(p))
    return LexborHTMLParser(html).body.text(separator="\n")


def pptx_text_frames(p: Path) -> str:
    from pptx import Presentation

    return "\n\n".join(s.text_frame.text for sl in Presentation(str(p)).slides for s in sl.shapes if s.has_text_frame)


def pptx_frames_tables_groups(p: Path) -> str:
    from pptx import Presentation

    def shapes(coll):
        for s in coll:
            if s.shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
                yield from shapes(s.shapes)
            else:
                yield s

    out = []
    for slide in Presentation(str(p)).slides:
        for s in shapes(slide.shapes):
            if s.has_text_frame:
                out.append(s.text_frame.text)
            elif getattr(s, "has_table", False) and s.has_table:
                out += [" | ".join(c.text for c in row.cells) for row in s.table.rows]
    return "\n\n".join(out)


def pptx_raw_xml(p: Path) -> str:
    with zipfile.ZipFile(p) as z:
        names = sorted((n for n in z.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)),
                       key=lambda n: int(re.search(r"\d+", n.rsplit("/", 1)[1]).group()))
        return "\n\n".join(_xml_paragraphs(z.read(n), A + "p", A + "t") for n in names)


def _epub_docs(p: Path):
    import ebooklib
    from ebooklib import epub

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = epub.read_epub(str(p), {"ignore_ncx": True})
    for idref, _ in book.spine:
        item = book.get_item_with_id(idref)
        if item is not None and item.get_type() == ebooklib.ITEM_DOCUMENT:
            yield item.get_content()


def epub_ebooklib_selectolax(p: Path) -> str:
    from selectolax.lexbor import LexborHTMLParser

    return "\n\n".join(_drop(LexborHTMLParser(d)).body.text(separator="\n") for d in _epub_docs(p))


def epub_ebooklib_bs4(p: Path) -> str:
    from bs4 import BeautifulSoup

    return "\n\n".join(BeautifulSoup(d, "lxml").get_text("\n") for d in _epub_docs(p))


def edgerag_loader(p: Path) -> str:
    from edgerag.ingest.loaders import load_document

    out, last = [], []
    for s in load_document(p).sections:
        # the reference has heading lines; the loader keeps headings in .heading, so put back each new one
        path = s.heading.split(" > ") if s.heading else []
        same = next((i for i, (a, b) in enumerate(zip(path, last)) if a != b), min(len(path), len(last)))
        new = path[same:] if path != last else []
        if new and s.text == new[-1]:
            new = new[:-1]  # a heading with nothing under it is its own section's text
        out += new
        last = path
        out.append(s.text)
    return "\n\n".join(out)


CANDIDATES = {
    "pdf": {"pypdfium2": pdf_pypdfium2, "pdfplumber": pdf_pdfplumber, "pypdf": pdf_pypdf, "pdfminer.six": pdf_pdfminer},
    "html": {"selectolax text()": html_selectolax_text, "bs4+lxml get_text": html_bs4_lxml,
             "lxml itertext": html_lxml, "trafilatura": html_trafilatura, "html2text": html_html2text},
    "docx": {"python-docx paragraphs": docx_paragraphs, "python-docx body order": docx_body_order,
             "raw XML w:t": docx_raw_xml},
    "md": {"raw text": md_raw, "markdown-it+selectolax text()": md_markdown_it_text},
    "pptx": {"python-pptx text frames": pptx_text_frames, "python-pptx +tables+groups": pptx_frames_tables_groups,
             "raw XML a:t": pptx_raw_xml},
    "epub": {"ebooklib+selectolax": epub_ebooklib_selectolax, "ebooklib+bs4": epub_ebooklib_bs4},
}


def run(fmt: str) -> None:
    sources = sorted(p for p in (DATA / fmt / "sources").iterdir() if reference(p))
    refs = {p: COMMENT.sub(" ", reference(p).read_text(encoding="utf-8")) for p in sources}
    cands = dict(CANDIDATES[fmt], edgerag=edgerag_loader)
    print(f"\n## {fmt}: {len(sources)} files with a reference")
    print(f"{'parser':32} {'F1':>6} {'seq':>6} {'s/file':>8} {'fail':>5}")
    for name, fn in cands.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn(sources[0])  # warm-up: keep import and first-call cost out of the timing
        except ModuleNotFoundError as exc:  # bench-only parsers (pdfplumber, pypdf, bs4, ...) are not runtime deps
            print(f"{name:32} not installed (pip install the package providing '{exc.name}')")
            continue
        except Exception:  # this file's failure is counted in the loop below
            pass
        f1s, seqs, secs, fails = [], [], 0.0, []
        for p in sources:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    text = fn(p)
            except Exception as exc:  # a parser crash is a data point, not a bench failure
                text, _ = "", fails.append(f"{p.name}: {type(exc).__name__}")
            secs += time.perf_counter() - t0
            f1, seq = score(text, refs[p])
            if not text.strip() and p.name not in " ".join(fails):
                fails.append(f"{p.name}: empty")
            f1s.append(f1)
            seqs.append(seq)
            if VERBOSE:
                print(f"    {p.name:50} F1 {f1:.3f} seq {seq:.3f}")
        n = len(sources)
        print(f"{name:32} {sum(f1s) / n:6.3f} {sum(seqs) / n:6.3f} {secs / n:8.4f} {len(fails):5d}"
              + (f"  ({'; '.join(fails[:3])}{' ...' if len(fails) > 3 else ''})" if fails else ""))


OCR_PAGES = [("multi_page.pdf", 0), ("2305.03393v1-pg9.pdf", 0), ("redp5110_sampled.pdf", 2),
             ("amt_handbook_sample.pdf", 0)]


def ocr_accuracy() -> None:
    import pypdfium2 as pdfium

    from edgerag.ingest.loaders import ocr

    if not ocr.available():
        print("\n## ocr: not installed (pip install 'edgerag[ocr]')")
        return
    print(f"\n## ocr: {len(OCR_PAGES)} text pages rendered at {ocr.RENDER_SCALE * 72:.0f} dpi, read by rapidocr-onnxruntime")
    print(f"{'page':34} {'chars':>6} {'char acc':>8} {'word F1':>8} {'s/page':>7}")
    ocr._engine()  # model load outside the timing
    totals = [0.0, 0.0, 0.0]
    for name, index in OCR_PAGES:
        doc = pdfium.PdfDocument((DATA / "pdf" / "sources" / name).read_bytes())
        page = doc[index]
        ref = page.get_textpage().get_text_range().replace("\ufffe", "")
        t0 = time.perf_counter()
        got = ocr.read_page(page)
        secs = time.perf_counter() - t0
        a, b = "".join(ref.lower().split()), "".join(got.lower().split())
        matched = sum(m.size for m in difflib.SequenceMatcher(None, b, a, autojunk=False).get_matching_blocks())
        acc = matched / max(1, len(a))
        f1 = score(got, ref)[0]
        totals = [totals[0] + acc, totals[1] + f1, totals[2] + secs]
        print(f"{name + ' p' + str(index + 1):34} {len(a):6d} {acc:8.3f} {f1:8.3f} {secs:7.2f}")
        doc.close()
    n = len(OCR_PAGES)
    print(f"{'mean':34} {'':6} {totals[0] / n:8.3f} {totals[1] / n:8.3f} {totals[2] / n:7.2f}")


def tables() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_tables", Path(__file__).resolve().parent / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.VERBOSE = VERBOSE
    for fmt in module.CANDIDATES:
        module.run(fmt)


VERBOSE = "-v" in sys.argv  # per-file scores

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    logging.disable(logging.WARNING)  # pypdf logs every repaired xref to stderr
    for fmt in [a for a in sys.argv[1:] if a != "-v"] or [*CANDIDATES, "tables", "ocr"]:
        {"tables": tables, "ocr": ocr_accuracy}.get(fmt, lambda: run(fmt))()
