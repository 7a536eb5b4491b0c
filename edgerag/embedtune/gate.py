"""The embedder gate: candidate vs the collection's current embedder, promote only if not worse.

On the collection itself: the held-out pseudo-queries (documents training never saw) are searched over all of
the collection's texts, dense (cosine over every vector, exact) and hybrid (the runtime's RRF of dense and BM25
with the settings' weights); a query's relevant texts are its source chunk and that chunk's near-duplicates.
The current embedder's vectors are the collection's stored ones; the candidate's are computed here and handed
back, so promotion reuses them instead of embedding the collection twice.

With a labelled BEIR set (`--beir`), the evaluation harness' own gate (evaluate.gate.gate_embedder) runs too.
Verdicts are paired bootstraps of the per-query difference on nDCG@10 (evaluate.metrics): promotion needs no
"worse" anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..evaluate import metrics as M

GATE_METRIC = "ndcg@10"


@dataclass
class GateReport:
    checks: dict = field(default_factory=dict)  # "heldout:dense" → {base, candidate, diff, verdict, n}
    vectors: dict | None = None  # text hash → candidate vector (for promotion), not serialised

    @property
    def promotable(self) -> bool:
        return bool(self.checks) and all(c["verdict"] != "worse" for c in self.checks.values())

    @property
    def failures(self) -> list[str]:
        return [f"{k}: {c['verdict']} ({c['diff']['mean'] * 100:+.2f} nDCG@10)" for k, c in self.checks.items()
                if c["verdict"] == "worse"]

    def as_dict(self) -> dict:
        return {"checks": self.checks, "promotable": self.promotable, "failures": self.failures}


def _rank_dense(matrix: np.ndarray, ids: np.ndarray, query: np.ndarray, n: int) -> dict[int, float]:
    scores = matrix @ query
    top = np.argpartition(-scores, min(n, len(scores) - 1))[:n]
    top = top[np.argsort(-scores[top])]
    return {int(ids[i]): float(scores[i]) for i in top}


def _fuse(lists: dict[str, dict[int, float]], weights: dict[str, float], rrf_k: int) -> dict[int, float]:
    fused: dict[int, float] = {}
    for name, scores in lists.items():
        for rank, tid in enumerate(sorted(scores, key=scores.get, reverse=True), start=1):
            fused[tid] = fused.get(tid, 0.0) + weights[name] / (rrf_k + rank)
    return fused


def score_queries(collection, embedder, matrix: np.ndarray, ids: np.ndarray, examples: list[dict], settings,
                  modes=("dense", "hybrid")) -> dict[str, list[dict]]:
    """Per mode, one record per query: nDCG@10 and Recall@10 of its relevant texts."""
    n = max(10, settings.candidates)
    queries = embedder.embed([e["query"] for e in examples])
    weights = {"dense": settings.dense_weight, "bm25": settings.bm25_weight}
    out: dict[str, list[dict]] = {m: [] for m in modes}
    for example, q in zip(examples, queries):
        qrels = {str(t): 1 for t in example["relevant"]}
        dense = _rank_dense(matrix, ids, q, n)
        for mode in modes:
            if mode == "dense":
                scores = dense
            else:
                scores = _fuse({"dense": dense, "bm25": dict(collection.bm25(example["query"], n))}, weights,
                               settings.rrf_k)
            ranked = [str(t) for t in sorted(scores, key=scores.get, reverse=True)]
            out[mode].append({"ndcg@10": M.ndcg_at_k(ranked, qrels, 10), "recall@10": M.recall_at_k(ranked, qrels, 10),
                              "type": example.get("type", "")})
    return out


def compare(base: list[dict], cand: list[dict], resamples: int, seed: int) -> dict:
    diff, verdict = M.paired_bootstrap([r[GATE_METRIC] for r in base], [r[GATE_METRIC] for r in cand],
                                       resamples, seed)
    return {"metric": GATE_METRIC, "n": len(base),
            "base": M.bootstrap_ci([r[GATE_METRIC] for r in base], resamples, seed).as_dict(),
            "candidate": M.bootstrap_ci([r[GATE_METRIC] for r in cand], resamples, seed).as_dict(),
            "recall@10": {"base": float(np.mean([r["recall@10"] for r in base])),
                          "candidate": float(np.mean([r["recall@10"] for r in cand]))},
            "diff": diff.as_dict(), "verdict": verdict}


def gate_on_collection(settings, collection_name: str, candidate: str, examples: list[dict], *,
                       resamples: int = 1000, seed: int = 0,
                       on_event: Callable[[dict], None] = lambda e: None) -> GateReport:
    """Held-out pseudo-queries: the collection's current embedder (its stored vectors) vs `candidate`."""
    from ..embed import load_active_embedder
    from ..runtime import open_collection
    from ..store.collection import indexed_text
    from .swap import text_key

    if not examples:
        return GateReport()
    collection, base = open_collection(settings, collection_name)
    cand = load_active_embedder(settings, candidate)
    with collection:
        rows = collection.indexed_texts()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        base_matrix = collection.embeddings(ids.tolist())
        texts = [indexed_text(r[1], r[2]) for r in rows]
        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            on_event({"event": "embed_progress", "done": done[0], "total": len(texts)})

        on_event({"event": "embed", "total": len(texts), "embedder": cand.name})
        cand_matrix = cand.embed(texts, progress)
        on_event({"event": "score", "queries": len(examples)})
        base_records = score_queries(collection, base, base_matrix, ids, examples, settings)
        cand_records = score_queries(collection, cand, cand_matrix, ids, examples, settings)
    report = GateReport(vectors={text_key(t): v for t, v in zip(texts, cand_matrix)})
    for mode in base_records:
        report.checks[f"heldout:{mode}"] = compare(base_records[mode], cand_records[mode], resamples, seed)
        report.checks[f"heldout:{mode}"]["base_embedder"] = base.name
        report.checks[f"heldout:{mode}"]["candidate_embedder"] = cand.name
    return report


def gate_on_beir(settings, report: GateReport, beir, base: str, candidate: str, *, split: str = "test",
                 limit: int | None = None, seed: int = 0, resamples: int = 1000,
                 on_event=None) -> GateReport:
    """Add the harness' BEIR gate (dense and hybrid) to `report`."""
    from ..evaluate.datasets import BeirDataset, load_beir
    from ..evaluate.events import ignore
    from ..evaluate.gate import gate_embedder

    dataset = beir if isinstance(beir, BeirDataset) else load_beir(beir, split)
    for mode in ("dense", "hybrid"):
        result = gate_embedder(settings, dataset, candidate, base, mode=mode, limit=limit, seed=seed,
                               resamples=resamples, on_event=on_event or ignore)
        report.checks[f"{dataset.name}:{mode}"] = {
            "metric": GATE_METRIC, "n": result.n, "base": result.base.as_dict(),
            "candidate": result.candidate.as_dict(), "diff": result.difference.as_dict(), "verdict": result.verdict,
            "run_dir": str(result.run_dir), "base_embedder": base, "candidate_embedder": candidate}
    return report
