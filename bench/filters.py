"""Metadata filters (`--where`) inside retrieval: what a filter costs, and where the dense leg should stop walking
the HNSW graph with hnswlib's filter callback and score the allowed vectors exactly instead (EXACT_SCAN_MAX).

Corpus: the NFCorpus scratch collection `edgerag eval retrieval` builds (3,633 abstracts → ~8k chunks, the bundled
MiniLM embedder), copied to a temp folder so the copy can carry synthetic modification times (document i gets
time i) that make filters of chosen selectivity: `modified<T` keeping 0.5% … 100% of the chunks.
Queries: the 323 NFCorpus test queries, embedded once. For each selectivity, every query runs each option in
turn, the order rotating per query:

  resolve      Collection.allowed_texts(where): the SQL that turns the filter into allowed text ids
  exact        Collection._dense_exact: the allowed texts' stored embeddings (SQLite) times the query
  hnsw-filter  hnswlib knn_query(filter=allowed.__contains__): the graph walk, a Python call per visited node
  unfiltered   knn_query without a filter (the baseline every filtered search is compared with)
  bm25         the keyword leg with the allowed mask vs without

recall@10 of hnsw-filter is measured against exact (the true top 10 among the allowed texts).
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/filters.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA, bench_home, percentile, report

SELECTIVITY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
K = 10


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=0, help="use only the first N queries (0: all)")
    args = ap.parse_args()
    bench_home()
    from edgerag.config import load_settings
    from edgerag.embed import load_active_embedder
    from edgerag.evaluate.corpus import scratch_collection
    from edgerag.evaluate.datasets import load_beir
    from edgerag.filters import Where
    from edgerag.runtime import embedder_id
    from edgerag.store.collection import Collection

    settings = load_settings()
    dataset = load_beir(DATA / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip", "test")
    embedder = load_active_embedder(settings)
    built = sorted(settings.data_dir.glob("eval-collections/nfcorpus-*/collection.sqlite"))
    if built:  # copied without opening it: another process may be using it (and opening it migrates it)
        folder = built[0].parent
    else:
        source = scratch_collection(settings, dataset.name, dataset.corpus.values(), embedder)
        folder = source.folder
        source.close()
    scratch = Path(tempfile.mkdtemp(prefix="edgerag-filters-"))
    shutil.copytree(folder, scratch / "nf", ignore=shutil.ignore_patterns("write.lock", "*.tmp-*"))
    col = Collection.open(scratch, "nf", embedder_id(settings, embedder))
    try:
        docs = col.documents()
        for i, d in enumerate(sorted(docs, key=lambda d: d.path)):
            col.set_modified(d.path, float(i))
        col.save()
        col.lock.release()  # a reader from here on, as search is
        queries = [dataset.queries[q] for q in sorted(dataset.queries)][:args.queries or None]
        qvecs = embedder.embed(queries)
        n_texts = col.counts()["texts"]
        vectors = col.vectors
        print(f"{len(docs)} documents, {n_texts} texts, {len(queries)} queries, k = {K}, "
              f"ef_search {vectors.ef_search}")
        rows = []
        for share in SELECTIVITY:
            # the smallest document-time bound whose filter keeps at least `share` of the texts
            lo, hi = 1, len(docs)
            while lo < hi:
                mid = (lo + hi) // 2
                if len(col.allowed_texts(Where(modified=(("<", float(mid)),)))) >= share * n_texts:
                    hi = mid
                else:
                    lo = mid + 1
            where = Where(modified=(("<", float(lo)),), text=f"modified<{lo}")
            allowed = col.allowed_texts(where)
            allowed_set = set(allowed.tolist())
            times = {name: [] for name in ("resolve", "exact", "hnsw-filter", "unfiltered", "bm25 filtered",
                                           "bm25")}
            recall = []
            for qi, (q, v) in enumerate(zip(queries, qvecs)):
                def hnsw_filter():
                    vectors.index.set_ef(max(vectors.ef_search, K))
                    labels, _ = vectors.index.knn_query(v.reshape(1, -1), k=min(K, len(allowed_set)),
                                                        filter=allowed_set.__contains__)
                    return labels[0].tolist()

                options = {
                    "resolve": lambda: col.allowed_texts(where),
                    "exact": lambda: [t for t, _ in col._dense_exact(v, K, allowed)],
                    "hnsw-filter": hnsw_filter,
                    "unfiltered": lambda: vectors.search(v, K),
                    "bm25 filtered": lambda: col.bm25(q, 30, allowed),
                    "bm25": lambda: col.bm25(q, 30),
                }
                names = list(options)
                names = names[qi % len(names):] + names[:qi % len(names)]
                out = {}
                for name in names:
                    t0 = time.perf_counter()
                    out[name] = options[name]()
                    times[name].append(time.perf_counter() - t0)
                recall.append(len(set(out["hnsw-filter"]) & set(out["exact"])) / max(1, len(out["exact"])))
            print(f"  {share:.1%} done", file=sys.stderr, flush=True)
            ms = {name: (percentile(t, 50) * 1e3, percentile(t, 99) * 1e3) for name, t in times.items()}
            rows.append((f"{share:>6.1%} ({len(allowed)} texts)",
                         "  ".join(f"{name} {p50:.2f}/{p99:.2f}" for name, (p50, p99) in ms.items())
                         + f"  hnsw-filter recall@{K} {np.mean(recall):.3f}"))
        report("p50/p99 ms per query, by share of texts the filter keeps", rows)
    finally:
        col.close()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
