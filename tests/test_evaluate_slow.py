"""The QA harness end to end with the real bundled models (SmolLM2 GGUF + MiniLM ONNX) on a few XQuAD questions."""

import json

import pytest

from conftest import shared

pytestmark = pytest.mark.slow


@pytest.fixture()
def mini_xquad(tmp_path):
    """The first two paragraphs of the first two XQuAD articles, as a SQuAD file."""
    data = json.loads(shared("qa", "xquad_en", "xquad.en.json").read_text(encoding="utf-8"))
    data["data"] = [dict(a, paragraphs=a["paragraphs"][:2]) for a in data["data"][:2]]
    path = tmp_path / "mini_xquad.json"
    path.write_text(json.dumps(data))
    return path


def test_qa_open_and_oracle_with_smollm2(settings, mini_xquad, capsys):
    from edgerag.cli import main

    runs = {}
    for flag in ([], ["--oracle"]):
        assert main(["eval", "qa", "--squad", str(mini_xquad), "--limit", "3", "--seed", "1", "--json", *flag]) == 0
        summary = json.loads(capsys.readouterr().out)
        runs[summary["condition"]] = summary
        (label, system), = summary["systems"].items()
        assert label == "smollm2-135m-instruct-q4_1" and summary["questions"] == 3
        m = system["metrics"]
        assert m["tokens_per_s"]["mean"] > 0  # measured, whatever the speed: tests never time the machine
        assert 0 <= m["f1"]["mean"] <= 1 and m["answer_words"]["mean"] > 0
    oracle = runs["oracle"]["systems"]["smollm2-135m-instruct-q4_1"]["metrics"]
    assert oracle["gold_shown"]["mean"] == 1.0
    run_dir = runs["oracle"]["run_dir"]
    records = [json.loads(line) for line in open(f"{run_dir}/results.jsonl")]
    assert len(records) == 3 and all(r["text"] for r in records)
    for name in ("config.json", "summary.json", "report.md", "answers.png"):
        assert (settings.runs_dir / run_dir.rsplit("/", 1)[1] / name).is_file()
