"""`edgerag finetune export`: a trained LoRA run → GGUF files llama.cpp runs, written with gguf-py (no llama.cpp
clone or build) and registered in the models store with lineage.

Two outputs:
1. A GGUF LoRA adapter (`<name>-lora`, format gguf-lora): llama.cpp applies it on top of the base GGUF
   (llama-cpp-python's `lora_path`). Tiny (a few MB) and exact: lora_a/lora_b as trained, scale alpha/r.
2. A merged model: every base tensor is read from the base GGUF, dequantized, the LoRA delta (scale·B·A) added,
   written as F16 (or F32 for exactness tests), then quantized by llama.cpp itself (`llama_model_quantize`,
   shipped inside llama-cpp-python) to Q8_0 and Q4_K_M. Tokenizer, chat template and all other metadata are
   copied from the base GGUF, so the merged model tokenizes and prompts exactly as the base did.

Why deltas are permuted: transformers un-permutes llama's q/k projections when it reads a GGUF (llama.cpp stores
them in a rotary-interleaved row order), so a delta trained in the HF layout must be permuted the same way before
it is added to (or, for the adapter, its lora_b rows stored next to) the GGUF tensors. Parity tests check both
paths produce the same tokens as the PEFT model in torch.

Every output is built in the store's staging folder and moved into place only when complete.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInputError, ModelError, require
from ..models import Manifest, ModelStore
from ..models.inspect import read_gguf
from ..models.manifest import FINETUNE_TOOL, sha256_file
from ..fileio import write_text_atomic
from .archs import ARCHS

QUANTS = {"Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "F16": None, "F32": None}
_PEFT_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")


@dataclass
class ExportResult:
    adapter: str  # store name of the gguf-lora adapter
    merged: list[str] = field(default_factory=list)  # store names of the merged models, first = preferred
    lineage: dict = field(default_factory=dict)


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row order for a q/k projection (convert_hf_to_gguf's `permute`): within each head, the two
    rotary halves are interleaved."""
    rows = weights.shape[0]
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


@dataclass
class LoraWeights:
    """The adapter of a run, keyed by GGUF tensor name (e.g. blk.3.attn_q.weight), in llama.cpp's row order."""

    scale: float  # alpha / r (or alpha / sqrt(r) with rsLoRA)
    alpha: float
    rank: int
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (A [r, in], B [out, r]), float32

    def delta(self, name: str) -> np.ndarray:
        a, b = self.pairs[name]
        return self.scale * (b @ a)


def read_lora(adapter_dir: Path, arch: str, n_blocks: int, n_head: int, n_head_kv: int) -> LoraWeights:
    gguf = require("gguf")
    safetensors_torch = require("safetensors.torch")
    config_path, weights_path = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise BadInputError(f"{adapter_dir}: no PEFT adapter here (adapter_config.json + adapter_model.safetensors)")
    config = json.loads(config_path.read_text())
    if config.get("peft_type") != "LORA":
        raise ModelError(f"{adapter_dir}: only LoRA adapters can be exported, not {config.get('peft_type')}")
    if config.get("rank_pattern") or config.get("alpha_pattern") or config.get("modules_to_save"):
        raise ModelError(f"{adapter_dir}: per-module ranks/alphas and modules_to_save are not supported by export")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / (rank ** 0.5 if config.get("use_rslora") else rank)
    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.upper()), n_blocks)
    try:
        tensors = safetensors_torch.load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for truncated or corrupt files
        raise BadInputError(f"{weights_path}: unreadable adapter weights ({exc})") from exc
    halves: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in tensors.items():
        match = _PEFT_KEY.match(key)
        gguf_name = match and names.get_name(match["module"] + ".weight", try_suffixes=(".weight",))
        if not gguf_name:
            raise ModelError(f"{weights_path}: cannot map adapter tensor {key!r} to a GGUF tensor")
        halves.setdefault(gguf_name, {})[match["ab"]] = tensor.float().numpy()
    pairs = {}
    for name, half in halves.items():
        if set(half) != {"A", "B"}:
            raise ModelError(f"{weights_path}: {name} has lora_{''.join(half)} only")
        a, b = half["A"], half["B"]
        if ARCHS[arch].permute_qk and ".attn_q." in name:
            b = permute_rows(b, n_head)
        elif ARCHS[arch].permute_qk and ".attn_k." in name:
            b = permute_rows(b, n_head_kv)
        pairs[name] = (np.ascontiguousarray(a), np.ascontiguousarray(b))
    return LoraWeights(scale, alpha, rank, pairs)


