"""edgerag.ingest.loaders on real files (../shared/data/documents) and on hand-made bad inputs."""

from __future__ import annotations

import codecs
import io
import json
import os
import warnings
import zipfile
from pathlib import Path

import pytest

from edgerag.errors import BadInputError
from edgerag.ingest.loaders import (SUPPORTED_SUFFIXES, LoadedDocument, UnreadableFile, decode_text, load_bytes,
                                    load_document, ocr)

DOCS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "documents"
DOCLING = DOCS / "docling_testdata"
UNSTRUCTURED = DOCS / "unstructured_example_docs"
needs_data = pytest.mark.skipif(not DOCS.is_dir(), reason=f"shared test documents not found at {DOCS}")


def text_of(doc: LoadedDocument) -> str:
    return "\n\n".join(s.text for s in doc.sections)


def reason(path: Path) -> str:
    with pytest.raises(UnreadableFile) as info:
        load_document(path)
    return str(info.value)


# ---- text comes out of every supported format ------------------------------------------------------------------

FORMAT_SAMPLES = [
    ("docling_testdata/pdf/sources/multi_page.pdf", "pdf", "word processor"),
    ("docling_testdata/html/sources/example_03.html", "html", "first paragraph of the introduction"),
    ("docling_testdata/docx/sources/unit_test_headers.docx", "docx", "Paragraph 1.1.1"),
    ("docling_testdata/docx/sources/Strict.docx", "docx", "Some text"),  # ISO Strict namespaces
    ("docling_testdata/md/sources/mixed.md", "md", "Scrooge McDuck | Dagobert Duck"),  # HTML table inside Markdown
    ("docling_testdata/pptx/sources/powerpoint_sample.pptx", "pptx", "A rectangle shape with this text inside."),
    ("docling_testdata/epub/sources/epub_purvis_poetry.epub", "epub", "Purvis"),
    ("unstructured_example_docs/pdf/layout-parser-paper-fast.pdf", "pdf", "LayoutParser"),
    ("unstructured_example_docs/pdf/copy-protected.pdf", "pdf", "LayoutParser"),  # owner password only: readable
    ("unstructured_example_docs/example-10k-1p.html", "html", "Galaxy Gaming, Inc."),
    ("unstructured_example_docs/handbook-1p.docx", "docx", "United States Trustee"),
    ("unstructured_example_docs/fake-power-point-malformed.pptx", "pptx", "Problem Date Placeholder"),
    ("unstructured_example_docs/winter-sports.epub", "epub", "Winter Sports"),
    ("unstructured_example_docs/README.md", "md", "sample docs directory"),
    ("unstructured_example_docs/fake-text.txt", "txt", "This is a test document"),
    ("unstructured_example_docs/README.rst", "rst", "sample docs directory"),
    ("unstructured_example_docs/README.org", "org", "sample docs directory"),
    ("unstructured_example_docs/fake.odt", "odt", "Lorem ipsum dolor sit amet."),
    ("unstructured_example_docs/fake-doc.rtf", "rtf", "My first paragraph."),
    ("unstructured_example_docs/language-docs/eng_spa_mult.rtf", "rtf", "born free and equal in dignity"),
    ("unstructured_example_docs/eml/fake-email.eml", "eml", "This is a test email to use for unit tests."),
    ("unstructured_example_docs/eml/fake-email-utf-16-le.eml", "eml", "Violets are blue"),
    ("unstructured_example_docs/eml/mime-html-only.eml", "eml", "Gmail was launched by Google in 2004"),
]


@needs_data
@pytest.mark.parametrize("rel, fmt, expected", FORMAT_SAMPLES, ids=[s[0].rsplit("/", 1)[1] for s in FORMAT_SAMPLES])
def test_text_from_each_format(rel, fmt, expected):
    doc = load_document(DOCS / rel)
    assert doc.format == fmt
    assert all(s.text.strip() for s in doc.sections)
    assert expected.lower() in text_of(doc).lower()


