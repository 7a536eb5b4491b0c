"""Adapted vs base embedder on NFCorpus (or a subset of it): the measured result of `edgerag embedder`.

The adaptation sees the corpus only (no qrels, no test queries): pseudo-queries from the corpus' chunks, hybrid
retriever as teacher, then the test queries are scored through the evaluation harness (dense and hybrid, 95%
bootstrap CIs, paired differences adapted − base).

    .venv/bin/python -P bench/embedder_adapt.py --loss distill --loss infonce

Data and training options left out take `edgerag embedder`'s defaults. On an idle 2-core CPU the full corpus
(3,633 documents) takes ~27 min of training per loss plus ~5 min of indexing and evaluation per adapted model.
`--docs N` keeps a subset of the corpus: every relevant document of `--queries` sampled test queries, plus random
others up to N. Results go to docs/results/embedder-adapt/<name>/ (summary.json, report.md, loss curves); the
scratch runs to <data>/embedtune/bench-<name>/ (data and trained students are reused when the name is).
`--as-files` trains on the corpus as a user's Markdown files (see `files_collection`); the evaluation always indexes
the BEIR records, as `embedder run --beir` does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NFCORPUS = REPO.parent / "shared" / "data" / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip"


def subset_dataset(dataset, docs: int | None, queries: int | None, seed: int):
    from edgerag.evaluate.datasets import BeirDataset

    qids = sorted(dataset.queries)
    if queries and queries < len(qids):
        qids = sorted(random.Random(seed).sample(qids, queries))
    if not docs or docs >= len(dataset.corpus):
        keys = set(dataset.corpus)
    else:
        keys = {d for q in qids for d, g in dataset.qrels[q].items() if g > 0 and d in dataset.corpus}
        rest = sorted(set(dataset.corpus) - keys)
        keys |= set(random.Random(seed).sample(rest, max(0, docs - len(keys))))
    qrels = {q: {d: g for d, g in dataset.qrels[q].items() if d in keys} for q in qids}
    qids = [q for q in qids if any(g > 0 for g in qrels[q].values())]
    name = dataset.name if len(keys) == len(dataset.corpus) else f"{dataset.name}-sub{len(keys)}"
    return BeirDataset(name, dataset.source, {k: dataset.corpus[k] for k in sorted(keys)},
                       {q: dataset.queries[q] for q in qids}, {q: qrels[q] for q in qids}, dataset.split)


def files_collection(settings, dataset, folder: Path, embedder):
    """The corpus written as Markdown files and ingested as `edgerag ingest` does (skipping unchanged files on a
    rerun), into a collection of its own beside the evaluation's scratch collections."""
    from edgerag.evaluate.corpus import eval_collections_dir
    from edgerag.ingest.sync import sync
    from edgerag.store.collection import Collection
    from edgerag.runtime import embedder_id, hnsw_params

    folder.mkdir(parents=True, exist_ok=True)
    for key, doc in dataset.corpus.items():
        path = folder / f"{key}.md"
        text = f"# {doc.title}\n\n{doc.text}\n" if doc.title else f"{doc.text}\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    collection = Collection.open(eval_collections_dir(settings), f"{dataset.name}-files",
                                 embedder_id(settings, embedder), create=True, hnsw=hnsw_params(settings))
    sync(collection, embedder, [folder], settings.chunk_tokens, settings.chunk_overlap)
    return collection


