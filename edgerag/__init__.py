"""edgerag: offline chat over your documents with cited answers, and CPU finetuning of the local models.

Importing the package makes the process offline for every Hugging Face library it may load later
(transformers, optimum, huggingface_hub): edgerag never downloads anything at run time.
"""

import os as _os

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    _os.environ.setdefault(_var, "1")
# Tokenizers' own thread pool fights onnxruntime and llama.cpp for the same few cores.
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
