"""Split a loaded document into chunks sized in embedder tokens, at sentence and paragraph boundaries.

A chunk never crosses a section (page or heading) boundary, so each chunk has one page and one heading path to
cite. Sentences are packed greedily up to `max_tokens`; the next chunk starts with the previous chunk's last
sentences (up to `overlap` tokens) so a fact split across a boundary is still retrievable whole. A sentence
longer than a chunk is cut between words, never inside one.

Markdown tables (a paragraph of "| a | b |" lines under a "|---|" rule, as the loaders write them) are cut
only between rows, and a chunk that starts inside a table begins with the table's header row and rule, so a
question about a cell retrieves a chunk in which the model can see what the column means. Such a chunk's text
is header + rows: its start/end offsets cover the rows only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..store.collection import ChunkRecord
from ..text import sentence_spans

SECTION_SEPARATOR = "\n\n"
_WORD = re.compile(r"\S+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_TABLE_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")


def _spans(text: str, pattern: re.Pattern) -> list[tuple[int, int]]:
    """(start, end) of the pieces between separator matches, whitespace-trimmed, empties dropped."""
    spans, pos = [], 0
    for match in pattern.finditer(text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(text)))
    out = []
    for start, end in spans:
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if end - trail > start + lead:
            out.append((start + lead, end - trail))
    return out


def _split_long(text: str, start: int, end: int, n_tokens: int, max_tokens: int) -> list[tuple[int, int, int]]:
    """Cut an over-long sentence between words into pieces of about max_tokens (token counts estimated)."""
    words = [(start + m.start(), start + m.end()) for m in _WORD.finditer(text[start:end])]
    per_word = n_tokens / max(1, len(words))
    words_per_piece = max(1, int(max_tokens / max(per_word, 1e-6) * 0.9))
    pieces = []
    for i in range(0, len(words), words_per_piece):
        group = words[i:i + words_per_piece]
        pieces.append((group[0][0], group[-1][1], max(1, round(len(group) * per_word))))
    return pieces


def _table_rows(text: str, start: int, end: int) -> list[tuple[int, int]] | None:
    """Row spans of a Markdown table paragraph, the header row and rule merged into the first; else None."""
    lines, pos = [], start
    for line in text[start:end].split("\n"):
        lines.append((pos, pos + len(line)))
        pos += len(line) + 1
    if len(lines) < 2 or not _TABLE_RULE.match(text[lines[1][0]:lines[1][1]].strip()):
        return None
    if not all(text[s:e].lstrip().startswith("|") for s, e in lines):
        return None
    return [(lines[0][0], lines[1][1])] + lines[2:]


def _units(text: str, count_tokens, max_tokens: int) -> list[tuple[int, int, int, int | None]]:
    """(start, end, tokens, table header index or None): sentences of prose, rows of tables."""
    spans: list[tuple[int, int, int | None]] = []  # third: index of this table's header unit
    for ps, pe in _spans(text, _PARAGRAPH):
        rows = _table_rows(text, ps, pe)
        if rows:
            head = len(spans)
            spans.extend((s, e, head) for s, e in rows)
        else:
            spans.extend((ps + s, ps + e, None) for s, e in sentence_spans(text[ps:pe]))
    counts = count_tokens([text[s:e] for s, e, _ in spans]) if spans else []
    units: list[tuple[int, int, int, int | None]] = []
    unit_of: dict[int, int] = {}  # span index of a table header -> its unit index
    for k, ((s, e, head), n) in enumerate(zip(spans, counts)):
        if head == k:
            unit_of[k] = len(units)
        table = None if head is None else unit_of[head]
        if n > max_tokens and head != k:  # a header is never cut: every continuation repeats it whole
            units.extend((a, b, m, table) for a, b, m in _split_long(text, s, e, n, max_tokens))
        else:
            units.append((s, e, n, table))
    return units


def chunk_sections(sections: Sequence, count_tokens: Callable[[list[str]], list[int]],
                   max_tokens: int = 220, overlap: int = 32) -> list[ChunkRecord]:
    """sections: objects with .text/.page/.heading. count_tokens: batch token counter (the embedder's)."""
    chunks: list[ChunkRecord] = []
    offset = 0
    for section in sections:
        text = section.text
        units = _units(text, count_tokens, max_tokens)
        chunks.extend(_pack(units, text, offset, section, max_tokens, overlap))
        offset += len(text) + len(SECTION_SEPARATOR)
    return chunks


def _pack(units, text, offset, section, max_tokens, overlap) -> list[ChunkRecord]:
    out: list[ChunkRecord] = []
    i = 0
    while i < len(units):
        head = units[i][3]
        # starts inside a table: lead with its header (unless the header alone would eat half the chunk)
        repeat = head is not None and head != i and units[head][2] <= max_tokens // 2
        total = units[head][2] if repeat else 0
        j = i
        while j < len(units) and (total + units[j][2] <= max_tokens or j == i):
            total += units[j][2]
            j += 1
        if j - 1 > i and j < len(units) and units[j - 1][3] == j - 1:
            j -= 1  # never end a chunk on a table's header: it moves to the chunk with its rows
            total -= units[j][2]
        start, end = units[i][0], units[j - 1][1]
        body = text[start:end]
        if repeat:
            body = text[units[head][0]:units[head][1]] + "\n" + body
        out.append(ChunkRecord(text=body, page=section.page, heading=section.heading,
                               start=offset + start, end=offset + end, n_tokens=total))
        if j >= len(units):
            break
        # Step back over trailing sentences worth at most `overlap` tokens, but always advance.
        back, k = 0, j
        while k - 1 > i and back + units[k - 1][2] <= overlap:
            k -= 1
            back += units[k][2]
        i = k
    return out


def document_text(sections: Sequence) -> str:
    """The text chunk offsets refer to."""
    return SECTION_SEPARATOR.join(s.text for s in sections)
