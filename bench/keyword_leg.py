"""The keyword (BM25) leg: the options issue 14 asked to compare, and the hybrid query they feed, on NFCorpus.

Corpus: BEIR NFCorpus (3,633 real abstracts → ~7k chunks), the stand-in for the issue's 5k-document SciFact-size
corpus (not in ../shared/data), in the same scratch collection `edgerag eval retrieval` builds (the first run
ingests it, ~5 min on 2 cores). Queries: the 323 real test queries. Options, all over the same chunk texts
(heading + text, as FTS5 indexes them):

  fts5         SQLite FTS5 bm25() over the OR of the query terms (the keyword leg before this change; baseline)
  fts5-pruned  the same, keeping the 6 rarest query terms that occur in at most half the texts
  derived      edgerag's keyword file (store/keyword.py: per-term weight matrix in bm25s's layout built with
               numpy, FTS5-equal scores; the choice)
  bm25s        the bm25s library itself (Robertson idf, k1 1.2, b 0.75, our tokens); no incremental update
  tantivy      tantivy-py, en_stem tokenizer, freq-only postings, OR query (built in a temp folder)

Latency: each query runs every option in turn, the order rotating per query, 5 rounds; k = 30 (the hybrid
candidate depth). nDCG@10 uses the evaluation's own document ranking (rank_documents: chunks → documents).
Build: a full index from the texts; update: one new one-chunk document made searchable. Then the hybrid query
(embed + hnsw + bm25 + fuse + fetch) with the derived file vs with FTS5, interleaved the same way.
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/keyword_leg.py
"""

import math
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from _common import DATA, REPO, bench_home, headline, percentile, report

ROUNDS, K = 5, 30


