"""How far a confirmed citation can be trusted: the answer checker's verdict on the model's own markers against the
gold answer. Model-citation precision counts the markers the checker confirms; this says how many of the answers so
confirmed are right. The check tests support (the cited source states what the answer says, about what the question
asks), not correctness, so a wrong name or number taken from the right passage is confirmed: this measures how often.

Reads the results of `edgerag eval qa` runs (or `eval recheck` runs of them); no model runs.

    .venv/bin/python bench/checker_truth.py RUN_DIR [RUN_DIR ...] [--system LABEL]

Per run and system, for answers that carry a marker the model wrote and are not refusals:
- right: the reply contains a gold answer; partial: it shares words with one (F1 > 0); wrong: neither;
- confirmed: every marker the model wrote is confirmed by the checker; rejected: none is (some: in between).
Runs of the `--unanswerable` condition are left out: they have no right answer.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

TRUTHS = ("right", "partial", "wrong")
VERDICTS = ("confirmed", "some", "rejected")


def truth(record: dict) -> str:
    return "right" if record["contains"] else "partial" if record["f1"] > 0 else "wrong"


def verdict(record: dict) -> str:
    share = record["model_citation_precision"]
    return "confirmed" if share == 1 else "rejected" if share == 0 else "some"


def table(records: list[dict]) -> Counter:
    """Answerable questions only: an `--unanswerable` run has no right answer to compare with."""
    return Counter((truth(r), verdict(r)) for r in records
                   if r.get("condition") != "unanswerable" and r.get("model_markers") and not r.get("refusal")
                   and r.get("model_citation_precision") is not None)


def report(name: str, counts: Counter) -> str:
    confirmed = sum(counts[(t, "confirmed")] for t in TRUTHS)
    wrong = sum(counts[("wrong", v)] for v in VERDICTS)
    right = sum(counts[("right", v)] for v in VERDICTS)
    rows = [f"| {t} | " + " | ".join(str(counts[(t, v)]) for v in VERDICTS) + " |" for t in TRUTHS]
    return "\n".join([
        f"\n{name}: {sum(counts.values())} answers with the model's own markers",
        "| gold \\ checker | " + " | ".join(VERDICTS) + " |", "|---|---|---|---|", *rows,
        f"- confirmed answers that are right: {counts[('right', 'confirmed')]}/{confirmed}"
        f" ({100 * counts[('right', 'confirmed')] / max(confirmed, 1):.1f}%)",
        f"- wrong answers confirmed: {counts[('wrong', 'confirmed')]}/{wrong}"
        f" ({100 * counts[('wrong', 'confirmed')] / max(wrong, 1):.1f}%)",
        f"- right answers not confirmed: {right - counts[('right', 'confirmed')]}/{right}"
        f" ({100 * (right - counts[('right', 'confirmed')]) / max(right, 1):.1f}%)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="`eval qa` or `eval recheck` run directories")
    parser.add_argument("--system", help="only this generator label")
    args = parser.parse_args()
    for run in args.runs:
        records = [json.loads(line) for line in (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        for system in sorted({r["system"] for r in records}):
            if args.system in (None, system):
                print(report(f"{run.name} · {system}", table([r for r in records if r["system"] == system])))


if __name__ == "__main__":
    main()
