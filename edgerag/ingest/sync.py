"""Keep a collection in sync with files and folders: the library call behind `edgerag ingest`.

Per file, by content hash (sha256 of the bytes):
  unchanged (same path, same hash)      → skipped, nothing read
  renamed (new path, hash of a document whose old path is gone) → path updated, nothing re-embedded
  new or changed                        → parsed, chunked, embedded, written in one transaction
  gone (under a synced folder, not on disk) → removed with its vectors
Files that cannot be read are reported with a reason and the run goes on.

Embedding is batched across files (small files would otherwise make tiny, slow batches); each file is still
committed on its own, so a kill loses at most the files not yet committed, and the next run redoes only those.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError
from ..store.collection import ChunkRecord, Collection
from .chunker import chunk_sections
from .loaders import SUPPORTED_SUFFIXES, UnreadableFile, load_document

EMBED_BATCH_CHUNKS = 256  # pending new chunks that trigger an embedding pass
SAVE_EVERY_TEXTS = 4000  # vector-file saves during a long run (SQLite is the truth; this bounds replay work)


@dataclass
class FileOutcome:
    path: str
    status: str  # added | updated | unchanged | renamed | removed | failed | unsupported
    reason: str = ""
    chunks: int = 0


@dataclass
class IngestEvent:
    """Progress for shells: 'scanned' (files_total known), 'file' (one file decided), 'embedded' (chunks done)."""
    kind: str
    files_total: int = 0
    outcome: FileOutcome | None = None
    chunks: int = 0


@dataclass
class IngestReport:
    collection: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: {"scan": 0.0, "parse": 0.0, "chunk": 0.0,
                                                               "embed": 0.0, "index": 0.0})
    seconds: float = 0.0
    new_chunks: int = 0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def summary(self) -> dict[str, int]:
        return {s: self.count(s) for s in ("added", "updated", "renamed", "removed", "unchanged", "failed",
                                           "unsupported")}

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


@dataclass
class _Pending:
    path: str
    content_hash: str
    size: int
    fmt: str
    title: str | None
    status: str
    chunks: list[ChunkRecord]
    text_ids: list[int | None]


def discover(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(files found, folder/file roots that scope deletions). Hidden files and folders are skipped."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if not path.exists():
            raise BadInputError(f"{raw}: no such file or directory")
        if path.is_file():
            files.append(path)
            continue
        for p in sorted(path.rglob("*")):
            rel = p.relative_to(path).parts
            if p.is_file() and not any(part.startswith(".") for part in rel):
                files.append(p)
    return list(dict.fromkeys(files)), [Path(p).expanduser().resolve() for p in paths]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _under(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in roots)


def sync(collection: Collection, embedder, paths: list[Path], chunk_tokens: int = 220, chunk_overlap: int = 32,
         on_event: Callable[[IngestEvent], None] = lambda e: None) -> IngestReport:
    report = IngestReport(collection.name)
    started = time.perf_counter()
    t = report.timings
    files, roots = discover(paths)
    t["scan"] += time.perf_counter() - started
    on_event(IngestEvent("scanned", files_total=len(files)))

    def done(outcome: FileOutcome) -> None:
        report.outcomes.append(outcome)
        on_event(IngestEvent("file", files_total=len(files), outcome=outcome))

    pending: list[_Pending] = []
    texts_since_save = 0

    def flush() -> None:
        nonlocal texts_since_save
        todo = [(p, i) for p in pending for i, tid in enumerate(p.text_ids) if tid is None]
        t0 = time.perf_counter()
        vectors = embedder.embed([p.chunks[i].text for p, i in todo],
                                 progress=lambda n: on_event(IngestEvent("embedded", chunks=n))) if todo else []
        t["embed"] += time.perf_counter() - t0
        by_doc: dict[int, dict[int, object]] = {}
        for (p, i), vec in zip(todo, vectors):
            by_doc.setdefault(id(p), {})[i] = vec
        t0 = time.perf_counter()
        for p in pending:
            collection.write_document(p.path, p.content_hash, p.size, p.fmt, p.title, p.chunks, p.text_ids,
                                      by_doc.get(id(p), {}))
            report.new_chunks += len(by_doc.get(id(p), {}))
            done(FileOutcome(p.path, p.status, chunks=len(p.chunks)))
        texts_since_save += len(todo)
        if texts_since_save >= SAVE_EVERY_TEXTS:
            collection.save()
            texts_since_save = 0
        t["index"] += time.perf_counter() - t0
        pending.clear()

    # Decide every file's fate first, so renames are recognised before the old paths count as deleted.
    t0 = time.perf_counter()
    on_disk = {str(f) for f in files}
    hashes: dict[str, str] = {}
    for f in files:
        try:
            hashes[str(f)] = _sha256(f)
        except OSError as exc:
            done(FileOutcome(str(f), "failed", _os_reason(exc)))
    t["scan"] += time.perf_counter() - t0

    for f in files:
        key = str(f)
        if key not in hashes:
            continue
        digest = hashes[key]
        existing = collection.document(key)
        if existing and existing.content_hash == digest:
            done(FileOutcome(key, "unchanged", chunks=existing.n_chunks))
            continue
        if not existing:
            moved = next((d for d in collection.documents_with_hash(digest)
                          if d.path not in on_disk and not Path(d.path).exists()), None)
            if moved:
                collection.rename_document(moved.path, key)
                done(FileOutcome(key, "renamed", f"from {moved.path}", moved.n_chunks))
                continue
        if f.suffix.lower() not in SUPPORTED_SUFFIXES:
            done(FileOutcome(key, "unsupported", f"unsupported type {f.suffix or '(no extension)'}"))
            continue
        t0 = time.perf_counter()
        try:
            loaded = load_document(f)
        except UnreadableFile as exc:
            t["parse"] += time.perf_counter() - t0
            if existing:  # it was readable before: keep the old version searchable, but say why it is stale
                done(FileOutcome(key, "failed", f"{exc} (previous version kept)"))
            else:
                done(FileOutcome(key, "failed", str(exc)))
            continue
        t1 = time.perf_counter()
        t["parse"] += t1 - t0
        chunks = chunk_sections(loaded.sections, embedder.count_tokens_batch,
                                chunk_tokens, chunk_overlap)
        text_ids = collection.resolve_duplicates([c.text for c in chunks])
        t["chunk"] += time.perf_counter() - t1
        pending.append(_Pending(key, digest, f.stat().st_size, loaded.format, loaded.title,
                                "updated" if existing else "added", chunks, text_ids))
        if sum(tid is None for p in pending for tid in p.text_ids) >= EMBED_BATCH_CHUNKS:
            flush()
    flush()

    t0 = time.perf_counter()
    for doc in collection.documents():
        if doc.path not in on_disk and _under(doc.path, roots) and not Path(doc.path).exists():
            collection.delete_document(doc.path)
            done(FileOutcome(doc.path, "removed", chunks=doc.n_chunks))
    collection.save()
    t["index"] += time.perf_counter() - t0
    report.seconds = time.perf_counter() - started
    return report


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__
