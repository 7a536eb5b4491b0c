"""Embedding throughput: edgerag's ONNX int8 embedder vs sentence-transformers (PyTorch fp32), same 2,000
NFCorpus passages, same process, same thread count; plus mean cosine between the two embeddings.

Target (issue 14): >= 2.5x throughput with mean cosine >= 0.99. The two run interleaved, block by block
(5 blocks of 400, who goes first alternating); the ratio is the median over blocks with its spread.
`--also DIR` adds other ONNX embedder folders to the same interleaving (e.g. a store made by an older
`models prepare`, to see what a change of recipe bought); `--limit N` embeds fewer passages.
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/embedding.py [--limit N] [--also DIR ...]
"""

import argparse
import os
import statistics
from pathlib import Path

import numpy as np

from _common import bench_home, nfcorpus, report, timed

ROUNDS = 5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--also", nargs="*", default=[], help="more ONNX embedder folders to compare")
    args = parser.parse_args()
    bench_home()
    from edgerag.config import load_settings
    from edgerag.embed import OnnxEmbedder, load_active_embedder
    from edgerag.models.prepare import EMBEDDER_PACKAGE, package_dir

    settings = load_settings()
    texts = [f"{d.get('title', '')}. {d['text']}" for d in nfcorpus(args.limit)]
    threads = settings.n_threads
    onnx = load_active_embedder(settings)
    ours = {f"ONNX {onnx.name} (active)": onnx}
    for folder in args.also:
        ours[f"ONNX {folder}"] = OnnxEmbedder(Path(folder), threads=threads, batch_size=settings.embed_batch_size)
    for embedder in ours.values():
        embedder.embed(texts[:64])  # warm-up

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    st = SentenceTransformer(str(package_dir(EMBEDDER_PACKAGE) / "model"), device="cpu")
    st.encode(texts[:64], batch_size=32)
    # Interleaved: the passages in ROUNDS blocks; each block is embedded by all, who goes first alternating.
    names = ["base", *ours]
    vectors = {n: [] for n in names}
    seconds = {n: [] for n in names}
    size = len(texts) // ROUNDS
    for r in range(ROUNDS):
        block = texts[r * size:(r + 1) * size]
        for name in (names if r % 2 == 0 else names[::-1]):
            out, t = timed(st.encode, block, batch_size=32, normalize_embeddings=True) if name == "base" else \
                timed(ours[name].embed, block)
            vectors[name].append(out)
            seconds[name].append(t)
    n = size * ROUNDS
    base = np.concatenate(vectors["base"])
    rows = [("sentence-transformers PyTorch fp32 (baseline)",
             f"{n / sum(seconds['base']):.1f} passages/s ({sum(seconds['base']):.1f} s)")]
    for name in ours:
        ratios = [b / o for b, o in zip(seconds["base"], seconds[name])]
        cos = float(np.mean(np.sum(np.concatenate(vectors[name]) * base, axis=1)))
        rows += [(name, f"{n / sum(seconds[name]):.1f} passages/s ({sum(seconds[name]):.1f} s)"),
                 ("  speed ratio, median of blocks (target >= 2.5)",
                  f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})"),
                 ("  mean cosine vs baseline (target >= 0.99)", f"{cos:.4f}")]
    rows.append(("load average (1, 5, 15 min) at the end", " ".join(f"{x:.1f}" for x in os.getloadavg())))
    report(f"embedding {n} NFCorpus passages, {threads} threads, {ROUNDS} interleaved blocks", rows)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
