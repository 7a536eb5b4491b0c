"""bench/run_all.py: rerunning one script replaces that script's rows and output and keeps every other script's,
in bench.md, its JSON record and the README's table (a subset run used to replace the whole table)."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import run_all  # noqa: E402

SCRIPT = '''import json
print("== {name}\\n  speed  {value} things/s")
print("HEADLINE " + json.dumps({{"measure": "{name} speed", "ours": {value}, "unit": "things/s", "target": 10.0,
      "lower_is_better": False, "baseline": None, "baseline_name": "", "met": {value} >= 10, "detail": ""}}))
raise SystemExit({code})
'''


@pytest.fixture
def bench(tmp_path, monkeypatch):
    scripts = tmp_path / "bench"
    scripts.mkdir()
    results = tmp_path / "docs" / "results" / "bench.md"
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{run_all.MARKERS[0]}\nold table\n{run_all.MARKERS[1]}\n\nafter\n", encoding="utf-8")
    monkeypatch.setattr(run_all, "HERE", scripts)
    monkeypatch.setattr(run_all, "SCRIPTS", ["a.py", "b.py"])
    monkeypatch.setattr(run_all, "RESULTS", results)
    monkeypatch.setattr(run_all, "RECORD", results.with_suffix(".json"))
    monkeypatch.setattr(run_all, "PLOT", results.with_name("bench.png"))
    monkeypatch.setattr(run_all, "README", readme)

    def write(name: str, value: float, code: int = 0) -> None:
        (scripts / name).write_text(SCRIPT.format(name=name[:-3], value=value, code=code), encoding="utf-8")
    return write, results, readme


def test_rerunning_one_script_keeps_the_others(bench):
    write, results, readme = bench
    write("a.py", 12.0)
    write("b.py", 3.0)
    assert run_all.main([]) == 0
    first = results.read_text(encoding="utf-8")
    assert "| a speed (`bench/a.py`) | 12.0 things/s |" in first
    assert "| b speed (`bench/b.py`) | 3.00 things/s |" in first

    write("b.py", 20.0)
    assert run_all.main(["b.py"]) == 0
    second = results.read_text(encoding="utf-8")
    assert "| a speed (`bench/a.py`) | 12.0 things/s |" in second  # kept from the first run
    assert "| b speed (`bench/b.py`) | 20.0 things/s | — | ≥ 10.0 things/s | met |" in second
    assert "3.00 things/s" not in second
    assert second.index("## a.py") < second.index("## b.py")  # make bench's order, whatever ran last
    record = json.loads(results.with_suffix(".json").read_text(encoding="utf-8"))
    assert [r["ours"] for s in ("a.py", "b.py") for r in record[s]["rows"]] == [12.0, 20.0]
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and "| a speed" in text and "| b speed" in text and text.endswith("after\n")


def test_a_failed_rerun_is_marked_and_unknown_scripts_are_refused(bench, capsys):
    write, results, _ = bench
    write("a.py", 12.0)
    write("b.py", 3.0, code=1)
    assert run_all.main(["a.py", "b.py"]) == 1
    text = results.read_text(encoding="utf-8")
    assert "FAILED: b.py" in text and "## b.py — FAILED (exit 1)" in text
    assert run_all.main(["c.py"]) == 2
    assert "not one of make bench's scripts: c.py" in capsys.readouterr().err
