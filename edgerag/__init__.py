"""edgerag: offline chat over your documents with cited answers, and CPU finetuning of the local models.

Importing the package switches off every network feature of the libraries it loads later (onnxruntime's
telemetry, Hugging Face hub access): see edgerag/offline.py. This must stay the first thing the package does.
"""

from . import offline as _offline

_offline.apply()

__version__ = "0.1.0"
