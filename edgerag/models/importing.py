"""`edgerag models import PATH`: bring a GGUF file, an HF model folder or an ONNX embedder folder into the store.

Only regular files are copied: a folder holding a symbolic link is refused (a link could pull any file of the
machine into the store, or loop). Weights must be safetensors (or ONNX/GGUF): pickle checkpoints
(pytorch_model.bin, *.pt, *.ckpt) can run code when loaded, so they are refused, or left behind when the folder
also has safetensors.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ..errors import BadInputError
from .inspect import PICKLE_PATTERNS, classify_dir, gguf_quantization, read_gguf
from .manifest import Manifest
from .store import ModelStore


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "model"


def import_model(store: ModelStore, path: Path, name: str | None = None, license: str = "unknown") -> Manifest:
    path = Path(path).expanduser()
    if not path.exists():
        raise BadInputError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise BadInputError(f"{path}: unsupported model file (expected a .gguf file or a model folder)")
        meta = read_gguf(path)
        manifest = Manifest(
            name=_slug(name or path.stem), kind="generator", format="gguf-lora" if meta["is_adapter"] else "gguf",
            quantization=gguf_quantization(meta), source=f"path:{path.resolve()}", license=license,
            details={"main_file": path.name, **meta},
        )
        return store.add(manifest, lambda d: shutil.copy2(path, d / path.name))

    links = [p for p in path.rglob("*") if p.is_symlink()]
    if links:
        raise BadInputError(f"{path}: {links[0].relative_to(path)} is a symbolic link; models import copies only "
                            "regular files (replace the link by the file it points to)")
    fmt = classify_dir(path)
    config = {}
    if (path / "config.json").is_file():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    archs = " ".join(config.get("architectures") or [])
    kind = "embedder" if fmt == "onnx" or "CausalLM" not in archs else "generator"
    quant = "int8" if fmt == "onnx" and _looks_quantized(path / "model.onnx") else config.get("torch_dtype", "fp32")
    details = {"main_file": "model.onnx"} if fmt == "onnx" else {"architectures": config.get("architectures")}
    if kind == "embedder" and config.get("hidden_size"):
        details.update(dim=config["hidden_size"], pooling="mean", normalize=True, max_tokens=256)
    manifest = Manifest(name=_slug(name or path.name), kind=kind, format=fmt, quantization=str(quant),
                        source=f"path:{path.resolve()}", license=license, details=details)

    def build(staging: Path) -> None:
        shutil.copytree(path, staging, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns("manifest.json", ".git", *PICKLE_PATTERNS))

    return store.add(manifest, build)


def _looks_quantized(model: Path) -> bool:
    # Dynamic-quantized ONNX graphs contain MatMulInteger / DynamicQuantizeLinear nodes; a byte scan avoids
    # needing the onnx package at run time.
    with open(model, "rb") as fh:
        head = fh.read(4 << 20)
    return b"DynamicQuantizeLinear" in head or b"MatMulInteger" in head
