"""Finetuning end to end on a tiny llama made in the test: tokenizer repair, LoRA training, GGUF export parity
(PEFT in torch = merged GGUF in llama.cpp = base GGUF + adapter GGUF), store registration, kill-and-resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")
from tinyllama import chat_examples, make_tiny_gguf  # noqa: E402

from edgerag.config import load_settings  # noqa: E402
from edgerag.errors import BadInputError  # noqa: E402
from edgerag.models import ModelStore  # noqa: E402
from edgerag.models.importing import import_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("tiny-home")
    gguf = make_tiny_gguf(home / "tiny.gguf")
    import_model(ModelStore(home / "models"), gguf, name="tiny")
    data = home / "chats"
    data.mkdir()
    examples = chat_examples(16)
    (data / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples[:12]))
    (data / "val.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples[12:]))
    return home


@pytest.fixture()
def tiny_settings(tiny_home, monkeypatch):
    monkeypatch.setenv("EDGERAG_HOME", str(tiny_home))
    return load_settings(threads=2)


@pytest.fixture(scope="module")
def trained(tiny_home):
    """A finished fp32 LoRA run on the tiny model (module-wide: several tests read it)."""
    from edgerag.finetune.train import TrainConfig, train

    os.environ["EDGERAG_HOME"] = str(tiny_home)
    try:
        settings = load_settings(threads=2)
        config = TrainConfig(base="tiny", train_file=str(tiny_home / "chats" / "train.jsonl"),
                             val_file=str(tiny_home / "chats" / "val.jsonl"), out_dir=str(tiny_home / "run32"),
                             bits=32, lora_r=8, lora_alpha=16, max_steps=6, learning_rate=2e-2, batch_size=4,
                             save_steps=3, warmup_steps=0)
        events = []
        result = train(config, settings, on_event=events.append)
    finally:
        os.environ.pop("EDGERAG_HOME", None)
    return result, events


def _text_samples() -> list[str]:
    return ["The warranty lasts 24 months, i.e. 730 days (2x 365).",
            "<|im_start|>user\nWhat is 3.14159 × 1000?<|im_end|>\n<|im_start|>assistant\n",
            "  Leading spaces,\ttabs and ünïcödé — café, naïve, 東京, 🙂 emoji!",
            "Phone: +41 (0)44 123-45-67; ISBN 978-3-16-148410-0; v2.10.3",
            "def f(x):\n    return x**2  # comment\n"]


def test_repaired_tokenizer_matches_llama_cpp(tiny_settings):
    import llama_cpp
    from transformers import AutoTokenizer

    from edgerag.finetune.base import prepare_base

    base = prepare_base(tiny_settings, "tiny")
    tokenizer = AutoTokenizer.from_pretrained(str(base.hf_dir))
    llm = llama_cpp.Llama(str(base.gguf), vocab_only=True, verbose=False)
    for text in _text_samples():
        ours = tokenizer(text, add_special_tokens=False)["input_ids"]
        theirs = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        assert ours == theirs, text
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.bos_token_id not in tokenizer("hi")["input_ids"]


def test_training_events_checkpoints_and_plot(trained):
    result, events = trained
    kinds = [e["event"] for e in events]
    assert kinds.count("step") == 6 and kinds.count("checkpoint") == 2 and kinds[-1] == "done"
    step = next(e for e in events if e["event"] == "step")
    assert {"loss", "tokens_per_s", "eta_s", "max_steps"} <= set(step)
    assert result.steps == 6 and result.losses[-1][1] < result.losses[0][1]  # it learned something
    assert result.eval_loss is not None and result.tokens_per_s > 0
    out = result.out_dir
    assert (out / "loss_curve.png").stat().st_size > 5000
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]


def test_loss_is_on_assistant_tokens_only(tiny_settings):
    from transformers import AutoTokenizer

    from edgerag.finetune.base import prepare_base
    from edgerag.finetune.train import tokenize_example

    tokenizer = AutoTokenizer.from_pretrained(str(prepare_base(tiny_settings, "tiny").hf_dir))
    example = chat_examples(1)[0]["messages"]
    item = tokenize_example(tokenizer, example, 1024)
    learned = [t for t, label in zip(item["input_ids"], item["labels"]) if label != -100]
    assert tokenizer.decode(learned).strip() == example[-1]["content"] + "<|im_end|>"
    assert tokenize_example(tokenizer, example, 8) is None  # too long: dropped, not truncated mid-answer

    # transformers 5 returns a BatchEncoding from apply_chat_template unless told otherwise (seen on a GPU machine
    # with 5.17): the same ids either way
    template = tokenizer.apply_chat_template

    def as_in_transformers_5(*args, return_dict=True, **kwargs):
        return template(*args, return_dict=return_dict, **kwargs)

    tokenizer.apply_chat_template = as_in_transformers_5
    assert tokenize_example(tokenizer, example, 1024) == item


def _torch_logits(run_dir: Path, settings, tokens: list[int]) -> np.ndarray:
    import torch
    from peft import PeftModel

    from edgerag.finetune.base import load_for_training, prepare_base

    model, _ = load_for_training(prepare_base(settings, "tiny"), 32, gradient_checkpointing=False)
    model = PeftModel.from_pretrained(model, str(run_dir / "adapter")).eval()
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].float().numpy()


def _llama_logits(model: Path, tokens: list[int], lora: Path | None = None) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(str(model), lora_path=str(lora) if lora else None, n_ctx=256, logits_all=True,
                          n_threads=2, verbose=False)
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def _greedy_equal(a: np.ndarray, b: np.ndarray) -> None:
    assert (a.argmax(-1) == b.argmax(-1)).all()
    assert np.abs(a - b).max() < 2e-2 * max(1.0, np.abs(a).max())


def test_export_parity_and_registration(trained, tiny_settings):
    from transformers import AutoTokenizer

    from edgerag.finetune.base import prepare_base
    from edgerag.finetune.export import export_run

    result, _ = trained
    exported = export_run(result.out_dir, tiny_settings, quants=("F32", "Q8_0"), name="tiny-ft")
    store = ModelStore(tiny_settings.models_dir)
    assert exported.adapter == "tiny-ft-lora" and exported.merged == ["tiny-ft-f32", "tiny-ft-q8_0"]
    assert not store.verify(["tiny-ft-lora", "tiny-ft-f32", "tiny-ft-q8_0"])
    adapter = store.get("tiny-ft-lora")
    assert adapter.format == "gguf-lora" and adapter.parent == "tiny"
    assert adapter.lineage["training_config"]["lora_r"] == 8 and adapter.lineage["base_sha256"]
    assert store.get("tiny-ft-q8_0").quantization == "Q8_0"
    assert not list((result.out_dir / "export").glob("*.gguf"))  # the F16 intermediate is gone

    tokenizer = AutoTokenizer.from_pretrained(str(prepare_base(tiny_settings, "tiny").hf_dir))
    base_gguf = store.main_path("tiny")
    for messages in (chat_examples(3)[1]["messages"][:1], chat_examples(5)[4]["messages"][:1]):
        tokens = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        peft_logits = _torch_logits(result.out_dir, tiny_settings, tokens)
        merged = _llama_logits(store.main_path("tiny-ft-f32"), tokens)
        with_adapter = _llama_logits(base_gguf, tokens, store.main_path("tiny-ft-lora"))
        base_only = _llama_logits(base_gguf, tokens)
        _greedy_equal(peft_logits, merged)
        _greedy_equal(merged, with_adapter)
        assert np.abs(base_only - merged).max() > 1e-2  # the adapter really changes the model
        quantized = _llama_logits(store.main_path("tiny-ft-q8_0"), tokens)
        assert (quantized.argmax(-1) == merged.argmax(-1)).mean() >= 0.8


def test_export_refuses_unfinished_or_foreign_runs(tiny_settings, tmp_path, trained):
    from edgerag.finetune.export import export_run

    result, _ = trained
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "train_config.json").write_text((result.out_dir / "train_config.json").read_text())
    with pytest.raises(BadInputError, match="not finished"):
        export_run(unfinished, tiny_settings, quants=("Q8_0",))
    names = set(ModelStore(tiny_settings.models_dir).names())
    corrupt = tmp_path / "corrupt"
    (corrupt / "adapter").mkdir(parents=True)
    (corrupt / "train_config.json").write_text((result.out_dir / "train_config.json").read_text())
    (corrupt / "adapter" / "adapter_config.json").write_text((result.out_dir / "adapter" / "adapter_config.json")
                                                              .read_text())
    (corrupt / "adapter" / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(BadInputError, match="unreadable adapter"):
        export_run(corrupt, tiny_settings, quants=("Q8_0",))
    assert set(ModelStore(tiny_settings.models_dir).names()) == names  # nothing half-written registered


def test_bad_training_input_is_a_clear_error(tiny_settings, tmp_path):
    from edgerag.finetune.train import TrainConfig, train

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    config = TrainConfig(base="tiny", train_file=str(bad), out_dir=str(tmp_path / "r"), bits=32, max_steps=1)
    with pytest.raises(BadInputError, match="bad.jsonl:1: expected"):
        train(config, tiny_settings)
    with pytest.raises(BadInputError, match="bits"):
        TrainConfig(base="tiny", train_file=str(bad), out_dir=str(tmp_path / "r"), bits=8)


def test_a_diverging_run_stops_with_a_clear_error_and_saves_nothing(tiny_home, tiny_settings, tmp_path, monkeypatch):
    """bf16 LoRA on SmolLM2-135M went NaN at step 34 on an H200 and trained on to a garbage adapter (docs/gpu.md).
    Here the model's logits turn NaN from the second step on; the run must stop there, say so, keep no adapter."""
    from edgerag.finetune import base as base_module
    from edgerag.finetune.train import TrainConfig, TrainingDiverged, train

    real = base_module.load_for_training
    calls = []

    def poisoned(*args, **kwargs):
        model, tokenizer = real(*args, **kwargs)

        def hook(_module, _inputs, output):
            calls.append(1)
            return output * float("nan") if len(calls) > 4 else output  # 4 single-example passes = step 1

        model.lm_head.register_forward_hook(hook)
        return model, tokenizer

    monkeypatch.setattr(base_module, "load_for_training", poisoned)
    out = tmp_path / "run"
    config = TrainConfig(base="tiny", train_file=str(tiny_home / "chats" / "train.jsonl"),
                         out_dir=str(out), bits=32, max_steps=6, batch_size=4, save_steps=1, warmup_steps=0)
    with pytest.raises(TrainingDiverged, match="not finite at step 2"):
        train(config, tiny_settings)
    assert not (out / "adapter").exists() and not (out / "checkpoint-2").exists()


