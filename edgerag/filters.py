"""Metadata filters: the one parser of `--where` expressions (CLI, TUI filter box, server) and the `Where` they make.

A filter restricts *which documents retrieval may search*; the store turns a `Where` into the set of allowed text
ids (Collection.allowed_texts) and both retrieval legs search only those (retrieve/search.py), so a restrictive
filter still returns k results instead of whatever survives a cut of the unfiltered top k.

    path:GLOB            the document's path (see glob_regex: `*`, `?`, `[abc]` within one folder, `**` across)
    ext:pdf | ext:pdf,docx   the file extension, case-insensitive (an e-mail attachment has its own)
    modified>DATE        the file's modification time; also >=, <, <=, `modified:DATE` (that day) and
                         `modified:A..B` (inclusive). DATE is 2026-01-31 or a date-time 2026-01-31T14:30[:00][Z|+02:00];
                         without an offset it is local time. A date alone is a whole day, as in GitHub's search:
                         >D is after that day, >=D from its start, <D before it, <=D until its end.
    page:3 | page:2-5    the page a chunk starts on (PDF, PPTX: documents with pages)

Several expressions AND together; repeated `path`, `ext` and `page` values are alternatives (OR), e.g.
`--where ext:pdf --where ext:docx`; `modified` conditions all apply (AND), so two bounds make a range.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .errors import BadInputError

FORMS = ("path:GLOB", "ext:pdf or ext:pdf,docx", "modified>DATE (also >=, <, <=, :DATE, :DATE..DATE)", "page:N or page:N-M")
_EXPR = re.compile(r"^\s*(?P<key>[A-Za-z_]+)\s*(?P<op>>=|<=|>|<|:|=)\s*(?P<value>.*?)\s*$", re.S)
_OPS = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}


@dataclass(frozen=True)
class Where:
    paths: tuple[str, ...] = ()  # globs as given (their regexes: path_regexes)
    exts: tuple[str, ...] = ()  # lower case, no dot
    modified: tuple[tuple[str, float], ...] = ()  # (">=" or "<" or ">" or "<=", unix time), all must hold
    pages: tuple[tuple[int, int], ...] = ()  # inclusive page ranges, any may hold
    text: str = ""  # the expressions as the user wrote them, for messages

    @property
    def path_regexes(self) -> tuple[str, ...]:
        return tuple(glob_regex(p) for p in self.paths)

    def __bool__(self) -> bool:
        return bool(self.paths or self.exts or self.modified or self.pages)

    def __str__(self) -> str:
        return self.text


def bad(expr: str, why: str) -> BadInputError:
    return BadInputError(f"bad filter {expr!r}: {why} (accepted: {'; '.join(FORMS)})")


def parse_where(expressions) -> Where | None:
    """`--where` values (a string, or a list of them; empty ones ignored) → a Where, or None when there is none.
    Raises BadInputError naming the accepted forms."""
    if isinstance(expressions, str):
        expressions = [expressions]
    paths: list[str] = []
    exts: list[str] = []
    modified: list[tuple[str, float]] = []
    pages: list[tuple[int, int]] = []
    written: list[str] = []
    for expr in expressions or []:
        if not isinstance(expr, str):
            raise bad(str(expr), "not text")
        if not expr.strip():
            continue
        m = _EXPR.match(expr)
        if not m:
            raise bad(expr, "expected KEY:VALUE or modified>DATE")
        key, op, value = m["key"].lower(), m["op"], m["value"]
        op = ":" if op == "=" else op
        if not value:
            raise bad(expr, "no value after the key")
        if key in ("path", "ext", "page") and op != ":":
            raise bad(expr, f"{key} takes ':' ({key}:VALUE)")
        if key == "path":
            paths.append(_absolute(value))
        elif key == "ext":
            for part in value.split(","):
                part = part.strip().lstrip(".").lower()
                if not part or not re.fullmatch(r"[\w.+-]+", part):
                    raise bad(expr, f"{part!r} is not an extension")
                exts.append(part)
        elif key in ("modified", "mtime"):
            modified += _time_bounds(expr, op, value)
        elif key == "page":
            pm = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", value)
            if not pm or int(pm[1]) < 1 or (pm[2] and int(pm[2]) < int(pm[1])):
                raise bad(expr, "pages are N or N-M, counted from 1")
            pages.append((int(pm[1]), int(pm[2] or pm[1])))
        else:
            raise bad(expr, f"unknown key {key!r}")
        written.append(expr.strip())
    if not written:
        return None
    return Where(tuple(dict.fromkeys(paths)), tuple(dict.fromkeys(exts)), tuple(modified),
                 tuple(dict.fromkeys(pages)), " AND ".join(written))


# -- paths -------------------------------------------------------------------------------------------------------
def _absolute(pattern: str) -> str:
    """`~` and a leading ./ or ../ (the shell's folder) make an absolute pattern; other relative ones stay relative."""
    pattern = pattern.strip()
    if pattern.startswith("~"):
        pattern = os.path.expanduser(pattern)
    elif pattern in (".", "..") or pattern.startswith(("./", "../")):
        pattern = os.path.abspath(pattern)
    return pattern.rstrip("/") or "/"


def glob_regex(pattern: str) -> str:
    """A path glob as a regular expression over a stored document path (absolute when ingested from files,
    `record://KEY` for records, `mail.eml::file.pdf` for an attachment).

    `*` and `?` match within one folder name, `[abc]`/`[!abc]` one character, `**` any number of folders. An
    absolute pattern is matched from the root; a relative one may start at any folder boundary, as in
    .gitignore (`reports/*.pdf` matches /home/me/work/reports/a.pdf; `*.md` matches a Markdown file anywhere).
    A pattern that matches a folder matches everything inside it, and one that matches an e-mail its attachments.
    """
    out = ["^" if pattern.startswith("/") else "(?:^|/)"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if i < n and pattern[i] == "/":
                out.append("(?:.*/)?")  # zero or more whole folders
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                out.append(("[^/" if negate else "[") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    out.append("(?:$|/|::)")
    return "".join(out)


# -- times -------------------------------------------------------------------------------------------------------
def _time_bounds(expr: str, op: str, value: str) -> list[tuple[str, float]]:
    if op == ":":
        lo, sep, hi = value.partition("..")
        if not sep:
            when = _parse_time(expr, value)
            if not isinstance(when, date) or isinstance(when, datetime):
                raise bad(expr, "modified:VALUE takes a date (that day) or a range A..B; use > or < with a time")
            return [(">=", _day_start(when)), ("<", _day_start(when + timedelta(days=1)))]
        a, b = _parse_time(expr, lo), _parse_time(expr, hi)
        start = a.timestamp() if isinstance(a, datetime) else _day_start(a)
        end = ("<=", b.timestamp()) if isinstance(b, datetime) else ("<", _day_start(b + timedelta(days=1)))
        if end[1] < start:
            raise bad(expr, "the range ends before it starts")
        return [(">=", start), end]
    when = _parse_time(expr, value)
    if isinstance(when, datetime):
        return [(op, when.timestamp())]
    # A date is a whole day: > after it, >= from its start, < before it, <= until its end.
    return [{">": (">=", _day_start(when + timedelta(days=1))), ">=": (">=", _day_start(when)),
             "<": ("<", _day_start(when)), "<=": ("<", _day_start(when + timedelta(days=1)))}[op]]


def _parse_time(expr: str, value: str) -> date | datetime:
    value = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad(expr, f"{value!r} is not a date (2026-01-31) or date-time (2026-01-31T14:30)") from None
    return when if when.tzinfo else when.astimezone()  # naive: local time


def _day_start(day: date) -> float:
    return datetime.combine(day, time()).astimezone().timestamp()  # local midnight (DST-aware)
