"""How well each retrieval leg finds the source chunk of `embedder data`'s pseudo-queries, per query type.

A teacher helps the student only where it ranks better than the student already does. This prints MRR@10 of
the source chunk (and any chunk the data marked relevant) for dense, BM25 and hybrid over NFCorpus' scratch
collection (the one bench/embedder_adapt.py builds with the active embedder), per pseudo-query type:

    .venv/bin/python -P bench/pseudo_query_legs.py --data <data dir with train.jsonl> [--limit 400]

Measured 2026-11-27 (docs/results/embedder-adapt/README.md): claims, cloze questions and keyword queries are
lexical lookups (BM25 MRR 0.97-0.99, dense 0.60-0.77), so a hybrid teacher mostly teaches string overlap there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import edgerag  # noqa: E402,F401  (first: dependencies' telemetry and hub access off, edgerag/offline.py)

NFCORPUS = REPO.parent / "shared" / "data" / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="an `embedder data` folder (train.jsonl)")
    ap.add_argument("--beir", type=Path, default=NFCORPUS)
    ap.add_argument("--limit", type=int, default=400, help="first N training queries")
    args = ap.parse_args()

    from edgerag.config import load_settings
    from edgerag.embed import load_active_embedder
    from edgerag.embedtune.data import read_examples
    from edgerag.evaluate.corpus import scratch_collection
    from edgerag.evaluate.datasets import load_beir
    from edgerag.models import ModelStore
    from edgerag.retrieve import Retriever

    settings = load_settings()
    embedder = load_active_embedder(settings, ModelStore(settings.models_dir).active_name("embedder"))
    dataset = load_beir(args.beir, "test")
    rows = read_examples(args.data / "train.jsonl")[: args.limit]
    mrr: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with scratch_collection(settings, dataset.name, dataset.corpus.values(), embedder) as collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        for row in rows:
            relevant = set(row.get("relevant") or [row["text_id"]])
            for mode in ("dense", "bm25", "hybrid"):
                hits = retriever.search(row["query"], k=10, mode=mode)
                mrr[row["type"]][mode].append(next((1 / (i + 1) for i, h in enumerate(hits)
                                                    if h.text_id in relevant), 0.0))
    print(f"{'type':10} {'queries':>7} {'dense':>6} {'bm25':>6} {'hybrid':>6}   (MRR@10 of the source chunk)")
    for kind, legs in sorted(mrr.items()):
        means = {m: sum(v) / len(v) for m, v in legs.items()}
        print(f"{kind:10} {len(legs['dense']):7d} {means['dense']:6.3f} {means['bm25']:6.3f} {means['hybrid']:6.3f}")
    print(json.dumps({"data": str(args.data), "limit": args.limit}))


if __name__ == "__main__":
    main()
