"""Sentence embeddings from an exported ONNX encoder: tokenize, run, mean-pool over real tokens, L2-normalise.

This reproduces sentence-transformers' all-MiniLM-L6-v2 pipeline (Transformer → Pooling(mean) → Normalize)
without torch, so the runtime path stays light.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import offline
from ..accelerators import choose_providers
from ..errors import ModelError


class OnnxEmbedder:
    def __init__(self, folder: Path, model_file: str = "model.onnx", threads: int = 0,
                 batch_size: int = 32, max_tokens: int | None = None, name: str = "", providers: str = "cpu",
                 batch_tokens: int = 4096):
        offline.check_onnxruntime()  # refuses if onnxruntime's telemetry started before edgerag could stop it
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.name = name or folder.name
        model_path, tok_path = folder / model_file, folder / "tokenizer.json"
        for path in (model_path, tok_path):
            if not path.is_file():
                raise ModelError(f"{path}: embedder file is missing")
        details = _read_details(folder)
        self.max_tokens = max_tokens or details.get("max_tokens", 256)
        self.normalize = details.get("normalize", True)
        # A batch holds at most batch_size texts and batch_tokens tokens (padding included): the attention
        # scores grow with texts x tokens^2, and 32 texts of 256 tokens took ~430 MB at once.
        self.batch_size, self.batch_tokens = batch_size, max(batch_tokens, self.max_tokens)

        self.tokenizer = Tokenizer.from_file(str(tok_path))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()  # padded per batch, to the batch's longest text (_run)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        # A second tokenizer without truncation/padding counts tokens for the chunker.
        self.counter = Tokenizer.from_file(str(tok_path))
        self.counter.no_truncation()
        self.counter.no_padding()

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No CPU memory arena: with batches of every shape it grows to the largest one (rounded up to a power of
        # two) and keeps it for the life of the process: peak RSS 581 -> 437 MB for 32 x 256 tokens, 172 MB after.
        options.enable_cpu_mem_arena = False
        # `providers` is the onnx_providers setting (auto = CUDA, then CPU); a missing build is skipped or named
        self.provider_choice = choose_providers(providers, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=self.provider_choice.using)
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise ModelError(f"{model_path}: cannot load ONNX model ({exc})") from exc
        # onnxruntime-gpu drops CUDA (with a log line) when the CUDA/cuDNN libraries cannot be loaded
        self.providers = self.session.get_providers()
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dim = int(details.get("dim") or self.session.get_outputs()[0].shape[-1])

    def count_tokens(self, text: str) -> int:
        """Word pieces without the [CLS]/[SEP] specials."""
        return len(self.counter.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.counter.encode_batch(list(texts), add_special_tokens=False)]

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised. progress(n) is called after each batch."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts)) if len(texts) else []
        lengths = [len(e.ids) for e in encodings]
        # Batches of similar token length: padding (wasted compute) stays low inside each.
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < self.batch_size and \
                    (end - start + 1) * lengths[order[end]] <= self.batch_tokens:
                end += 1
            idx = order[start:end]
            out[idx] = self._run([encodings[i] for i in idx])
            if progress:
                progress(len(idx))
            start = end
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self._run([self.tokenizer.encode(text)])[0]

    def _run(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]  # (batch, tokens, dim)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.normalize:
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)


def _read_details(folder: Path) -> dict:
    manifest = folder / "manifest.json"
    if manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8")).get("details", {})
    return {}


def load_active_embedder(settings, name: str | None = None) -> OnnxEmbedder:
    """The embedder named (or the active one) from the settings' models store."""
    from ..models import ModelStore

    store = ModelStore(settings.models_dir)
    manifest = store.get(name) if name else store.active("embedder")
    if manifest.format != "onnx":
        raise ModelError(f"{manifest.name} is not an ONNX embedder (format {manifest.format})")
    return OnnxEmbedder(store.folder(manifest.name), manifest.main_file, threads=settings.n_threads,
                        batch_size=settings.embed_batch_size, name=manifest.name, providers=settings.onnx_providers)
