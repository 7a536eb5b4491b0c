"""What the server can answer with, and the one thread per llama.cpp model that may touch it.

A llama.cpp context holds one conversation's KV cache: two requests interleaving on it would corrupt both. So
each generator gets a single-thread executor, and everything that uses it — the plain chat, every `rag:`
collection answered by it, and those collections' SQLite connections (bound to the thread that opened them) —
runs there, one request at a time, in arrival order. A bounded count of waiting requests turns overload into a
429 instead of an ever-growing queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..config import Settings
from ..errors import ModelError
from ..models import ModelStore
from ..store.collection import VECTORS_FILE, collection_dir, list_collections
from .protocol import ApiError, model_entry

RAG_PREFIX = "rag:"


class ModelWorker:
    """A queue in front of one generator: jobs run one at a time on its own thread."""

    def __init__(self, name: str, max_queue: int):
        self.name, self.max_queue = name, max_queue
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"edgerag-serve-{name}")
        self._pending = 0  # submitted and not finished (running or waiting)
        self._lock = threading.Lock()

    def submit(self, job: Callable) -> Future:
        with self._lock:
            if self._pending >= self.max_queue:
                raise ApiError(429, f"{self.max_queue} requests are already queued for {self.name}; retry later",
                               type="rate_limit_error", code="queue_full")
            self._pending += 1

        def run():
            try:
                return job()
            finally:
                with self._lock:
                    self._pending -= 1

        return self.executor.submit(run)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class Registry:
    """Models and collections by their API names, loaded on first use and kept loaded."""

    def __init__(self, settings: Settings, load_generator: Callable[[str], object] | None = None,
                 max_queue: int = 8):
        self.settings, self.max_queue = settings, max_queue
        self.store = ModelStore(settings.models_dir)
        self._load_generator = load_generator or self._load_gguf
        self._lock = threading.Lock()
        self._workers: dict[str, ModelWorker] = {}
        self._generators: dict[str, object] = {}  # touched only on that generator's worker thread
        self._engines: dict[tuple[str, str], tuple[int, object]] = {}  # (collection, generator) → (stamp, engine)
        self._embedders: dict[str, object] = {}

    # -- naming --------------------------------------------------------------------------------------------
    def _manifests(self, kind: str) -> list:
        return [m for m in self.store.list() if m.kind == kind and m.format == ("gguf" if kind == "generator"
                                                                                 else "onnx")]

    def collections(self) -> list[str]:
        return list_collections(self.settings.collections_dir)

    def list_models(self) -> list[dict]:
        out = [model_entry(m.name, kind="generator") for m in self._manifests("generator")]
        out += [model_entry(m.name, kind="embedder") for m in self._manifests("embedder")]
        out += [model_entry(RAG_PREFIX + c, kind="rag", collection=c) for c in self.collections()]
        return out

    def resolve_chat(self, model: str) -> tuple[str | None, str]:
        """(collection or None, generator name) for a chat model id; 404 when there is no such model."""
        if model.startswith(RAG_PREFIX):
            collection = model[len(RAG_PREFIX):]
            if collection not in self.collections():
                raise self._unknown(model)
            return collection, self._active("generator")
        if model not in {m.name for m in self._manifests("generator")}:
            raise self._unknown(model)
        return None, model

    def resolve_embedder(self, model: str) -> str:
        if model not in {m.name for m in self._manifests("embedder")}:
            raise self._unknown(model, "an ONNX embedder")
        return model

    def _active(self, kind: str) -> str:
        try:
            return self.store.active_name(kind)
        except ModelError as exc:
            raise ApiError(503, str(exc), type="server_error", code="no_active_model") from exc

    def _unknown(self, model: str, what: str = "a generator or rag:<collection>") -> ApiError:
        known = ", ".join(m["id"] for m in self.list_models()) or "none"
        return ApiError(404, f"the model {model!r} does not exist; expected {what} (models: {known})",
                        param="model", code="model_not_found")

    # -- loading -------------------------------------------------------------------------------------------
    def worker(self, generator_name: str) -> ModelWorker:
        with self._lock:
            if generator_name not in self._workers:
                self._workers[generator_name] = ModelWorker(generator_name, self.max_queue)
            return self._workers[generator_name]

    def _load_gguf(self, name: str):
        from ..generate.llm import load_generator

        return load_generator(self.settings, name)

    def generator(self, name: str):
        """Call on `worker(name)`'s thread only."""
        if name not in self._generators:
            self._generators[name] = self._load_generator(name)
        return self._generators[name]

    def embedder(self, name: str | None = None):
        from ..embed import load_active_embedder

        name = name or self._active("embedder")
        with self._lock:
            if name not in self._embedders:
                self._embedders[name] = load_active_embedder(self.settings, name)
            return self._embedders[name]

    def engine(self, collection: str, generator_name: str):
        """The collection's AnswerEngine on this generator; call on `worker(generator_name)`'s thread only.

        Reopened when `edgerag ingest` has rewritten the collection's vector file since it was opened."""
        from ..runtime import build_engine

        key = (collection, generator_name)
        vectors = collection_dir(self.settings.collections_dir, collection) / VECTORS_FILE

        def stamp() -> int:
            return vectors.stat().st_mtime_ns if vectors.exists() else 0

        cached = self._engines.get(key)
        if cached and cached[0] == stamp():
            return cached[1]
        if cached:  # stale: drop the connection without saving our older vector file over the new one
            cached[1].retriever.collection.conn.close()
        engine = build_engine(self.settings, collection, generator=self.generator(generator_name),
                              embedder=self.embedder())
        self._engines[key] = (stamp(), engine)  # after opening: reconciling may itself rewrite the file
        return engine

    def close(self) -> None:
        for worker in self._workers.values():
            worker.shutdown()
