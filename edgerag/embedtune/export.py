"""`edgerag embedder export`: the trained student into the models store, as the runtime needs it.

Two models are registered, with lineage: `<name>-torch` (the student's PyTorch folder, format hf: the starting
point of a later round of adaptation) and `<name>` (ONNX, int8 per-channel), made by the same optimum export and
onnxruntime quantization as `models prepare`. The int8 model is kept only if its mean cosine against the PyTorch
student on sample sentences (and collection texts, when given) is >= MIN_INT8_COSINE, as for the bundled one;
otherwise `<name>` is the fp32 ONNX export, which the gate then judges like any candidate (failing a 25-minute
loop at export would leave the user nothing). Both sides embed at the runtime's token limit (`student_vectors`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..models import ModelStore
from ..models.manifest import Manifest, sha256_file
from ..models.prepare import (EMBEDDER_PACKAGE, MIN_INT8_COSINE, SAMPLE_SENTENCES, _export_onnx, _quantize_int8,
                              package_dir)


@dataclass
class ExportResult:
    name: str
    torch_name: str
    cosine: float


def torch_weights(store: ModelStore, name: str) -> Path:
    """The PyTorch folder an ONNX embedder was made from: an adapted one's `-torch` model, the bundled package's
    folder for the bundled embedder, or the HF folder an imported model came from."""
    manifest = store.get(name)
    if manifest.lineage.get("pytorch_model"):
        return store.folder(manifest.lineage["pytorch_model"])
    if manifest.format == "hf":
        return store.folder(name)
    if manifest.lineage.get("source_sha256"):
        try:
            src = package_dir(EMBEDDER_PACKAGE) / "model"
        except ModelError:
            src = None
        if src is not None and (src / "model.safetensors").is_file() and \
                sha256_file(src / "model.safetensors") == manifest.lineage["source_sha256"]:
            return src
    hf = manifest.lineage.get("hf_folder")
    if hf and (Path(hf) / "config.json").is_file():
        return Path(hf)
    raise ModelError(f"{name}: no PyTorch weights are known for this embedder; pass --base DIR (a "
                     "sentence-transformers or Hugging Face folder)")


def student_vectors(student: Path, texts: list[str], max_tokens: int) -> np.ndarray:
    """The PyTorch student's normalised embeddings: the reference an ONNX export must agree with, truncated where
    the runtime truncates. (The student keeps its training length, 128 tokens by default; compared at that length
    with the runtime's 256, an exact fp32 export agreed at mean cosine 0.989 on NFCorpus passages and 1.0000 at
    256, so stop 25's "int8 falls short at 0.9888" measured the truncation, not the quantization.)"""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(student), device="cpu", local_files_only=True)
    model.max_seq_length = max_tokens
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=16)


def onnx_cosine(reference: np.ndarray, onnx_folder: Path, texts: list[str]) -> float:
    from ..embed import OnnxEmbedder

    return float(np.mean(np.sum(reference * OnnxEmbedder(onnx_folder).embed(texts), axis=1)))


def export_student(store: ModelStore, student: Path, name: str, parent: str, lineage: dict,
                   sample_texts: list[str] = (), tmp_root: Path | None = None,
                   say: Callable[[str], None] = lambda m: None) -> ExportResult:
    """Register `<name>-torch` and `<name>` (int8 ONNX, or fp32 when int8 falls short) built from the student
    folder."""
    student = Path(student)
    if not (student / "config.json").is_file():
        raise ModelError(f"{student}: not a trained student folder (no config.json; did training finish?)")
    torch_name = f"{name}-torch"
    # The runtime reads these; the parent's token limit stays (sentence-transformers 5 no longer saves it).
    parent_details = store.get(parent).details if store.exists(parent) else {}
    dim = json.loads((student / "config.json").read_text(encoding="utf-8"))["hidden_size"]
    details = {"main_file": "model.onnx", "dim": dim, "pooling": "mean", "normalize": True,
               "max_tokens": parent_details.get("max_tokens", 256)}
    common = dict(kind="embedder", license="apache-2.0", source=f"embedtune:{student}")
    say(f"{torch_name}: storing the PyTorch student")
    store.add(Manifest(name=torch_name, format="hf", quantization="fp32", parent=parent,
                       lineage={**lineage, "made_by": "edgerag embedder train"},
                       details={**details, "main_file": "config.json"}, **common),
              lambda d: shutil.copytree(student, d, dirs_exist_ok=True), replace=True)
    texts = list(SAMPLE_SENTENCES) + list(sample_texts)
    tmp_root = Path(tmp_root or tempfile.gettempdir())
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        fp32 = Path(tmp) / "fp32"
        fp32.mkdir()
        say(f"{name}: exporting to ONNX with optimum, quantizing to int8 (dynamic, per-channel)")
        _export_onnx(student, fp32)
        reference = student_vectors(student, texts, details["max_tokens"])

        def register_onnx(quantization: str, made_by: str, fill, **extra) -> float:
            store.add(Manifest(name=name, format="onnx", quantization=quantization, parent=torch_name,
                               lineage={**lineage, "pytorch_model": torch_name, "made_by": made_by, **extra},
                               details=details, **common), fill, replace=True)
            return onnx_cosine(reference, store.folder(name), texts)

        cosine = register_onnx("int8", "optimum main_export + onnxruntime quantize_dynamic per_channel QInt8",
                               lambda d: _quantize_int8(fp32, d))
        if cosine < MIN_INT8_COSINE:
            say(f"{name}: int8 agrees with the PyTorch student at mean cosine {cosine:.4f} < {MIN_INT8_COSINE}; "
                "keeping the fp32 ONNX export instead (larger and slower to embed with, not less accurate)")
            cosine = register_onnx("fp32", "optimum main_export (fp32: int8 fell short of the cosine check)",
                                   lambda d: shutil.copytree(fp32, d, dirs_exist_ok=True),
                                   int8_mean_cosine_vs_pytorch=round(cosine, 5))
    manifest = store.get(name)
    manifest.lineage["mean_cosine_vs_pytorch"] = round(cosine, 5)
    store.update_manifest(manifest)
    if cosine < MIN_INT8_COSINE:  # even fp32 disagrees: the export itself is broken
        store.remove(name)
        raise ModelError(f"{name}: the ONNX export agrees with its PyTorch student at mean cosine {cosine:.4f} "
                         f"< {MIN_INT8_COSINE}; not registered")
    return ExportResult(name, torch_name, cosine)


def record_gate(store: ModelStore, name: str, gate: dict) -> None:
    manifest = store.get(name)
    manifest.lineage["gate"] = json.loads(json.dumps(gate, default=str))
    store.update_manifest(manifest)
