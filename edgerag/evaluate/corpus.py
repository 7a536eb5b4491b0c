"""Scratch collections for benchmark corpora, kept apart from the user's own collections.

They live in `<data_dir>/eval-collections/` (so `edgerag ls` is not cluttered), one per (dataset, embedder,
chunking), and are reused: `sync_records` skips documents whose text is unchanged, so a second run of the same
benchmark embeds nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

from ..config import Settings
from ..ingest.sync import IngestEvent, Record, sync_records
from ..runtime import embedder_id, hnsw_params
from ..store.collection import Collection
from .datasets import Document
from .events import EvalEvent, ignore

RECORD_PREFIX = "record://"


def eval_collections_dir(settings: Settings):
    return settings.data_dir / "eval-collections"


def record_path(key: str) -> str:
    return RECORD_PREFIX + key


def key_of(path: str) -> str:
    return path.removeprefix(RECORD_PREFIX)


def scratch_name(dataset: str, embedder_name: str, settings: Settings) -> str:
    """Readable prefixes plus a hash of the full identity (names are capped at 64 characters)."""
    identity = f"{dataset}\0{embedder_name}\0{settings.chunk_tokens}\0{settings.chunk_overlap}"
    digest = hashlib.sha1(identity.encode("utf-8")).hexdigest()[:8]
    raw = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{dataset[:24]}-{embedder_name[:24]}").strip("-.")
    return f"{raw}-{digest}"


def scratch_collection(settings: Settings, dataset: str, documents: Iterable[Document], embedder,
                       on_event: Callable[[EvalEvent], None] = ignore) -> Collection:
    """Open (creating or updating) the scratch collection holding exactly `documents`."""
    docs = list(documents)
    collection = Collection.open(eval_collections_dir(settings), scratch_name(dataset, embedder.name, settings),
                                 embedder_id(settings, embedder), create=True, hnsw=hnsw_params(settings))
    wanted = {record_path(d.key) for d in docs}
    for row in collection.documents():  # a benchmark file that lost documents must not keep them searchable
        if row.path not in wanted:
            collection.delete_document(row.path)

    def forward(event: IngestEvent) -> None:
        if event.kind == "scanned":
            on_event(EvalEvent("phase", f"index {collection.name}", total=event.files_total))
        elif event.kind == "file":
            on_event(EvalEvent("advance", n=1, info=event.outcome.status))

    sync_records(collection, embedder, [Record(d.key, d.text, d.title) for d in docs], settings.chunk_tokens,
                 settings.chunk_overlap, on_event=forward)
    return collection


def paths_of(collection: Collection, text_ids: list[int]) -> dict[int, list[str]]:
    """Every document path that contains each text. A stored text is shared by all documents holding the same
    (or a near-duplicate) chunk, and a retrieval hit names only the first; a benchmark must credit all of them."""
    return collection.paths_of(text_ids)
