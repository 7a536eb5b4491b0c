"""Retrieval quality on BEIR NFCorpus (test, 323 queries) against the published nDCG@10 baselines.

Baselines: BM25 32.5 (BEIR, Anserini multifield), all-MiniLM-L6-v2 31.59 (its model card / MTEB). Runs
`edgerag eval retrieval` (dense, bm25, hybrid) through the library and prints ours / published. The first run
ingests the corpus into a scratch collection (~3-6 min on 2 cores); later runs reuse it (~20 s).
Run: .venv/bin/python bench/eval_nfcorpus.py [--embedder NAME]
"""

import argparse

from _common import DATA, bench_home, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedder", default=None, help="embedder model name (default: the active one)")
    args = parser.parse_args()
    bench_home()
    from edgerag.config import load_settings
    from edgerag.evaluate.retrieval import RetrievalConfig, run_retrieval_eval

    config = RetrievalConfig(str(DATA / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip"),
                             embedders=[args.embedder], name="bench-nfcorpus")
    result = run_retrieval_eval(load_settings(), config)
    summary = result.summary
    rows = []
    for label, system in summary["systems"].items():
        m = system["metrics"]
        ndcg = m["ndcg@10"]
        line = (f"nDCG@10 {ndcg.mean * 100:5.2f} [{ndcg.lo * 100:.1f}, {ndcg.hi * 100:.1f}]  "
                f"R@100 {m['recall@100'].mean * 100:5.2f}  MRR@10 {m['mrr@10'].mean * 100:5.2f}")
        published = summary["published"].get(label, {}).get("ndcg@10")
        if published:
            line += f"  published {published * 100:.2f}  ratio {ndcg.mean / published:.3f}"
        rows.append((label, line))
    rows.append(("run dir", str(result.run_dir)))
    report(f"NFCorpus test ({summary['queries']} queries, {summary['corpus_documents']} docs)", rows)


if __name__ == "__main__":
    main()
