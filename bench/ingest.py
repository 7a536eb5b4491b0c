"""Ingest NFCorpus (3,633 abstracts written out as .txt files) and split the time into parse / chunk / embed /
index, with chunks/s and the share of time spent outside embedding.

Peak RSS is the whole process's (files written out, models loaded, ingest). Ingest time and disk size per 100k
chunks (issue 14's scale curve) are this run's, scaled linearly.
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/ingest.py [--limit N]
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import bench_home, headline, nfcorpus, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    bench_home()
    from edgerag.config import load_settings
    from edgerag.ingest import ingest
    from edgerag.store.collection import remove_collection

    settings = load_settings()
    docs = nfcorpus(args.limit)
    folder = Path(tempfile.mkdtemp(prefix="nfcorpus-"))
    for d in docs:
        (folder / f"{d['_id']}.txt").write_text(f"{d.get('title', '')}\n\n{d['text']}", encoding="utf-8")
    try:
        remove_collection(settings.collections_dir, "bench-ingest")
    except Exception:
        pass
    r = ingest(settings, [folder], "bench-ingest")
    again = ingest(settings, [folder], "bench-ingest")
    shutil.rmtree(folder)
    t = r.timings
    disk = sum(f.stat().st_size for f in (settings.collections_dir / "bench-ingest").rglob("*") if f.is_file())
    outside = r.seconds - t["embed"]
    report(f"ingest NFCorpus: {len(docs)} files, {r.new_chunks} chunks embedded", [
        ("total", f"{r.seconds:.1f} s"),
        *[(k, f"{v:.2f} s ({v / r.seconds:.0%})") for k, v in t.items()],
        ("documents/s (end to end; target >= 40)", f"{len(docs) / r.seconds:.1f}"),
        ("chunks/s (end to end)", f"{r.new_chunks / r.seconds:.1f}"),
        ("chunks/s (embedding only)", f"{r.new_chunks / max(t['embed'], 1e-9):.1f}"),
        ("share of time outside embedding", f"{outside / r.seconds:.1%}"),
        ("re-ingest (no changes)", f"{again.seconds:.2f} s, {again.new_chunks} chunks embedded"),
        ("failed files", str(len(r.failed))),
        ("collection on disk (SQLite + vectors.hnsw + keywords.bm25)", f"{disk / 2**20:.1f} MB"),
        ("per 100k chunks, scaled linearly from this run: ingest time / disk",
         f"{r.seconds / r.new_chunks * 100_000 / 60:.0f} min / {disk / r.new_chunks * 100_000 / 2**20:.0f} MB"),
        ("peak RSS of this process (target <= 600 MB)", f"{peak_rss_mb():.0f} MB"),
        ("peak RSS of the parser child process", f"{child_peak_rss_mb():.0f} MB"),
    ])
    headline("ingest NFCorpus (documents/s)", len(docs) / r.seconds, "docs/s", 40, lower_is_better=False,
             detail=f"{r.new_chunks / r.seconds:.1f} chunks/s end to end, embedding "
                    f"{r.new_chunks / max(t['embed'], 1e-9):.1f} chunks/s and {t['embed'] / r.seconds:.0%} of the time")
    headline("ingest peak RSS", peak_rss_mb(), "MB", 600)


def peak_rss_mb(who=None) -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF if who is None else who).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def child_peak_rss_mb() -> float:
    """The parser child's peak (parsing runs there, edgerag/ingest/isolate.py); counted once it has exited."""
    import resource

    from edgerag.ingest import isolate

    isolate.shared().close()
    return peak_rss_mb(resource.RUSAGE_CHILDREN)


if __name__ == "__main__":
    main()
