"""Run directories: `<runs_dir>/<timestamp>-<name>/` with config.json, results.jsonl, summary.json, report.md, *.png.

results.jsonl is appended (and flushed to disk) one question at a time, so an interrupted run keeps what it did;
`RunDir.resume` reopens it, checks the new command asks for the same evaluation, and hands back the done keys.
Summaries are always computed from the whole file, so a resumed run reports on every question.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from ..errors import BadInputError
from ..fileio import write_text_atomic
from .metrics import Estimate, bootstrap_ci, paired_bootstrap

CONFIG, RESULTS, SUMMARY, REPORT = "config.json", "results.jsonl", "summary.json", "report.md"


def _dump(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=lambda o: o.as_dict() if hasattr(o, "as_dict")
                      else str(o))


class RunDir:
    def __init__(self, path: Path, config: dict):
        self.path, self.config = Path(path), config

    @classmethod
    def create(cls, runs_dir: Path, name: str, config: dict) -> "RunDir":
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
        path, n = Path(runs_dir) / f"{stamp}-{slug}", 1
        while path.exists():  # two runs started in the same second
            n += 1
            path = Path(runs_dir) / f"{stamp}-{slug}-{n}"
        path.mkdir(parents=True)
        run = cls(path, config)
        (path / CONFIG).write_text(_dump(config) + "\n", encoding="utf-8")
        return run

    @classmethod
    def resume(cls, path: Path, config: dict, identity: Iterable[str]) -> "RunDir":
        """Reopen a run; the `identity` keys of the config (what is evaluated, on what) must match."""
        path = Path(path).expanduser()
        if not (path / CONFIG).is_file():
            raise BadInputError(f"{path}: not a run directory (no {CONFIG})")
        old = json.loads((path / CONFIG).read_text(encoding="utf-8"))
        for key in identity:
            if old.get(key) != config.get(key):
                raise BadInputError(f"{path}: cannot resume, {key} was {old.get(key)!r} and is now "
                                    f"{config.get(key)!r}; run the same command with --resume")
        run = cls(path, old)
        run._drop_torn_line()
        return run

    def _drop_torn_line(self) -> None:
        """A kill mid-write can leave half a line at the end: drop it (that question is simply redone)."""
        file = self.path / RESULTS
        if not file.is_file():
            return
        raw = file.read_bytes()
        if raw and not raw.endswith(b"\n"):
            file.write_bytes(raw[: raw.rfind(b"\n") + 1])

    def append(self, record: dict) -> None:
        with open(self.path / RESULTS, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict]:
        file = self.path / RESULTS
        if not file.is_file():
            return []
        out = []
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BadInputError(f"{file} line {n}: invalid JSON ({exc.msg})") from exc
        return out

    def write(self, filename: str, text: str) -> Path:
        return write_text_atomic(self.path / filename, text)

    def merged_timings(self, new: dict) -> dict:
        """Timings of earlier (interrupted) sessions of this run, updated with this session's."""
        old = {}
        if (self.path / SUMMARY).is_file():
            old = json.loads((self.path / SUMMARY).read_text(encoding="utf-8")).get("timings", {})
        return {**old, **new}

    def write_summary(self, summary: dict) -> Path:
        return self.write(SUMMARY, _dump(summary) + "\n")


# -- summaries ---------------------------------------------------------------------------------------------------
def summarise(records: list[dict], system_key: str, item_key: str, metrics: dict[str, bool | None], systems: list[str],
              resamples: int = 1000, seed: int = 0) -> tuple[dict, list[dict]]:
    """Per system, each metric's mean and bootstrap CI; then each later system against the first on the
    questions both answered, with a paired-bootstrap CI of the difference and a verdict.
    metrics: name → higher_is_better (None: no verdict)."""
    by_system: dict[str, dict[str, dict]] = {s: {} for s in systems}
    for r in records:
        if r.get(system_key) in by_system:
            by_system[r[system_key]][r[item_key]] = r
    table = {s: {m: bootstrap_ci([r.get(m) for r in rows.values()], resamples, seed) for m in metrics}
             for s, rows in by_system.items()}
    comparisons = []
    base = systems[0] if systems else None
    for cand in systems[1:]:
        shared = [k for k in by_system[base] if k in by_system[cand]]
        row = {"base": base, "candidate": cand, "n": len(shared), "metrics": {}}
        for m, higher in metrics.items():
            diff, word = paired_bootstrap([by_system[base][k].get(m) for k in shared],
                                          [by_system[cand][k].get(m) for k in shared], resamples, seed,
                                          higher_is_better=bool(higher))
            if higher is None:  # a descriptive metric (e.g. answer length): a difference, but no verdict
                word = "n/a"
            row["metrics"][m] = {"diff": diff, "verdict": word}
        comparisons.append(row)
    return table, comparisons


# -- Markdown ----------------------------------------------------------------------------------------------------
def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def metric_rows(systems: dict, metrics: list[str], fmt: Callable[[str, Estimate], str]) -> list[list[str]]:
    return [[name, *[fmt(m, _est(values[m])) for m in metrics]] for name, values in systems.items()]


def metric_columns(systems: dict, metrics: list[str], fmt: Callable[[str, Estimate], str]) -> list[list[str]]:
    """The transpose of metric_rows: one row per metric, one column per system (for many metrics)."""
    return [[m, *[fmt(m, _est(values[m])) for values in systems.values()]] for m in metrics]


def comparison_rows(comparisons: list[dict], metrics: list[str],
                    fmt: Callable[[str, Estimate], str]) -> list[list[str]]:
    rows = []
    for c in comparisons:
        for m in metrics:
            cell = c["metrics"][m]
            rows.append([f"{c['candidate']} − {c['base']}", m, fmt(m, _est(cell["diff"])), cell["verdict"]])
    return rows


def _est(value) -> Estimate:
    return value if isinstance(value, Estimate) else Estimate(**value)


def config_block(config: dict) -> str:
    return "```json\n" + _dump(config) + "\n```"
