"""A tiny llama GGUF made in the test: SmolLM2's real tokenizer and chat template (copied from the bundled GGUF's
metadata), two 64-wide layers of seeded random F32 weights. transformers, peft and llama.cpp all load it, so the
finetuning path (dequantize → LoRA → GGUF export) runs end to end in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIMS = {"block_count": 2, "embedding_length": 64, "feed_forward_length": 128, "attention.head_count": 4,
        "attention.head_count_kv": 2, "rope.dimension_count": 16, "context_length": 1024}


def bundled_gguf() -> Path:
    from edgerag.models.prepare import GENERATOR_FILE, GENERATOR_PACKAGE, package_dir

    return package_dir(GENERATOR_PACKAGE) / GENERATOR_FILE


def make_tiny_gguf(out: Path, seed: int = 0) -> Path:
    import gguf

    from edgerag.finetune.export import copy_metadata, finish_gguf

    template = gguf.GGUFReader(str(bundled_gguf()))
    writer = gguf.GGUFWriter(str(out), "llama")
    copy_metadata(template, writer, skip={"general.architecture", "general.file_type", "general.name",
                                          "general.quantization_version"}
                  | {key for key in template.fields if key.startswith("llama.")})
    writer.add_string("general.name", "tiny-llama-test")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab = int(template.fields["llama.vocab_size"].contents())
    for key, value in DIMS.items():
        writer.add_uint32(f"llama.{key}", value)
    writer.add_uint32("llama.vocab_size", vocab)
    writer.add_float32("llama.rope.freq_base", 10000.0)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)

    rng = np.random.default_rng(seed)
    d, ff, heads, kv = DIMS["embedding_length"], DIMS["feed_forward_length"], 4, 2
    head_dim = d // heads

    def w(rows, cols, scale=1.0):
        return (rng.standard_normal((rows, cols)) * scale / np.sqrt(cols)).astype(np.float32)

    # peaky logits (large embeddings) so greedy decoding has clear winners, not near-ties
    writer.add_tensor("token_embd.weight", (rng.standard_normal((vocab, d)) * 1.0).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(d, np.float32))
    writer.add_tensor("output.weight", w(vocab, d, 4.0))
    for b in range(DIMS["block_count"]):
        writer.add_tensor(f"blk.{b}.attn_norm.weight", np.ones(d, np.float32))
        writer.add_tensor(f"blk.{b}.attn_q.weight", w(heads * head_dim, d))
        writer.add_tensor(f"blk.{b}.attn_k.weight", w(kv * head_dim, d))
        writer.add_tensor(f"blk.{b}.attn_v.weight", w(kv * head_dim, d))
        writer.add_tensor(f"blk.{b}.attn_output.weight", w(d, d))
        writer.add_tensor(f"blk.{b}.ffn_norm.weight", np.ones(d, np.float32))
        writer.add_tensor(f"blk.{b}.ffn_gate.weight", w(ff, d))
        writer.add_tensor(f"blk.{b}.ffn_up.weight", w(ff, d))
        writer.add_tensor(f"blk.{b}.ffn_down.weight", w(d, ff))
    finish_gguf(writer)
    return out


def chat_examples(n: int = 16) -> list[dict]:
    """Short grounded-QA chats in the runtime's prompt shape (content is irrelevant to the mechanics)."""
    from edgerag.generate.prompts import NOT_FOUND

    facts = [("warranty", "The warranty lasts 24 months", "24 months"),
             ("battery", "The battery holds 5200 mAh", "5200 mAh"),
             ("weight", "The device weighs 1.3 kg", "1.3 kg"),
             ("colour", "It comes in slate grey", "slate grey")]
    out = []
    for i in range(n):
        topic, sentence, answer = facts[i % len(facts)]
        other = facts[(i + 1) % len(facts)][1]
        answerable = i % 5 != 4
        sources = f"[1] {sentence}.\n[2] {other}." if answerable else f"[1] {other}."
        target = f"{answer} [1]" if answerable else NOT_FOUND
        out.append({"messages": [
            {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: what about the {topic}? (#{i})"},
            {"role": "assistant", "content": target}]})
    return out
