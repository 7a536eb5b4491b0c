"""bench/gpu.py on a machine without a GPU: it says so and exits 0 with a "no-gpu" result; bad arguments exit 2;
the sdist slimming keeps the build's files; and its model, data and both measurements run on the CPU with the
synthetic model at tiny sizes, so the GPU session finds working plumbing."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": ""}
    return subprocess.run([sys.executable, "-P", str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


def test_no_gpu_is_said_and_recorded(tmp_path):
    done = _run("--out", str(tmp_path / "out"), "--wheels", str(tmp_path / "none"), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no CUDA GPU found" in done.stdout and "Nothing was measured" in done.stdout
    result = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert result["status"] == "no-gpu" and "sees no CUDA GPU" in result["reason"] and "runs" not in result
    assert "status: no-gpu" in (tmp_path / "out" / "gpu-check.md").read_text()


@pytest.mark.parametrize("args", [["--gpu-steps", "0"], ["--questions", "-1"], ["--no-such-flag"]])
def test_bad_arguments_exit_2(tmp_path, args):
    done = _run(*args, tmp_path=tmp_path)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_slim_sdist_drops_only_what_a_build_never_reads(tmp_path, bench):
    source = tmp_path / "pkg-1.0.tar.gz"
    names = ["pkg-1.0/pyproject.toml", "pkg-1.0/.git/modules/x/pack", "pkg-1.0/vendor/llama.cpp/docs/ops/CUDA.csv",
             "pkg-1.0/vendor/llama.cpp/models/ggml-vocab-x.gguf", "pkg-1.0/vendor/llama.cpp/models/ggml-vocab-x.gguf.inp",
             "pkg-1.0/vendor/llama.cpp/models/templates/chat.jinja", "pkg-1.0/vendor/llama.cpp/ggml/src/ggml.c"]
    with tarfile.open(source, "w:gz") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = len(name)
            tar.addfile(info, io.BytesIO(name.encode()))
    bench.slim_sdist(source, tmp_path / "slim.tar.gz")
    with tarfile.open(tmp_path / "slim.tar.gz") as tar:
        kept = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert sorted(kept) == ["pkg-1.0/pyproject.toml", "pkg-1.0/vendor/llama.cpp/ggml/src/ggml.c",
                            "pkg-1.0/vendor/llama.cpp/models/templates/chat.jinja"]
    assert all(content == name for name, content in kept.items())


def test_markdown_table_ratios(bench):
    result = {"started": "t", "status": "measured", "gpu": "G", "runs": [
        {"spec": {"kind": "train", "label": "GPU bf16", "cpu": False}, "bits": 16, "batch_size": 16,
         "max_seq_len": 1536, "steps": 30, "tokens_per_s": 5000.0, "peak_gpu_mib": 900},
        {"spec": {"kind": "train", "label": "CPU fp32", "cpu": True}, "bits": 32, "batch_size": 4, "max_seq_len": 1536,
         "steps": 3, "tokens_per_s": 250.0, "peak_gpu_mib": None},
        {"spec": {"kind": "ask", "label": "GPU"}, "error": "Traceback\nRuntimeError: no CUDA"}]}
    text = bench.markdown(result)
    assert "| GPU bf16 | 16 | 16 × 1536 | 30 | 5000.0 | 20.0× | 900 |" in text
    assert "| CPU fp32 | 32 | 4 × 1536 | 3 | 250.0 | 1.0× |  |" in text
    assert "| GPU | failed: RuntimeError: no CUDA |" in text


def test_synthetic_model_and_both_measurements_on_cpu(tmp_path, monkeypatch, bench):
    pytest.importorskip("peft")
    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(bench, "SMOLLM2_SHAPE", dict(vocab_size=2100, hidden_size=64, intermediate_size=128,
                                                     num_hidden_layers=2, num_attention_heads=4,
                                                     num_key_value_heads=2, max_position_embeddings=2048))
    train_base, ask_model = bench.synthetic_model(tmp_path / "home")
    data = bench.training_data(tmp_path / "train.jsonl", n=8)
    trained = bench.worker_train(dict(kind="train", base=train_base, data=str(data), bits=32, steps=2, batch_size=2,
                                      max_seq_len=0))
    assert trained["device"] == "cpu" and trained["steps"] == 2 and trained["tokens_per_s"] > 0
    assert trained["max_seq_len"] == 1536  # 0: sized for this machine (a CPU: the default)
    asked = bench.worker_ask(dict(kind="ask", model=ask_model, gpu_layers=0, questions=2))
    assert asked["prompt_tokens"] > 2 * 300 and asked["prompt_tokens_per_s"] > 0 and asked["gpu_layers"] == 0


def test_gpu_finetune_plumbing_round_trips_on_a_cpu(tmp_path):
    """bench/gpu_finetune.py as the GPU session uses it, on the tiny model: the base in two parts with its verified
    tokenizer, the first part staged, training (here 1 fp32 step on the CPU), the runs packed into parts that come
    back, unpacked here into a run folder that `edgerag finetune export` turns into a store model."""
    from edgerag.models import ModelStore
    from edgerag.models.importing import import_model
    from tinyllama import chat_examples, make_tiny_gguf

    script = REPO / "bench" / "gpu_finetune.py"
    home, data = tmp_path / "home", tmp_path / "data"
    data.mkdir()
    import_model(ModelStore(home / "models"), make_tiny_gguf(tmp_path / "tiny.gguf"), name="tiny")
    (data / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in chat_examples(4)))
    env = {**os.environ, "EDGERAG_HOME": str(home), "EDGERAG_GPU_STAGE": str(tmp_path / "stage"),
           "CUDA_VISIBLE_DEVICES": "", "OUT": ""}

    def step(*args):
        done = subprocess.run([sys.executable, "-P", str(script), *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    step("--collect-base", str(tmp_path / "base"), "--name", "tiny")
    (tmp_path / "base" / "part-0").rename(tmp_path / "part-0")  # the first call carries this part alone
    step("--stage", str(tmp_path / "part-0"))
    assert "no CUDA GPU" in subprocess.run([sys.executable, "-P", str(script), "--train", str(data), "--base",
                                            str(tmp_path / "base"), "--out", str(tmp_path / "none")],
                                           capture_output=True, text=True, env=env, timeout=600).stdout
    step("--train", str(data), "--base", str(tmp_path / "base"), "--steps", "1", "--batch-size", "2", "--cpu-check",
         "--out", str(tmp_path / "out"))
    runs = json.loads((tmp_path / "out" / "gpu-runs.json").read_text())["runs"]
    assert [r["steps"] for r in runs] == [1] and all(p.stat().st_size <= 15 * 2**20
                                                     for p in (tmp_path / "out").glob("runs.tar.*"))
    step("--unpack", str(tmp_path / "out"), "--into", str(tmp_path / "back"))
    train_dir = tmp_path / "back" / "runs" / "gpu-1" / "train"
    assert json.loads((train_dir / "train_config.json").read_text())["base"] == "tiny"
    exported = subprocess.run([sys.executable, "-m", "edgerag.cli", "finetune", "export", str(train_dir), "--name",
                               "tiny-gpu", "--quant", "Q8_0"], capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=600)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert ModelStore(home / "models").exists("tiny-gpu-q8_0")
    # llama.cpp's quantizer logs every tensor: to the log file, not the terminal
    assert "llama_model" not in exported.stdout + exported.stderr
    assert "llama_model_quantize" in (home / "data" / "logs" / "finetune.log").read_text()