def squad_as_beir(path: Path, queries: int | None, seed: int):
    """A SQuAD-format file as a retrieval set: its paragraphs are the corpus, each question's paragraph is its one
    relevant document (XQuAD-en: 240 paragraphs, 1,190 questions)."""
    from edgerag.evaluate.datasets import BeirDataset, load_squad, subset

    qa = load_squad(path)
    items = subset(qa.items, queries, seed)
    return BeirDataset(qa.name, qa.source, dict(qa.contexts), {i.id: i.question for i in items},
                       {i.id: {g: 1 for g in i.gold} for i in items}, "test")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beir", type=Path, default=NFCORPUS)
    ap.add_argument("--squad", type=Path, default=None, help="a SQuAD-format file instead (e.g. XQuAD-en)")
    ap.add_argument("--docs", type=int, default=None, help="corpus subset size (default: all)")
    ap.add_argument("--queries", type=int, default=None, help="test queries sampled (default: all)")
    ap.add_argument("--loss", action="append", choices=("distill", "infonce"), default=None)
    # Left out, the data and training options take `edgerag embedder`'s defaults (EmbedDataConfig, EmbedTrainConfig).
    ap.add_argument("--max-queries", type=int, default=None)
    ap.add_argument("--negatives", type=int, default=None)
    ap.add_argument("--types", default=None, help="pseudo-query types, comma-separated (default: all)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None, help="stop training after N steps")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--teacher-scale", type=float, default=None)
    ap.add_argument("--max-seq-length", type=int, default=None)
    ap.add_argument("--freeze-layers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder for runs (default: <data>/embedtune)")
    ap.add_argument("--as-files", action="store_true",
                    help="train on the corpus as a user has it: one Markdown file per document (`# title`, then the "
                         "text) ingested like `edgerag ingest`, where every chunk carries its heading (default: "
                         "records, the title on the first chunk's first line, as the evaluation indexes them)")
    args = ap.parse_args()
    losses = args.loss or ["distill"]

    from edgerag.config import load_settings
    from edgerag.embed import load_active_embedder
    from edgerag.embedtune.data import EmbedDataConfig, synthesize
    from edgerag.embedtune.export import export_student, torch_weights
    from edgerag.embedtune.train import EmbedTrainConfig, train_embedder
    from edgerag.evaluate.corpus import scratch_collection
    from edgerag.evaluate.datasets import load_beir
    from edgerag.evaluate.report import summarise
    from edgerag.evaluate.retrieval import METRICS, RetrievalConfig, run_retrieval_eval
    from edgerag.logs import route_library_logs
    from edgerag.models import ModelStore
    from edgerag.retrieve import Retriever

    settings = load_settings()
    route_library_logs(settings, "bench-embedder-adapt")
    store = ModelStore(settings.models_dir)
    base = store.active_name("embedder")
    dataset = squad_as_beir(args.squad, args.queries, args.seed) if args.squad else \
        subset_dataset(load_beir(args.beir, "test"), args.docs, args.queries, args.seed)
    name = args.name or f"{dataset.name}-{'-'.join(losses)}"
    work = (args.work or settings.data_dir / "embedtune") / f"bench-{name}"
    out = REPO / "docs" / "results" / "embedder-adapt" / name
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    say = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731
    say(f"{dataset.name}: {len(dataset.corpus)} documents, {len(dataset.queries)} test queries; base {base}")

    t0 = time.perf_counter()
    embedder = load_active_embedder(settings, base)
    collection = files_collection(settings, dataset, work / "files", embedder) if args.as_files else \
        scratch_collection(settings, dataset.name, dataset.corpus.values(), embedder)
    timings["index base (s)"] = round(time.perf_counter() - t0, 1)
    data_dir = work / "data"
    given = lambda **kw: {k: v for k, v in kw.items() if v is not None}  # noqa: E731
    data_options = given(max_queries=args.max_queries, negatives=args.negatives,
                         types=tuple(args.types.split(",")) if args.types else None)
    t0 = time.perf_counter()
    with collection:
        if not (data_dir / "data_card.json").is_file():
            retriever = Retriever.from_settings(collection, embedder, settings)
            synthesize(collection, retriever, EmbedDataConfig(collection=collection.name, out_dir=data_dir,
                                                              seed=args.seed, **data_options))
    timings["data (s)"] = round(time.perf_counter() - t0, 1)
    card = json.loads((data_dir / "data_card.json").read_text())
    say(f"data: {card['examples']} {card['by_type']}")

    candidates = []
    for loss in losses:
        cand = f"{name}-{loss}"[:100]
        train_dir = work / f"train-{loss}"
        config = EmbedTrainConfig(data_dir=data_dir, out_dir=train_dir, base=torch_weights(store, base), loss=loss,
                                  max_steps=args.steps, seed=args.seed,
                                  **given(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                          teacher_scale=args.teacher_scale, max_seq_length=args.max_seq_length,
                                          freeze_layers=args.freeze_layers))
        t0 = time.perf_counter()
        if not (train_dir / "student" / "config.json").is_file():
            last = [0.0]

            def emit(event, loss=loss):
                if event.get("event") == "step" and time.perf_counter() - last[0] > 60:
                    last[0] = time.perf_counter()
                    say(f"{loss}: step {event['step']}/{event['total']} loss {event['loss']:.4f}")

            train_embedder(config, emit, resume=True)
        timings[f"train {loss} (s)"] = round(time.perf_counter() - t0, 1)
        if train_dir.joinpath("loss_curve.png").is_file():
            shutil.copy2(train_dir / "loss_curve.png", out / f"loss-{loss}.png")
        t0 = time.perf_counter()
        if not store.exists(cand):
            export_student(store, train_dir / "student", cand, base,
                           {"parent_embedder": base, "data_card_sha256": card["sha256"], "training": config.record(),
                            "bench": name}, tmp_root=settings.data_dir / "tmp", say=say)
        timings[f"export {loss} (s)"] = round(time.perf_counter() - t0, 1)
        candidates.append(cand)

    t0 = time.perf_counter()
    result = run_retrieval_eval(settings, RetrievalConfig(modes=["dense", "hybrid"], embedders=[base, *candidates],
                                                          seed=args.seed, name=f"embedder-adapt-{name}"),
                                dataset=dataset)
    timings["evaluate (s)"] = round(time.perf_counter() - t0, 1)
    from edgerag.evaluate.report import RunDir

    records = RunDir(result.run_dir, {}).records()
    comparisons = {}
    for mode in ("dense", "hybrid"):
        for cand in candidates:
            _, rows = summarise(records, "system", "query_id", METRICS, [f"{base}:{mode}", f"{cand}:{mode}"])
            comparisons[f"{cand}:{mode}"] = {m: {"diff": v["diff"].as_dict(), "verdict": v["verdict"]}
                                             for m, v in rows[0]["metrics"].items()}
    summary = {"dataset": dataset.name, "documents": len(dataset.corpus), "queries": len(dataset.queries),
               "base": base, "candidates": candidates, "data_card": card, "args": {k: str(v) for k, v in
                                                                                 vars(args).items()},
               "systems": result.summary["systems"], "paired_vs_base": comparisons, "timings": timings,
               "run_dir": str(result.run_dir), "load_average": os.getloadavg(),
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=REPO).stdout.strip()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for f in ("report.md", "metrics.png", "recall_at_k.png", "differences.png"):
        if (result.run_dir / f).is_file():
            shutil.copy2(result.run_dir / f, out / f)
    for label, system in result.summary["systems"].items():
        m = system["metrics"]["ndcg@10"]
        m = m if isinstance(m, dict) else m.as_dict()
        say(f"{label}: nDCG@10 {m['mean'] * 100:.2f} [{m['lo'] * 100:.2f}, {m['hi'] * 100:.2f}]")
    for key, c in comparisons.items():
        d = c["ndcg@10"]["diff"]
        say(f"{key} − base: {d['mean'] * 100:+.2f} [{d['lo'] * 100:+.2f}, {d['hi'] * 100:+.2f}] {c['ndcg@10']['verdict']}")
    say(f"timings {timings}; written to {out}")


if __name__ == "__main__":
    main()
