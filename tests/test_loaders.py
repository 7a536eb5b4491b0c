"""edgerag.ingest.loaders on real files (../shared/data/documents) and on hand-made bad inputs."""

from __future__ import annotations

import codecs
import io
import os
import warnings
import zipfile
from pathlib import Path

import pytest

from edgerag.errors import BadInputError
from edgerag.ingest.loaders import SUPPORTED_SUFFIXES, LoadedDocument, UnreadableFile, decode_text, load_document

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
    ("unstructured_example_docs/README.rst", "txt", "sample docs directory"),
]


@needs_data
@pytest.mark.parametrize("rel, fmt, expected", FORMAT_SAMPLES, ids=[s[0].rsplit("/", 1)[1] for s in FORMAT_SAMPLES])
def test_text_from_each_format(rel, fmt, expected):
    doc = load_document(DOCS / rel)
    assert doc.format == fmt
    assert all(s.text.strip() for s in doc.sections)
    assert expected.lower() in text_of(doc).lower()


def test_every_format_is_supported():
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".pptx", ".epub"} <= SUPPORTED_SUFFIXES


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
def test_scanned_pdf_without_text_layer():
    assert reason(UNSTRUCTURED / "pdf/loremipsum-flat.pdf") == "no extractable text"


@needs_data
def test_empty_and_whitespace_files():
    assert reason(UNSTRUCTURED / "empty.txt") == "empty file"
    assert reason(UNSTRUCTURED / "fake-text-all-whitespace.txt") == "no extractable text"


def test_binary_file_named_txt(tmp_path):
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2000))
    assert reason(path) == "binary content in a .txt file"


def test_unsupported_type(tmp_path):
    path = tmp_path / "letter.odt"
    path.write_bytes(b"PK\x03\x04 not really")
    assert reason(path) == "unsupported type .odt"
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
