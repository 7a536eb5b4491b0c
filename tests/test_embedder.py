"""The ONNX embedders from `models prepare`: batches bucketed by token length and capped by
a token budget give the same vectors as one text at a time; the int8 model keeps agreeing with fp32."""

import json
import zipfile

import numpy as np

from conftest import shared
from edgerag.embed import OnnxEmbedder
from edgerag.models import ModelStore
from edgerag.models.prepare import EMBEDDER_FP32, EMBEDDER_INT8, MIN_INT8_COSINE


def _passages(n: int) -> list[str]:
    with zipfile.ZipFile(shared("retrieval", "beir_nfcorpus", "nfcorpus.zip")) as zf:
        lines = zf.read("nfcorpus/corpus.jsonl").decode().splitlines()[:n]
    return [json.loads(line)["text"] for line in lines]


def test_token_budget_batches_match_one_at_a_time(session_settings):
    store = ModelStore(session_settings.models_dir)
    texts = ["Short query.", "vitamin d", *_passages(10), "", "A medium sentence about statins and muscle pain."]
    # fp32: dynamic int8 scales activations per batch, so its vectors move a little with the batch's company
    small = OnnxEmbedder(store.folder(EMBEDDER_FP32), batch_size=32, batch_tokens=600)
    sizes: list[int] = []
    together = small.embed(texts, progress=sizes.append)
    assert sum(sizes) == len(texts) and max(sizes) <= 32
    assert min(sizes) <= 2  # long abstracts (~256 tokens) go two at a time under a 600-token budget
    alone = np.stack([small.embed_one(t) for t in texts])
    assert np.allclose(np.sum(together * alone, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)


def test_int8_agrees_with_fp32_on_long_passages(session_settings):
    """The fused int8 graph (prepare.py) against the fp32 export, on abstracts long enough to be truncated."""
    store = ModelStore(session_settings.models_dir)
    texts = _passages(24)
    fp32 = OnnxEmbedder(store.folder(EMBEDDER_FP32)).embed(texts)
    int8 = OnnxEmbedder(store.folder(EMBEDDER_INT8)).embed(texts)
    assert float(np.mean(np.sum(fp32 * int8, axis=1))) >= MIN_INT8_COSINE
