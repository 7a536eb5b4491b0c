"""reStructuredText via docutils (the reference parser): rendered to HTML, then read by the HTML walker.

Read as plain text, an .rst file keeps its markup ("=====" underlines, ``..`` directives, :role:`x`) and loses its
headings; rendered, section titles become heading paths and grid/simple tables become Markdown tables. Includes,
raw blocks and every other file access are switched off, and docutils' own warnings are silenced: a file that
fails to render falls back to plain text.
"""

from __future__ import annotations

from .base import LoadedDocument, SectionBuilder
from .encoding import decode_text
from .html import walk_html
from .text import load as load_text

_SAFE = {
    "file_insertion_enabled": False,  # `.. include::` would read other files
    "raw_enabled": False,
    "report_level": 5,  # no warnings on stderr: the library never prints
    "halt_level": 5,
    "warning_stream": False,
    "input_encoding": "unicode",
    "output_encoding": "unicode",
    "syntax_highlight": "none",
    "math_output": "HTML",
}


def load(data: bytes, suffix: str = ".rst") -> LoadedDocument:
    from docutils.core import publish_parts
    from docutils.writers.html5_polyglot import Writer

    text = decode_text(data)
    try:
        parts = publish_parts(text, writer=Writer(), settings_overrides=_SAFE)
    except Exception:  # docutils raises its own SystemMessage/Exception types on broken markup
        doc = load_text(data, suffix)
        doc.format = "rst"
        return doc
    b = SectionBuilder()
    title = " ".join((parts.get("title") or "").split())
    walk_html(parts["html_body"], b)  # html_body keeps the document title as its <h1>
    return LoadedDocument(b.done(), "rst", title or b.first_heading)
