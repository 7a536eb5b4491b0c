"""The loader data types, shared by every format module (kept apart from __init__ to avoid import cycles)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...errors import BadInputError


@dataclass
class Section:
    text: str  # plain text of one block with the same page and heading; paragraphs separated by "\n\n"
    page: int | None = None  # 1-based page (PDF) or slide (PPTX) number; None where a format has no pages
    heading: str | None = None  # heading path, e.g. "Installation > Linux"


@dataclass
class Attachment:
    """A file inside a file (an e-mail's attachments): ingested as a document of its own."""
    name: str
    data: bytes


@dataclass
class LoadedDocument:
    sections: list[Section]
    format: str  # the loader's format name: "txt", "md", "pdf", "eml", "xlsx", "code", ...
    title: str | None = None
    warnings: list[str] = field(default_factory=list)  # shown to the user next to the file (e.g. scanned pages)
    attachments: list[Attachment] = field(default_factory=list)


class UnreadableFile(BadInputError):
    """The file gives no text; str(exc) is a short reason such as 'encrypted PDF' or 'empty file'."""


_SPACES = re.compile(r"[^\S\n]+")  # runs of whitespace other than newlines
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # never useful in indexed text


def clean(text: str) -> str:
    """Tidy extracted text: no control characters, single spaces, no blank-line runs, paragraphs split by one
    blank line. Line breaks inside a paragraph stay (addresses, verse, table rows)."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " "))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class SectionBuilder:
    """Collects paragraphs under the current heading path, closing a Section whenever the path changes.
    Headings live in Section.heading (the path), not in the text, so chunkers can prefix them once. A heading
    with nothing under it (no text, no subheading) becomes a section of its own text, or its words would be lost."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._paras: list[str] = []
        self._stack: list[tuple[int, str]] = []  # (level, heading text), outermost first
        self.first_heading: str | None = None
        self._bare = False  # the innermost heading has neither text nor a subheading yet

    @property
    def heading(self) -> str | None:
        return " > ".join(t for _, t in self._stack) or None

    def add(self, text: str) -> None:
        text = clean(text)
        if not text:
            return
        if text.startswith("- ") and self._paras and self._paras[-1].rpartition("\n")[2].startswith("- "):
            self._paras[-1] += "\n" + text  # keep a list in one paragraph, so a chunker keeps it together
        else:
            self._paras.append(text)

    def flush(self) -> None:
        if self._paras:
            self.sections.append(Section("\n\n".join(self._paras), heading=self.heading))
            self._paras = []
            self._bare = False

    def set_heading(self, level: int, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self.flush()
        self.first_heading = self.first_heading or text
        if self._stack and self._stack[-1][0] >= level:
            self._emit_bare()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self._bare = True

    def _emit_bare(self) -> None:
        if self._bare and self._stack:
            self.sections.append(Section(self._stack[-1][1], heading=self.heading))
        self._bare = False

    def done(self) -> list[Section]:
        self.flush()
        self._emit_bare()
        return self.sections


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown table, the first row as header. Every format's tables come out this way,
    so the chunker can keep rows whole and repeat the header (see chunker.py). Empty rows and columns go."""
    rows = [[" ".join(str(c).split()).replace("|", "\\|") for c in row] for row in rows]
    rows = [r for r in rows if any(r)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    keep = [j for j in range(width) if any(r[j] for r in rows)]
    rows = [[r[j] for j in keep] for r in rows]
    if len(keep) == 1 and len(rows) == 1:
        return rows[0][0]  # a single cell is prose
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|" + "---|" * len(keep))
    return "\n".join(lines)
