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
    store = ModelStore(settings.models_dir)
    from edgerag.models.prepare import EMBEDDER_INT8, INT8_RECIPE, prepare_defaults

    # prepared when empty, and again when `models prepare` has changed its recipe since (what users get now)
    if not store.names() or not store.exists(EMBEDDER_INT8) or \
            store.get(EMBEDDER_INT8).lineage.get("made_by") != INT8_RECIPE:
        prepare_defaults(store, say=lambda m: print("  " + m, file=sys.stderr))
        from edgerag.store.collection import remove_collection

        for name in ("bench-demo", "bench-ingest"):  # the benches' own scratch collections, of the old embedder
            if (settings.collections_dir / name).is_dir():
                remove_collection(settings.collections_dir, name)
        from edgerag.evaluate.corpus import eval_collections_dir

        for folder in eval_collections_dir(settings).glob("*"):  # named by embedder name, not its checksum
            remove_collection(folder.parent, folder.name)
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


def headline(measure: str, ours: float, unit: str, target: float | None, lower_is_better: bool = True,
             baseline: float | None = None, baseline_name: str = "", detail: str = "") -> None:
    """One of issue 14's table rows, printed as a `HEADLINE {json}` line: bench/run_all.py collects them into the
    summary table and plot at the top of docs/results/bench.md (the README's table is copied from there)."""
    met = None if target is None else (ours <= target if lower_is_better else ours >= target)
    print("HEADLINE " + json.dumps({"measure": measure, "ours": ours, "unit": unit, "target": target,
                                    "lower_is_better": lower_is_better, "baseline": baseline,
                                    "baseline_name": baseline_name, "met": met, "detail": detail}), flush=True)


__all__ = ["REPO", "DATA", "bench_home", "nfcorpus", "percentile", "timed", "report", "headline", "statistics"]
