"""Rich Text Format (.rtf) via striprtf: a small, pure-Python, dependency-free RTF-to-text converter.

striprtf reads \\ansicpg code pages and \\u escapes, drops font/colour/style tables and embedded pictures, and
writes a table cell boundary as "|" and a row end as a line break, which we turn into Markdown tables.
"""

from __future__ import annotations

import re

from .base import LoadedDocument, SectionBuilder, UnreadableFile, markdown_table

_CODEPAGE = re.compile(rb"\\ansicpg(\d+)")


def _blocks(text: str):
    """Paragraphs, with consecutive cell rows ("a|b|") gathered into one table."""
    table: list[list[str]] = []
    for line in text.split("\n"):
        if line.rstrip().endswith("|") and line.count("|") >= 2:
            table.append(line.rstrip().rstrip("|").split("|"))
            continue
        if table:
            yield markdown_table(table)
            table = []
        yield line
    if table:
        yield markdown_table(table)


def load(data: bytes, suffix: str = ".rtf") -> LoadedDocument:
    from striprtf.striprtf import rtf_to_text

    if not data.lstrip().startswith(b"{\\rtf"):
        raise UnreadableFile("corrupt rtf (no {\\rtf header)")
    m = _CODEPAGE.search(data[:4096])
    encoding = f"cp{m.group(1).decode()}" if m else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    # RTF is 7-bit: 8-bit text only appears as \\'xx escapes, which striprtf decodes with `encoding`
    text = rtf_to_text(data.decode("latin-1"), encoding=encoding, errors="replace")
    b = SectionBuilder()
    for block in _blocks(text):
        b.add(block)
    return LoadedDocument(b.done(), "rtf")
