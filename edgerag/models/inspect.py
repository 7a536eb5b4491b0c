"""Recognise and validate model files brought in by hand, before anything is copied into the store."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import BadInputError

GGUF_MAGIC = b"GGUF"


def read_gguf(path: Path) -> dict:
    """Parse a GGUF's header and tensor table and check every tensor's data lies inside the file.

    Returns metadata the store records: architecture, name, file type, context length, whether it is a LoRA
    adapter. A truncated download fails here with a one-line reason instead of crashing llama.cpp later.
    """
    from gguf import GGUFReader

    with open(path, "rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise BadInputError(f"{path}: not a GGUF file (bad magic bytes)")
    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # GGUFReader raises ValueError/IndexError/etc. on damaged headers
        raise BadInputError(f"{path}: damaged or truncated GGUF ({type(exc).__name__}: {exc})") from exc
    size = path.stat().st_size
    end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    if not reader.tensors or end > size:
        raise BadInputError(f"{path}: truncated GGUF (tensor data needs {end} bytes, file has {size})")

    def field(key: str):
        f = reader.fields.get(key)
        if f is None:
            return None
        value = f.contents()
        return value

    arch = field("general.architecture") or "unknown"
    return {
        "architecture": arch,
        "model_name": field("general.name"),
        "file_type": field("general.file_type"),
        "context_length": field(f"{arch}.context_length"),
        "is_adapter": field("general.type") == "adapter",
        "has_chat_template": field("tokenizer.chat_template") is not None,
        "tensors": len(reader.tensors),
    }


# llama.cpp's LLAMA_FTYPE numbers, for a readable quantization label.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
              17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def gguf_quantization(meta: dict) -> str:
    return FILE_TYPES.get(meta.get("file_type"), f"ftype-{meta.get('file_type')}")


# Weight files in Python's pickle format: loading one can execute arbitrary code.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")


def classify_dir(path: Path) -> str:
    """'onnx' (an ONNX embedder folder) or 'hf' (a transformers model folder); else a BadInputError."""
    has = lambda name: (path / name).is_file()  # noqa: E731
    if has("model.onnx"):
        if not has("tokenizer.json"):
            raise BadInputError(f"{path}: ONNX folder has no tokenizer.json")
        return "onnx"
    pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in path.glob(pattern))
    if has("config.json") and pickles and not any(path.glob("*.safetensors")):
        raise BadInputError(f"{path}: weights in pickle format ({pickles[0]}) are refused because loading them can "
                            "run code; convert them to safetensors first")
    if has("config.json") and any(path.glob("*.safetensors")):
        try:
            json.loads((path / "config.json").read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInputError(f"{path / 'config.json'}: not valid JSON ({exc})") from exc
        return "hf"
    raise BadInputError(
        f"{path}: not a model folder (expected model.onnx + tokenizer.json, or config.json + *.safetensors)"
    )
