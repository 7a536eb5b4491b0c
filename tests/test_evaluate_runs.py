"""Evaluation runs end to end on tiny data: BEIR retrieval with the real embedder, QA with a deterministic fake
generator (the pipeline, run dirs, resume, side-by-side verdicts and the gate; not the model's quality)."""

import json
import re
from dataclasses import dataclass, replace

import pytest

from edgerag.errors import BadInputError, ModelError, ModelNotFound
from edgerag.evaluate.report import RESULTS, RunDir
from edgerag.evaluate.systems import GeneratorSpec, resolve_all
from edgerag.generate.citations import content_words
from edgerag.generate.llm import GenerationStats
from edgerag.generate.prompts import NOT_FOUND
from test_evaluate_datasets import write_beir

TOPICS = {
    "light": ("Lighthouse", "The old lighthouse on Skerry Point was built in 1874. Its keeper was Mara Olsen, who "
                            "kept the lamp burning through the great storm."),
    "grind": ("Grinder", "The Aurora K3 coffee grinder has a two-year warranty. It does not cover burr wear."),
    "volc": ("Volcano", "Mount Kessel erupted in 1921. Its ash reached the coast of Varn within two days."),
    "bake": ("Bakery", "The Hollow Oak bakery opens at six. Its rye bread uses a sourdough starter."),
    "bees": ("Beekeeping", "Honey bees communicate the direction of flowers with a waggle dance."),
    "tide": ("Tides", "Spring tides happen when the sun and the moon line up, making the highest high tides."),
}
# a document long enough to be split into several chunks; the query hits its end
LONG = " ".join(f"Chapter {i} of the railway history describes station number {i} and its timetable."
                for i in range(60)) + " The final chapter reveals that the Glenfinnan viaduct has 21 arches."


def tiny_beir(folder):
    corpus = [{"_id": k, "title": t, "text": x} for k, (t, x) in TOPICS.items()]
    corpus.append({"_id": "rail", "title": "Railway history", "text": LONG})
    queries = [{"_id": "q1", "text": "When was the Skerry Point lighthouse built?"},
               {"_id": "q2", "text": "coffee grinder warranty burr wear"},
               {"_id": "q3", "text": "waggle dance of honey bees"},
               {"_id": "q4", "text": "How many arches does the Glenfinnan viaduct have?"}]
    qrels = "query-id\tcorpus-id\tscore\nq1\tlight\t2\nq2\tgrind\t1\nq3\tbees\t2\nq3\ttide\t0\nq4\trail\t1\n"
    return write_beir(folder, corpus, queries, qrels)


@pytest.fixture()
def beir(tmp_path):
    return tiny_beir(tmp_path / "tiny")


def test_retrieval_eval_end_to_end_and_resume(settings, beir):
    from edgerag.evaluate.retrieval import RetrievalConfig, run_retrieval_eval

    events = []
    result = run_retrieval_eval(settings, RetrievalConfig(str(beir)), on_event=events.append)
    run = result.run_dir
    assert run.parent == settings.runs_dir and run.name.endswith("-retrieval-tiny")
    for name in ("config.json", RESULTS, "summary.json", "report.md", "metrics.png", "recall_at_k.png",
                 "differences.png"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["systems"]) == ["dense", "bm25", "hybrid"] and summary["queries"] == 4
    for system in summary["systems"].values():
        ndcg = system["metrics"]["ndcg@10"]
        assert ndcg["mean"] >= 0.9 and ndcg["lo"] <= ndcg["mean"] <= ndcg["hi"]
        assert system["metrics"]["recall@100"]["mean"] == 1.0
    records = [json.loads(line) for line in (run / RESULTS).read_text().splitlines()]
    assert len(records) == 12
    rail = [r for r in records if r["query_id"] == "q4"]
    # the long document is several chunks but ranks once, at the rank of its best chunk
    assert all(r["top10"].count("rail") == 1 and r["relevant_ranks"][0] == 1 for r in rail)
    assert "| bm25 |" in (run / "report.md").read_text()
    assert events[0].kind == "run" and any(e.kind == "phase" and e.phase.startswith("index") for e in events)

    # an interrupted run: 5 records kept and half a line; resuming finishes exactly the missing ones
    lines = (run / RESULTS).read_text().splitlines(keepends=True)
    (run / RESULTS).write_text("".join(lines[:5]) + lines[5][:20])
    events.clear()
    again = run_retrieval_eval(settings, RetrievalConfig(str(beir)), resume=run, on_event=events.append)
    records = [json.loads(line) for line in (run / RESULTS).read_text().splitlines()]
    assert sorted((r["system"], r["query_id"]) for r in records) == sorted(
        {(s, q) for s in ("dense", "bm25", "hybrid") for q in ("q1", "q2", "q3", "q4")})
    assert again.summary["systems"]["bm25"]["metrics"]["ndcg@10"].mean == \
        summary["systems"]["bm25"]["metrics"]["ndcg@10"]["mean"]
    # the scratch collection was reused: every document unchanged, nothing re-embedded
    assert {e.info for e in events if e.kind == "advance" and e.info in ("added", "unchanged")} == {"unchanged"}