def test_every_format_is_supported():
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".pptx", ".epub", ".odt", ".rtf", ".eml",
            ".msg", ".org", ".rst", ".csv", ".tsv", ".xlsx", ".ipynb", ".py", ".js", ".go", ".rs", ".java",
            ".c", ".cpp"} <= SUPPORTED_SUFFIXES


# ---- structure for citations ---------------------------------------------------------------------------------


@needs_data
def test_pdf_pages_are_numbered_from_one():
    doc = load_document(DOCLING / "pdf/sources/multi_page.pdf")
    assert [s.page for s in doc.sections] == [1, 2, 3, 4, 5]
    assert "The Evolution of the Word Processor" in doc.sections[0].text


@needs_data
def test_pdf_with_empty_pages_keeps_true_page_numbers():
    doc = load_document(UNSTRUCTURED / "pdf/layout-parser-paper-with-empty-pages.pdf")
    pages = [s.page for s in doc.sections]
    assert pages == sorted(pages) and len(pages) < 4  # blank pages dropped, the rest keep their numbers
    assert any("no text on page" in w for w in doc.warnings)


@needs_data
def test_pptx_sections_are_slides_with_titles():
    doc = load_document(DOCLING / "pptx/sources/powerpoint_sample.pptx")
    assert [s.page for s in doc.sections] == [1, 2, 3]
    assert doc.sections[0].heading == "Test Table Slide"
    assert doc.sections[1].heading == "Second slide title"
    assert "R1 | True | False" in doc.sections[0].text  # table rows
    assert "Some notes on the second slide." in doc.sections[1].text  # speaker notes


@needs_data
def test_markdown_heading_paths():
    doc = load_document(DOCLING / "md/sources/mixed.md")
    by_heading = {s.heading: s.text for s in doc.sections}
    assert by_heading["Title"] == "Some text"
    assert "Louie | Track | Loulou | Qua" in by_heading["Title > Famous ducks"]
    assert doc.title == "Title"


@needs_data
def test_markdown_setext_headings():
    headings = {s.heading for s in load_document(DOCLING / "md/sources/blocks.md").sections}
    assert "my setext heading level 1 > my setext heading level 2" in headings


@needs_data
def test_html_heading_paths_and_tables():
    doc = load_document(DOCLING / "html/sources/example_03.html")
    by_heading = {s.heading: s.text for s in doc.sections}
    assert by_heading["Example Document > Introduction"] == "This is the first paragraph of the introduction."
    assert "Row 2, Col 1 | Row 2, Col 2 | Row 2, Col 3" in by_heading["Example Document > Data Table"]
    assert "- Nested item 1" in by_heading["Example Document > Background"]


@needs_data
def test_html_drops_scripts_and_styles():
    text = text_of(load_document(UNSTRUCTURED / "example-with-scripts.html"))
    assert "function(" not in text and "{" not in text


@needs_data
def test_docx_heading_paths_and_title():
    doc = load_document(DOCLING / "docx/sources/unit_test_headers.docx")
    by_heading = {s.heading: s.text for s in doc.sections}
    assert doc.title == "Test Document"
    assert by_heading["Section 1"] == "Paragraph 1.1\n\nParagraph 1.2"
    assert by_heading["Section 1 > Section 1.2 > Section 1.2.3"].startswith("Paragraph 1.2.3.1")


@needs_data
def test_docx_tables_in_body_order():
    text = text_of(load_document(UNSTRUCTURED / "docx-tables.docx"))
    assert " | " in text


@needs_data
def test_epub_chapters_give_headings():
    doc = load_document(UNSTRUCTURED / "winter-sports.epub")
    assert doc.title == "Winter Sports in Switzerland"
    assert any(s.heading and s.heading.endswith("CHAPTER I THE SUN-SEEKER") for s in doc.sections)


# ---- tables: Markdown, spans repeated, header kept with every chunk ----------------------------------------------


