"""Choose, cut and order the chunks that go into the prompt, within the generator's token budget.

- Each chunk is cut to the sentences around the one that best matches the question (`focus`).
- Near-duplicates (most content words shared) are dropped: they waste budget and split citations.
- Chunks are added best-first until the budget is spent; a chunk that does not fit is skipped, not cut.
- Order: small models use the start of the context best (and the end second best: "lost in the middle",
  Liu et al. 2023), so "edges" puts the strongest first, the runner-up last and the weakest in the middle;
  "best-first" keeps rank order.
"""

from __future__ import annotations

from collections.abc import Callable

from ..text import content_words, sentence_spans

DUPLICATE_OVERLAP = 0.8
ORDERS = ("best-first", "edges")


def _overlap(a: set, b: set) -> float:
    return len(a & b) / max(1, min(len(a), len(b)))


def assemble(hits: list, count_tokens: Callable[[str], int], budget_tokens: int, order: str = "best-first") -> list:
    chosen, words, used = [], [], 0
    for hit in hits:
        w = set(content_words(hit.text))
        if any(_overlap(w, other) >= DUPLICATE_OVERLAP for other in words):
            continue
        cost = count_tokens(hit.text) + 24  # numbering, file label and separators
        if used + cost > budget_tokens:
            continue
        chosen.append(hit)
        words.append(w)
        used += cost
    if order == "edges" and len(chosen) > 2:
        front, back = chosen[0::2], chosen[1::2]
        chosen = front + back[::-1]
    return chosen


def focus(text: str, score: Callable[[list[str]], list[float]], words: int) -> tuple[int, int]:
    """(start, end) of the part of `text` a small model should read: its best-scoring sentence, then its
    neighbours (the next one first, which usually continues it), whole sentences only, up to `words` words in all;
    the best sentence alone when it is longer. A slice of the text itself, so line breaks, lists and table rows
    keep their layout. `score` rates the sentences (the not-found gate's coverage of the question); the first of
    equal scores wins. words = 0, or a text that short already, leaves it whole.

    Why: the 135M generator picks the wrong sentence of a passage more often than the right one. With each source
    cut to 40 words around its best sentence, v16's F1 on XQuAD-en rose from 20.2 to 26.0 with the gold passage
    and from 17.8 to 23.0 in open retrieval, though the cut keeps the gold answer in 83.1% of gold passages
    against 98.5% whole (docs/results/focus)."""
    if words <= 0 or len(text.split()) <= words:
        return 0, len(text)
    spans = sentence_spans(text)
    if len(spans) < 2:
        return 0, len(text)
    sentences = [text[a:b] for a, b in spans]
    scores = score(sentences)
    best = max(range(len(spans)), key=scores.__getitem__)
    lo = hi = best
    used = len(sentences[best].split())
    grew = True
    while grew:
        grew = False
        for j in (hi + 1, lo - 1):
            if 0 <= j < len(spans) and used + len(sentences[j].split()) <= words:
                used += len(sentences[j].split())
                lo, hi, grew = min(lo, j), max(hi, j), True
    return spans[lo][0], spans[hi][1]
