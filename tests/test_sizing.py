"""Batch size and sequence length chosen for the device (edgerag/finetune/sizing.py), with fake GPU memory figures:
torch is replaced by a stand-in that reports CUDA and a total memory, so these run on any CPU in milliseconds."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from edgerag.errors import BadInputError
from edgerag.finetune import sizing
from edgerag.finetune.sizing import ModelShape, choose, choose_for_device

GiB = 2**30
SMOLLM2 = ModelShape(parameters=135_000_000, layers=30, hidden=576, ffn=1536, vocab=49152)
GEMMA3_270M = ModelShape(parameters=268_000_000, layers=18, hidden=640, ffn=2048, vocab=262144)
LLAMA_8B = ModelShape(parameters=8_000_000_000, layers=32, hidden=4096, ffn=14336, vocab=128256)


def fake_torch(total: int | None):
    """A torch module that sees one GPU of `total` bytes (None: no GPU)."""
    cuda = SimpleNamespace(is_available=lambda: total is not None, current_device=lambda: 0,
                           get_device_properties=lambda _i: SimpleNamespace(total_memory=total))
    return SimpleNamespace(cuda=cuda)


def test_more_memory_never_smaller_batches_and_fits_the_estimate():
    previous = 0
    for gib in (8, 16, 24, 40, 80, 141):
        batch, seq = choose(gib * GiB, SMOLLM2, 16)
        assert seq == 1536 and batch >= previous and batch & (batch - 1) == 0  # a power of two
        used = sizing.RESERVED + 1.5 * SMOLLM2.parameters * 2 + batch * seq * sizing.bytes_per_token(SMOLLM2, 16)
        assert used <= 0.9 * gib * GiB
        previous = batch
    assert choose(80 * GiB, SMOLLM2, 16)[0] > choose(8 * GiB, SMOLLM2, 16)[0]
    assert choose(4096 * GiB, SMOLLM2, 16)[0] == sizing.MAX_BATCH  # capped: more examples per step stop paying


def test_a_big_vocabulary_or_fp32_costs_batch():
    assert choose(24 * GiB, GEMMA3_270M, 16)[0] < choose(24 * GiB, SMOLLM2, 16)[0]
    assert choose(24 * GiB, SMOLLM2, 32)[0] < choose(24 * GiB, SMOLLM2, 16)[0]


def test_small_gpu_gets_shorter_sequences_then_a_clear_refusal():
    # an 8B model in NF4 on a 16 GiB card: no room for a 1536-token example, but for a shorter one
    batch, seq = choose(16 * GiB, LLAMA_8B, 4)
    assert batch >= 1 and seq < 1536
    assert choose(80 * GiB, LLAMA_8B, 4)[1] == 1536
    with pytest.raises(BadInputError, match="GiB GPU cannot hold"):
        choose(8 * GiB, LLAMA_8B, 16)  # 16 GB of bf16 weights
    # a sequence length the user set is kept, or refused, never silently changed
    assert choose(24 * GiB, SMOLLM2, 16, seq=512)[1] == 512
    with pytest.raises(BadInputError):
        choose(16 * GiB, LLAMA_8B, 4, seq=1536)


def test_cpu_keeps_todays_defaults_and_user_values(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(None))
    monkeypatch.setattr(sizing, "model_shape", lambda _name: pytest.fail("a CPU run needs no model shape"))
    assert choose_for_device("any", 0, 0, 32) == (4, 1536)
    assert choose_for_device("any", 2, 0, 32) == (2, 1536)
    assert choose_for_device("any", 0, 512, 32) == (4, 512)


def test_cuda_sizes_from_total_memory_and_keeps_what_the_user_set(monkeypatch):
    monkeypatch.setattr(sizing, "model_shape", lambda _name: SMOLLM2)
    monkeypatch.setitem(sys.modules, "torch", fake_torch(80 * GiB))
    big = choose_for_device("smol", 0, 0, 16)
    assert big == choose(80 * GiB, SMOLLM2, 16) and big[0] > 4
    assert choose_for_device("smol", 3, 0, 16) == (3, 1536)
    assert choose_for_device("smol", 0, 768, 16) == (choose(80 * GiB, SMOLLM2, 16, seq=768)[0], 768)
    monkeypatch.setitem(sys.modules, "torch", fake_torch(8 * GiB))
    assert choose_for_device("smol", 0, 0, 16)[0] < big[0]


def test_train_config_zero_means_for_this_machine(tmp_path, monkeypatch):
    from edgerag.finetune.train import TrainConfig

    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"messages": []}) + "\n")
    monkeypatch.setitem(sys.modules, "torch", fake_torch(None))
    config = TrainConfig(base="b", train_file=str(data), out_dir=str(tmp_path / "run"), batch_size=0, max_seq_len=0)
    assert (config.bits, config.batch_size, config.max_seq_len) == (32, 4, 1536)
    # a saved config (sized numbers) loads back unchanged, so --resume compares like with like
    config.save(tmp_path / "run")
    assert TrainConfig.load(tmp_path / "run") == config
    monkeypatch.setattr(sizing, "model_shape", lambda _name: SMOLLM2)
    monkeypatch.setitem(sys.modules, "torch", fake_torch(40 * GiB))
    gpu = TrainConfig(base="b", train_file=str(data), out_dir=str(tmp_path / "gpu"), bits=16, batch_size=0,
                      max_seq_len=0)
    assert (gpu.batch_size, gpu.max_seq_len) == choose(40 * GiB, SMOLLM2, 16)


def test_model_shape_from_a_store_gguf(tmp_path, monkeypatch):
    from tinyllama import DIMS, make_tiny_gguf

    from edgerag.models import ModelStore
    from edgerag.models.importing import import_model

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    from edgerag.config import load_settings

    store = ModelStore(load_settings().models_dir)
    import_model(store, make_tiny_gguf(tmp_path / "tiny.gguf"), name="tiny")
    shape = sizing.model_shape("tiny")
    assert (shape.layers, shape.hidden, shape.ffn, shape.vocab) == (
        DIMS["block_count"], DIMS["embedding_length"], DIMS["feed_forward_length"], 49152)
    assert shape.parameters > shape.vocab * shape.hidden  # embeddings and output, plus the blocks