def tables_in(doc: LoadedDocument) -> list[list[str]]:
    return [[line for line in block.split("\n")] for s in doc.sections for block in s.text.split("\n\n")
            if block.startswith("| ") and "\n|---|" in block]


@needs_data
def test_docx_merged_cells_are_repeated_like_the_reference():
    tables = tables_in(load_document(DOCLING / "docx/sources/word_tables.docx"))
    assert "| Cell 1.0 | Merged Cell 1.1 1.2 | Merged Cell 1.1 1.2 |" in tables[1]  # horizontal span
    rows = [r for t in tables for r in t]
    assert "| Cell 1.0 | Merged Cell 1.1 2.1 | Cell 1.2 |" in rows  # vertical span...
    assert "| Cell 2.0 | Merged Cell 1.1 2.1 | Cell 2.2 |" in rows  # ...repeated in the row below


@needs_data
def test_html_rowspan_colspan_table():
    (table,) = tables_in(load_document(DOCLING / "html/sources/example_04.html"))
    assert table[0] == "| Header 1 | Header 2 & 3 (colspan) | Header 2 & 3 (colspan) |"
    assert table[3] == "| Row 1 & 2, Col 1 (rowspan) | Row 2, Col 2 & 3 (colspan) | Row 2, Col 2 & 3 (colspan) |"


@needs_data
def test_pptx_table_and_chart_are_markdown_tables():
    (table,) = tables_in(load_document(DOCLING / "pptx/sources/powerpoint_sample.pptx"))
    assert table[0] == "| | Class1 | Class1 | Class1 | Class2 | Class2 | Class2 |"  # gridSpan repeated
    assert table[2] == "| | A merged with B | A merged with B | C | A | B | C |"  # hMerge repeated
    assert "| R1 | True | False | | False | True | True |" in table
    chart = tables_in(load_document(DOCLING / "pptx/sources/pptx_chart.pptx"))[0]
    assert chart[0] == "| | Freshwater Ducks | Saltwater Ducks |" and "| 2022 | 175 | 130 |" in chart


def _words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def test_chunker_keeps_rows_whole_and_repeats_the_header():
    from types import SimpleNamespace

    from edgerag.ingest.chunker import chunk_sections
    from edgerag.ingest.loaders.base import markdown_table

    rows = [["Part", "Supplier", "Price"]] + [[f"P-{i}", f"Supplier number {i} of Ghent", f"{i}.50 EUR"]
                                              for i in range(40)]
    text = "Prices as of May.\n\n" + markdown_table(rows) + "\n\nPrices include VAT. Ask for discounts."
    chunks = chunk_sections([SimpleNamespace(text=text, page=3, heading="Prices")], _words, max_tokens=60,
                            overlap=0)
    assert len(chunks) > 3
    header = "| Part | Supplier | Price |\n|---|---|---|"
    for c in chunks:
        lines = c.text.split("\n")
        table_lines = [ln for ln in lines if ln.startswith("|")]
        if table_lines:
            assert c.text.count(header) == 1  # every piece of the table starts with its header...
            assert all(ln.endswith("|") and ln.count("|") == 4 for ln in table_lines)  # ...and has whole rows
    found = [c for c in chunks if "| P-33 |" in c.text]
    assert len(found) == 1 and found[0].text.startswith(header) and found[0].page == 3
    # every row is in some chunk, once, in order
    body = [ln for c in chunks for ln in c.text.split("\n") if ln.startswith("| P-")]
    assert body == [f"| P-{i} | Supplier number {i} of Ghent | {i}.50 EUR |" for i in range(40)]
    assert chunks[0].text.startswith("Prices as of May.") and chunks[-1].text.endswith("Ask for discounts.")


def test_markdown_table_shapes():
    from edgerag.ingest.loaders.base import markdown_table

    assert markdown_table([["a", "b|c"], ["1"]]) == "| a | b\\|c |\n|---|---|\n| 1 |  |"
    assert markdown_table([["only cell"]]) == "only cell"
    assert markdown_table([["", "x", ""], ["", "y", ""]]) == "| x |\n|---|\n| y |"  # empty columns dropped
    assert markdown_table([[""], []]) == ""


