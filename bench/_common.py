"""Shared bench plumbing: a scratch EDGERAG_HOME with the bundled models, data paths, timing helpers."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
# Before any baseline (sentence-transformers, txtai, onnxruntime) is imported: their telemetry and hub access
# are switched off for the whole bench process, ours and the baselines alike (edgerag/offline.py).
import edgerag  # noqa: E402,F401


def bench_home() -> Path:
    """EDGERAG_HOME for benchmarks: $EDGERAG_BENCH_HOME or a fixed temp folder reused between runs."""
    home = Path(os.environ.get("EDGERAG_BENCH_HOME", Path(tempfile.gettempdir()) / "edgerag-bench"))
    os.environ["EDGERAG_HOME"] = str(home)
    from edgerag.config import load_settings
    from edgerag.models import ModelStore

    settings = load_settings()
    if not ModelStore(settings.models_dir).names():
        from edgerag.models.prepare import prepare_defaults

        prepare_defaults(ModelStore(settings.models_dir), say=lambda m: print("  " + m, file=sys.stderr))
    return home


def nfcorpus(limit: int | None = None) -> list[dict]:
    with zipfile.ZipFile(DATA / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip") as zf:
        lines = zf.read("nfcorpus/corpus.jsonl").decode("utf-8").splitlines()
    docs = [json.loads(line) for line in lines if line.strip()]
    return docs[:limit] if limit else docs


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n== {title}")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


__all__ = ["REPO", "DATA", "bench_home", "nfcorpus", "percentile", "timed", "report", "statistics"]