def _cli(home: Path, *args: str, kill_after_checkpoint: int | None = None, command: str = "train") -> list[dict]:
    env = {**os.environ, "EDGERAG_HOME": str(home), "EDGERAG_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "edgerag.cli", "finetune", command, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO, text=True)
    events = []
    for line in proc.stdout:
        if line.startswith("{"):
            events.append(json.loads(line))
            if kill_after_checkpoint and events[-1] == {"event": "checkpoint", "step": kill_after_checkpoint}:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=600)
    if not kill_after_checkpoint:
        assert proc.returncode == 0, proc.stderr.read()[-3000:]
    return events


def test_killed_training_resumes_to_the_same_loss(tiny_home):
    chats = tiny_home / "chats" / "train.jsonl"
    common = ["--base", "tiny", "--data", str(chats), "--bits", "16", "--rank", "4", "--steps", "8",
              "--save-steps", "2", "--batch-size", "2", "--lr", "1e-2", "--no-export", "--no-eval",
              "--events-jsonl", "-"]
    straight = _cli(tiny_home, *common, "--run-dir", str(tiny_home / "straight"))
    killed = _cli(tiny_home, *common, "--run-dir", str(tiny_home / "killed"), kill_after_checkpoint=4)
    assert killed[-1] == {"event": "checkpoint", "step": 4}
    resumed = _cli(tiny_home, *common, "--resume", str(tiny_home / "killed"))
    assert resumed[0] == {"event": "start", "run_dir": str(tiny_home / "killed")}
    steps = [e["step"] for e in resumed if e["event"] == "step"]
    assert steps == [5, 6, 7, 8]  # continued, not restarted
    final = lambda events: next(e for e in events if e["event"] == "done")["final_loss"]  # noqa: E731
    assert final(resumed) == pytest.approx(final(straight), rel=1e-3)
    history = lambda d: json.loads((tiny_home / d / "train" / "loss_history.json").read_text())["losses"]  # noqa
    assert np.allclose([x[1] for x in history("killed")], [x[1] for x in history("straight")], rtol=1e-3)