# ---- more formats ------------------------------------------------------------------------------------------------


@needs_data
def test_odt_table_and_list():
    doc = load_document(UNSTRUCTURED / "fake.odt")
    assert "| Color | Blue | Red | Green |" in text_of(doc)
    assert "- Hockey" in text_of(load_document(UNSTRUCTURED / "simple.odt"))


@needs_data
def test_rtf_table_rows():
    text = text_of(load_document(UNSTRUCTURED / "fake-doc.rtf"))
    assert "| Column 1 | Column 2 |\n|---|---|\n| Row 1, Cell 1 | Row 1, Cell 2 |" in text


@needs_data
@pytest.mark.parametrize("name", ["README.org", "README.rst", "README-w-include.rst"])
def test_org_and_rst_headings(name):
    doc = load_document(UNSTRUCTURED / name)
    assert doc.title == "Example Docs"
    by_heading = {s.heading: s.text for s in doc.sections}
    assert "inline XBRL format" in by_heading["Example Docs > XBRL 10-K"]
    assert "~" not in text_of(doc) and "``" not in text_of(doc)  # inline-code markup is gone


@needs_data
def test_eml_headers_body_and_attachments():
    doc = load_document(UNSTRUCTURED / "eml/fake-email-attachment.eml")
    assert doc.title == "Fake email with attachment"
    assert text_of(doc).startswith("Subject: Fake email with attachment\nFrom: Mallori Harrell")
    assert [(a.name, a.data) for a in doc.attachments] == [("fake-attachment.txt", b"Hey this is a fake attachment!")]
    digest = load_document(UNSTRUCTURED / "eml/mime-multipart-digest.eml")
    names = [a.name for a in digest.attachments]
    assert names == ["First Message.eml", "Second Message.eml", "Third Message.eml"]
    inner = load_bytes(names[1], digest.attachments[1].data)  # an attached mail reads as a mail
    assert inner.format == "eml" and "second message" in text_of(inner).lower()


@needs_data
def test_eml_refusals():
    assert reason(UNSTRUCTURED / "eml/fake-encrypted.eml") == "encrypted e-mail (S/MIME or PGP)"


def test_msg_without_extra_or_corrupt(tmp_path):
    path = tmp_path / "mail.msg"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000))
    got = reason(path)
    try:
        import extract_msg  # noqa: F401
    except ImportError:
        assert got == "msg support is not installed (pip install 'edgerag[docs]')"
    else:
        assert got.startswith("corrupt msg (")


def test_csv_and_tsv_are_tables(tmp_path):
    (tmp_path / "people.csv").write_text("name;city;age\nAlice;Paris;30\nBob;\"New York; NY\";41\n")
    assert text_of(load_document(tmp_path / "people.csv")) == \
        "| name | city | age |\n|---|---|---|\n| Alice | Paris | 30 |\n| Bob | New York; NY | 41 |"


@needs_data
def test_tsv_from_a_real_dataset(tmp_path):
    with zipfile.ZipFile(DOCS.parent / "retrieval/beir_nfcorpus/nfcorpus.zip") as z:
        name = next(n for n in z.namelist() if n.endswith("qrels/test.tsv"))
        (tmp_path / "qrels.tsv").write_bytes(z.read(name)[:20_000])
    doc = load_document(tmp_path / "qrels.tsv")
    lines = doc.sections[0].text.split("\n")
    assert lines[0] == "| query-id | corpus-id | score |" and lines[1] == "|---|---|---|"
    assert all(ln.count("|") == 4 for ln in lines[:-1])


