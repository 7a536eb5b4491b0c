"""Choose and order the chunks that go into the prompt, within the generator's token budget.

- Near-duplicates (most content words shared) are dropped: they waste budget and split citations.
- Chunks are added best-first until the budget is spent; a chunk that does not fit is skipped, not cut.
- Order: small models use the start of the context best (and the end second best: "lost in the middle",
  Liu et al. 2023), so "edges" puts the strongest first, the runner-up last and the weakest in the middle;
  "best-first" keeps rank order.
"""

from __future__ import annotations

from collections.abc import Callable

from ..text import content_words

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