def test_finetune_run_trains_on_the_users_data_without_a_collection(tiny_home):
    """`run` falls back to the default collection only when no --data is given (it once refused --data: "give
    either --collection or --data")."""
    chats = tiny_home / "chats" / "train.jsonl"
    events = _cli(tiny_home, "--base", "tiny", "--data", str(chats), "--bits", "32", "--rank", "4", "--steps", "2",
                  "--batch-size", "2", "--no-export", "--no-eval", "--events-jsonl", "-",
                  "--run-dir", str(tiny_home / "run-on-data"), command="run")
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]
    assert (tiny_home / "run-on-data" / "train" / "adapter").is_dir()


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    """A tiny llama with a 600-token vocabulary (tests/tinyarch.py): loads in a second, for tests that train
    several runs."""
    from tinyarch import small_chat_home

    return small_chat_home(tmp_path_factory.mktemp("small-home"))


def test_a_run_resumed_in_a_later_epoch_equals_the_uninterrupted_one(small_home, tmp_path, monkeypatch):
    """12 examples in steps of 4 (on a CPU: one example per forward pass, accumulated): 3 steps an epoch. A run
    stopped at step 5 resumes in the middle of epoch 1, where the data order, the dropout RNG and the micro-batch
    split must all be what the uninterrupted run had (the kill suite found epoch 1 reshuffled differently)."""
    from safetensors.numpy import load_file

    from edgerag.finetune.train import TrainConfig, TrainingStopped, request_stop, train

    monkeypatch.setenv("EDGERAG_HOME", str(small_home))
    tiny_settings = load_settings(threads=2)

    def config(out: str) -> TrainConfig:
        return TrainConfig(base="tiny", train_file=str(small_home / "chats" / "train.jsonl"),
                           out_dir=str(tmp_path / out), bits=32, lora_r=4, lora_alpha=8, max_steps=6,
                           learning_rate=1e-2, batch_size=4, save_steps=2, warmup_steps=0)

    straight = train(config("straight"), tiny_settings)

    def stop_at_step_4(event: dict) -> None:  # seen at the end of step 5, which is then checkpointed
        if event["event"] == "step" and event["step"] == 4:
            request_stop()

    with pytest.raises(TrainingStopped, match="stopped at step 5"):
        train(config("stopped"), tiny_settings, on_event=stop_at_step_4)
    (tmp_path / "stopped" / "train_config.json").write_text('{"base": "ti')  # torn by a kill: restored on resume
    resumed = train(config("stopped"), tiny_settings, resume=True)
    assert [s for s, _ in resumed.losses] == [1, 2, 3, 4, 5, 6]
    assert np.allclose([x for _, x in resumed.losses], [x for _, x in straight.losses], rtol=1e-4)
    want, got = (load_file(str(r.adapter_dir / "adapter_model.safetensors")) for r in (straight, resumed))
    assert set(got) == set(want) and all(np.allclose(got[k], want[k], rtol=1e-4, atol=1e-6) for k in want)