def test_xlsx_sheets_are_tables(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Staff"
    for row in (["Name", "Role", "Salary"], ["Ann", "CTO", 120000.0], ["Ben", None, 90000]):
        ws.append(row)
    wb.create_sheet("Empty")
    wb.create_sheet("Notes")["B2"] = "Budget frozen until Q3"
    wb.properties.title = "Staff list"
    wb.save(tmp_path / "staff.xlsx")
    doc = load_document(tmp_path / "staff.xlsx")
    assert doc.title == "Staff list"
    assert [(s.heading, s.text) for s in doc.sections] == [
        ("Staff", "| Name | Role | Salary |\n|---|---|---|\n| Ann | CTO | 120000 |\n| Ben |  | 90000 |"),
        ("Notes", "Budget frozen until Q3")]


def test_ipynb_markdown_and_code_cells(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"language": "python"}}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Churn analysis\n", "We load the data."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "df = load('churn.csv')",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "OUTPUT-NOT-INDEXED"}]},
        {"cell_type": "markdown", "metadata": {}, "source": "## Results\nChurn is 4%."}]}
    (tmp_path / "a.ipynb").write_text(json.dumps(nb))
    doc = load_document(tmp_path / "a.ipynb")
    assert doc.format == "ipynb" and doc.title == "Churn analysis"
    assert [(s.heading, s.text) for s in doc.sections] == [
        ("Churn analysis", "We load the data.\n\ndf = load('churn.csv')"), ("Churn analysis > Results", "Churn is 4%.")]


def test_python_source_is_split_at_definitions():
    doc = load_document(Path(__file__).resolve().parents[1] / "edgerag" / "ingest" / "chunker.py")
    headings = [s.heading for s in doc.sections]
    assert doc.format == "code" and headings[0] is None  # the module docstring and imports
    assert "def chunk_sections" in headings and "def _pack" in headings
    pack = next(s.text for s in doc.sections if s.heading == "def _pack")
    assert pack.startswith("def _pack(") and "\n    out: list[ChunkRecord] = []" in pack  # indentation kept


def test_other_languages_are_split_at_top_level_definitions(tmp_path):
    (tmp_path / "m.go").write_text('package main\n\nimport "fmt"\n\n// Add adds.\nfunc Add(a, b int) int {\n'
                                   '\treturn a + b\n}\n\ntype Point struct {\n\tX int\n}\n')
    doc = load_document(tmp_path / "m.go")
    assert [(s.heading, s.text.split("\n")[0]) for s in doc.sections] == [
        (None, "package main"), ("func Add(a, b int) int", "// Add adds."), ("type Point struct", "type Point struct {")]
    (tmp_path / "u.c").write_text("#include <stdio.h>\n\nstatic int twice(int x)\n{\n    return 2 * x;\n}\n")
    assert load_document(tmp_path / "u.c").sections[1].heading == "static int twice(int x)"


# ---- encodings -----------------------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("name", ["fake-text-utf-16-le.txt", "fake-text-utf-16-be.txt", "fake-text-utf-16.txt",
                                  "fake-text-utf-32.txt"])
def test_utf16_and_utf32_text_files(name):
    text = text_of(load_document(UNSTRUCTURED / name))
    assert text.startswith("This is a test document to use for unit tests.")
    assert "\x00" not in text


@needs_data
def test_cp1252_html_without_charset():
    text = text_of(load_document(UNSTRUCTURED / "fake-html-cp1252.html"))
    assert "Die schöne Frau" in text and "15,50 €" in text and "El niño" in text


@needs_data
def test_utf16_html_with_bom():
    doc = load_document(UNSTRUCTURED / "example-steelJIS-datasheet-utf-16.html")
    assert "SNB22-3" in text_of(doc)
    assert doc.title.startswith("SNB22-3")


@needs_data
def test_non_utf8_markdown():
    assert "äöüß" in text_of(load_document(UNSTRUCTURED / "umlauts-non-utf8.md"))


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"])
def test_decode_text_round_trips(codec):
    sample = "Größe: 5 € — naïve café\nzweite Zeile\n" * 3
    assert decode_text(sample.encode(codec)) == sample


