"""Accelerators: detected and used when present, never required.

- llama.cpp (the generator) offloads `gpu_layers` layers (its n_gpu_layers; -1 = all) when llama-cpp-python was
  built with a GPU backend (CUDA, Metal, Vulkan, ...). The CPU build ignores the setting.
- onnxruntime (the embedder) gets the execution providers of `onnx_providers`, in order of preference; `auto` is
  CUDA, then CPU. The CUDA provider exists only in the `onnxruntime-gpu` build; a provider the build lacks is
  skipped, and when nothing requested is left the error says which build to install.
- torch (training) uses CUDA when its build has it and a GPU is visible (finetune/train.py decides; NF4 QLoRA is
  the default there). `describe()` reads the torch build from package metadata so that `edgerag config show`, on
  the runtime path, never imports torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, ModelError

PROVIDER_ALIASES = {
    "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider", "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider", "directml": "DmlExecutionProvider", "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider", "cpu": "CPUExecutionProvider", "azure": "AzureExecutionProvider",
}
AUTO_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
# Azure's provider sends the inputs to a cloud endpoint: never used, whatever a setting says (edgerag is offline).
NEVER_PROVIDERS = ("AzureExecutionProvider",)
# The onnxruntime package that brings each provider (they replace each other: install one of them only).
PROVIDER_PACKAGES = {
    "CUDAExecutionProvider": "onnxruntime-gpu", "TensorrtExecutionProvider": "onnxruntime-gpu",
    "ROCMExecutionProvider": "onnxruntime-rocm", "MIGraphXExecutionProvider": "onnxruntime-rocm",
    "DmlExecutionProvider": "onnxruntime-directml", "OpenVINOExecutionProvider": "onnxruntime-openvino",
}


def short(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider")


def parse_providers(value: str) -> list[str] | None:
    """The `onnx_providers` setting as onnxruntime provider names, None for `auto`. Raises ConfigError."""
    names = [part.strip() for part in str(value).split(",") if part.strip()]
    if names == ["auto"]:
        return None
    if not names:
        raise ConfigError("onnx_providers is empty: use auto, or names such as cuda,cpu")
    out = []
    for name in names:
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full in NEVER_PROVIDERS:
            raise ConfigError(f"onnx_providers: {name} runs models on a remote endpoint; edgerag stays offline")
        if full not in PROVIDER_ALIASES.values() and not full.endswith("ExecutionProvider"):
            known = ", ".join(k for k, v in PROVIDER_ALIASES.items() if v not in NEVER_PROVIDERS)
            raise ConfigError(f"onnx_providers: unknown provider {name!r} (use auto, or a comma-separated list of "
                              f"{known} or full onnxruntime provider names)")
        out.append(full)
    return out


@dataclass
class ProviderChoice:
    requested: list[str]  # in order of preference (auto expanded)
    using: list[str]  # what the session is given: the requested providers this onnxruntime build has
    missing: list[str] = field(default_factory=list)  # requested, not in this build
    note: str = ""  # what a user should know (shown by `config show`), empty when everything requested is used


def choose_providers(setting: str, available: list[str] | None = None) -> ProviderChoice:
    """Resolve `onnx_providers` against the installed onnxruntime (or the given `available` list)."""
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    explicit = parse_providers(setting)
    requested = list(explicit or AUTO_PROVIDERS)
    using = [p for p in requested if p in available and p not in NEVER_PROVIDERS]
    missing = [p for p in requested if p not in using]
    hint = _install_hint(missing)
    if not using:
        raise ModelError(f"onnx_providers = {setting!r}: the installed {_ort_package()} has no "
                         f"{', '.join(short(p) for p in missing)} provider (it has "
                         f"{', '.join(short(p) for p in available if p not in NEVER_PROVIDERS)}). {hint}Or set "
                         "onnx_providers = \"auto\" (CUDA when present, else the CPU)")
    note = ""
    if missing:
        note = (f"{', '.join(short(p) for p in missing)} not in this onnxruntime build ({_ort_package()}): using "
                f"{', '.join(short(p) for p in using)}. {hint}").strip()
    return ProviderChoice(requested, using, missing, note)


def _install_hint(missing: list[str]) -> str:
    packages = sorted({PROVIDER_PACKAGES[p] for p in missing if p in PROVIDER_PACKAGES})
    if not packages:
        return ""
    return (f"For {', '.join(short(p) for p in missing if p in PROVIDER_PACKAGES)}: `pip uninstall onnxruntime` "
            f"then `pip install {' '.join(packages)}` (one onnxruntime build at a time). ")


def _ort_package() -> str:
    for name in ("onnxruntime-gpu", "onnxruntime-rocm", "onnxruntime-directml", "onnxruntime-openvino",
                 "onnxruntime"):
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "onnxruntime"


def llama_gpu_offload() -> bool:
    """Whether this llama-cpp-python build can offload layers to a GPU (CUDA, Metal, Vulkan, ...)."""
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


def torch_build() -> dict:
    """The installed torch build, read from its metadata (no `import torch` on the runtime path)."""
    if importlib.util.find_spec("torch") is None:
        return {"installed": False, "build": None, "note": "not installed (the training extra brings it)"}
    version = importlib.metadata.version("torch")
    local = version.partition("+")[2]
    if local == "cpu":
        build = "cpu"
    elif local.startswith(("cu", "rocm")):
        build = local
    else:  # PyPI's default Linux wheels carry CUDA without saying so in the version; macOS wheels have MPS
        build = "default (CUDA on Linux x86-64, MPS on macOS)"
    return {"installed": True, "version": version, "build": build}


def nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())


def describe(settings) -> dict:
    """What `edgerag config show` reports: each engine, what it could use here, and what it will use."""
    out: dict = {}
    offload = llama_gpu_offload()
    out["llama_cpp"] = {"gpu_offload_build": offload, "gpu_layers": settings.gpu_layers,
                        "using": ("GPU: " + ("all layers" if settings.gpu_layers < 0 else
                                             f"{settings.gpu_layers} layers") if offload and settings.gpu_layers
                                  else "CPU"),
                        "note": "" if offload else "CPU build of llama-cpp-python: gpu_layers is ignored "
                                                   "(README: GPU, for the CUDA build)"}
    try:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        choice = choose_providers(settings.onnx_providers, available)
        out["onnxruntime"] = {"available": [short(p) for p in available if p not in NEVER_PROVIDERS],
                              "requested": [short(p) for p in choice.requested],
                              "using": [short(p) for p in choice.using], "note": choice.note}
    except ModelError as exc:
        out["onnxruntime"] = {"using": [], "note": str(exc)}
    except ImportError:
        out["onnxruntime"] = {"using": [], "note": "onnxruntime is not installed"}
    torch = torch_build()
    gpu = nvidia_driver()
    training = "CUDA" if torch.get("build") not in (None, "cpu") and gpu else "CPU"
    out["training"] = {"torch": torch.get("version"), "torch_build": torch.get("build"), "nvidia_driver": gpu,
                       "using": training,
                       "note": torch.get("note") or ("" if training == "CUDA" else
                                                     "CPU build of torch" if torch["build"] == "cpu" else
                                                     "no NVIDIA GPU visible")}
    return out
