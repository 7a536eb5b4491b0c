"""Dependencies' own logs go to a file under the data folder, not the user's terminal.

The CLI shows our progress bars and results; what transformers, peft, bitsandbytes, torch, onnxruntime's
quantizer and llama.cpp have to say is kept in `<data>/logs/<command>.log` (named in the README) for when
something goes wrong.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path


def route_library_logs(settings, name: str) -> Path:
    """From here on, transformers, peft, bitsandbytes, torch, onnxruntime's tools (root logger), Python warnings and
    llama.cpp write to <data dir>/logs/<name>.log, not the terminal. Returns the log's path.

    It imports transformers to silence its own stderr handler: for the commands that load it anyway (models
    prepare, finetune), never the torch-free runtime path."""
    path = settings.data_dir / "logs" / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for library in ("transformers", "peft", "bitsandbytes", "torch", "accelerate", "py.warnings", "llama_cpp"):
        logger = logging.getLogger(library)
        logger.handlers[:] = [handler]
        logger.propagate = False
        # torch at INFO logs its compiler cache statistics from an atexit hook, after streams are closed.
        logger.setLevel(logging.WARNING if library == "torch" else logging.INFO)
    # Libraries that log through the root logger (onnxruntime's quantizer does): our file instead of Python's
    # last-resort stderr handler. Added, not replacing, so a host application's handlers stay.
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "edgerag", False)]
    handler.edgerag = True
    root.addHandler(handler)
    logging.captureWarnings(True)
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # Libraries' own tqdm bars (transformers' GGUF dequantization has one with no off switch): ours are rich's.
    os.environ["TQDM_DISABLE"] = "1"
    try:
        import transformers  # noqa: F401  (its own handler prints to stderr unless disabled)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.add_handler(handler)
        hf_logging.set_verbosity_info()
    except ImportError:
        pass
    _llama_log_to(path)
    return path


_LLAMA_LOG = None  # the ctypes callback must outlive the call that installs it


def _llama_log_to(path: Path) -> None:
    global _LLAMA_LOG
    try:
        import llama_cpp
    except ImportError:
        return
    out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115  (lives as long as the process)

    def write(level, text, user_data):
        out.write(text.decode("utf-8", "replace"))

    _LLAMA_LOG = llama_cpp.llama_log_callback(write)
    llama_cpp.llama_log_set(_LLAMA_LOG, None)