def test_decode_text_bom_is_dropped():
    assert decode_text(codecs.BOM_UTF8 + b"hi") == "hi"
    assert decode_text(codecs.BOM_UTF16_BE + "hi".encode("utf-16-be")) == "hi"


def test_decode_text_refuses_binary():
    with pytest.raises(UnreadableFile, match="binary"):
        decode_text(bytes(range(256)) * 8)
    with pytest.raises(UnreadableFile, match="binary"):
        decode_text(bytes(range(1, 256)) * 8)  # no NUL, but full of control bytes


# ---- refusals: UnreadableFile with a reason ------------------------------------------------------------------


@needs_data
def test_encrypted_pdf():
    assert reason(UNSTRUCTURED / "pdf/password.pdf") == "encrypted PDF (password required)"


@needs_data
@pytest.mark.skipif(ocr.available(), reason="the ocr extra is installed: the page is read")
def test_scanned_pdf_without_ocr_names_the_extra():
    assert reason(UNSTRUCTURED / "pdf/loremipsum-flat.pdf") == \
        "scanned, no text (install edgerag[ocr]): 1 scanned page(s)"


def test_ocr_lines_come_in_reading_order():
    box = lambda x, y, w=40, h=10: [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]  # noqa: E731
    detections = [(box(60, 31), "line", 0.9), (box(5, 30), "second", 0.9), (box(50, 2), "one", 0.9),
                  (box(0, 0), "line", 0.9)]
    assert ocr.lines_in_reading_order(detections) == "line one\nsecond line"
    assert ocr.lines_in_reading_order(None) == ""


@needs_data
@pytest.mark.slow
def test_scanned_pdf_is_read_by_ocr():
    pytest.importorskip("rapidocr_onnxruntime", reason="the ocr extra is not installed")
    doc = load_document(UNSTRUCTURED / "pdf/single_table.pdf")
    assert doc.sections[0].page == 1 and not doc.warnings
    text = text_of(doc)
    assert "Chipper" in text and "64,058" in text


def test_scanned_page_in_a_pdf_with_text_is_listed(monkeypatch):
    """A PDF with text pages and a scanned page: the text is kept and the scanned page named in the warnings."""
    monkeypatch.setattr(ocr, "reader", lambda: None)  # as without the extra
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    scanned = pdfium.PdfDocument((UNSTRUCTURED / "pdf/loremipsum-flat.pdf").read_bytes())
    text = pdfium.PdfDocument((DOCLING / "pdf/sources/multi_page.pdf").read_bytes())
    pdf.import_pages(text, [0])
    pdf.import_pages(scanned, [0])
    buf = io.BytesIO()
    pdf.save(buf)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"mixed-{os.getpid()}.pdf"
    path.write_bytes(buf.getvalue())
    try:
        doc = load_document(path)
    finally:
        path.unlink()
    assert [s.page for s in doc.sections] == [1]
    assert doc.warnings == ["page(s) 2: scanned, no text (install edgerag[ocr])"]


@needs_data
def test_empty_and_whitespace_files():
    assert reason(UNSTRUCTURED / "empty.txt") == "empty file"
    assert reason(UNSTRUCTURED / "fake-text-all-whitespace.txt") == "no extractable text"


def test_binary_file_named_txt(tmp_path):
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2000))
    assert reason(path) == "binary content in a .txt file"


def test_unsupported_type(tmp_path):
    path = tmp_path / "letter.wpd"
    path.write_bytes(b"PK\x03\x04 not really")
    assert reason(path) == "unsupported type .wpd"
    assert reason(tmp_path / "README") == "unsupported type (no file extension)"


def test_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("top secret")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)  # chmod 000 does not stop root, so fake the refusal
    assert reason(path) == "permission denied"


def test_missing_file_and_directory(tmp_path):
    assert reason(tmp_path / "gone.pdf") == "file not found"
    (tmp_path / "folder.md").mkdir()
    assert reason(tmp_path / "folder.md") == "is a directory"


