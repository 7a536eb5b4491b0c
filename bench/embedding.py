"""Embedding throughput: edgerag's ONNX int8 embedder vs sentence-transformers (PyTorch fp32), same 2,000
NFCorpus passages, same process, same thread count; plus mean cosine between the two embeddings.

Target: >= 3x throughput with mean cosine >= 0.99. Run: .venv/bin/python bench/embedding.py
"""

import os

import numpy as np

from _common import bench_home, nfcorpus, report, timed


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
    ours, t_ours = timed(onnx.embed, texts)

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    st = SentenceTransformer(str(package_dir(EMBEDDER_PACKAGE) / "model"), device="cpu")
    st.encode(texts[:64], batch_size=32)
    base, t_base = timed(st.encode, texts, batch_size=32, normalize_embeddings=True)
    cos = float(np.mean(np.sum(ours * base, axis=1)))
    report(f"embedding {len(texts)} NFCorpus passages, {threads} threads", [
        (f"ONNX {onnx.name}", f"{len(texts) / t_ours:.1f} passages/s ({t_ours:.1f} s)"),
        ("sentence-transformers PyTorch fp32 (baseline)", f"{len(texts) / t_base:.1f} passages/s ({t_base:.1f} s)"),
        ("speed ratio (target >= 3.0)", f"{t_base / t_ours:.2f}x"),
        ("mean cosine vs baseline (target >= 0.99)", f"{cos:.4f}"),
    ])


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
