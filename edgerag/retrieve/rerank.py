"""The reranking stage: an interface and one implementation.

No cross-encoder weights ship on PyPI, so the default is no reranking. `EmbeddingOverlapReranker` is a cheap,
model-free second stage (dense cosine blended with query-term coverage); plug in any object with `depth` and
`rerank(query, hits)` to use something stronger.
"""

from __future__ import annotations

from typing import Protocol

from ..text import words


class Reranker(Protocol):
    depth: int  # how many first-stage candidates to rescore

    def rerank(self, query: str, hits: list) -> list: ...


class EmbeddingOverlapReranker:
    def __init__(self, embedder, depth: int = 20, term_weight: float = 0.3):
        self.embedder, self.depth, self.term_weight = embedder, depth, term_weight

    def rerank(self, query: str, hits: list) -> list:
        q_vec = self.embedder.embed_one(query)
        q_terms = {t for t in words(query) if len(t) > 2}
        vectors = self.embedder.embed([h.text for h in hits])
        for hit, vec in zip(hits, vectors):
            coverage = len(q_terms & set(words(hit.text))) / max(1, len(q_terms))
            hit.score = float(vec @ q_vec) * (1 - self.term_weight) + coverage * self.term_weight
        return sorted(hits, key=lambda h: h.score, reverse=True)
