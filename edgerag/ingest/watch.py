"""Keep a collection in sync while files change: the library call behind `edgerag ingest PATH --watch`.

watchfiles (Rust `notify`) reports file system changes; they are debounced (grouped until the folder has been
quiet for `quiet_ms`, at most `max_wait_ms`), and then the ordinary sync() runs over the same paths. Reusing
sync() rather than applying the reported changes one by one means watch mode has exactly its semantics and
crash safety: content hashes decide what is new, changed, renamed or gone (an editor's "write temp file, rename
over the original" is just an update), each document is one transaction, and a watcher killed at any moment
leaves a collection that the next run (watching or not) completes. A re-scan hashes every file again: for
NFCorpus's 3,633 files that is ~0.25 s (README), cheap next to parsing and embedding what changed.

The collection is opened per sync and closed after it, so the write lock is held only while syncing: `ask`,
the TUI and a one-off `ingest` can use the collection between changes. A sync refused because another writer
holds the lock is retried every `retry_s` until it goes through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import CollectionError
from .sync import IngestEvent, IngestReport, discover, sync

WAKE_MS = 300  # the watcher wakes this often without changes: to start, to retry, to see `stop`


@dataclass
class WatchEvent:
    """For shells: 'synced' (a sync finished: report), 'changes' (n file events seen, a sync starts now),
    'error' (a sync could not run: message; it is retried), 'stopped'."""
    kind: str
    report: IngestReport | None = None
    changes: int = 0
    message: str = ""
    initial: bool = False
    at: float = field(default_factory=time.time)


def changed(report: IngestReport) -> list:
    """The outcomes a user wants to see after a sync: everything but 'unchanged'."""
    return [o for o in report.outcomes if o.status != "unchanged"]


class _Filter:
    """Which file events matter: not hidden files or folders (as discover() skips them), not editor/OS noise
    that watchfiles' default filter knows (.swp, .DS_Store, __pycache__, .git), and never the collections
    folder itself (a library inside the watched folder would otherwise trigger a sync with every write)."""

    def __init__(self, roots: list[Path], ignore: list[Path]):
        from watchfiles import DefaultFilter

        self.default = DefaultFilter()
        self.roots = roots
        self.ignore = ignore

    def __call__(self, change, path: str) -> bool:
        if not self.default(change, path):
            return False
        p = Path(path)
        if any(p == d or d in p.parents for d in self.ignore):
            return False
        for root in self.roots:
            if p == root or root in p.parents:
                rel = p.relative_to(root).parts if p != root else ()
                return not any(part.startswith(".") for part in rel)
        return True


def watch(settings: Settings, paths: list[Path], collection_name: str,
          on_event: Callable[[WatchEvent], None] = lambda e: None,
          on_ingest_event: Callable[[IngestEvent], None] = lambda e: None,
          stop: threading.Event | None = None, quiet_ms: int = 400, max_wait_ms: int = 5000,
          retry_s: float = 5.0) -> None:
    """Sync once, then after every (debounced) batch of changes, until `stop` is set or KeyboardInterrupt."""
    from watchfiles import watch as fs_watch

    from ..embed import load_active_embedder
    from ..runtime import collection_embedder, open_collection

    discover(paths)  # a missing path is an error before anything starts
    roots = [Path(p).expanduser().resolve() for p in paths]
    # Loaded once, so a sync after a change starts at once; by name, because the collection's embedder is the one
    # its vectors were made with (an adapted embedder after `edgerag embedder promote`), and a promotion or rollback
    # between two syncs changes it: each sync asks again and loads the new one only then.
    loaded: dict[str | None, object] = {}

    def embedder_for_collection():
        name = collection_embedder(settings, collection_name)
        if name not in loaded:
            loaded.clear()
            loaded[name] = load_active_embedder(settings, name)
        return loaded[name]

    embedder_for_collection()  # a missing or broken model is an error before anything starts

    def run(initial: bool = False) -> bool:
        try:
            embedder = embedder_for_collection()
            collection, _ = open_collection(settings, collection_name, create=True, embedder=embedder)
            with collection:
                report = sync(collection, embedder, paths, settings.chunk_tokens, settings.chunk_overlap,
                              on_ingest_event, file_time_limit=settings.file_time_limit)
        except CollectionError as exc:  # another writer holds the lock: try again later
            on_event(WatchEvent("error", message=str(exc), initial=initial))
            return False
        on_event(WatchEvent("synced", report=report, initial=initial))
        return True

    # The watcher starts first and the first sync runs at its first wake-up, so a change made while that sync
    # runs (or just after it reported) is queued by the watcher rather than lost in between.
    ignore = [Path(settings.collections_dir).resolve()]
    pending, initial, last_try = True, True, 0.0
    try:
        for changes in fs_watch(*roots, watch_filter=_Filter(roots, ignore), debounce=max_wait_ms, step=quiet_ms,
                                stop_event=stop, rust_timeout=WAKE_MS, yield_on_timeout=True,
                                raise_interrupt=False):
            if stop is not None and stop.is_set():
                break
            if changes:
                on_event(WatchEvent("changes", changes=len(changes)))
                pending = True
            elif not pending or (last_try and time.monotonic() - last_try < retry_s):
                continue  # a periodic wake-up: nothing to do, or a refused sync not yet due for a retry
            last_try = time.monotonic()
            pending = not run(initial)
            initial = initial and pending
    finally:
        on_event(WatchEvent("stopped"))
