"""Run every benchmark in turn (never two at once: they would share the same cores) and write
docs/results/bench.md: the machine it ran on, then each script's command and full output. The README's
benchmark table is copied from that file.

Run: make bench   (or: flock /tmp/edgerag-bench.lock .venv/bin/python bench/run_all.py [SCRIPT ...])
"""

import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "docs" / "results" / "bench.md"
SCRIPTS = ["embedding.py", "retrieval.py", "keyword_leg.py", "generation.py", "coldstart.py", "chat_cache.py",
           "ingest.py", "parsers.py", "eval_nfcorpus.py", "serve.py"]


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal"))) / 2**20
        mem_s = f", {mem:.0f} GiB RAM"
    except (OSError, StopIteration):
        mem_s = ""
    load = f", load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} logical cores{mem_s}{load}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}")


def main(scripts: list[str]) -> int:
    sections, failed = [], []
    started = datetime.now(timezone.utc)
    for script in scripts:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script)], stdout=subprocess.PIPE, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            failed.append(script)
        status = "" if proc.returncode == 0 else f" — FAILED (exit {proc.returncode})"
        sections.append(f"## {script}{status}\n\n`.venv/bin/python bench/{script}` "
                        f"({time.perf_counter() - t0:.0f} s)\n\n```\n{proc.stdout.strip()}\n```\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"# Benchmark results\n\nRun {started:%Y-%m-%d %H:%M} UTC by `make bench` on: {machine()}.\n"
                       "Each script interleaves ours and its named baseline in the same run; see each script's "
                       "docstring for what is measured and what is synthetic.\n\n" + "\n".join(sections),
                       encoding="utf-8")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or SCRIPTS))
