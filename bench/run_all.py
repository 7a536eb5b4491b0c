"""Run every benchmark in turn (never two at once: they would share the same cores) and write
docs/results/bench.md: the machine it ran on, a summary table of issue 14's measures (each script prints its
rows as `HEADLINE {json}` lines, bench/_common.headline) with a plot (docs/results/bench.png), then each script's
command and full output. The README's benchmark table is the summary table, copied from that file between the
`bench-table` markers by this script.

Run: make bench   (or: flock /tmp/edgerag-bench.lock .venv/bin/python bench/run_all.py [SCRIPT ...])
Naming scripts reruns only those: each script's latest rows and output are kept in docs/results/bench.json, so
bench.md (and the README table) still show every script, each with the time it ran. `--no-readme` leaves
README.md alone.
"""

import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from edgerag.fileio import write_text_atomic  # noqa: E402  (light: no model or training code)

RESULTS = REPO / "docs" / "results" / "bench.md"
RECORD = RESULTS.with_suffix(".json")  # each script's latest run: {script: {started, machine, ok, rows, section}}
PLOT = RESULTS.with_name("bench.png")
README = REPO / "README.md"
MARKERS = ("<!-- bench-table:start (written by bench/run_all.py from docs/results/bench.md) -->",
           "<!-- bench-table:end -->")
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
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
        simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags.split()]
        cpu += f" ({', '.join(simd) or 'no AVX2'})"
    except (OSError, StopIteration):
        pass
    try:
        mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal"))) / 2**20
        mem_s = f", {mem:.0f} GiB RAM"
    except (OSError, StopIteration):
        mem_s = ""
    return (f"{cpu}, {os.cpu_count()} logical cores{mem_s}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}")


def number(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}" if abs(x) >= 0.1 else \
        f"{x:.3f}"


def with_unit(x: float | None, unit: str) -> str:
    if x is not None and not unit:  # a unitless score (cosine, recall): its 4 digits are the point
        return f"{x:.4f}"
    return "—" if x is None else f"{number(x)}{'' if not unit else 'x' if unit == 'x' else ' ' + unit}"


def summary_table(rows: list[dict]) -> str:
    lines = ["| measure | edgerag | baseline, same run | target | met | details |", "|---|---|---|---|---|---|"]
    for r in rows:
        base = f"{r['baseline_name']} {with_unit(r['baseline'], r['unit'])}" if r["baseline"] is not None else "—"
        target = "—" if r["target"] is None else f"{'≤' if r['lower_is_better'] else '≥'} " \
                                                 f"{with_unit(r['target'], r['unit'])}"
        met = {True: "met", False: "**missed**", None: "—"}[r["met"]]
        lines.append(f"| {r['measure']} (`bench/{r['script']}`) | {with_unit(r['ours'], r['unit'])} | {base} | "
                     f"{target} | {met} | {r['detail']} |")
    return "\n".join(lines)


def plot(rows: list[dict]) -> bool:
    """One small panel per measure: edgerag and its same-run baseline as bars, the target as a dashed line."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    nrows = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
    for ax, r in zip(axes.flat, rows):
        names, values = ["edgerag"], [r["ours"]]
        if r["baseline"] is not None:
            names.append(r["baseline_name"][:22])
            values.append(r["baseline"])
        colours = ["tab:green" if r["met"] in (True, None) else "tab:red", "tab:grey"][:len(values)]
        ax.bar(names, values, color=colours)
        if r["target"] is not None:
            ax.axhline(r["target"], color="black", linestyle="--", linewidth=1)
        ax.set_title(r["measure"][:48], fontsize=8)
        ax.set_ylabel(r["unit"] or "value", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.suptitle("make bench: edgerag (green met, red missed), same-run baseline (grey), target (dashed)", fontsize=9)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=100)
    return True


def update_readme(table: str, stamp: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = MARKERS
    if start not in text or end not in text:
        print(f"README.md has no {start} ... {end} block: not updated", file=sys.stderr)
        return
    block = (f"{start}\n{stamp} (every figure below is copied from "
             f"[docs/results/bench.md](docs/results/bench.md)):\n\n{table}\n{end}")
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.S)
    README.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    readme = "--no-readme" not in argv
    scripts = [a for a in argv if a != "--no-readme"] or SCRIPTS
    unknown = [s for s in scripts if s not in SCRIPTS]
    if unknown:
        print(f"not one of make bench's scripts: {', '.join(unknown)} (they are: {', '.join(SCRIPTS)})",
              file=sys.stderr)
        return 2
    record = json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.is_file() else {}
    where = machine()
    failed = []
    for script in scripts:
        started = datetime.now(timezone.utc)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script)], stdout=subprocess.PIPE, text=True)
        rows, shown = [], []
        for line in proc.stdout.splitlines():
            if line.startswith("HEADLINE "):
                rows.append({**json.loads(line[len("HEADLINE "):]), "script": script})
            else:
                shown.append(line)
        sys.stdout.write("\n".join(shown) + "\n")
        sys.stdout.flush()
        if proc.returncode != 0:
            failed.append(script)
        status = "" if proc.returncode == 0 else f" — FAILED (exit {proc.returncode})"
        out = "\n".join(shown).strip()
        record[script] = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "machine": where, "ok": proc.returncode == 0,
                          "rows": rows, "section": f"## {script}{status}\n\n`.venv/bin/python bench/{script}` "
                                                   f"({time.perf_counter() - t0:.0f} s, run {started:%Y-%m-%d %H:%M} "
                                                   f"UTC, load average {load:.1f} at start)\n\n```\n{out}\n```\n"}
        # written after every script, so a run cut short still leaves what it measured
        write_results(record, readme)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def write_results(record: dict, readme: bool) -> None:
    done = [s for s in SCRIPTS if s in record]
    rows = [r for s in done for r in record[s]["rows"]]
    table = summary_table(rows)
    has_plot = bool(rows) and plot(rows)
    runs = sorted({record[s]["started"] for s in done})
    machines = sorted({record[s]["machine"] for s in done})
    when = runs[0] if len(runs) == 1 else f"{runs[0]} to {runs[-1]} (each script's time is in its section)"
    stamp = f"Run {when} by `make bench` on: {'; '.join(machines)}"
    missing = [s for s in SCRIPTS if s not in record]
    failed = [s for s in done if not record[s]["ok"]]
    extra = [p for p in ("scale-curve.png", "keyword-leg.png") if (RESULTS.parent / p).is_file()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RECORD, json.dumps(record, indent=1) + "\n")
    write_text_atomic(RESULTS, (
        f"# Benchmark results\n\n{stamp}.\n"
        f"Scripts: {', '.join(done)}" + (f"; never run: {', '.join(missing)}" if missing else "")
        + (f"; FAILED: {', '.join(failed)}" if failed else "") + ".\n"
        "Each script interleaves ours and its named baseline in the same run (ratios are medians of pairs); see each "
        "script's docstring for what is measured and what is synthetic.\n\n"
        f"## Summary (issue 14's measures)\n\n{table}\n\n"
        + ("![summary](bench.png)\n\n" if has_plot else "")
        + "".join(f"![{p}]({p})\n\n" for p in extra)
        + "\n".join(record[s]["section"] for s in done)))
    if readme and rows:
        update_readme(table, stamp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
