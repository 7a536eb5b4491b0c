"""bench/checker_truth.py: the checker's verdict on the model's own markers, crossed with the gold answer."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def record(system, contains, f1, precision, markers=1.0, refusal=0.0):
    """The fields of an `eval qa` results.jsonl record the bench reads."""
    return {"system": system, "contains": contains, "f1": f1, "model_citation_precision": precision,
            "model_markers": markers, "refusal": refusal}


def test_it_counts_confirmed_answers_that_are_right(tmp_path):
    run = tmp_path / "20261129-000000-v23-oracle300"
    run.mkdir()
    rows = [record("v23", 1.0, 0.9, 1.0),   # right, confirmed
            record("v23", 0.0, 0.0, 1.0),   # wrong, confirmed: the case the bench exists for
            record("v23", 0.0, 0.0, 1.0),
            record("v23", 0.0, 0.4, 0.0),   # partial, rejected
            record("v23", 1.0, 0.8, 0.0),   # right, rejected
            record("v23", 0.0, 0.0, 0.5),   # wrong, half its markers confirmed
            record("v23", 0.0, 0.0, None, markers=0.0),  # no marker of its own: not counted
            record("v23", 0.0, 0.0, None, refusal=1.0),  # a refusal: not counted
            record("base", 1.0, 0.2, 1.0),
            {**record("v23", 0.0, 0.0, 1.0), "condition": "unanswerable"}]  # no right answer to compare with
    (run / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, str(REPO / "bench" / "checker_truth.py"), str(run), "--system", "v23"],
                         capture_output=True, text=True, check=True).stdout
    assert "v23: 6 answers with the model's own markers" in out and "base" not in out
    assert "| right | 1 | 0 | 1 |" in out and "| partial | 0 | 0 | 1 |" in out and "| wrong | 2 | 1 | 0 |" in out
    assert "confirmed answers that are right: 1/3 (33.3%)" in out
    assert "wrong answers confirmed: 2/3 (66.7%)" in out
    assert "right answers not confirmed: 1/2 (50.0%)" in out
