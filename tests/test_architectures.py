"""Finetuning and export round trip for each GGUF architecture users bring (edgerag/finetune/archs.py), on tiny
random-weight models made in the test (tests/tinyarch.py): the GGUF loads in transformers and in llama.cpp with
the same logits, the tokenizer rebuilt from it gives llama.cpp's ids on the probe texts, LoRA trains, and the
exported merged GGUF and base + adapter GGUF give the PEFT model's greedy tokens in llama.cpp."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("peft")
from tinyarch import make_arch_gguf  # noqa: E402
from tinyllama import chat_examples  # noqa: E402

from edgerag.config import load_settings  # noqa: E402
from edgerag.finetune.base import PROBE_TEXTS  # noqa: E402
from edgerag.models import ModelStore  # noqa: E402
from edgerag.models.importing import import_model  # noqa: E402

# Gemma 2 (softcapping, four norms per layer) and Phi-3 (fused projections) take longest: slow.
ARCHS = ["llama", "qwen2", "qwen3", "gemma3",
         pytest.param("gemma2", marks=pytest.mark.slow), pytest.param("phi3", marks=pytest.mark.slow)]


@pytest.fixture()
def arch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    examples = chat_examples(16)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples))
    texts = [m["content"] for e in examples for m in e["messages"]] + list(PROBE_TEXTS)
    return tmp_path, texts


def _llama_logits(model, tokens, lora=None) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(str(model), lora_path=str(lora) if lora else None, n_ctx=256, logits_all=True,
                          n_threads=2, verbose=False)
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def _same_greedy(a: np.ndarray, b: np.ndarray) -> None:
    assert (a.argmax(-1) == b.argmax(-1)).all()
    assert np.abs(a - b).max() < 2e-2 * max(1.0, np.abs(a).max())


@pytest.mark.parametrize("arch", ARCHS)
def test_load_train_export_round_trip(arch, arch_home):
    import llama_cpp
    import torch
    from peft import PeftModel

    from edgerag.finetune.base import load_for_training, prepare_base
    from edgerag.finetune.export import export_run
    from edgerag.finetune.train import TrainConfig, train

    home, texts = arch_home
    store = ModelStore(home / "models")
    import_model(store, make_arch_gguf(arch, home / f"tiny-{arch}.gguf", texts), name=arch)
    settings = load_settings(threads=2)

    # 1. GGUF -> HF folder; the tokenizer is checked against llama.cpp's on the probe texts before it is cached
    base = prepare_base(settings, arch)
    assert base.arch == arch
    model, tokenizer = load_for_training(base, 32, gradient_checkpointing=False)
    vocab = llama_cpp.Llama(str(base.gguf), vocab_only=True, verbose=False)
    for text in PROBE_TEXTS:
        assert tokenizer.encode(text, add_special_tokens=False) == vocab.tokenize(text.encode(), add_bos=False,
                                                                                   special=True), text

    # 2. the same model in transformers and in llama.cpp
    prompt = chat_examples(3)[1]["messages"][:1]
    tokens = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
    with torch.no_grad():
        base_torch = model.eval()(torch.tensor([tokens])).logits[0].numpy()
    base_llama = _llama_logits(base.gguf, tokens)
    _same_greedy(base_torch, base_llama)

    # 3. LoRA training (Phi-3's fused projections get the adapter through archs.py)
    config = TrainConfig(base=arch, train_file=str(home / "train.jsonl"), out_dir=str(home / "run"), bits=32,
                         lora_r=8, lora_alpha=16, max_steps=3, learning_rate=3e-2, batch_size=4, save_steps=100,
                         warmup_steps=0)
    result = train(config, settings)
    assert result.steps == 3 and np.isfinite(result.final_loss)

    # 4. export: adapter GGUF + merged F32 GGUF, and the parity of both with PEFT in torch
    exported = export_run(result.out_dir, settings, quants=("F32",), name=f"{arch}-ft")
    merged, adapter = store.main_path(exported.merged[0]), store.main_path(exported.adapter)
    fresh, _ = load_for_training(base, 32, gradient_checkpointing=False)
    peft_model = PeftModel.from_pretrained(fresh, str(result.adapter_dir)).eval()
    with torch.no_grad():
        tuned_torch = peft_model(torch.tensor([tokens])).logits[0].numpy()
    tuned_merged = _llama_logits(merged, tokens)
    _same_greedy(tuned_torch, tuned_merged)
    _same_greedy(tuned_merged, _llama_logits(base.gguf, tokens, adapter))
    assert np.abs(tuned_merged - base_llama).max() > 1e-2  # the adapter really changed the model

    # 5. llama.cpp generates from both
    for path, lora in ((merged, None), (base.gguf, adapter)):
        llm = llama_cpp.Llama(str(path), lora_path=str(lora) if lora else None, n_ctx=256, n_threads=2,
                              verbose=False)
        out = llm.create_completion(tokens, max_tokens=4, temperature=0.0)
        assert out["usage"]["completion_tokens"] >= 1