def copy_metadata(reader, writer, skip: set[str]) -> None:
    from gguf import GGUFValueType

    for key, item in reader.fields.items():
        if key.startswith("GGUF.") or key in skip:
            continue
        vtype = item.types[0]
        sub_type = item.types[-1] if vtype == GGUFValueType.ARRAY else None
        if vtype == GGUFValueType.ARRAY and len(item.types) > 2:
            raise ModelError(f"cannot copy nested array metadata {key!r}")
        writer.add_key_value(key, item.contents(), vtype, sub_type)


def _int_field(reader, key: str) -> int:
    item = reader.fields.get(key)
    if item is None:
        raise ModelError(f"base GGUF has no {key}")
    return int(item.contents())


def write_adapter_gguf(lora: LoraWeights, arch: str, path: Path, base_name: str) -> None:
    gguf = require("gguf")
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("general.name", f"LoRA adapter for {base_name}")
    writer.add_string("adapter.type", "lora")
    # llama.cpp scales by alpha / rank; storing scale * rank keeps rsLoRA (alpha / sqrt(r)) exact as well
    writer.add_float32("adapter.lora.alpha", lora.scale * lora.rank)
    for name, (a, b) in sorted(lora.pairs.items()):
        stem = name.removesuffix(".weight")
        writer.add_tensor(f"{stem}.weight.lora_a", a.astype(np.float32))
        writer.add_tensor(f"{stem}.weight.lora_b", b.astype(np.float32))
    finish_gguf(writer)


def write_merged_gguf(base_gguf: Path, lora: LoraWeights | None, path: Path, outtype: str = "F16",
                      name: str | None = None, progress: Callable[[int, int], None] = lambda i, n: None) -> None:
    """Base GGUF tensors, dequantized, plus the LoRA deltas, written as F16 (norms stay F32) or F32."""
    gguf = require("gguf")
    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(path), arch)
    copy_metadata(reader, writer, skip={"general.architecture", "general.file_type", "general.name",
                                         "general.quantization_version"})
    writer.add_string("general.name", name or "merged")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if outtype == "F16" else gguf.LlamaFileType.ALL_F32)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    used = set()
    for i, tensor in enumerate(reader.tensors):
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        weights = weights.reshape([int(d) for d in reversed(tensor.shape.tolist())])
        if lora and tensor.name in lora.pairs:
            delta = lora.delta(tensor.name)
            if delta.shape != weights.shape:
                raise ModelError(f"adapter {tensor.name} is {delta.shape}, the base tensor is {weights.shape}: "
                                 "the adapter was trained on another model")
            weights = weights + delta
            used.add(tensor.name)
        if outtype == "F16" and weights.ndim > 1:
            weights = weights.astype(np.float16)
        writer.add_tensor(tensor.name, weights)
        progress(i + 1, len(reader.tensors))
    if lora and used != set(lora.pairs):
        raise ModelError(f"adapter tensors not in the base model: {sorted(set(lora.pairs) - used)[:3]}")
    finish_gguf(writer)


def finish_gguf(writer) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantize_gguf(source: Path, target: Path, quant: str, threads: int = 0) -> None:
    """llama.cpp's own quantizer, called through llama-cpp-python's bindings."""
    llama_cpp = require("llama_cpp", "llama-cpp-python")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTS[quant])
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if status != 0 or not target.is_file():
        raise ModelError(f"llama.cpp could not quantize {source.name} to {quant} (status {status})")


def run_lineage(run_dir: Path, base) -> dict:
    """What the store records about how a finetuned model was made."""
    config = json.loads((run_dir / "train_config.json").read_text())
    history = run_dir / "loss_history.json"
    card = Path(config["train_file"]).parent / "data_card.json"
    return {
        "tool": FINETUNE_TOOL,
        "run_dir": str(run_dir),
        "base_model": base.name,
        "base_sha256": sha256_file(base.gguf) if base.gguf else None,
        "training_config": config,
        "train_file_sha256": sha256_file(Path(config["train_file"])),
        # what makes a rerun of an interrupted export keep the models it already registered (see export_run)
        "adapter_sha256": sha256_file(run_dir / "adapter" / "adapter_model.safetensors"),
        "data_card_sha256": sha256_file(card) if card.is_file() else None,
        "training": json.loads(history.read_text()) if history.is_file() else None,
    }


def _already_exported(store: ModelStore, name: str, lineage: dict, replace: bool) -> bool:
    """True if `name` is this run's export of this very adapter, complete in the store (a killed export is rerun:
    what it registered is kept, not rebuilt). A model of that name from anything else is refused unless
    replace."""
    if not store.exists(name):
        return False
    theirs = store.get(name).lineage
    same = all(theirs.get(k) == lineage.get(k) for k in ("run_dir", "adapter_sha256", "base_sha256")) \
        and lineage.get("adapter_sha256") is not None
    if same and not store.verify([name]):
        return True
    if not replace:
        raise ModelError(f"a model named {name!r} already exists in {store.root} and is not this run's export: "
                         "pass --replace to overwrite it, or --name for other names")
    return False


