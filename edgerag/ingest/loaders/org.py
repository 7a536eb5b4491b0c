"""Org mode (.org): rewritten line by line into Markdown, then read by the Markdown loader.

No maintained Python library renders Org to HTML without pandoc (orgparse parses the outline only), and the
parts that matter for retrieval are few: "*" headings, #+TITLE, #+BEGIN_SRC/EXAMPLE/QUOTE blocks, [[link][text]],
~code~/=verbatim= and "|-+-|" table rules. Everything else is left as text.
"""

from __future__ import annotations

import re

from .base import LoadedDocument
from .encoding import decode_text
from .markdown import load as load_markdown

_HEADING = re.compile(r"^(\*+)\s+(?:(?:TODO|DONE|NEXT|WAITING)\s+)?(?:\[#[A-Z]\]\s+)?(.*?)(?:\s+:[\w@:]+:)?\s*$")
_BEGIN = re.compile(r"^\s*#\+begin_(\w+)\s*(\S*)", re.IGNORECASE)
_END = re.compile(r"^\s*#\+end_\w+", re.IGNORECASE)
_KEYWORD = re.compile(r"^\s*#\+(\w+):\s*(.*)$")
_LINK = re.compile(r"\[\[([^\]]+)\](?:\[([^\]]+)\])?\]")
_INLINE_CODE = re.compile(r"(?<![\w~=])[~=]([^\s~=](?:[^~=\n]*?[^\s~=])?)[~=](?![\w~=])")
_RULE = re.compile(r"^\s*\|[-+]+\|?\s*$")
_DRAWER = re.compile(r"^\s*:(PROPERTIES|LOGBOOK|END):\s*$", re.IGNORECASE)


def to_markdown(text: str) -> tuple[str, str | None]:
    out, title, block, drawer = [], None, None, False
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if block:
            if _END.match(line):
                out.append("```" if block in ("src", "example") else "")
                block = None
            else:
                out.append(line if block in ("src", "example") else "> " + line)
            continue
        if _DRAWER.match(line):
            drawer = line.strip().upper() != ":END:"
            continue
        if drawer:
            continue
        m = _BEGIN.match(line)
        if m:
            block = m.group(1).lower()
            out.append(f"```{m.group(2)}" if block in ("src", "example") else "")
            continue
        m = _KEYWORD.match(line)
        if m:
            if m.group(1).lower() == "title":
                title = m.group(2).strip() or title
            continue  # #+OPTIONS, #+AUTHOR, #+INCLUDE...: settings, not text
        if line.lstrip().startswith("# "):
            continue  # a comment line
        m = _HEADING.match(line)
        if m:
            out.append("#" * min(len(m.group(1)), 6) + " " + m.group(2))
            continue
        if _RULE.match(line):
            # only the rule under a table's first row is a Markdown header rule; other rules just go
            prev, before = (lines[i - 1] if i else ""), (lines[i - 2] if i > 1 else "")
            header = prev.lstrip().startswith("|") and not before.lstrip().startswith("|")
            if header:
                out.append("|" + "---|" * max(1, prev.count("|") - 1))
            continue
        line = _LINK.sub(lambda m: m.group(2) or m.group(1), line)
        out.append(_INLINE_CODE.sub(r"`\1`", line))
    if block in ("src", "example"):
        out.append("```")
    return "\n".join(out), title


def load(data: bytes, suffix: str = ".org") -> LoadedDocument:
    markdown, title = to_markdown(decode_text(data))
    if title:
        markdown = f"# {title}\n\n{markdown}"
    doc = load_markdown(markdown.encode("utf-8"))
    doc.format = "org"
    return doc
