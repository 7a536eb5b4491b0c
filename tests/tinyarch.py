"""Tiny random-weight GGUF models of each architecture finetuning supports, made in the test.

A transformers model of the architecture with tiny sizes is written as a GGUF the way llama.cpp's
convert_hf_to_gguf.py writes it (gguf-py's tensor name map, q/k rows permuted for llama, Gemma's norms stored as
1 + w), with a small byte-level BPE vocabulary trained here (ChatML specials, digits split like SmolLM2's
`smollm` pre-tokenizer) so that loading and tokenizer conversion take a second, not a minute. Sizes that
transformers cannot read back from a GGUF are chosen as the real models have them (Gemma: head_dim 256, which is
also its query scale; Qwen3: head_dim 128)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# ChatML's as in SmolLM2 (ids 0-2), then what llama.cpp's vocabulary loader looks up by text for Phi-3
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|end|>", "<s>", "</s>", "<unk>"]
LAYERS, HIDDEN, FF = 2, 64, 128

# architecture -> (transformers config class, its tiny sizes)
CONFIGS = {
    "llama": ("LlamaConfig", dict(num_attention_heads=4, num_key_value_heads=2)),
    "qwen2": ("Qwen2Config", dict(num_attention_heads=4, num_key_value_heads=2)),
    "qwen3": ("Qwen3Config", dict(num_attention_heads=2, num_key_value_heads=1, head_dim=128)),
    "phi3": ("Phi3Config", dict(num_attention_heads=4, num_key_value_heads=2, pad_token_id=0)),
    "gemma2": ("Gemma2Config", dict(num_attention_heads=2, num_key_value_heads=1, head_dim=256,
                                    query_pre_attn_scalar=256, sliding_window=512)),
    "gemma3": ("Gemma3TextConfig", dict(num_attention_heads=2, num_key_value_heads=1, head_dim=256,
                                        query_pre_attn_scalar=256, sliding_window=512, rope_theta=1e6)),
}


def train_vocab(texts: list[str], size: int = 600) -> tuple[list[str], list[str]]:
    """(tokens, merges) of a byte-level BPE trained on `texts`; the specials are ids 0-2 as in SmolLM2."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                       pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges


def _hf_model(arch: str, vocab: int, seed: int):
    import torch
    import transformers

    name, sizes = CONFIGS[arch]
    config = getattr(transformers, name)(
        vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=FF, num_hidden_layers=LAYERS,
        max_position_embeddings=1024, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
        tie_word_embeddings=arch.startswith("gemma"), **sizes)
    if arch in ("llama", "qwen2", "qwen3", "phi3"):
        config.rope_theta = 10000.0
    model = getattr(transformers, "AutoModelForCausalLM").from_config(config)
    rng = np.random.default_rng(seed)
    with torch.no_grad():  # peaky logits (large embeddings, a scaled head) so that greedy decoding has clear winners
        for key, param in model.named_parameters():
            if "norm" in key:
                values = rng.normal(0.0, 0.1, param.shape) + (0.0 if arch.startswith("gemma") else 1.0)
            elif param.ndim == 1:
                values = rng.normal(0.0, 0.1, param.shape)
            elif "embed_tokens" in key:
                values = rng.standard_normal(param.shape)
            else:
                values = rng.standard_normal(param.shape) / np.sqrt(param.shape[1]) * (4.0 if "lm_head" in key else 1.0)
            param.copy_(torch.from_numpy(values.astype(np.float32)))
    return model.eval()


def make_arch_gguf(arch: str, out: Path, texts: list[str], seed: int = 0) -> Path:
    """A tiny GGUF of `arch` (see CONFIGS) with a BPE vocabulary trained on `texts`."""
    import gguf

    from edgerag.finetune.export import finish_gguf, permute_rows

    tokens, merges = train_vocab(texts)
    model = _hf_model(arch, len(tokens), seed)
    config = model.config
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or HIDDEN // heads
    writer = gguf.GGUFWriter(str(out), arch)
    # a neutral name: llama.cpp changes tokenizer rules for some names (e.g. "phi3": whitespace after specials)
    writer.add_string("general.name", "tiny-test-model")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, value in {"context_length": 1024, "embedding_length": HIDDEN, "block_count": LAYERS,
                       "feed_forward_length": FF, "attention.head_count": heads, "attention.head_count_kv": kv,
                       "attention.key_length": head_dim, "attention.value_length": head_dim,
                       "rope.dimension_count": head_dim, "vocab_size": len(tokens)}.items():
        writer.add_uint32(f"{arch}.{key}", value)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    writer.add_float32(f"{arch}.rope.freq_base", float(config.rope_theta))
    if arch.startswith("gemma"):
        writer.add_uint32(f"{arch}.attention.sliding_window", config.sliding_window)
    if arch == "gemma2":
        writer.add_float32("gemma2.attn_logit_softcapping", config.attn_logit_softcapping)
        writer.add_float32("gemma2.final_logit_softcapping", config.final_logit_softcapping)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.upper()), LAYERS)
    for key, tensor in model.state_dict().items():
        if key == "lm_head.weight" and config.tie_word_embeddings:
            continue
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"{arch}: no GGUF name for {key}")
        data = tensor.float().numpy()
        if arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            data = permute_rows(data, heads if "attn_q" in name else kv)
        if arch.startswith("gemma") and key.endswith("norm.weight"):
            data = data + 1.0  # Gemma's RMSNorm scales by 1 + w; llama.cpp stores 1 + w
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    finish_gguf(writer)
    return out


def small_chat_home(home: Path, n_examples: int = 12) -> Path:
    """A data home whose models store holds `tiny` (a llama with a 600-token vocabulary trained on the chats, so
    loading and tokenizer conversion take a second) and whose chats/train.jsonl holds `n_examples` chats: for
    tests that train several runs or several ranks."""
    import json

    from tinyllama import chat_examples

    from edgerag.models import ModelStore
    from edgerag.models.importing import import_model

    examples = chat_examples(n_examples)
    texts = [m["content"] for e in examples for m in e["messages"]]
    import_model(ModelStore(home / "models"), make_arch_gguf("llama", home / "tiny.gguf", texts), name="tiny")
    (home / "chats").mkdir()
    (home / "chats" / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples))
    return home
