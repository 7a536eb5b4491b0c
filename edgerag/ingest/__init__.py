"""Files → sections (loaders) → chunks (chunker) → embeddings → collection (sync)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sync import IngestEvent, IngestReport


def ingest(settings: Settings, paths: list[Path], collection_name: str,
           on_event: Callable[["IngestEvent"], None] = lambda e: None) -> "IngestReport":
    """Sync `collection_name` with the given files and folders (created on first use)."""
    from ..runtime import open_collection
    from .sync import discover, sync

    discover(paths)  # a missing path is an error before anything is created
    collection, embedder = open_collection(settings, collection_name, create=True)
    with collection:
        return sync(collection, embedder, paths, settings.chunk_tokens, settings.chunk_overlap, on_event,
                    file_time_limit=settings.file_time_limit)


__all__ = ["ingest"]