def test_cpu_micro_batches_train_as_the_whole_batch_does(small_home, tmp_path, monkeypatch):
    """On a CPU each example is its own forward pass, accumulated to the optimizer step: the same examples per
    step and the same loss normalisation (answer tokens of the whole step) as one wide batch (no dropout here:
    its masks are drawn per pass)."""
    from safetensors.numpy import load_file

    from edgerag.finetune import train as train_module

    monkeypatch.setenv("EDGERAG_HOME", str(small_home))
    settings = load_settings(threads=2)
    assert train_module.micro_batches(train_module.TrainConfig(
        base="tiny", train_file=str(small_home / "chats" / "train.jsonl"), out_dir="x", bits=32, batch_size=4,
        grad_accum=2), gpu=False) == (1, 8)
    runs = {}
    for name, split in (("micro", None), ("wide", lambda config, gpu: (config.batch_size, config.grad_accum))):
        if split:
            monkeypatch.setattr(train_module, "micro_batches", split)
        config = train_module.TrainConfig(base="tiny", train_file=str(small_home / "chats" / "train.jsonl"),
                                          out_dir=str(tmp_path / name), bits=32, lora_r=4, lora_alpha=8,
                                          lora_dropout=0.0, max_steps=3, learning_rate=1e-2, batch_size=4,
                                          save_steps=100, warmup_steps=0)
        runs[name] = train_module.train(config, settings)
    assert np.allclose([x for _, x in runs["micro"].losses], [x for _, x in runs["wide"].losses], rtol=1e-4)
    want, got = (load_file(str(runs[n].adapter_dir / "adapter_model.safetensors")) for n in ("wide", "micro"))
    assert all(np.allclose(got[k], want[k], rtol=1e-3, atol=1e-4) for k in want)