def export_run(run_dir: Path, settings, quants: tuple[str, ...] = ("Q8_0", "Q4_K_M"), name: str | None = None,
               replace: bool = False, on_event: Callable[[dict], None] = lambda e: None) -> ExportResult:
    """Register `<name>-lora` and one merged model per quant (`<name>-q8_0`, ...) for a finished training run."""
    gguf = require("gguf")
    from .base import prepare_base
    from .train import TrainConfig

    run_dir = Path(run_dir).resolve()  # lineage names the run the same from any working directory
    for quant in quants:
        if quant not in QUANTS:
            raise BadInputError(f"unknown quantization {quant!r} (choose {', '.join(QUANTS)})")
    config = TrainConfig.load(run_dir)
    adapter_dir = run_dir / "adapter"
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise BadInputError(f"{run_dir}: training has not finished (no adapter/); resume it first")
    base = prepare_base(settings, config.base)
    if base.gguf is None:
        raise ModelError(f"{base.name} is an HF model folder: export needs a GGUF base (import one with "
                         "`edgerag models import FILE.gguf`)")
    reader = gguf.GGUFReader(str(base.gguf))
    arch = reader.fields["general.architecture"].contents()
    lora = read_lora(adapter_dir, arch, _int_field(reader, f"{arch}.block_count"),
                     _int_field(reader, f"{arch}.attention.head_count"),
                     _int_field(reader, f"{arch}.attention.head_count_kv"))
    del reader
    # `finetune export RUN` of a `finetune train` run folder names models after the run, not after its train/
    run_name = run_dir.parent.name if run_dir.name == "train" and (run_dir.parent / "options.json").is_file() \
        else run_dir.name
    stem = name or f"{base.name}-ft-{run_name}".lower()
    lineage = run_lineage(run_dir, base)
    store = ModelStore(settings.models_dir)
    source = f"finetune:{run_dir}"
    names = [f"{stem}-lora"] + [f"{stem}-{q.lower()}" for q in quants]
    done = {n for n in names if _already_exported(store, n, lineage, replace)}
    if done:
        on_event({"event": "status", "message": f"already exported by an earlier run of this export: "
                                                f"{', '.join(sorted(done))}"})

    adapter = Manifest(f"{stem}-lora", "generator", "gguf-lora", "F32", source, parent=base.name,
                       lineage=lineage, details={"main_file": "adapter.gguf", "lora_rank": lora.rank,
                                                 "lora_scale": lora.scale})
    if adapter.name not in done:
        on_event({"event": "status", "message": "writing the GGUF LoRA adapter"})
        store.add(adapter, lambda staging: write_adapter_gguf(lora, arch, staging / "adapter.gguf", base.name),
                  replace=replace)
    result = ExportResult(adapter.name, lineage=lineage)

    export_dir = run_dir / "export"
    export_dir.mkdir(exist_ok=True)
    full = export_dir / "merged-f16.gguf"
    tmp = full.with_suffix(".tmp")
    needs_full = any(q in ("Q8_0", "Q4_K_M", "F16") and f"{stem}-{q.lower()}" not in done for q in quants)
    if needs_full:  # written again even if a killed run left one: a complete file and a torn one look alike
        on_event({"event": "status", "message": "merging the adapter into the base weights (F16)"})
        write_merged_gguf(base.gguf, lora, tmp, "F16", name=stem)
        tmp.replace(full)
    for quant in quants:
        manifest = Manifest(f"{stem}-{quant.lower()}", "generator", "gguf", quant, source, parent=base.name,
                            lineage=lineage, details={"main_file": "model.gguf"})
        if manifest.name in done:
            result.merged.append(manifest.name)
            continue
        on_event({"event": "status", "message": f"writing the merged model as {quant}"})

        def build(staging: Path, quant=quant) -> None:
            target = staging / "model.gguf"
            if quant == "F32":
                write_merged_gguf(base.gguf, lora, target, "F32", name=stem)
            elif quant == "F16":
                shutil.copyfile(full, target)
            else:
                quantize_gguf(full, target, quant, settings.threads)
            read_gguf(target)  # a damaged file never reaches the store

        store.add(manifest, build, replace=replace)
        result.merged.append(manifest.name)
    full.unlink(missing_ok=True)  # the F16 intermediate is as large as the model; the store holds what is needed
    tmp.unlink(missing_ok=True)  # ... and so is one a killed run was writing
    write_text_atomic(run_dir / "export.json",
                      json.dumps({"adapter": result.adapter, "merged": result.merged}, indent=2) + "\n")
    on_event({"event": "exported", "adapter": result.adapter, "merged": result.merged})
    return result
