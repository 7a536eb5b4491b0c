"""Markdown: render with markdown-it-py (CommonMark + tables), then reuse the HTML walker.

Rendering first means ATX and Setext headings, entities, inline HTML blocks and pipe tables all come out the
way a Markdown viewer shows them, with no second parser to maintain; bench/parsers.py measures the gain over
reading the raw file.
"""

from __future__ import annotations

import re

from .base import LoadedDocument, SectionBuilder
from .encoding import decode_text
from .html import walk_html

# YAML front matter is metadata, not prose; unstripped it renders as a rule plus a Setext heading
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def load(data: bytes, suffix: str = "") -> LoadedDocument:
    from markdown_it import MarkdownIt

    text = _FRONT_MATTER.sub("", decode_text(data).replace("\r\n", "\n"), count=1)
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)
    b = SectionBuilder()
    walk_html(html, b)
    return LoadedDocument(b.done(), "md", b.first_heading)