def test_resume_with_other_options_is_refused(tiny_home):
    chats = tiny_home / "chats" / "train.jsonl"
    env = {**os.environ, "EDGERAG_HOME": str(tiny_home)}
    run = tiny_home / "mismatch"
    run.mkdir()
    (run / "options.json").write_text(json.dumps({"steps": 999}))
    proc = subprocess.run([sys.executable, "-m", "edgerag.cli", "finetune", "train", "--base", "tiny", "--data",
                           str(chats), "--resume", str(run)], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode != 0 and "same options" in proc.stderr



def test_tui_form_arguments_are_what_the_cli_accepts():
    from edgerag.cli import build_parser
    from tui.widgets.finetune_form import trainer_args

    values = {"base": "tiny", "collection": "docs", "jsonl": "", "bits": 4, "rank": 8, "steps": 30, "lr": 2e-4}
    args = build_parser().parse_args(["finetune", "train", *trainer_args(values), "--resume", "/runs/x"])
    assert (args.base, args.collection, args.bits, args.rank, args.steps, args.lr, args.events_jsonl,
            args.resume) == ("tiny", "docs", 4, 8, 30, 2e-4, "-", "/runs/x")


def test_promotion_needs_a_gate_that_is_not_worse(tiny_settings, trained):
    from edgerag.finetune.pipeline import promote

    store = ModelStore(tiny_settings.models_dir)
    if not store.exists("tiny-ft-f32"):
        pytest.skip("needs the export test's models")
    events = []
    better = {"verdict": "better", "metric": "f1", "verdicts": {"f1": "better", "refusal": "no different"}}
    over_refusing = {**better, "failures": ["refusal (open) 2.0 → 47.3: at most base + 5 points"]}
    assert promote(store, "tiny-ft-f32", {}, False, events.append) is None
    assert promote(store, "tiny-ft-f32", {"real": over_refusing}, False, events.append) is None
    assert "refusal (open)" in events[-1]["message"] and "on real" in events[-1]["message"]
    assert not (store.root / "active.json").exists()
    assert promote(store, "tiny-ft-f32", {"real": better}, False, events.append) == "tiny-ft-f32"
    assert store.active_name("generator") == "tiny-ft-f32" and events[-1]["event"] == "promoted"


def test_time_budget_picks_steps_from_measured_speed(tiny_settings, tiny_home, tmp_path):
    """Steps that fit the budget, no more than one pass over the data (MAX_EPOCHS)."""
    from edgerag.finetune.data import read_jsonl
    from edgerag.finetune.train import TrainConfig, epoch_steps, steps_for_budget, train

    events = []
    config = TrainConfig(base="tiny", train_file=str(tiny_home / "chats" / "train.jsonl"), out_dir=str(tmp_path / "b"),
                         bits=32, lora_r=4, lora_alpha=8, time_budget_min=0.3, batch_size=2, save_steps=1000)
    result = train(config, tiny_settings, on_event=events.append)
    saved = json.loads((tmp_path / "b" / "train_config.json").read_text())
    assert saved["max_steps"] >= 1 and saved["max_steps"] != 120  # chosen from the measurement, kept for --resume
    message = next(e["message"] for e in events if "steps fit the 0.3-minute budget" in e.get("message", ""))
    fit = int(re.search(r": (\d+) steps fit", message).group(1))
    examples = len(read_jsonl(config.train_file))
    one_epoch = -(-examples // 2)  # batches of 2
    assert config.max_epochs == 1 and epoch_steps(examples, config) == one_epoch
    assert saved["max_steps"] == min(fit, one_epoch)  # a fast machine fits more than one epoch: capped
    assert message.endswith(f", capped at 1 epoch: {one_epoch}" if one_epoch < fit else "0.3-minute budget")
    # a machine that slows down after the measurement stops at the hard deadline (115% of the budget) and says so
    assert 1 <= result.steps <= saved["max_steps"]
    if result.steps < saved["max_steps"]:
        assert any("time budget spent" in e.get("message", "") for e in events)
    # the arithmetic, independent of how busy the machine is: 60 s at 1 ms/token, 100-token examples, batch 2,
    # +10% overhead → 0.22 s per step
    rows = [{"input_ids": [0] * 100}] * 3
    assert steps_for_budget(60, 1e-3, rows, config) == int(60 / (1e-3 * 100 * 2 * 1.1))


def test_batches_compute_logits_only_where_the_loss_is_with_the_same_loss_and_gradients():
    """Left padding + logits_to_keep (the memory and speed saving) must train exactly what right padding with every
    logit computed trains."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from edgerag.finetune.train import _Collator

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256))

    def example(n, answer):
        ids = torch.randint(1, 300, (n,)).tolist()
        return {"input_ids": ids, "labels": [-100] * (n - answer) + ids[n - answer:]}

    examples = [example(40, 5), example(25, 9), example(33, 3)]
    batch = _Collator(pad_id=0)(examples)
    assert batch["logits_to_keep"] == 10  # longest answer (9) + the prompt token predicting its first token
    out = model(**batch)
    assert out.logits.shape == (3, 10, 300)
    out.loss.backward()
    grad = model.model.layers[0].self_attn.q_proj.weight.grad.clone()
    model.zero_grad()
    ids = torch.zeros(3, 40, dtype=torch.long)
    labels = torch.full((3, 40), -100)
    mask = torch.zeros(3, 40, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1
    reference = model(input_ids=ids, attention_mask=mask, labels=labels)
    reference.loss.backward()
    assert abs(out.loss.item() - reference.loss.item()) < 1e-5
    assert torch.allclose(grad, model.model.layers[0].self_attn.q_proj.weight.grad, atol=1e-8)


def test_lora_on_upper_layers_only(tiny_settings, tiny_home):
    from edgerag.finetune.base import load_for_training, prepare_base
    from edgerag.finetune.train import TrainConfig, with_lora

    model, _ = load_for_training(prepare_base(tiny_settings, "tiny"), 32, gradient_checkpointing=False)
    config = TrainConfig(base="tiny", train_file=str(tiny_home / "chats" / "train.jsonl"), out_dir="unused",
                         bits=32, lora_layers=1)
    trainable = [n for n, p in with_lora(model, config).named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n for n in trainable)  # tiny has 2 layers: only the top one


def test_empty_val_next_to_data_trains_without_validation_and_logs_go_to_a_file(tiny_home):
    folder = tiny_home / "chats-noval"
    folder.mkdir()
    (folder / "train.jsonl").write_text((tiny_home / "chats" / "train.jsonl").read_text())
    (folder / "val.jsonl").write_text("")  # what `finetune data` wrote on small collections before v2
    env = {**os.environ, "EDGERAG_HOME": str(tiny_home), "EDGERAG_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-m", "edgerag.cli", "finetune", "train", "--base", "tiny", "--data",
                           str(folder / "train.jsonl"), "--steps", "2", "--rank", "4", "--no-export", "--no-eval",
                           "--run-dir", str(tiny_home / "noval")], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # rich wraps at the console width (80 without a terminal), so a long temp path can split the phrase
    assert "training without validation" in " ".join(proc.stderr.split())
    history = json.loads((tiny_home / "noval" / "train" / "loss_history.json").read_text())
    assert history["eval_loss"] is None and len(history["losses"]) == 2
    # library chatter goes to the log file the README names, not the terminal
    log = tiny_home / "data" / "logs" / "finetune.log"
    assert log.is_file() and log.stat().st_size > 0
    for noise in ("Warning", "warnings.warn", "transformers", "peft", "it/s"):
        assert noise not in proc.stderr, proc.stderr[-2000:]