def main() -> None:
    bench_home()
    from edgerag.config import load_settings
    from edgerag.embed import load_active_embedder
    from edgerag.evaluate.corpus import scratch_collection
    from edgerag.evaluate.datasets import load_beir
    from edgerag.evaluate.metrics import ndcg_at_k
    from edgerag.evaluate.retrieval import rank_documents
    from edgerag.retrieve import Retriever
    from edgerag.store import keyword

    settings = load_settings()
    dataset = load_beir(DATA / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip", "test")
    embedder = load_active_embedder(settings)
    col = scratch_collection(settings, dataset.name, dataset.corpus.values(), embedder)
    rows = col.conn.execute("SELECT id, heading, text FROM texts ORDER BY id").fetchall()
    texts = [(r[0], keyword.indexed_words(r[1], r[2])) for r in rows]
    qids = sorted(dataset.queries)
    queries = [dataset.queries[q] for q in qids]

    options, build, update, size = {}, {}, {}, {}
    options["fts5"] = col.fts5_bm25
    options["fts5-pruned"] = pruned_fts5(col, len(texts))
    t0 = time.perf_counter()
    fresh = keyword.KeywordIndex(Path(tempfile.mkdtemp()) / keyword.KEYWORDS_FILE, col.conn)
    fresh.add(rows)
    fresh.save()
    build["derived (ours)"] = time.perf_counter() - t0
    size["derived (ours)"] = fresh.path.stat().st_size
    options["derived (ours)"] = fresh.search
    build["bm25s"], size["bm25s"], options["bm25s"], update["bm25s"] = bm25s_index(rows)
    build["fts5"], size["fts5"], update["fts5"] = fts5_build(texts)
    for d in (build, size, update):  # the pruned queries run on the same FTS5 index
        d["fts5-pruned"] = d["fts5"]
    build["tantivy"], size["tantivy"], options["tantivy"], tantivy_update = tantivy_index(texts)
    t0 = time.perf_counter()
    fresh.add([(10**9, None, "Zymurgy is the chemistry of fermentation.")])
    fresh.search("zymurgy", 1)  # recomputes the weights, as the first search (or save) after an ingest does
    update["derived (ours)"] = time.perf_counter() - t0
    update["tantivy"] = tantivy_update()
    fresh.delete([10**9])

    latency = interleaved({name: (lambda fn: lambda q: fn(q, K))(fn) for name, fn in options.items()}, queries)
    retriever = Retriever.from_settings(col, embedder, settings)
    ndcg = {}
    for name, fn in options.items():
        col.bm25 = as_keyword_leg(fn)  # the evaluation's own ranking, with this keyword leg
        ndcg[name] = statistics.mean(ndcg_at_k(rank_documents(retriever, dataset.queries[q], "bm25", exclude=q),
                                               dataset.qrels[q]) for q in qids)
    del col.bm25
    out = []
    for name in options:
        lat = latency[name]
        out.append((name, f"p50 {percentile(lat, 50):6.2f} ms  p99 {percentile(lat, 99):6.2f} ms  "
                          f"nDCG@10 {ndcg[name] * 100:5.2f}  build {build.get(name, math.nan):5.2f} s  "
                          f"update {update.get(name, math.nan) * 1000:6.1f} ms  "
                          f"size {size.get(name, 0) / 2**20:5.1f} MiB"))
    base = percentile(latency["fts5"], 50)
    out.append(("derived vs fts5 (p50)", f"{base / percentile(latency['derived (ours)'], 50):.1f}x faster"))
    report(f"keyword leg, NFCorpus: {len(texts)} chunks, {len(queries)} test queries x {ROUNDS} rounds, k={K}", out)
    headline("BM25 leg p50", percentile(latency["derived (ours)"], 50), "ms", 3.0, baseline=base,
             baseline_name="FTS5 bm25()", detail=f"nDCG@10 {ndcg['derived (ours)'] * 100:.2f} "
                                                 f"(FTS5 {ndcg['fts5'] * 100:.2f})")
    plot(latency, ndcg, len(texts))

    hybrid = {"hybrid, derived file": lambda q: retriever.search(q, 10, "hybrid")}

    def with_fts5(q):
        col.bm25 = as_keyword_leg(col.fts5_bm25)
        try:
            return retriever.search(q, 10, "hybrid")
        finally:
            del col.bm25

    hybrid["hybrid, FTS5 (baseline)"] = with_fts5
    latency = interleaved(hybrid, queries)
    hybrid_ndcg = {}
    for name, keyword_leg in (("hybrid, derived file", None), ("hybrid, FTS5 (baseline)", col.fts5_bm25)):
        if keyword_leg:
            col.bm25 = as_keyword_leg(keyword_leg)
        hybrid_ndcg[name] = statistics.mean(ndcg_at_k(rank_documents(retriever, dataset.queries[q], "hybrid",
                                                                     exclude=q), dataset.qrels[q]) for q in qids)
        if keyword_leg:
            del col.bm25
    parts = {"embed query": lambda q: embedder.embed_one(q), "hnsw": None, "bm25 (derived)": lambda q: col.bm25(q, K),
             "fetch 10 hits": None}
    vecs = {q: embedder.embed_one(q) for q in queries}
    parts["hnsw"] = lambda q: col.dense(vecs[q], K)
    parts["fetch 10 hits"] = lambda q: col.hits([t for t, _ in col.dense(vecs[q], 10)])
    part_lat = interleaved(parts, queries)
    out = [(name, f"p50 {percentile(v, 50):6.2f} ms  p99 {percentile(v, 99):6.2f} ms  "
                  f"nDCG@10 {hybrid_ndcg[name] * 100:5.2f}") for name, v in latency.items()]
    out.append(("ratio (p50)", f"{percentile(latency['hybrid, FTS5 (baseline)'], 50) / percentile(latency['hybrid, derived file'], 50):.2f}x faster"))
    out += [(f"  part: {name}", f"p50 {percentile(v, 50):6.2f} ms") for name, v in part_lat.items()]
    report("hybrid query (embed + hnsw + bm25 + RRF + fetch), k=10, targets p50 <= 8 ms, p99 <= 15 ms", out)
    ours, fts = latency["hybrid, derived file"], latency["hybrid, FTS5 (baseline)"]
    headline("hybrid query p50", percentile(ours, 50), "ms", 8.0, baseline=percentile(fts, 50),
             baseline_name="with the FTS5 leg", detail=f"nDCG@10 {hybrid_ndcg['hybrid, derived file'] * 100:.2f}; "
             + ", ".join(f"{n} {percentile(v, 50):.2f}" for n, v in part_lat.items()) + " ms")
    headline("hybrid query p99", percentile(ours, 99), "ms", 15.0, baseline=percentile(fts, 99),
             baseline_name="with the FTS5 leg")
    dense = [a + b for a, b in zip(part_lat["embed query"], part_lat["hnsw"])]
    headline("dense leg incl. query embedding p50", percentile(dense, 50), "ms", 4.6,
             detail="target: keep the issue's 4.6 ms")
    col.close()


def plot(latency: dict, ndcg: dict, n_chunks: int) -> None:
    """docs/results/keyword-leg.png: p50/p99 per option (log scale), nDCG@10 in the labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(latency)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [percentile(latency[n], 50) for n in names], 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [percentile(latency[n], 99) for n in names], 0.4, label="p99")
    ax.set_xticks(list(xs), [f"{n}\nnDCG@10 {ndcg[n] * 100:.1f}" for n in names])
    ax.set_yscale("log")
    ax.set_ylabel("ms per query (k=30)")
    ax.set_title(f"BM25 leg on NFCorpus ({n_chunks} chunks, {os.cpu_count()} cores)")
    ax.legend()
    fig.tight_layout()
    out = REPO / "docs" / "results" / "keyword-leg.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def interleaved(fns: dict, queries: list[str]) -> dict[str, list[float]]:
    """Latency of each function per query, in ms: every query runs all of them, the order rotating."""
    names = list(fns)
    out = {n: [] for n in names}
    for _ in range(ROUNDS):
        for i, q in enumerate(queries):
            for name in names[i % len(names):] + names[:i % len(names)]:
                t0 = time.perf_counter()
                fns[name](q)
                out[name].append((time.perf_counter() - t0) * 1000)
    return out


def as_keyword_leg(search):
    """A `search(query, k)` option in Collection.bm25's place, whose callers also pass the filter's allowed ids
    (None here: these benchmarks do not filter)."""
    def bm25(query: str, k: int, allowed=None):
        assert allowed is None, "the benchmarked options do not filter"
        return search(query, k)
    return bm25


def pruned_fts5(col, n_texts: int):
    """FTS5 with the query cut to its 6 rarest terms (each term's row count from an fts5vocab table)."""
    from edgerag.store import dedup, keyword

    col.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.kw_vocab USING fts5vocab(main, texts_fts, 'row')")

    def search(query: str, k: int):
        df = []
        for t in dict.fromkeys(t for t in dedup.normalise(query) if len(t) > 1):
            row = col.conn.execute("SELECT doc FROM temp.kw_vocab WHERE term = ?", (keyword.tokenize(t)[0],)).fetchone()
            if row and row[0] <= n_texts / 2:
                df.append((row[0], t))
        if not df:
            return []
        match = " OR ".join(f'"{t}"' for _, t in sorted(df)[:6])
        return [(r[0], -r[1]) for r in col.conn.execute(
            "SELECT rowid, bm25(texts_fts) AS s FROM texts_fts WHERE texts_fts MATCH ? ORDER BY s LIMIT ?", (match, k))]

    return search


def bm25s_index(rows):
    """The bm25s library on the same tokens: full build, query via get_scores, update = full re-index."""
    import bm25s
    import numpy as np

    from edgerag.store import keyword

    def build(rows):
        model = bm25s.BM25(method="robertson", k1=keyword.K1, b=keyword.B)
        model.index([keyword.tokenize(keyword.indexed_words(h, t)) for _, h, t in rows], show_progress=False)
        return model

    t0 = time.perf_counter()
    model = build(rows)
    seconds = time.perf_counter() - t0
    ids = np.array([r[0] for r in rows])

    def search(query: str, k: int):
        terms = [t for t in keyword.query_terms(query) if t in model.vocab_dict]
        if not terms:
            return []
        scores = model.get_scores(terms)
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    t0 = time.perf_counter()
    build(list(rows) + [(10**9, None, "Zymurgy is the chemistry of fermentation.")])  # no incremental add
    update = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
    return seconds, size, search, update


def fts5_build(texts) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "f.sqlite")
        db.execute("CREATE VIRTUAL TABLE f USING fts5(text, tokenize='porter unicode61')")
        t0 = time.perf_counter()
        with db:
            db.executemany("INSERT INTO f(rowid, text) VALUES (?, ?)", texts)
        seconds = time.perf_counter() - t0
        size = sum(r[0] for r in db.execute("SELECT sum(length(block)) FROM f_data"))
        t0 = time.perf_counter()
        with db:  # one new text: the trigger's insert, inside the document's transaction
            db.execute("INSERT INTO f(rowid, text) VALUES (?, ?)", (10**9, "Zymurgy is the chemistry of fermentation."))
        update = time.perf_counter() - t0
        db.close()
    return seconds, size, update


def tantivy_index(texts):
    import tantivy

    from edgerag.store import dedup

    folder = tempfile.mkdtemp()
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=True, indexed=True, fast=True)
    sb.add_text_field("text", stored=False, tokenizer_name="en_stem", index_option="freq")
    index = tantivy.Index(sb.build(), path=folder)
    t0 = time.perf_counter()
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    for tid, text in texts:
        writer.add_document(tantivy.Document(id=tid, text=text))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())
    searcher = index.searcher()

    def search(query: str, k: int):
        terms = list(dict.fromkeys(t for t in dedup.normalise(query) if len(t) > 1))
        if not terms:
            return []
        hits = searcher.search(index.parse_query(" OR ".join(terms), ["text"]), k).hits
        return [(searcher.doc(addr)["id"][0], score) for score, addr in hits]

    def update() -> float:
        t0 = time.perf_counter()
        w = index.writer(heap_size=15_000_000, num_threads=1)
        w.add_document(tantivy.Document(id=10**9, text="Zymurgy is the chemistry of fermentation."))
        w.commit()
        w.wait_merging_threads()
        index.reload()
        index.searcher().search(index.parse_query("zymurgy", ["text"]), 1)
        return time.perf_counter() - t0

    return seconds, size, search, update


if __name__ == "__main__":
    main()
