"""Retrieval evaluation on a BEIR-format corpus: the library call behind `edgerag eval retrieval`.

The corpus goes into a scratch collection through the normal ingest path (chunking included), queries go through
the normal `Retriever.search`, so the numbers describe what `edgerag search` does. Chunks are mapped back to
documents for scoring: a document ranks where its best chunk ranks (max-score aggregation, the usual "MaxP"
passage-to-document rule), and a chunk shared by several documents (deduplicated at ingest) credits all of them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import BadInputError, ModelError
from ..retrieve import Retriever
from ..retrieve.search import MODES
from . import metrics as M
from .corpus import key_of, paths_of, scratch_collection
from .datasets import BeirDataset, load_beir, subset
from .events import EvalEvent, ignore
from .report import RunDir, comparison_rows, config_block, md_table, metric_rows, summarise

METRICS = {"ndcg@10": True, "recall@10": True, "recall@100": True, "mrr@10": True}
DEPTH = 100  # documents ranked per query (Recall@100)
CHUNKS_PER_DOC = 3  # chunks asked for per wanted document; doubled while too few distinct documents come back
CURVE_KS = [1, 2, 3, 5, 10, 20, 30, 50, 100]
# Published nDCG@10 on BEIR test splits, to print next to ours: BM25 = Anserini multifield (Thakur et al. 2021,
# BEIR table 2); dense = sentence-transformers/all-MiniLM-L6-v2 as reported on its model card / MTEB.
PUBLISHED = {
    "nfcorpus": {"bm25": {"ndcg@10": 0.325}, "dense": {"ndcg@10": 0.3159}},
}
IDENTITY = ("kind", "source", "dataset_sha", "split", "systems", "limit", "seed", "chunking")


@dataclass
class RetrievalConfig:
    beir: str | None = None  # a BEIR folder or zip (or pass a BeirDataset to run_retrieval_eval)
    split: str = "test"
    modes: list[str] = field(default_factory=lambda: list(MODES))
    embedders: list[str | None] = field(default_factory=lambda: [None])  # None: the active embedder
    limit: int | None = None
    seed: int = 0
    resamples: int = 1000
    name: str | None = None


@dataclass
class RetrievalResult:
    run_dir: Path
    summary: dict


def dataset_sha(dataset: BeirDataset) -> str:
    """Identity of the evaluated data (a resumed run must score the same corpus, queries and judgements)."""
    h = hashlib.sha256()
    for key in sorted(dataset.corpus):
        h.update(f"{key}\0{dataset.corpus[key].full_text}\0".encode())
    for qid in sorted(dataset.queries):
        h.update(f"{qid}\0{dataset.queries[qid]}\0{sorted(dataset.qrels[qid].items())}\0".encode())
    return h.hexdigest()[:16]


def rank_documents(retriever: Retriever, query: str, mode: str, depth: int = DEPTH,
                   exclude: str | None = None) -> list[str]:
    """Document keys best first, at most `depth`: chunk hits deduplicated to their documents."""
    k = depth * CHUNKS_PER_DOC
    for _ in range(4):
        hits = retriever.search(query, k=k, mode=mode)
        owners = paths_of(retriever.collection, [h.text_id for h in hits])
        ranked: list[str] = []
        for hit in hits:
            for path in owners.get(hit.text_id) or [hit.source.path]:
                key = key_of(path)
                if key != exclude and key not in ranked:  # BEIR ignores a document that is the query itself
                    ranked.append(key)
        if len(ranked) >= depth or len(hits) < k:
            break
        k *= 2
    return ranked[:depth]


def query_record(system: str, qid: str, ranked: list[str], qrels: dict[str, int]) -> dict:
    return {"system": system, "query_id": qid,
            "ndcg@10": M.ndcg_at_k(ranked, qrels, 10), "recall@10": M.recall_at_k(ranked, qrels, 10),
            "recall@100": M.recall_at_k(ranked, qrels, 100), "mrr@10": M.mrr_at_k(ranked, qrels, 10),
            "n_relevant": sum(g > 0 for g in qrels.values()), "relevant_ranks": M.relevant_ranks(ranked, qrels),
            "top10": ranked[:10]}


def plan_systems(settings: Settings, modes: list[str], embedders: list[str | None]) -> list[dict]:
    """(label, embedder, mode) for each system; names resolved now so a bad one fails before any work."""
    from ..models import ModelStore

    for mode in modes:
        if mode not in MODES:
            raise BadInputError(f"unknown mode {mode!r} (choose {', '.join(MODES)})")
    store = ModelStore(settings.models_dir)
    manifests = [store.get(e) if e else store.active("embedder") for e in embedders]
    for manifest in manifests:
        if manifest.format != "onnx":
            raise ModelError(f"{manifest.name} is not an ONNX embedder (format {manifest.format})")
    names = [m.name for m in manifests]
    systems = []
    for name in dict.fromkeys(names):
        for mode in dict.fromkeys(modes):
            if mode == "bm25" and any(s["mode"] == "bm25" for s in systems):
                continue  # BM25 does not depend on the embedder: evaluate it once
            label = mode if len(set(names)) == 1 or mode == "bm25" else f"{name}:{mode}"
            systems.append({"label": label, "embedder": name, "mode": mode})
    return systems


def evaluate_systems(settings: Settings, dataset: BeirDataset, systems: list[dict], run: RunDir,
                     query_ids: list[str], on_event: Callable[[EvalEvent], None] = ignore) -> dict:
    """Run every (embedder, mode) system over the queries, appending one record per query; skips done ones."""
    from ..embed import load_active_embedder

    done = {(r["system"], r["query_id"]) for r in run.records()}
    timings: dict[str, dict] = {}
    for embedder_name in dict.fromkeys(s["embedder"] for s in systems):
        mine = [s for s in systems if s["embedder"] == embedder_name]
        if all((s["label"], q) in done for s in mine for q in query_ids):
            continue
        embedder = load_active_embedder(settings, embedder_name)
        t0 = time.perf_counter()
        collection = scratch_collection(settings, dataset.name, dataset.corpus.values(), embedder, on_event)
        timings[f"index {embedder_name}"] = {"seconds": round(time.perf_counter() - t0, 2)}
        with collection:
            retriever = Retriever.from_settings(collection, embedder, settings)
            for system in mine:
                todo = [q for q in query_ids if (system["label"], q) not in done]
                on_event(EvalEvent("phase", system["label"], total=len(query_ids)))
                on_event(EvalEvent("advance", n=len(query_ids) - len(todo), info="resumed" if done else ""))
                t0 = time.perf_counter()
                for qid in todo:
                    ranked = rank_documents(retriever, dataset.queries[qid], system["mode"], exclude=qid)
                    record = query_record(system["label"], qid, ranked, dataset.qrels[qid])
                    run.append(record)
                    on_event(EvalEvent("advance", n=1, info=f"nDCG@10 {record['ndcg@10']:.2f}"))
                if todo:
                    seconds = time.perf_counter() - t0
                    timings[system["label"]] = {"queries_per_s": round(len(todo) / max(seconds, 1e-9), 1)}
    return timings


def summarise_run(run: RunDir, dataset: BeirDataset, systems: list[dict], resamples: int, seed: int,
                  timings: dict | None = None) -> dict:
    records = run.records()
    labels = [s["label"] for s in systems]
    table, comparisons = summarise(records, "system", "query_id", METRICS, labels, resamples, seed)
    curves = {label: [0.0] * len(CURVE_KS) for label in labels}
    for label in labels:
        rows = [r for r in records if r["system"] == label]
        if rows:
            per_query = [M.recall_curve(r["relevant_ranks"], r["n_relevant"], CURVE_KS) for r in rows]
            curves[label] = [sum(col) / len(rows) for col in zip(*per_query)]
    published = PUBLISHED.get(dataset.name, {})
    return {"kind": "retrieval", "dataset": dataset.name, "split": dataset.split, "corpus_documents":
            len(dataset.corpus), "queries": len({r["query_id"] for r in records}),
            "systems": {s["label"]: {"embedder": s["embedder"], "mode": s["mode"], "metrics": table[s["label"]]}
                        for s in systems},
            "comparisons": comparisons, "recall_curve": {"ks": CURVE_KS, **curves},
            "published": {s["label"]: published[s["mode"]] for s in systems if s["mode"] in published},
            "timings": timings or {}, "run_dir": str(run.path)}


def write_report(run: RunDir, summary: dict) -> None:
    from . import plots

    metrics = list(METRICS)
    systems = {k: v["metrics"] for k, v in summary["systems"].items()}
    pct = lambda _m, e: e.fmt(100)  # noqa: E731
    plots.grouped_bars(run.path / "metrics.png", f"{summary['dataset']} ({summary['split']}, "
                       f"{summary['queries']} queries), 95% bootstrap CI", metrics, systems,
                       references=summary["published"])
    curve = summary["recall_curve"]
    plots.recall_curves(run.path / "recall_at_k.png", f"{summary['dataset']}: Recall@k", curve["ks"],
                        {k: v for k, v in curve.items() if k != "ks"})
    if summary["comparisons"]:
        plots.differences(run.path / "differences.png", "difference to the first system", summary["comparisons"],
                          metrics)
    rows = metric_rows(systems, metrics, pct)
    for row in rows:
        row.append(f"{summary['published'][row[0]]['ndcg@10'] * 100:.2f}" if row[0] in summary["published"] else "–")
    parts = [f"# Retrieval: {summary['dataset']} ({summary['split']})", "",
             f"{summary['queries']} queries over {summary['corpus_documents']} documents. Scores ×100, mean "
             f"[95% bootstrap CI]. Chunks are mapped to documents by their best-ranked chunk.", "",
             md_table(["system", *metrics, "published nDCG@10"], rows), "", "![metrics](metrics.png)", "",
             "![recall@k](recall_at_k.png)", ""]
    if summary["comparisons"]:
        parts += ["## Paired differences (bootstrap over queries)", "",
                  md_table(["comparison", "metric", "difference", "verdict"],
                           comparison_rows(summary["comparisons"], metrics, pct)), "",
                  "![differences](differences.png)", ""]
    parts += ["## Configuration", "", config_block(run.config), ""]
    run.write("report.md", "\n".join(parts))


def run_retrieval_eval(settings: Settings, config: RetrievalConfig, resume: Path | None = None,
                       on_event: Callable[[EvalEvent], None] = ignore,
                       dataset: BeirDataset | None = None) -> RetrievalResult:
    """Load the corpus (or take `dataset`), plan the systems, run (or resume) them, then write summary.json,
    report.md and plots."""
    systems = plan_systems(settings, config.modes, config.embedders)  # a bad embedder fails before any work
    dataset = dataset or load_beir(config.beir, config.split)
    query_ids = subset(sorted(dataset.queries), config.limit, config.seed)
    source = str(Path(config.beir).expanduser().resolve()) if config.beir else dataset.source
    run_config = {"kind": "retrieval", "source": source, "dataset_sha": dataset_sha(dataset),
                  "split": config.split, "systems": systems, "limit": config.limit, "seed": config.seed,
                  "resamples": config.resamples,
                  "chunking": {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap},
                  "retrieval": {"candidates": settings.candidates, "rrf_k": settings.rrf_k,
                                "hnsw_ef_search": settings.hnsw_ef_search}, "config": asdict(config)}
    run = RunDir.resume(resume, run_config, IDENTITY) if resume else \
        RunDir.create(settings.runs_dir, config.name or f"retrieval-{dataset.name}", run_config)
    on_event(EvalEvent("run", info=str(run.path)))
    timings = evaluate_systems(settings, dataset, systems, run, query_ids, on_event)
    summary = summarise_run(run, dataset, systems, config.resamples, config.seed,
                            run.merged_timings(timings))
    run.write_summary(summary)
    write_report(run, summary)
    return RetrievalResult(run.path, summary)
