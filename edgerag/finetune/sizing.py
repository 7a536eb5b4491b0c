"""Batch size and sequence length for the device a finetune runs on (`--batch-size 0` / `--max-seq-len 0`).

On a CPU they stay the measured defaults (4 examples of up to 1536 tokens: bench/finetune.py). On CUDA they are
chosen from the GPU's *total* memory (not the free memory, which changes from run to run: `--resume` must
choose the same) and the base model's shape, with an estimate of what LoRA training keeps on the GPU:

- the weights: parameters × 0.56 bytes (NF4 with its scales), 2 (bf16) or 4 (fp32);
- per token, the activations saved for the backward pass, about (13·hidden + 5·ffn) values per layer (norm inputs
  and outputs, q/k/v/o, the gated MLP's three ffn-wide tensors, LoRA dropout copies) at 2 or 4 bytes, and the
  answer positions' logits (fp32 logits, softmax and gradient: 10 bytes × vocabulary; train.py computes logits at
  the answer only, taken as a quarter of the tokens);
- × 1.5 for the allocator's fragmentation and temporaries, and 2 GiB kept for the CUDA context and kernels.

The batch is the largest power of two up to 64 whose padded batch (batch × sequence length) fits 90% of the
memory; a GPU too small for one 1536-token example gets a shorter sequence length (examples longer than it are
left out of training, as on a CPU). The estimate errs high; bench/gpu.py reports the peak actually allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInputError

CPU_BATCH, CPU_SEQ = 4, 1536
MAX_BATCH = 64
SEQ_CHOICES = (1536, 1024, 768, 512)
RESERVED = 2 * 2**30
WEIGHT_BYTES = {4: 0.56, 16: 2.0, 32: 4.0}
ANSWER_SHARE = 0.25


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    layers: int
    hidden: int
    ffn: int
    vocab: int


def bytes_per_token(shape: ModelShape, bits: int) -> float:
    activation = 2.0 if bits in (4, 16) else 4.0
    per_layer = (13 * shape.hidden + 5 * shape.ffn) * activation
    return 1.5 * (shape.layers * per_layer + ANSWER_SHARE * 10 * shape.vocab)


def choose(total_bytes: int, shape: ModelShape, bits: int, seq: int = 0) -> tuple[int, int]:
    """(batch size, max sequence length) for a GPU of total_bytes (seq: a length the user set, else chosen);
    BadInputError where not even one example fits."""
    usable = 0.9 * total_bytes - RESERVED - 1.5 * shape.parameters * WEIGHT_BYTES[bits]
    per_token = bytes_per_token(shape, bits)
    for length in (seq,) if seq else SEQ_CHOICES:
        batch = 1
        while batch * 2 <= MAX_BATCH and batch * 2 * length * per_token <= usable:
            batch *= 2
        if batch * length * per_token <= usable:
            return batch, length
    raise BadInputError(f"a {total_bytes / 2**30:.1f} GiB GPU cannot hold this model's training at "
                        f"{seq or SEQ_CHOICES[-1]} tokens per example (estimate: {max(usable, 0) / 2**30:.1f} GiB "
                        "left after the weights); try --bits 4, a shorter --max-seq-len, or a smaller model")


def model_shape(base_name: str | None) -> ModelShape:
    """The shape of a store generator (None: the active one): its GGUF's metadata and tensor sizes, or its HF
    config.json. The store is the settings' (EDGERAG_HOME / edgerag.toml), as for the training run itself."""
    import json

    from ..config import load_settings
    from ..models import ModelStore

    store = ModelStore(load_settings().models_dir)
    manifest = store.get(base_name) if base_name else store.active("generator")
    base_name = manifest.name
    if manifest.format == "hf":
        folder = store.folder(base_name)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config = config.get("text_config", config)
        size = sum(f.size for f in manifest.files if f.path.endswith(".safetensors"))
        dtype_bytes = 4 if config.get("torch_dtype", config.get("dtype")) == "float32" else 2
        return ModelShape(size // dtype_bytes, config["num_hidden_layers"], config["hidden_size"],
                          config["intermediate_size"], config["vocab_size"])
    from gguf import GGUFReader

    reader = GGUFReader(str(store.main_path(base_name)))
    arch = reader.fields["general.architecture"].contents()

    def field(key):
        return int(reader.fields[f"{arch}.{key}"].contents())

    vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    return ModelShape(sum(int(t.n_elements) for t in reader.tensors), field("block_count"),
                      field("embedding_length"), field("feed_forward_length"), vocab)


def choose_for_device(base_name: str | None, batch_size: int, max_seq_len: int, bits: int) -> tuple[int, int]:
    """Fill in the zeros (= for this machine) of batch_size / max_seq_len; values the user set are kept."""
    torch = None
    try:
        import torch
    except ImportError:
        pass
    if torch is None or not torch.cuda.is_available():
        return batch_size or CPU_BATCH, max_seq_len or CPU_SEQ
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    batch, seq = choose(total, model_shape(base_name), bits, seq=max_seq_len)
    return batch_size or batch, seq
