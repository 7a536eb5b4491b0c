"""Embedding throughput: edgerag's ONNX int8 embedder vs sentence-transformers (PyTorch fp32), same 2,000
NFCorpus passages, same process, same thread count; plus mean cosine between the two embeddings.

Target (issue 14): >= 2.5x throughput with mean cosine >= 0.99. The two run interleaved, block by block
(5 blocks of 400, who goes first alternating); the ratio is the median over blocks with its spread.
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/embedding.py
"""

import os
import statistics

import numpy as np

from _common import bench_home, nfcorpus, report, timed

ROUNDS = 5


def main() -> None:
    bench_home()
    from edgerag.config import load_settings
    from edgerag.embed import load_active_embedder
    from edgerag.models.prepare import EMBEDDER_PACKAGE, package_dir

    settings = load_settings()
    texts = [f"{d.get('title', '')}. {d['text']}" for d in nfcorpus(2000)]
    threads = settings.n_threads
    onnx = load_active_embedder(settings)
    onnx.embed(texts[:64])  # warm-up

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    st = SentenceTransformer(str(package_dir(EMBEDDER_PACKAGE) / "model"), device="cpu")
    st.encode(texts[:64], batch_size=32)
    # Interleaved: the passages in ROUNDS blocks; each block is embedded by both, who goes first alternating.
    ours, base, t_ours, t_base, ratios = [], [], 0.0, 0.0, []
    size = len(texts) // ROUNDS
    for r in range(ROUNDS):
        block = texts[r * size:(r + 1) * size]
        runs = {}
        for name in (("ours", "base") if r % 2 == 0 else ("base", "ours")):
            runs[name] = timed(onnx.embed, block) if name == "ours" else \
                timed(st.encode, block, batch_size=32, normalize_embeddings=True)
        ours.append(runs["ours"][0])
        base.append(runs["base"][0])
        t_ours += runs["ours"][1]
        t_base += runs["base"][1]
        ratios.append(runs["base"][1] / runs["ours"][1])
    n = size * ROUNDS
    cos = float(np.mean(np.sum(np.concatenate(ours) * np.concatenate(base), axis=1)))
    report(f"embedding {n} NFCorpus passages, {threads} threads, {ROUNDS} interleaved blocks", [
        (f"ONNX {onnx.name}", f"{n / t_ours:.1f} passages/s ({t_ours:.1f} s)"),
        ("sentence-transformers PyTorch fp32 (baseline)", f"{n / t_base:.1f} passages/s ({t_base:.1f} s)"),
        ("speed ratio, median of blocks (target >= 2.5)",
         f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})"),
        ("mean cosine vs baseline (target >= 0.99)", f"{cos:.4f}"),
    ])

if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
