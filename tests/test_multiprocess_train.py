"""`edgerag finetune train` under torchrun with two CPU processes (gloo): the multi-GPU path, kept working on a
machine without a GPU. Every file of the run is written once, by the main process; the other rank trains (its RNG
state is in every checkpoint) and stays silent; a stop request reaches both ranks at the same step, and the run
resumes from its checkpoint to the loss of an uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("accelerate")
from tinyarch import small_chat_home  # noqa: E402

from edgerag.models import ModelStore  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMMON = ["--base", "tiny", "--bits", "32", "--rank", "4", "--steps", "4", "--save-steps", "2", "--batch-size", "2",
          "--lr", "1e-2", "--no-eval", "--events-jsonl", "-"]


@pytest.fixture(scope="module")
def ddp_home(tmp_path_factory):
    return small_chat_home(tmp_path_factory.mktemp("ddp-home"))


def _torchrun(home: Path, *args: str, stop_after_checkpoint: int | None = None) -> tuple[int, list[dict], str]:
    """Two ranks of `edgerag finetune train` (the way a user runs it on two GPUs), each with one CPU thread."""
    env = {**os.environ, "EDGERAG_HOME": str(home), "EDGERAG_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--module", "edgerag.cli", "finetune", "train", *args]
    errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full stderr pipe would block the ranks
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=REPO, text=True,
                            start_new_session=True)
    events = []
    try:
        for line in proc.stdout:
            if line.startswith("{"):
                events.append(json.loads(line))
                if stop_after_checkpoint and events[-1] == {"event": "checkpoint", "step": stop_after_checkpoint}:
                    proc.send_signal(signal.SIGTERM)  # what Cancel does: torchrun passes it to both ranks
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:  # torchrun starts each rank in its own session: end them one by one
            import psutil

            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            os.killpg(proc.pid, signal.SIGKILL)
    errors.seek(0)
    return proc.returncode, events, errors.read()


def _final_loss(events: list[dict]) -> float:
    return next(e for e in events if e["event"] == "done" and "final_loss" in e)["final_loss"]


@pytest.fixture(scope="module")
def straight(ddp_home):
    run = ddp_home / "straight"
    code, events, stderr = _torchrun(ddp_home, *COMMON, "--data", str(ddp_home / "chats" / "train.jsonl"), "--run-dir",
                                     str(run), "--no-export")
    assert code == 0, stderr[-4000:]
    return run, events


def test_two_ranks_train_and_the_main_one_writes_everything_once(ddp_home, straight):
    run, events = straight
    kinds = [e["event"] for e in events]
    # one copy of every event: the second rank prints nothing (two copies of "start" came from two run folders)
    assert kinds.count("start") == 1 and events[0] == {"event": "start", "run_dir": str(run)}
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [2, 4]
    assert sorted(p.name for p in (run.parent).iterdir() if (p / "options.json").is_file()) == ["straight"]
    train = run / "train"
    for step in (2, 4):
        checkpoint = train / f"checkpoint-{step}"
        assert (checkpoint / "train_config.json").is_file() and (checkpoint / "adapter_model.safetensors").is_file()
        # both ranks trained: each saved its RNG state (the data order and dropout of a resumed run depend on it)
        assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert (train / "adapter" / "adapter_model.safetensors").is_file() and (train / "loss_curve.png").is_file()
    history = json.loads((train / "loss_history.json").read_text())
    assert [step for step, _ in history["losses"]] == [1, 2, 3, 4]
    # the second rank's library logs go to their own file, not into the main one's
    assert (ddp_home / "data" / "logs" / "finetune-rank1.log").is_file()


@pytest.mark.slow
def test_a_stop_reaches_both_ranks_and_the_run_resumes_to_the_same_loss(ddp_home, straight):
    chats = ddp_home / "chats" / "train.jsonl"
    run = ddp_home / "stopped"
    args = [*COMMON, "--data", str(chats), "--quant", "Q8_0"]
    code, events, stderr = _torchrun(ddp_home, *args, "--run-dir", str(run), stop_after_checkpoint=2)
    # (torchrun itself exits 1 after forwarding the signal) both ranks stopped, at the same step, with a checkpoint
    stops = re.findall(r"stopped at step (\d+) with a checkpoint", stderr)
    assert code != 0 and len(stops) == 2 and stops[0] == stops[1], stderr[-4000:]
    assert not (run / "train" / "adapter").exists()
    code, resumed, stderr = _torchrun(ddp_home, *args, "--resume", str(run))
    assert code == 0, stderr[-4000:]
    steps = [e["step"] for e in resumed if e["event"] == "step"]
    assert steps and steps[0] > 2 and steps[-1] == 4  # continued from the checkpoint, not restarted
    assert _final_loss(resumed) == pytest.approx(_final_loss(straight[1]), rel=1e-3)
    history = lambda r: json.loads((r / "train" / "loss_history.json").read_text())["losses"]  # noqa: E731
    assert [s for s, _ in history(run)] == [1, 2, 3, 4]
    assert [x for _, x in history(run)] == pytest.approx([x for _, x in history(straight[0])], rel=1e-3)
    # the export after training: the main process alone, registered once
    assert [e["event"] for e in resumed].count("exported") == 1
    exported = json.loads((run / "export.json").read_text())
    assert not ModelStore(ddp_home / "models").verify([exported["adapter"], *exported["merged"]])


def test_fsdp_config_parses_and_qlora_under_it_stores_4bit_weights_as_bf16(ddp_home, monkeypatch):
    """FSDP itself needs GPUs; what runs here: accelerate reads the shipped config, and a QLoRA model loaded under
    it keeps its packed 4-bit weights in bf16, the one dtype FSDP can shard together with the rest."""
    import torch
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    from edgerag.config import load_settings
    from edgerag.finetune.base import load_for_training, prepare_base

    config = load_config_from_file(str(REPO / "docs" / "accelerate" / "fsdp.yaml"))
    assert config.distributed_type == DistributedType.FSDP and config.mixed_precision == "bf16"
    assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    monkeypatch.setenv("EDGERAG_HOME", str(ddp_home))
    base = prepare_base(load_settings(), "tiny")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    model, _ = load_for_training(base, 4, gradient_checkpointing=False)
    assert model.config.quantization_config.bnb_4bit_quant_storage == torch.bfloat16
    packed = model.model.layers[0].self_attn.q_proj.weight
    assert packed.dtype == torch.bfloat16 and type(packed).__name__ == "Params4bit"
