"""Keep a collection in sync with files and folders: the library call behind `edgerag ingest`.

Per file, by content hash (sha256 of the bytes):
  unchanged (same path, same hash)      → skipped, nothing read
  renamed (new path, hash of a document whose old path is gone) → path updated, nothing re-embedded
  new or changed                        → parsed, chunked, embedded, written in one transaction
  gone (under a synced folder, not on disk) → removed with its vectors
Files that cannot be read are reported with a reason and the run goes on. An e-mail's attachments become
documents of their own ("mail.eml::report.pdf", see attachments.py).

Embedding is batched across files (small files would otherwise make tiny, slow batches); each file is still
committed on its own, so a kill loses at most the files not yet committed, and the next run redoes only those.
Duplicates are resolved when a file is prepared, so an earlier file of the same batch may delete a text a later
one was going to share (text moved between files): that file is resolved again and what is now new embedded.

A document is "unchanged" only if its bytes *and* the chunking it was split with are unchanged (see
chunking_stamp): a new chunk size, overlap or chunker version re-chunks every document on the next run.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError
from ..store.collection import ChunkRecord, Collection, StaleDuplicates, indexed_text
from .chunker import chunk_sections
from .attachments import is_attachment, parent_of, rename_children, sync_attachments
from . import isolate
from .isolate import TooSlow
from .loaders import SUPPORTED_SUFFIXES, UnreadableFile, load_document, unsupported_reason

EMBED_BATCH_CHUNKS = 256  # pending new chunks that trigger an embedding pass
# Bump when the chunker or what gets indexed changes, so existing collections are re-chunked on the next ingest.
# 2: headings indexed with their chunk's text. 3: Markdown tables, cut between rows, header repeated.
CHUNKER_VERSION = 3
PARSE_AHEAD = 8  # files the parser child may read ahead of the one being chunked and embedded (bounds memory)
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
    note: str = ""  # the loader's warnings (e.g. scanned pages), shown with the outcome


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


def chunking_stamp(chunk_tokens: int, chunk_overlap: int) -> str:
    return f"v{CHUNKER_VERSION}:{chunk_tokens}:{chunk_overlap}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _under(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in roots)


class _BatchWriter:
    """Collects parsed documents, embeds their new chunks in large batches, commits each document on its own."""

    def __init__(self, collection: Collection, embedder, report: IngestReport, done, on_event, chunking: str = ""):
        self.collection, self.embedder, self.report = collection, embedder, report
        self.done, self.on_event, self.chunking = done, on_event, chunking
        self.pending: list[_Pending] = []
        self.texts_since_save = 0
        self.mtimes: dict[str, float] = {}  # file path -> modification time (an attachment has its e-mail's)

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        if sum(tid is None for p in self.pending for tid in p.text_ids) >= EMBED_BATCH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        t = self.report.timings
        todo = [(p, i) for p in self.pending for i, tid in enumerate(p.text_ids) if tid is None]
        t0 = time.perf_counter()
        vectors = self.embedder.embed([indexed_text(p.chunks[i].heading, p.chunks[i].text) for p, i in todo],
                                      progress=lambda n: self.on_event(IngestEvent("embedded", chunks=n))) \
            if todo else []
        t["embed"] += time.perf_counter() - t0
        by_doc: dict[int, dict[int, object]] = {}
        for (p, i), vec in zip(todo, vectors):
            by_doc.setdefault(id(p), {})[i] = vec
        t0 = time.perf_counter()
        for p in self.pending:
            new = by_doc.get(id(p), {})
            self._write(p, new)
            self.report.new_chunks += len(new)
            self.done(FileOutcome(p.path, p.status, p.note, chunks=len(p.chunks)))
        self.texts_since_save += len(todo)
        if self.texts_since_save >= SAVE_EVERY_TEXTS:
            self.collection.save()
            self.texts_since_save = 0
        t["index"] += time.perf_counter() - t0
        self.pending.clear()

    def _write(self, p: _Pending, new: dict) -> None:
        for _attempt in range(3):
            try:
                self.collection.write_document(p.path, p.content_hash, p.size, p.fmt, p.title, p.chunks,
                                               p.text_ids, new, chunking=self.chunking,
                                               modified=self.mtimes.get(parent_of(p.path)))
                return
            except StaleDuplicates:
                # Texts this file shared were deleted by an earlier file of the batch: resolve again, embed
                # the chunks that are new now, retry (nothing was written).
                p.text_ids = self.collection.resolve_duplicates([c.text for c in p.chunks], p.path,
                                                                [c.heading for c in p.chunks])
                missing = [i for i, tid in enumerate(p.text_ids) if tid is None and i not in new]
                if missing:
                    vectors = self.embedder.embed([indexed_text(p.chunks[i].heading, p.chunks[i].text)
                                                   for i in missing])
                    new.update(zip(missing, vectors))
        raise RuntimeError(f"{p.path}: duplicates kept changing while writing")  # a bug: one writer holds the lock

    def chunk(self, loaded, chunk_tokens: int, chunk_overlap: int) -> list[ChunkRecord]:
        t0 = time.perf_counter()
        chunks = chunk_sections(loaded.sections, self.embedder.count_tokens_batch, chunk_tokens, chunk_overlap)
        self.report.timings["chunk"] += time.perf_counter() - t0
        return chunks

    def resolve(self, path: str, chunks: list[ChunkRecord]) -> list[int | None]:
        t0 = time.perf_counter()
        text_ids = self.collection.resolve_duplicates([c.text for c in chunks], path, [c.heading for c in chunks])
        self.report.timings["chunk"] += time.perf_counter() - t0
        return text_ids

    def add_chunks(self, path: str, digest: str, size: int, loaded, status: str, chunks: list[ChunkRecord],
                   text_ids: list[int | None] | None = None) -> None:
        if text_ids is None:
            text_ids = self.resolve(path, chunks)
        self.add(_Pending(path, digest, size, loaded.format, loaded.title, status, chunks, text_ids,
                          "; ".join(loaded.warnings)))

    def prepare(self, path: str, digest: str, size: int, loaded, status: str, chunk_tokens: int,
                chunk_overlap: int) -> None:
        self.add_chunks(path, digest, size, loaded, status, self.chunk(loaded, chunk_tokens, chunk_overlap))


class _TooSlow(BaseException):
    """Raised into chunking that ran past the file time limit (BaseException: no `except Exception` on the way
    may turn it into something else). Parsing has its own limit: it runs in a child process (isolate.py)."""


@contextmanager
def _time_limit(seconds: float):
    """Interrupt the block after `seconds` with _TooSlow. A SIGALRM timer, so only where signals can be used (POSIX,
    main thread: the CLI); elsewhere (the TUI's worker thread) the block runs unlimited."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def fire(_signum, _frame):
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sync(collection: Collection, embedder, paths: list[Path], chunk_tokens: int = 220, chunk_overlap: int = 32,
         on_event: Callable[[IngestEvent], None] = lambda e: None, file_time_limit: float = 0) -> IngestReport:
    report = IngestReport(collection.name)
    started = time.perf_counter()
    t = report.timings
    collection.acquire_write_lock()  # refuse now, not after minutes of parsing, if another writer is busy
    stamp = chunking_stamp(chunk_tokens, chunk_overlap)
    files, roots = discover(paths)
    t["scan"] += time.perf_counter() - started
    on_event(IngestEvent("scanned", files_total=len(files)))

    def done(outcome: FileOutcome) -> None:
        report.outcomes.append(outcome)
        on_event(IngestEvent("file", files_total=len(files), outcome=outcome))

    writer = _BatchWriter(collection, embedder, report, done, on_event, stamp)
    if file_time_limit:
        with isolate.lease() as parser:
            _sync_files(collection, files, roots, writer, parser, report, done, stamp, chunk_tokens, chunk_overlap,
                        file_time_limit)
    else:
        _sync_files(collection, files, roots, writer, None, report, done, stamp, chunk_tokens, chunk_overlap,
                    file_time_limit)
    report.seconds = time.perf_counter() - started
    return report


def _sync_files(collection, files, roots, writer, parser, report, done, stamp, chunk_tokens, chunk_overlap,
                file_time_limit) -> None:
    t = report.timings
    # Decide every file's fate first, so renames are recognised before the old paths count as deleted.
    t0 = time.perf_counter()
    on_disk = {str(f) for f in files}
    hashes: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for f in files:
        try:
            stat = f.stat()
            sizes[str(f)], writer.mtimes[str(f)] = stat.st_size, stat.st_mtime
            hashes[str(f)] = _sha256(f)
        except OSError as exc:
            done(FileOutcome(str(f), "failed", _os_reason(exc)))
    t["scan"] += time.perf_counter() - t0

    # Files that will most likely be parsed (the loop below decides for sure): the parser child reads the next
    # PARSE_AHEAD of them while this process chunks and embeds.
    ahead = [i for i, f in enumerate(files) if _needs_parsing(collection, f, hashes, on_disk, stamp)] \
        if parser else []
    next_ahead = 0
    for position, f in enumerate(files):
        key = str(f)
        if key not in hashes:
            continue
        if parser:
            while next_ahead < len(ahead) and ahead[next_ahead] < position:
                next_ahead += 1
            for i in ahead[next_ahead:next_ahead + PARSE_AHEAD]:
                if not parser.pending(files[i]):
                    parser.submit(files[i])
        digest = hashes[key]
        existing = collection.document(key)
        if existing and existing.content_hash == digest and existing.chunking == stamp:
            if existing.modified != writer.mtimes[key]:  # touched, or ingested before times were recorded
                collection.set_modified(key, writer.mtimes[key])
            done(FileOutcome(key, "unchanged", chunks=existing.n_chunks))
            continue
        if not existing:
            moved = next((d for d in collection.documents_with_hash(digest) if not is_attachment(d.path)
                          and d.path not in on_disk and not Path(d.path).exists()), None)
            if moved:
                collection.rename_document(moved.path, key)
                rename_children(collection, moved.path, key)
                collection.set_modified(key, writer.mtimes[key])
                done(FileOutcome(key, "renamed", f"from {moved.path}", moved.n_chunks))
                continue
        if f.suffix.lower() not in SUPPORTED_SUFFIXES:
            done(FileOutcome(key, "unsupported", unsupported_reason(f.suffix.lower())))
            continue
        t0, chunk_before = time.perf_counter(), t["chunk"]
        try:
            loaded = parser.load(f, file_time_limit) if parser else load_document(f)
            with _time_limit(file_time_limit):
                chunks = writer.chunk(loaded, chunk_tokens, chunk_overlap)
                text_ids = writer.resolve(key, chunks)
        except (UnreadableFile, TooSlow, _TooSlow) as exc:
            reason = str(exc) if isinstance(exc, UnreadableFile) else \
                f"gave up after {file_time_limit:g}s reading it (setting file_time_limit)"
            # A file that was readable before keeps its old version searchable; the reason says it is stale.
            done(FileOutcome(key, "failed", f"{reason} (previous version kept)" if existing else reason))
            continue
        finally:
            t["parse"] += time.perf_counter() - t0 - (t["chunk"] - chunk_before)
        writer.add_chunks(key, digest, sizes[key], loaded, "updated" if existing else "added", chunks, text_ids)
        if loaded.attachments or (existing and existing.format in ("eml", "msg")):
            sync_attachments(collection, writer, key, loaded.attachments, stamp, done,
                             lambda p, st, why, n: FileOutcome(p, st, why, n), chunk_tokens, chunk_overlap)
    writer.flush()

    t0 = time.perf_counter()
    for doc in collection.documents():
        source = parent_of(doc.path)  # an attachment goes when the file it came in goes
        if source not in on_disk and _under(source, roots) and not Path(source).exists():
            collection.delete_document(doc.path)
            done(FileOutcome(doc.path, "removed", chunks=doc.n_chunks))
    collection.save()
    t["index"] += time.perf_counter() - t0


def _needs_parsing(collection: Collection, f: Path, hashes: dict[str, str], on_disk: set[str], stamp: str) -> bool:
    """The loop's decision in advance, for parsing ahead (a wrong guess costs one wasted or one late parse)."""
    key = str(f)
    if key not in hashes or f.suffix.lower() not in SUPPORTED_SUFFIXES:
        return False
    existing = collection.document(key)
    if existing:
        return existing.content_hash != hashes[key] or existing.chunking != stamp
    return not any(not is_attachment(d.path) and d.path not in on_disk and not Path(d.path).exists()
                   for d in collection.documents_with_hash(hashes[key]))


@dataclass
class Record:
    """A document given as text rather than a file (benchmark corpora, synthetic data): `key` is its identity."""
    key: str
    text: str
    title: str | None = None


def sync_records(collection: Collection, embedder, records: list[Record], chunk_tokens: int = 220,
                 chunk_overlap: int = 32, on_event: Callable[[IngestEvent], None] = lambda e: None) -> IngestReport:
    """Like sync() for in-memory documents: unchanged keys are skipped, changed ones replaced. Records are
    stored under the path `record://<key>`; the title (if any) leads the text so both are searchable."""
    from .loaders import LoadedDocument, Section

    report = IngestReport(collection.name)
    started = time.perf_counter()
    collection.acquire_write_lock()
    stamp = chunking_stamp(chunk_tokens, chunk_overlap)
    on_event(IngestEvent("scanned", files_total=len(records)))

    def done(outcome: FileOutcome) -> None:
        report.outcomes.append(outcome)
        on_event(IngestEvent("file", files_total=len(records), outcome=outcome))

    writer = _BatchWriter(collection, embedder, report, done, on_event, stamp)
    for rec in records:
        text = f"{rec.title}\n\n{rec.text}" if rec.title else rec.text
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        path = f"record://{rec.key}"
        existing = collection.document(path)
        if existing and existing.content_hash == digest and existing.chunking == stamp:
            done(FileOutcome(path, "unchanged", chunks=existing.n_chunks))
            continue
        if not text.strip():
            done(FileOutcome(path, "failed", "no text"))
            continue
        loaded = LoadedDocument(sections=[Section(text=text)], format="record", title=rec.title)
        writer.prepare(path, digest, len(text), loaded, "updated" if existing else "added", chunk_tokens,
                       chunk_overlap)
    writer.flush()
    collection.save()
    report.seconds = time.perf_counter() - started
    return report


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__
