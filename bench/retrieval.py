"""Dense retrieval latency (p50/p99) and recall@10 against exact (brute-force) search, at 10k and 100k chunks.
Synthetic: only the first 3,633 vectors are real; the output says so, and so must any table quoting it.

Vectors: real NFCorpus chunk embeddings from the bundled embedder, grown to the target size with perturbed
mixtures of real vectors (embedding-like geometry; embedding 100k real chunks takes ~15 minutes here).
Queries: real NFCorpus query embeddings. Index: edgerag's HnswVectors with the settings' M/ef values.
Targets: p50 <= 15 ms at 100k with recall@10 >= 0.99. Run: .venv/bin/python bench/retrieval.py
"""

import json
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from _common import DATA, bench_home, nfcorpus, percentile, report


def grow(real: np.ndarray, n: int, rng) -> np.ndarray:
    if n <= len(real):
        return real[:n]
    a = real[rng.integers(0, len(real), n)]
    b = real[rng.integers(0, len(real), n)]
    w = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
    v = w * a + (1 - w) * b + rng.normal(0, 0.02, a.shape).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def main() -> None:
    bench_home()
    from edgerag.config import load_settings
    from edgerag.embed import load_active_embedder
    from edgerag.store.vectors import HnswVectors

    settings = load_settings()
    embedder = load_active_embedder(settings)
    rng = np.random.default_rng(0)
    real = embedder.embed([f"{d.get('title', '')}. {d['text']}" for d in nfcorpus(5000)])
    with zipfile.ZipFile(DATA / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip") as zf:
        queries = [json.loads(line)["text"] for line in zf.read("nfcorpus/queries.jsonl").decode().splitlines()[:300]]
    qvecs = embedder.embed(queries)
    rows = []
    for n in (10_000, 100_000):
        data = grow(real, n, rng)
        with tempfile.TemporaryDirectory() as tmp:
            index = HnswVectors(Path(tmp) / "v.hnsw", data.shape[1], m=settings.hnsw_m,
                                ef_construction=settings.hnsw_ef_construction, ef_search=settings.hnsw_ef_search)
            t0 = time.perf_counter()
            index.add(np.arange(n), data)
            build = time.perf_counter() - t0
            lat, recall, exact_lat = [], [], []
            for q in qvecs:
                t0 = time.perf_counter()
                got = [label for label, _ in index.search(q, 10)]
                lat.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                truth = np.argpartition(-(data @ q), 10)[:10]
                exact_lat.append((time.perf_counter() - t0) * 1000)
                recall.append(len(set(got) & set(truth.tolist())) / 10)
        rows += [(f"{n:>7} chunks: build", f"{build:.1f} s"),
                 (f"{n:>7} chunks: hnsw p50 / p99", f"{percentile(lat, 50):.2f} / {percentile(lat, 99):.2f} ms"),
                 (f"{n:>7} chunks: exact numpy p50 (baseline)", f"{percentile(exact_lat, 50):.2f} ms"),
                 (f"{n:>7} chunks: speed-up vs exact", f"{percentile(exact_lat, 50) / percentile(lat, 50):.1f}x"),
                 (f"{n:>7} chunks: recall@10 vs exact", f"{np.mean(recall):.4f}")]
    report(f"dense retrieval, ef_search={settings.hnsw_ef_search}, M={settings.hnsw_m}, {len(qvecs)} real queries; "
           f"SYNTHETIC corpus: {len(real)} real NFCorpus vectors, the rest perturbed mixtures of them", rows)


if __name__ == "__main__":
    main()