def test_corrupt_files(tmp_path):
    cases = {
        "broken.pdf": (b"%PDF-1.7\n" + b"garbage " * 200, "corrupt PDF ("),
        "broken.docx": (b"this is not a zip archive", "corrupt docx (not a zip archive)"),
        "old.pptx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "password-protected or old binary Office"),
        "broken.epub": (b"PK\x03\x04 truncated", "corrupt epub ("),
        "broken.odt": (b"PK\x03\x04 truncated", "corrupt odt (not a zip archive)"),
        "broken.xlsx": (b"PK\x03\x04 truncated", "corrupt xlsx (not a zip archive)"),
        "old.xlsx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "password-protected or old binary Excel"),
        "broken.rtf": (b"not rtf at all", "corrupt rtf (no {\\rtf header)"),
        "broken.ipynb": (b'{"cells": [', "corrupt ipynb (invalid JSON"),
        "broken.msg": (b"not an OLE file", "corrupt msg (not an Outlook compound file)"),
        "empty.eml": (b"\n\n\n", "corrupt eml (no mail headers)"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("_rels/.rels", "<Relationships><Relationship")  # truncated XML
    cases["bad-xml.pptx"] = (buf.getvalue(), "corrupt pptx (ParseError")
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        got = reason(tmp_path / name)
        assert got.startswith(expected), (name, got)
        assert "\n" not in got and len(got) <= 200


def test_unreadable_is_a_bad_input_error():
    assert issubclass(UnreadableFile, BadInputError)


# ---- robustness over whole corpora ---------------------------------------------------------------------------


@needs_data
def test_unstructured_examples_every_supported_file_is_read_and_every_other_named():
    """The exact set of files of unstructured_example_docs that give no text, each with its reason."""
    refused = {}
    for path in sorted(p for p in UNSTRUCTURED.rglob("*") if p.is_file()):
        try:
            load_document(path)
        except UnreadableFile as exc:
            refused[str(path.relative_to(UNSTRUCTURED))] = str(exc)
    legacy_word = "unsupported type .doc (old binary Word format: save it as .docx)"
    scanned = "scanned, no text (install edgerag[ocr]): 1 scanned page(s)"
    expected = {
        "duplicate-paragraphs.doc": legacy_word, "fake-doc-emphasized-text.doc": legacy_word, "fake.doc": legacy_word,
        "simple.doc": legacy_word, "language-docs/eng_spa_mult.doc": legacy_word,
        "factbook.xml": "unsupported type .xml", "factbook-utf-16.xml": "unsupported type .xml",
        "language-docs/eng_spa_mult.xml": "unsupported type .xml",
        "eml/empty.eml": "corrupt eml (no mail headers)", "eml/fake-encrypted.eml": "encrypted e-mail (S/MIME or PGP)",
        "empty.txt": "empty file", "fake-text-all-whitespace.txt": "no extractable text",
        "pdf/password.pdf": "encrypted PDF (password required)",
        "picture.pptx": "no extractable text", "test-image-jpg-mime.pptx": "no extractable text",  # images only
    }
    if not ocr.available():
        expected.update({f"pdf/{name}.pdf": scanned for name in
                         ("loremipsum-flat", "single_table", "table-multi-row-column-cells")})
    assert refused == expected



@needs_data
@pytest.mark.parametrize("corpus", ["unstructured_example_docs", "docling_testdata"])
def test_every_file_loads_or_is_refused_quietly(corpus, capfd):
    files = sorted(p for p in (DOCS / corpus).rglob("*") if p.is_file())
    assert len(files) > 100
    loaded = refused = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in files:
            try:
                doc = load_document(path)
            except UnreadableFile as exc:
                assert str(exc) and "\n" not in str(exc), path
                refused += 1
                continue
            assert isinstance(doc, LoadedDocument), path
            assert text_of(doc).strip(), path
            assert all(isinstance(s.page, (int, type(None))) for s in doc.sections), path
            loaded += 1
    assert loaded > refused
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # loaders never print, not even from C libraries
    assert not [w for w in caught if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