def test_resume_refuses_a_different_evaluation(settings, beir):
    from edgerag.evaluate.retrieval import RetrievalConfig, run_retrieval_eval

    result = run_retrieval_eval(settings, RetrievalConfig(str(beir), modes=["bm25"]))
    with pytest.raises(BadInputError, match="cannot resume, systems was"):
        run_retrieval_eval(settings, RetrievalConfig(str(beir), modes=["dense"]), resume=result.run_dir)
    with pytest.raises(BadInputError, match="not a run directory"):
        run_retrieval_eval(settings, RetrievalConfig(str(beir)), resume=beir)


def test_bad_embedder_fails_before_any_work(settings, beir):
    from edgerag.evaluate.retrieval import RetrievalConfig, run_retrieval_eval

    with pytest.raises(ModelNotFound, match="no model named 'nope'"):
        run_retrieval_eval(settings, RetrievalConfig(str(beir), embedders=["nope"]))
    assert not settings.runs_dir.exists()


def test_cli_retrieval_json(settings, beir, capsys):
    from edgerag.cli import main

    assert main(["eval", "retrieval", "--beir", str(beir), "--mode", "bm25", "--limit", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["queries"] == 2 and list(out["systems"]) == ["bm25"]
    assert 0 <= out["systems"]["bm25"]["metrics"]["mrr@10"]["mean"] <= 1


def test_gate_embedder_int8_vs_fp32(settings, beir):
    from edgerag.evaluate.gate import gate_embedder

    result = gate_embedder(settings, beir, candidate="all-minilm-l6-v2-onnx-fp32")
    assert list(result.summary["systems"]) == ["all-minilm-l6-v2-onnx-int8:dense", "all-minilm-l6-v2-onnx-fp32:dense"]
    assert result.metric == "ndcg@10" and result.n == 4
    assert result.verdict == "no different" and abs(result.difference.mean) < 0.1  # quantization costs ~nothing
    assert len(list((settings.data_dir / "eval-collections").iterdir())) == 2  # one scratch collection each
    with pytest.raises(BadInputError, match="same embedder"):
        gate_embedder(settings, beir, candidate="all-minilm-l6-v2-onnx-int8")
    with pytest.raises(BadInputError, match="BM25 does not use the embedder"):
        gate_embedder(settings, beir, candidate="all-minilm-l6-v2-onnx-fp32", mode="bm25")


# -- QA with a fake generator ------------------------------------------------------------------------------------
QUESTIONS = [("q1", "When was the lighthouse on Skerry Point built?", "1874", "light"),
             ("q2", "How long is the warranty of the Aurora K3 grinder?", "two-year", "grind"),
             ("q3", "When did Mount Kessel erupt?", "1921", "volc"),
             ("q4", "What time does the Hollow Oak bakery open?", "six", "bake")]


def squad_file(tmp_path):
    data = {"data": [{"title": title, "paragraphs": [{"context": text, "qas": [
        {"id": qid, "question": q, "answers": [{"text": a, "answer_start": text.index(a)}]}
        for qid, q, a, key in QUESTIONS if key == k]}]} for k, (title, text) in TOPICS.items()]}
    path = tmp_path / "mini_squad.json"
    path.write_text(json.dumps(data))
    return path


class FakeGenerator:
    """Answers with the source sentence sharing most content words with the question, cited; refuses when no
    sentence shares two. `refuse_all` always refuses; `stop_after` simulates Ctrl-C on that call."""
    n_ctx = 2048

    def __init__(self, refuse_all=False, stop_after=None):
        self.refuse_all, self.stop_after, self.calls = refuse_all, stop_after, 0
        self.stats = GenerationStats()

    def count_tokens(self, text):
        return len(text.split())

    def stream_chat(self, messages, max_tokens=256, temperature=0.1, reuse_cache=True, stop=None):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        sources, _, question = messages[-1]["content"].rpartition("\n\nQuestion:")
        q_words = set(content_words(question))
        best, where = 0, None
        for number, text in re.findall(r"\[(\d+)\] \([^)]*\) (.*?)(?=\n\n\[\d+\] \(|\Z)", sources, re.S):
            for sentence in re.split(r"(?<=\.)\s+|\n\n", text):
                overlap = len(q_words & set(content_words(sentence)))
                if overlap > best:
                    best, where = overlap, (number, sentence.rstrip("."))
        answer = NOT_FOUND if self.refuse_all or best < 2 else f"{where[1]} [{where[0]}]."
        self.stats = GenerationStats(prompt_tokens=10, completion_tokens=len(answer.split()), first_token_s=0.01,
                                     total_s=0.11)
        yield answer


FAKES: dict = {}


@dataclass(frozen=True)
class FakeSpec(GeneratorSpec):
    def resolve(self, settings):
        return self

    def load(self, settings):
        return FAKES[self.label]


def test_qa_oracle_with_fake_generator(settings, tmp_path):
    from edgerag.evaluate.qa import QAConfig, run_qa_eval

    FAKES["reader"] = FakeGenerator()
    result = run_qa_eval(settings, QAConfig(squad=str(squad_file(tmp_path)), generators=[FakeSpec(label="reader")],
                                            condition="oracle"))
    m = result.summary["systems"]["reader"]["metrics"]
    assert m["contains"].mean == 1.0 and m["refusal"].mean == 0.0 and m["em"].mean == 0.0
    assert m["citation_precision"].mean == 1.0 and m["citation_recall"].mean == 1.0
    assert m["citation_supported"].mean == 1.0 and m["gold_shown"].mean == 1.0
    records = [json.loads(line) for line in (result.run_dir / RESULTS).read_text().splitlines()]
    q1 = next(r for r in records if r["item_id"] == "q1")
    assert q1["prediction"] == "The old lighthouse on Skerry Point was built in 1874."
    # F1 by hand: prediction {old, lighthouse, on, skerry, point, was, built, in, 1874} vs {1874}: P=1/9, R=1
    assert q1["f1"] == pytest.approx(2 * (1 / 9) / (1 / 9 + 1))
    assert q1["answer_words"] == 10 and q1["sources"] == [{"n": 1, "key": "Lighthouse-0", "relevant": True}]
    assert (result.run_dir / "answers.png").is_file() and "## Examples" in (result.run_dir / "report.md").read_text()


def test_qa_side_by_side_verdict_and_resume(settings, tmp_path):
    from edgerag.evaluate.qa import QAConfig, run_qa_eval

    FAKES["good"], FAKES["mute"] = FakeGenerator(), FakeGenerator(refuse_all=True, stop_after=2)
    config = QAConfig(squad=str(squad_file(tmp_path)), condition="oracle",
                      generators=[FakeSpec(label="good"), FakeSpec(label="mute")])
    with pytest.raises(KeyboardInterrupt):
        run_qa_eval(settings, config)
    run = next(settings.runs_dir.iterdir())
    assert len((run / RESULTS).read_text().splitlines()) == 4 + 2  # all of "good", 2 of "mute"
    FAKES["good"], FAKES["mute"] = FakeGenerator(stop_after=0), FakeGenerator(refuse_all=True)
    result = run_qa_eval(settings, config, resume=run)
    assert FAKES["mute"].calls == 2  # only the two missing questions were asked again
    s = result.summary
    assert s["questions"] == 4 and s["verdicts"] == {"mute": "worse"}
    comparison = s["comparisons"][0]
    assert comparison["metrics"]["contains"]["diff"].mean == -1.0
    assert comparison["metrics"]["refusal"]["verdict"] == "worse"  # more refusals on answerable questions
    assert comparison["metrics"]["answer_words"]["verdict"] == "n/a"
    assert (run / "differences.png").is_file() and "verdict on f1: **mute: worse**" in (run / "report.md").read_text()


def test_qa_unanswerable_removes_gold_passages(settings, tmp_path):
    from edgerag.evaluate.qa import QAConfig, run_qa_eval

    FAKES["reader"] = FakeGenerator()
    result = run_qa_eval(settings, QAConfig(squad=str(squad_file(tmp_path)), generators=[FakeSpec(label="reader")],
                                            condition="unanswerable", top_k=3))
    records = [json.loads(line) for line in (result.run_dir / RESULTS).read_text().splitlines()]
    gold = {qid: f"{TOPICS[key][0]}-0" for qid, _, _, key in QUESTIONS}
    for r in records:
        assert r["sources"] and all(s["key"] != gold[r["item_id"]] and not s["relevant"] for s in r["sources"])
        assert r["dropped"] >= 1 and r["contains"] == 0.0
        assert r["pipeline_refusal"] >= r["refusal"]
    m = result.summary["systems"]["reader"]["metrics"]
    assert m["refusal"].mean == 1.0  # the fake finds no sentence sharing two words with any question
    assert (result.run_dir / "refusals.png").is_file()


def test_recheck_regrades_recorded_answers_without_generating(settings, tmp_path):
    """A recheck replays each recorded reply through the same pipeline: untouched answers come out exactly as
    recorded, and a changed reply is graded as what it now says (here: a refusal, and an echo of the prompt)."""
    from edgerag.evaluate.qa import QAConfig, run_qa_eval
    from edgerag.evaluate.recheck import recheck_qa_run
    from edgerag.generate.prompts import SYSTEM_PROMPT

    FAKES["reader"] = FakeGenerator()
    first = run_qa_eval(settings, QAConfig(squad=str(squad_file(tmp_path)), generators=[FakeSpec(label="reader")],
                                           condition="oracle"))
    records = [json.loads(line) for line in (first.run_dir / RESULTS).read_text().splitlines()]
    by_id = {r["item_id"]: r for r in records}
    by_id["q2"]["text"] = NOT_FOUND
    by_id["q3"]["text"] = SYSTEM_PROMPT + " Mount Kessel erupted in 1921 [1]."
    (first.run_dir / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in records))

    # The fake is not in the store: the recheck counts tokens with the active generator, as a real run would.
    result = recheck_qa_run(settings, first.run_dir)
    assert result.run_dir != first.run_dir and result.run_dir.name.endswith("-recheck")
    regraded = {r["item_id"]: r for r in map(json.loads, (result.run_dir / RESULTS).read_text().splitlines())}
    assert regraded["q1"] == by_id["q1"] and regraded["q4"] == by_id["q4"]
    assert regraded["q2"]["refusal"] == 1.0 and regraded["q2"]["prediction"] == "" and by_id["q2"]["refusal"] == 0.0
    assert regraded["q3"]["refusal"] == 0.0 and regraded["q3"]["contains"] == 1.0  # an echo is an answer
    assert result.summary["systems"]["reader"]["metrics"]["refusal"].mean == 0.25
    assert json.loads((result.run_dir / "config.json").read_text())["rechecked_from"] == str(first.run_dir.resolve())
    with pytest.raises(BadInputError, match="not a run directory"):
        recheck_qa_run(settings, tmp_path)


def test_gate_generator_returns_a_verdict(settings, tmp_path):
    from edgerag.evaluate.datasets import load_squad
    from edgerag.evaluate.gate import gate_generator

    FAKES["base"], FAKES["candidate"] = FakeGenerator(refuse_all=True), FakeGenerator()
    heldout = load_squad(squad_file(tmp_path))  # an in-memory held-out set, as finetuning would build
    result = gate_generator(settings, heldout, candidate=FakeSpec(label="candidate"), base=FakeSpec(label="base"),
                            condition="oracle", metric="contains")
    assert result.verdict == "better" and result.passed
    assert (result.base.mean, result.candidate.mean, result.difference.mean, result.n) == (0.0, 1.0, 1.0, 4)
    assert result.run_dir.name.endswith("gate-mini-squad-oracle")
    with pytest.raises(BadInputError, match="cannot gate"):
        gate_generator(settings, heldout, candidate="x", metric="answer_words")


# -- generator specs ---------------------------------------------------------------------------------------------
def test_generator_spec_parsing():
    assert GeneratorSpec.parse(None) == GeneratorSpec()
    assert GeneratorSpec.parse("smollm") == GeneratorSpec("smollm")
    assert GeneratorSpec.parse("tuned=smollm+runs/ft/adapter.gguf") == GeneratorSpec("smollm", "runs/ft/adapter.gguf",
                                                                                      "tuned")
    assert GeneratorSpec.parse("/m/a=b.gguf") == GeneratorSpec("/m/a=b.gguf")  # '=' inside a path is no label


def test_generator_specs_resolve_or_fail_early(settings, tmp_path):
    active = resolve_all(settings, [])[0]
    assert active.model == "smollm2-135m-instruct-q4_1" and active.label == active.model
    gguf = tmp_path / "tuned.gguf"
    gguf.write_bytes(b"GGUF")
    two = resolve_all(settings, [GeneratorSpec.parse(None), GeneratorSpec.parse(f"{gguf}+{gguf}"),
                                 GeneratorSpec.parse(None)])
    assert [s.label for s in two] == [active.label, "tuned+tuned", f"{active.label}#2"]
    with pytest.raises(ModelError, match="nope.gguf: generator GGUF file not found"):
        GeneratorSpec.parse(str(tmp_path / "nope.gguf")).resolve(settings)
    with pytest.raises(ModelError, match="missing.gguf: LoRA adapter not found"):
        GeneratorSpec.parse(f"{gguf}+{tmp_path / 'missing.gguf'}").resolve(settings)
    with pytest.raises(ModelError, match="not a GGUF generator"):
        GeneratorSpec.parse("all-minilm-l6-v2-onnx-int8").resolve(settings)


def test_cli_missing_generator_is_an_error_before_any_work(settings, tmp_path, capsys):
    from edgerag.cli import main

    code = main(["eval", "qa", "--squad", str(squad_file(tmp_path)), "--generator", str(tmp_path / "gone.gguf")])
    assert code == 1
    assert "gone.gguf: generator GGUF file not found" in capsys.readouterr().err
    assert not settings.runs_dir.exists() and not (settings.data_dir / "eval-collections").exists()


def test_run_dir_names_and_torn_lines(tmp_path):
    a = RunDir.create(tmp_path, "my run/1", {"kind": "x"})
    b = RunDir.create(tmp_path, "my run/1", {"kind": "x"})
    assert a.path != b.path and a.path.name.endswith("-my-run-1")
    a.append({"k": 1})
    with open(a.path / RESULTS, "a") as f:
        f.write('{"k": 2, "trunc')
    resumed = RunDir.resume(a.path, {"kind": "x"}, ["kind"])
    assert resumed.records() == [{"k": 1}]
    with pytest.raises(BadInputError, match="kind was 'x' and is now 'y'"):
        RunDir.resume(a.path, {"kind": "y"}, ["kind"])
    assert replace(GeneratorSpec("m"), label="x").label == "x"
