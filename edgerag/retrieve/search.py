"""Dense, BM25 and hybrid retrieval over one collection (BM25 from the derived keyword index, store/keyword.py).

Hybrid is weighted reciprocal-rank fusion (Cormack et al. 2009): score = Σ w_r / (rrf_k + rank_r). It needs no
score calibration between cosine and bm25, which is why it is the default.

A metadata filter (filters.py: `--where ext:pdf`) is applied inside retrieval, not after it: the store resolves it
to the allowed text ids, the dense leg searches only those (hnswlib's filter callback, or an exact scan when they
are few) and so does the keyword leg, so fusion sees only allowed candidates and k results come back whenever k
allowed texts exist. Each hit cites an occurrence the filter allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BadInputError, CollectionError
from ..filters import Where
from ..store.collection import Collection, TextHit
from .rerank import Reranker

MODES = ("dense", "bm25", "hybrid")


@dataclass
class Hit:
    text_id: int
    score: float  # the ranking score of the mode used (cosine, -bm25 or fused)
    dense: float | None  # cosine similarity, when the dense retriever saw it
    bm25: float | None  # -bm25, when the sparse retriever saw it
    source: TextHit  # text and where it first occurs (path, page, heading, offsets)

    @property
    def text(self) -> str:
        return self.source.text


class Retriever:
    def __init__(self, collection: Collection, embedder, candidates: int = 30, rrf_k: int = 60,
                 dense_weight: float = 1.0, bm25_weight: float = 1.0, reranker: Reranker | None = None):
        self.collection, self.embedder = collection, embedder
        self.candidates, self.rrf_k = candidates, rrf_k
        self.weights = {"dense": dense_weight, "bm25": bm25_weight}
        self.reranker = reranker
        self.where: Where | None = None  # the filter search() applies when given none (a chat's filter box)

    @classmethod
    def from_settings(cls, collection: Collection, embedder, settings, reranker: Reranker | None = None):
        return cls(collection, embedder, settings.candidates, settings.rrf_k, settings.dense_weight,
                   settings.bm25_weight, reranker)

    def search(self, query: str, k: int = 5, mode: str = "hybrid", where: Where | None = None) -> list[Hit]:
        """The k best texts for `query`; `where` (default: self.where) limits them to the documents it allows."""
        query = (query or "").strip()
        if not query:
            raise BadInputError("empty question")
        if mode not in MODES:
            raise BadInputError(f"unknown mode {mode!r} (choose {', '.join(MODES)})")
        where = where if where is not None else self.where
        allowed = self.allowed(where) if where else None
        n = max(k, self.candidates)
        dense = dict(self.collection.dense(self.embedder.embed_one(query), n, allowed)) if mode != "bm25" else {}
        sparse = dict(self.collection.bm25(query, n, allowed)) if mode != "dense" else {}
        # Counting rows costs three table scans (~1 ms at 8k chunks): only when nothing came back is it worth it.
        if not dense and not sparse and self.collection.counts()["texts"] == 0:
            raise CollectionError(f"collection {self.collection.name!r} is empty: run `edgerag ingest PATH`")
        if mode == "dense":
            ranked = sorted(dense, key=dense.get, reverse=True)
            scores = dense
        elif mode == "bm25":
            ranked = sorted(sparse, key=sparse.get, reverse=True)
            scores = sparse
        else:
            scores = self._fuse({"dense": dense, "bm25": sparse})
            ranked = sorted(scores, key=scores.get, reverse=True)
        if self.reranker is not None:
            ranked = ranked[: self.reranker.depth]
        else:
            ranked = ranked[:k]
        sources = self.collection.hits(ranked, where if allowed is not None else None)
        hits = [Hit(t, scores[t], dense.get(t), sparse.get(t), sources[t]) for t in ranked if t in sources]
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits)
        return hits[:k]

    def allowed(self, where: Where) -> np.ndarray:
        """The text ids `where` allows, or BadInputError saying what the collection holds when it allows none
        (an empty filter result must not look like "nothing relevant")."""
        allowed = self.collection.allowed_texts(where)
        if len(allowed):
            return allowed
        facts = self.collection.filter_facts()
        if not facts["documents"]:
            raise CollectionError(f"collection {self.collection.name!r} is empty: run `edgerag ingest PATH`")
        exts = ", ".join(f"{e} {n}" for e, n in list(facts["exts"].items())[:8])
        lo, hi = facts["modified"]
        when = f"; modified {_day(lo)} to {_day(hi)}" if lo is not None else "; no modification times recorded"
        pages = "" if facts["paged"] else "; no document has pages"
        raise BadInputError(f"no document in collection {self.collection.name!r} matches the filter {where} "
                            f"({facts['documents']} documents: {exts}{when}{pages})")

    def _fuse(self, ranked_lists: dict[str, dict[int, float]]) -> dict[int, float]:
        fused: dict[int, float] = {}
        for name, scores in ranked_lists.items():
            for rank, tid in enumerate(sorted(scores, key=scores.get, reverse=True), start=1):
                fused[tid] = fused.get(tid, 0.0) + self.weights[name] / (self.rrf_k + rank)
        return fused


def _day(timestamp: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
