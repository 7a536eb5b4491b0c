"""What this process may reach and where it may write: nothing on the network, caches under edgerag's own folder.

`edgerag/__init__.py` calls `apply()` before anything else in the package runs, so every dependency we import
later (always lazily, after `import edgerag`) starts with its network features switched off. Several of them latch
their setting at first use (onnxruntime reads `ORT_DISABLE_TELEMETRY` once, when its environment is created), so
this cannot wait until a model is loaded.

The values are *forced*, not defaulted: `HF_HUB_OFFLINE=0` left in a user's shell for another tool must not turn
hub calls back on inside edgerag. The one way back is explicit: `EDGERAG_ALLOW_NETWORK=1` leaves the environment
exactly as the user set it (documented in the README's Privacy section).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

OPT_IN = "EDGERAG_ALLOW_NETWORK"

# Each variable, and why it is here. All are read by the library itself; none is ours.
NO_NETWORK = {
    # onnxruntime >= 1.29 on Linux/macOS: 1DS telemetry writes a device id and an event queue to
    # ~/.cache/Microsoft/DeveloperTools/.onnxruntime and uploads them to mobile.events.data.microsoft.com.
    "ORT_DISABLE_TELEMETRY": "1",
    # huggingface_hub, transformers, optimum, peft, datasets and bitsandbytes' hub-kernel loader (`kernels`, which
    # downloads through huggingface_hub): no hub requests at all, and no usage pings even if one slipped through.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    # The cross-tool convention (huggingface_hub, gradio, many CLIs honour it).
    "DO_NOT_TRACK": "1",
}

# Local caches dependencies create on import or first use. They never leave the machine, but they would land in
# the user's home (~/.cache/huggingface, ~/.config/matplotlib, ...): keep them with edgerag's own data so that
# removing the data folder removes every trace. Set only if the user has not chosen a place.
CACHE_DIRS = {
    "HF_HOME": "huggingface",            # transformers creates modules/ here at import
    "MPLCONFIGDIR": "matplotlib",        # matplotlib's font list cache (plots, loss curves)
    "TRITON_CACHE_DIR": "triton",        # torch's compiler caches, if anything ever compiles
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor",
}


def network_allowed() -> bool:
    return os.environ.get(OPT_IN, "").strip().lower() in ("1", "true", "yes", "on")


# Set by apply(): onnxruntime was imported before edgerag with its telemetry on. It reads the variable at import,
# so nothing we set afterwards stops it (`onnxruntime.disable_telemetry_events()` does not either: measured).
_ORT_TELEMETRY_LATCHED = False


def apply() -> None:
    """Force the no-network variables, unless the user opted in. Runs at `import edgerag`."""
    global _ORT_TELEMETRY_LATCHED
    if not network_allowed():
        _ORT_TELEMETRY_LATCHED = "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1"
        os.environ.update(NO_NETWORK)
    # Tokenizers' own thread pool fights onnxruntime and llama.cpp for the same few cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def keep_local_files_in(data_dir: Path) -> None:
    """Point dependency caches and temporary files at the data folder, unless the user chose a place.

    Called when settings are loaded, which every command does before it imports a heavy dependency. Temporary files
    matter too: onnxruntime's quantizer and optimum's exporter stage whole models in the temp dir, and a user's
    documents should not leave copies in a shared /tmp."""
    for var, sub in CACHE_DIRS.items():
        os.environ.setdefault(var, str(data_dir / "cache" / sub))
    if "TMPDIR" not in os.environ:
        try:
            (data_dir / "tmp").mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # a read-only data folder: commands that need to write will say so themselves
        os.environ["TMPDIR"] = str(data_dir / "tmp")  # for native code and child processes
        tempfile.tempdir = None  # Python's tempfile recomputes its folder from TMPDIR on next use


def check_onnxruntime() -> None:
    """Refuse to start an onnxruntime session whose telemetry is already running (called before every session)."""
    if _ORT_TELEMETRY_LATCHED and not network_allowed():
        from .errors import EdgeragError

        raise EdgeragError("onnxruntime was imported before edgerag, with its telemetry on: import edgerag first, or "
                           "set ORT_DISABLE_TELEMETRY=1 before onnxruntime is imported")
