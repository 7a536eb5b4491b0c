"""Build the runtime objects a command needs from the settings: embedder, collection, generator.

One place decides which model files back a collection, so `ingest`, `search`, `ask`, `chat`, the evaluation
harness and the TUI all open things the same way (and all refuse a collection built with another embedder).
"""

from __future__ import annotations

from .config import Settings
from .embed import OnnxEmbedder, load_active_embedder
from .models import ModelStore
from .store.collection import Collection, EmbedderId, recorded_embedder


def embedder_id(settings: Settings, embedder: OnnxEmbedder) -> EmbedderId:
    manifest = ModelStore(settings.models_dir).get(embedder.name)
    main = next(f for f in manifest.files if f.path == manifest.main_file)
    return EmbedderId(manifest.name, main.sha256, embedder.dim)


def hnsw_params(settings: Settings) -> dict:
    return {"hnsw_m": settings.hnsw_m, "hnsw_ef_construction": settings.hnsw_ef_construction,
            "hnsw_ef_search": settings.hnsw_ef_search}


def collection_embedder(settings: Settings, name: str) -> str | None:
    """The embedder collection `name` answers with: the one its vectors were made with when that model is in the
    store (an embedder adapted to this collection), else None (the active one)."""
    recorded = recorded_embedder(settings.collections_dir, name)
    return recorded if recorded and ModelStore(settings.models_dir).exists(recorded) else None


def open_collection(settings: Settings, name: str, create: bool = False,
                    embedder: OnnxEmbedder | None = None) -> tuple[Collection, OnnxEmbedder]:
    """The collection and its embedder: the one its vectors were made with when that model is in the store (an
    embedder adapted to this collection, `edgerag embedder`), else the active one; checked on opening."""
    if embedder is None:
        embedder = load_active_embedder(settings, collection_embedder(settings, name))
    collection = Collection.open(settings.collections_dir, name, embedder_id(settings, embedder),
                                 create=create, hnsw=hnsw_params(settings))
    return collection, embedder


def build_engine(settings: Settings, collection_name: str, mode: str | None = None, top_k: int | None = None,
                 generator_name: str | None = None, lora_path=None, rerank: bool = False,
                 generator=None, embedder: OnnxEmbedder | None = None):
    """Collection + embedder + retriever + generator wired into an AnswerEngine (ask, chat, eval, TUI).
    An already loaded `generator`/`embedder` is reused (the server shares one llama.cpp model per name)."""
    from .generate.answer import AnswerEngine
    from .generate.llm import load_generator
    from .retrieve import Retriever
    from .retrieve.rerank import EmbeddingOverlapReranker

    from concurrent.futures import ThreadPoolExecutor

    # The GGUF loads in a thread (llama.cpp's load runs in ctypes calls, which release the GIL) while the embedder
    # and the collection open: a cold `ask` pays for the longer of the two, not both (bench/coldstart.py).
    with ThreadPoolExecutor(1, thread_name_prefix="gguf-load") as pool:
        pending = None if generator else pool.submit(load_generator, settings, generator_name, lora_path=lora_path)
        collection, embedder = open_collection(settings, collection_name, embedder=embedder)
        reranker = EmbeddingOverlapReranker(embedder) if rerank else None
        retriever = Retriever.from_settings(collection, embedder, settings, reranker)
        generator = generator or pending.result()
    return AnswerEngine(retriever, generator, settings, mode=mode, top_k=top_k)
