"""Accelerators are detected and used when present, never required: the settings, the onnxruntime provider choice
(CUDA, then CPU), llama.cpp's gpu_layers, and what `edgerag config show` reports, on this CPU-only machine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgerag.accelerators import choose_providers, parse_providers, torch_build
from edgerag.config import load_settings
from edgerag.errors import ConfigError, ModelError

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


def test_settings_parse_and_validate(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    defaults = load_settings()
    assert (defaults.gpu_layers, defaults.onnx_providers) == (-1, "auto")
    monkeypatch.setenv("EDGERAG_GPU_LAYERS", "20")
    monkeypatch.setenv("EDGERAG_ONNX_PROVIDERS", "cuda, CPU")
    settings = load_settings()
    assert settings.gpu_layers == 20 and parse_providers(settings.onnx_providers) == [CUDA, CPU]
    (tmp_path / "edgerag.toml").write_text('onnx_providers = "TensorrtExecutionProvider,cuda,cpu"\n')
    monkeypatch.delenv("EDGERAG_ONNX_PROVIDERS")
    assert parse_providers(load_settings().onnx_providers)[0] == "TensorrtExecutionProvider"
    for name, value, message in (("GPU_LAYERS", "-2", "gpu_layers must be -1"),
                                 ("GPU_LAYERS", "all", "cannot read 'all' as int"),
                                 ("ONNX_PROVIDERS", "cuda,gpu", "unknown provider 'gpu'"),
                                 ("ONNX_PROVIDERS", "azure", "remote endpoint"),
                                 ("ONNX_PROVIDERS", " , ", "empty")):
        monkeypatch.setenv(f"EDGERAG_{name}", value)
        with pytest.raises(ConfigError, match=message):
            load_settings()
        monkeypatch.delenv(f"EDGERAG_{name}")


def test_provider_choice_prefers_cuda_and_falls_back_as_the_setting_says():
    with_cuda = ["TensorrtExecutionProvider", CUDA, CPU]
    assert choose_providers("auto", with_cuda).using == [CUDA, CPU]
    assert choose_providers("auto", with_cuda).note == ""
    cpu_build = ["AzureExecutionProvider", CPU]  # what the PyPI `onnxruntime` wheel lists on Linux
    auto = choose_providers("auto", cpu_build)
    assert auto.using == [CPU] and auto.missing == [CUDA] and "onnxruntime-gpu" in auto.note
    fallback = choose_providers("cuda,cpu", cpu_build)
    assert fallback.using == [CPU] and "CUDA not in this onnxruntime build" in fallback.note
    with pytest.raises(ModelError, match=r"has no CUDA provider.*pip install onnxruntime-gpu.*auto"):
        choose_providers("cuda", cpu_build)  # CUDA or nothing: the user said so
    assert choose_providers("cpu", with_cuda).using == [CPU]  # the CPU on purpose, even with a GPU build
    assert "AzureExecutionProvider" not in choose_providers("auto", ["AzureExecutionProvider", CPU]).using


def _tiny_onnx_embedder(folder):
    """A 4-dimensional 'encoder' (embedding lookup) and a word-level tokenizer: enough for a real session."""
    import onnx
    from onnx import TensorProto, helper
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder.mkdir()
    vocab = {"[PAD]": 0, "[UNK]": 1, "warranty": 2, "battery": 3, "lasts": 4}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    table = np.random.default_rng(0).standard_normal((len(vocab), 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["hidden"])], "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "t"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["b", "t", 4])],
        [helper.make_tensor("table", TensorProto.FLOAT, table.shape, table.flatten())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    return folder


def test_embedder_on_a_cpu_only_onnxruntime(tmp_path):
    import onnxruntime

    from edgerag.embed import OnnxEmbedder

    if CUDA in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the CPU-only behaviour is not observable here")
    folder = _tiny_onnx_embedder(tmp_path / "tiny")
    reference = OnnxEmbedder(folder, providers="cpu").embed(["warranty lasts", "battery"])
    for setting in ("auto", "cuda,cpu"):
        embedder = OnnxEmbedder(folder, providers=setting)
        assert embedder.providers == [CPU] and embedder.provider_choice.missing == [CUDA]
        assert np.allclose(embedder.embed(["warranty lasts", "battery"]), reference)
    with pytest.raises(ModelError, match="onnxruntime-gpu"):
        OnnxEmbedder(folder, providers="cuda")


def test_generator_with_gpu_layers_runs_on_a_cpu_build(tmp_path):
    import llama_cpp
    from tinyllama import make_tiny_gguf

    from edgerag.generate.llm import Generator

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python has a GPU backend: the CPU-build fallback is not observable here")
    gguf = make_tiny_gguf(tmp_path / "tiny.gguf")
    outputs = []
    for layers in (0, -1):
        generator = Generator(gguf, n_ctx=256, threads=1, gpu_layers=layers)
        # passed through (llama-cpp-python spells "all" as INT32_MAX); the CPU build ignores it
        assert generator.llm.model_params.n_gpu_layers == (2**31 - 1 if layers == -1 else layers)
        outputs.append(generator.chat([{"role": "user", "content": "hi"}], max_tokens=8, temperature=0.0))
    assert outputs[0] == outputs[1]


def test_config_show_reports_what_was_detected_and_used(tmp_path, monkeypatch, capsys):
    from edgerag.cli import main

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    monkeypatch.setenv("EDGERAG_ONNX_PROVIDERS", "cuda,cpu")
    assert main(["config", "show", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["accelerators"]
    import onnxruntime

    available = onnxruntime.get_available_providers()
    assert found["onnxruntime"]["using"] == (["CUDA", "CPU"] if CUDA in available else ["CPU"])
    assert found["llama_cpp"]["gpu_layers"] == -1 and isinstance(found["llama_cpp"]["gpu_offload_build"], bool)
    assert found["training"]["using"] in ("CPU", "CUDA")
    assert main(["config", "show"]) == 0
    assert "accelerators" in capsys.readouterr().out


def test_torch_build_is_read_without_importing_torch(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version
    for version, build in (("2.13.0+cpu", "cpu"), ("2.5.1+cu124", "cu124"), ("2.13.0", "default")):
        monkeypatch.setattr(importlib.metadata, "version", lambda name, v=version: v if name == "torch" else real(name))
        info = torch_build()
        assert info["version"] == version and info["build"].startswith(build)
