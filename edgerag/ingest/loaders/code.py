"""Source code, by extension: one section per top-level definition (heading "def name", "class Name", or the
signature line).

Python is split with its own `ast` (exact definition spans, decorators and leading comments included). Other
languages are split at lines that start a top-level definition at column 0 in the usual brace/keyword
languages (a keyword such as func/fn/class/interface, or a C-style signature without ';'), together with the
comments just above. Statements between definitions (imports, constants) are gathered into one section. A chunk
therefore never mixes two functions, and each cites the definition it comes from. Indentation is kept.
"""

from __future__ import annotations

import ast
import re

from .base import LoadedDocument, Section
from .encoding import decode_text

CODE_SUFFIXES = frozenset(
    ".py .pyi .js .jsx .mjs .cjs .ts .tsx .java .kt .kts .scala .go .rs .c .h .cc .cpp .cxx .hpp .hh .cs .swift "
    ".rb .php .lua .pl .pm .r .jl .sh .bash .zsh .sql".split()
)
_DEF = re.compile(
    r"^(?:export\s+(?:default\s+)?)?(?:pub(?:\([\w:]+\))?\s+)?(?:(?:public|private|protected|internal|static|final|"
    r"abstract|async|unsafe|extern|inline|virtual|override|open|data|sealed)\s+)*"
    r"(?:def|class|function|func|fn|interface|trait|impl|struct|enum|type|module|mod|object|sub|macro_rules!|"
    r"CREATE|create)\b"
)
_C_SIGNATURE = re.compile(r"^[A-Za-z_][\w\s\*&:<>,\[\]]*\b([A-Za-z_]\w*)\s*\([^;]*$")  # int main(void) {
_COMMENT = re.compile(r"^\s*(?://|#|/\*|\*|--|;|@)")


def _python(text: str, lines: list[str]) -> list[tuple[int, str | None]]:
    """(0-based first line, heading) of each top-level definition, with its decorators and comments above it."""
    starts = []
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            starts.append((first, f"{kind} {node.name}"))
    return starts


def _generic(lines: list[str]) -> list[tuple[int, str | None]]:
    starts = []
    for i, line in enumerate(lines):
        if not line or line[0].isspace() or _COMMENT.match(line) or line.startswith(("}", ")", "]")):
            continue
        if _DEF.match(line) or _C_SIGNATURE.match(line):
            heading = " ".join(line.split()).rstrip("{ ").rstrip()  # the signature names the definition
            starts.append((i, heading if len(heading) <= 80 else heading[:77] + "..."))
    return starts


def _with_comments(lines: list[str], start: int, floor: int) -> int:
    """Move a definition's start up over the comment/decorator lines directly above it."""
    while start - 1 > floor and lines[start - 1].strip() and _COMMENT.match(lines[start - 1]):
        start -= 1
    return start


def load(data: bytes, suffix: str = ".py") -> LoadedDocument:
    text = decode_text(data).replace("\r\n", "\n").expandtabs(4)
    lines = text.split("\n")
    starts: list[tuple[int, str | None]] = []
    if suffix in (".py", ".pyi"):
        try:
            starts = _python(text, lines)
        except (SyntaxError, ValueError):
            starts = []  # not valid Python (a Python 2 file, a template): fall back to the generic splitter
    if not starts:
        starts = _generic(lines)
    bounds: list[tuple[int, str | None]] = []
    floor = -1
    for first, heading in starts:
        first = _with_comments(lines, first, floor)
        if first > floor:
            bounds.append((first, heading))
            floor = first
    sections, pos = [], 0
    for k, (first, heading) in enumerate(bounds):
        if first > pos:
            sections.append(Section("\n".join(lines[pos:first]).strip("\n")))  # code between definitions
        end = bounds[k + 1][0] if k + 1 < len(bounds) else len(lines)
        sections.append(Section("\n".join(lines[first:end]).rstrip(), heading=heading))
        pos = end
    if pos < len(lines):
        sections.append(Section("\n".join(lines[pos:]).strip("\n")))
    return LoadedDocument([s for s in sections if s.text.strip()], "code")
