"""Split a loaded document into chunks sized in embedder tokens, at sentence and paragraph boundaries.

A chunk never crosses a section (page or heading) boundary, so each chunk has one page and one heading path to
cite. Sentences are packed greedily up to `max_tokens`; the next chunk starts with the previous chunk's last
sentences (up to `overlap` tokens) so a fact split across a boundary is still retrievable whole. A sentence
longer than a chunk is cut between words, never inside one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..store.collection import ChunkRecord

SECTION_SEPARATOR = "\n\n"
# A sentence ends at . ! ? (a closing quote/bracket stays with it) before whitespace, or at a blank line.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+|\n\s*\n")
_WORD = re.compile(r"\S+")


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


def chunk_sections(sections: Sequence, count_tokens: Callable[[list[str]], list[int]],
                   max_tokens: int = 220, overlap: int = 32) -> list[ChunkRecord]:
    """sections: objects with .text/.page/.heading. count_tokens: batch token counter (the embedder's)."""
    chunks: list[ChunkRecord] = []
    offset = 0
    for section in sections:
        text = section.text
        sentence_spans = _spans(text, _SENTENCE_END)
        counts = count_tokens([text[s:e] for s, e in sentence_spans]) if sentence_spans else []
        units: list[tuple[int, int, int]] = []
        for (s, e), n in zip(sentence_spans, counts):
            units.extend(_split_long(text, s, e, n, max_tokens) if n > max_tokens else [(s, e, n)])
        chunks.extend(_pack(units, text, offset, section, max_tokens, overlap))
        offset += len(text) + len(SECTION_SEPARATOR)
    return chunks


def _pack(units, text, offset, section, max_tokens, overlap) -> list[ChunkRecord]:
    out: list[ChunkRecord] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (total + units[j][2] <= max_tokens or j == i):
            total += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        out.append(ChunkRecord(text=text[start:end], page=section.page, heading=section.heading,
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
