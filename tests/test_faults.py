"""The fault suite (bench/faults.py): a fast slice on every run, the whole of it under the `slow` mark.

- fuzzing: hostile files and a sample of ../shared/data/documents never crash ingest; each failure has a reason
  and a per-file time limit holds;
- kill -9 at random points (time, after the N-th commit, before the N-th vector save) during ingest, re-ingest
  after edits and reindex: the collection passes the integrity check, nothing is lost or duplicated, and the next
  run reaches the state of a run that was never killed; the same for `finetune train` and `finetune export`
  (bench/fault_finetune.py, slow), whose recovery rules (whole checkpoints only, torn files redone, staging
  folders never listed, a replaced model put back) are checked here directly;
- concurrent use: two ingests, search during ingest, rm/reindex/a TUI ingest during a CLI ingest, two writers in
  one process: refused with a message naming the holder, or safe;
- the finetuning loop obeys Cancel in every stage, and the gate resumes its own evaluation;
- a GGUF whose tokenizer the HF rebuild gets wrong is refused (token ids checked against llama.cpp).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, shared

sys.path.insert(0, str(REPO / "bench"))
import fault_cleanroom  # noqa: E402
import fault_fuzz  # noqa: E402
import faults  # noqa: E402


def _sample(every: int) -> list[Path]:
    docs = shared("documents")
    files = sorted(p for p in docs.rglob("*") if p.is_file())
    return files[::every]


def test_hostile_files_fail_by_name_without_crash(tmp_path):
    hostile = fault_fuzz.hostile_files(tmp_path / "hostile", big_mb=5, bomb_mb=260)
    result = fault_fuzz.fuzz(tmp_path / "work", [hostile] + _sample(25), limit=4, walk=[hostile / "links"])
    assert result["crashes"] == [] and result["stalls"] == []
    assert result["unnamed_failures"] == 0 and result["integrity"] == []
    reasons = dict(result["failures"])
    for name in ("truncated.pdf", "truncated.docx", "bomb.docx", "fake.pdf", "empty.pdf", "binary.txt"):
        assert reasons.get(name), f"{name} should fail with a reason: {reasons.get(name)!r}"
    assert reasons.get("unreadable.txt") == "permission denied"
    assert "one-line.txt" not in reasons or "file_time_limit" in reasons["one-line.txt"]


@pytest.mark.parametrize("scenario", ["ingest", "reingest", "reindex"])
def test_kill_at_random_points_fast(tmp_path, scenario):
    durations: dict = {}
    for seed in range(3):  # one seed per kill mode: time, after a commit, before a vector save
        run = faults.kill_once(tmp_path, scenario, seed, n_files=20, durations=durations)
        assert run["corrupt"] == [] and run["lost"] == [] and run["duplicated_or_wrong"] == [], run
        assert run["texts"][0] == run["texts"][1], run


def test_concurrent_use_is_refused_clearly_or_safe(tmp_path):
    result = faults.concurrency(tmp_path / "concurrency")
    assert result["held"] == result["scenarios"], json.dumps(result["detail"], indent=1)


# -- finetuning: cancel in every stage, the gate's resume folder, the tokenizer check -----------------------------
def test_cancel_stops_synthesis_export_and_gate(monkeypatch):
    from edgerag.finetune import pipeline, train

    events = []
    checked = pipeline.stoppable(events.append, "export")
    checked({"event": "status"})
    train.request_stop()
    with pytest.raises(train.TrainingStopped, match="cancelled during export"):
        checked({"event": "export", "step": "merge"})
    assert len(events) == 2 and not train._STOP.is_set()  # the request is consumed: a resumed run goes on


def test_gate_resumes_its_own_evaluation_run(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from edgerag.evaluate import gate as gate_module
    from edgerag.evaluate.events import EvalEvent
    from edgerag.finetune import pipeline

    eval_run = tmp_path / "data" / "runs" / "20260101-gate-heldout"
    eval_run.mkdir(parents=True)
    calls = []

    def gate_generator(settings, questions, *, resume, on_event, **kw):
        calls.append(resume)
        on_event(EvalEvent("run", info=str(eval_run)))
        if len(calls) == 1:
            raise KeyboardInterrupt("killed mid-evaluation")
        metrics = {"f1": {"mean": 1.0}}
        summary = {"comparisons": [{"metrics": {"f1": {"verdict": "same"}}}],
                   "systems": {"base": {"metrics": metrics}, "candidate": {"metrics": metrics}}}
        mean = SimpleNamespace(mean=1.0)
        return SimpleNamespace(verdict="same", metric="f1", base=mean, candidate=mean,
                               difference=SimpleNamespace(lo=0, hi=0), n=1, run_dir=eval_run, summary=summary,
                               failures=[], guards=[])

    monkeypatch.setattr(gate_module, "gate_generator", gate_generator)
    questions = SimpleNamespace(name="heldout", source="x")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(KeyboardInterrupt):
        pipeline.gate(None, run_dir, "heldout", questions, "base", "cand", None, 0, lambda e: None)
    summary = pipeline.gate(None, run_dir, "heldout", questions, "base", "cand", None, 0, lambda e: None)
    assert calls == [None, eval_run] and summary["verdict"] == "same"


@pytest.mark.slow  # transformers' GGUF tokenizer conversion: ~40 s on 2 cores
def test_gguf_whose_rebuilt_tokenizer_disagrees_with_llama_cpp_is_refused(tmp_path):
    """SmolLM2's tokenizer metadata with another pre-tokenizer type (as a non-SmolLM2 BPE GGUF would have):
    llama.cpp splits digits differently, so the HF tokenizer edgerag would train with must be refused."""
    pytest.importorskip("transformers")
    import gguf

    from edgerag.errors import ModelError
    from edgerag.finetune.base import PROBE_TEXTS, _dequantize_gguf, llama_cpp_token_ids, verify_tokenizer
    from tinyllama import make_tiny_gguf

    good = make_tiny_gguf(tmp_path / "tiny.gguf")
    reader = gguf.GGUFReader(str(good))
    bad = tmp_path / "other-pre.gguf"
    writer = gguf.GGUFWriter(str(bad), "llama")
    from edgerag.finetune.export import copy_metadata, finish_gguf

    copy_metadata(reader, writer, skip={"general.architecture", "tokenizer.ggml.pre"})
    writer.add_string("tokenizer.ggml.pre", "default")
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, np.array(tensor.data))
    finish_gguf(writer)
    assert llama_cpp_token_ids(bad, PROBE_TEXTS) != llama_cpp_token_ids(good, PROBE_TEXTS)
    with pytest.raises(ModelError, match="disagrees with llama.cpp"):
        _dequantize_gguf(bad, tmp_path / "cache-bad")
    assert not (tmp_path / "cache-bad").exists()
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(good.parent), gguf_file=good.name)
    from edgerag.finetune.base import repair_tokenizer

    verify_tokenizer(repair_tokenizer(tok, tok.chat_template), good, good.name)  # SmolLM2's own: accepted


# -- the whole suite ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_full_fuzz_of_every_document(tmp_path):
    hostile = fault_fuzz.hostile_files(tmp_path / "hostile")
    result = fault_fuzz.fuzz(tmp_path / "work", [shared("documents"), hostile], limit=30)
    assert result["crashes"] == [] and result["stalls"] == [] and result["unnamed_failures"] == 0
    assert result["integrity"] == [] and result["files_tried"] > 360


@pytest.mark.slow
def test_kill_twenty_seeds_per_scenario(tmp_path):
    result = faults.kills(tmp_path, seeds=20, n_files=60)
    assert result["runs"] == 60 and result["killed"] >= 20  # time-mode kills may land after a fast run ends
    assert result["bad"] == [] and result["text_count_mismatch"] == 0


@pytest.mark.slow  # a real `finetune train` or `finetune export` process pair per seed on the tiny llama
def test_kill_finetune_train_and_export_four_seeds_each(tmp_path):
    """Four seeds each keep CI's run time bounded; the 20-seed figure is
    `bench/faults.py finetune-kill` (README, Reliability)."""
    pytest.importorskip("peft")
    import fault_finetune

    result = fault_finetune.kills(tmp_path, seeds=4)
    assert result["runs"] == 8 and result["killed"] >= 5  # a time-mode kill may land after a run ended
    assert result["bad"] == [], json.dumps(result["bad"][:5], indent=1, default=str)


@pytest.mark.slow
def test_clean_room_install(tmp_path):
    result = fault_cleanroom.cleanroom(tmp_path / "cleanroom")
    assert result["held"], json.dumps(result, indent=1)


# -- finetuning runs and the models store after kill -9 (the rules; bench/fault_finetune.py kills the real thing) --
def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _model(folder: Path, name: str, text: str = "GGUF") -> None:
    from edgerag.models.manifest import Manifest

    folder.mkdir(parents=True)
    (folder / "model.gguf").write_text(text)
    m = Manifest(name=name, kind="generator", format="gguf", quantization="Q8_0", source="test",
                 details={"main_file": "model.gguf"})
    m.record_files(folder)
    m.save(folder)


def test_store_after_a_kill_lists_only_whole_models_and_puts_back_a_replaced_one(tmp_path):
    from edgerag.models import ModelStore

    root, dead = tmp_path / "models", _dead_pid()
    _model(root / f".staging-fresh-{dead}", "fresh")  # killed after its manifest was written, before the rename
    _model(root / f".staging-.old-keep-{dead}", "keep", "old")  # killed between "old aside" and "new in place"
    _model(root / f".staging-.old-gone-{os.getpid()}", "gone")  # ours, stale: put back as well
    _model(root / f".staging-live-{os.getppid()}", "live")  # a process still running (another export): left alone
    store = ModelStore(root)
    assert store.names() == [] and store.list() == []  # `models list` works and shows none of them
    store.clean_staging()
    assert store.names() == ["gone", "keep"] and (root / "keep" / "model.gguf").read_text() == "old"
    assert not store.verify()
    assert sorted(p.name for p in root.iterdir()) == [f".staging-live-{os.getppid()}", "gone", "keep"]
    store.remove("keep")
    assert sorted(p.name for p in root.iterdir()) == [f".staging-live-{os.getppid()}", "gone"]


def _checkpoint(train: Path, step: int, whole: bool = True) -> None:
    folder = train / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (folder / "train_config.json").write_text('{"base": "tiny"}' if whole else '{"base": "ti')


def test_a_resumed_run_trusts_only_whole_checkpoints(tmp_path):
    from edgerag.finetune.pipeline import drop_incomplete_checkpoints, training_finished

    train = tmp_path / "train"
    _checkpoint(train, 2)
    _checkpoint(train, 4, whole=False)  # killed while the callback wrote its config
    (train / "train_config.json").write_text('{"base": "ti')  # and the run's own config torn on an earlier resume
    (train / "loss_history.partial.json").write_text(json.dumps([[1, 3.0], [2, 2.5]]))
    assert drop_incomplete_checkpoints(train)
    assert sorted(p.name for p in train.glob("checkpoint-*")) == ["checkpoint-2"]
    assert json.loads((train / "train_config.json").read_text()) == {"base": "tiny"}

    _checkpoint(train, 4)  # whole files, but the loss history never got past step 2: its curve points would be lost
    assert drop_incomplete_checkpoints(train) and not (train / "checkpoint-4").exists()
    (train / "loss_history.partial.json").write_text('[[1, 3.0], [2')  # torn history: no checkpoint is whole
    assert not drop_incomplete_checkpoints(train) and not train.exists()  # a fresh start, not a broken resume

    (train / "adapter").mkdir(parents=True)
    (train / "adapter" / "adapter_model.safetensors").write_bytes(b"x")
    (train / "loss_history.json").write_text('{"losses": [[1, 3.0]], "eval_loss": null}')
    assert not training_finished(train)  # no loss curve yet: killed before the last file
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 20 + b"\0\0\0\0IEND\xaeB`\x82"
    (train / "loss_curve.png").write_bytes(png[: len(png) // 2])
    assert not training_finished(train)  # torn curve
    (train / "loss_curve.png").write_bytes(png)
    assert training_finished(train)
    (train / "loss_history.json").write_text('{"losses": [[1, 3')
    assert not training_finished(train)  # torn history
