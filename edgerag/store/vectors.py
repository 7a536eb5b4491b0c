"""The hnswlib index file: cosine space, labels = texts.id, saved atomically (write temp file, then rename).

SQLite holds every embedding, so this file is a cache that can lag after a crash: `reconcile()` adds the vectors
SQLite has and the file lacks, and marks deleted the labels SQLite no longer has. Deleted slots are reused by
later additions (hnswlib's replace_deleted), so a collection that is edited for years does not grow a file full
of tombstones. Each save writes its own temp file (pid + random suffix), so two writers can never rename each
other's half-written file into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import hnswlib
import numpy as np


class HnswVectors:
    def __init__(self, path: Path, dim: int, m: int = 16, ef_construction: int = 200, ef_search: int = 128):
        self.path, self.dim, self.ef_search = Path(path), dim, ef_search
        self.m, self.ef_construction = m, ef_construction
        self.dirty = False
        self._live: set[int] | None = None
        self.index = self._empty()
        if self.path.is_file():
            try:
                loaded = hnswlib.Index(space="cosine", dim=dim)
                loaded.load_index(str(self.path), max_elements=0, allow_replace_deleted=True)
                self.index = loaded
            except (RuntimeError, ValueError, MemoryError):
                # A damaged file is only a cache: start empty and let reconcile() rebuild it from SQLite.
                self.dirty = True
        self.index.set_ef(ef_search)

    def _empty(self):
        index = hnswlib.Index(space="cosine", dim=self.dim)
        index.init_index(max_elements=1024, M=self.m, ef_construction=self.ef_construction, allow_replace_deleted=True)
        return index

    def labels(self) -> set[int]:
        """Every label in the file, live or deleted."""
        return set(int(i) for i in self.index.get_ids_list())

    def live_labels(self) -> set[int]:
        """Labels that search can return (deleted ones excluded). Computed once per load (one get_items call per
        block of labels, a per-label check only in blocks holding a deleted one), then kept up to date."""
        if self._live is None:
            live: set[int] = set()
            ids = sorted(self.labels())
            for start in range(0, len(ids), 2048):
                block = ids[start:start + 2048]
                try:
                    self.index.get_items(block)
                    live.update(block)
                except RuntimeError:
                    live.update(label for label in block if self.is_live(label))
            self._live = live
        return set(self._live)

    def is_live(self, label: int) -> bool:
        try:
            self.index.get_items([int(label)])
            return True
        except RuntimeError:  # hnswlib raises for deleted (or unknown) labels
            return False

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        if len(labels) == 0:
            return
        # Slots of deleted labels are reused first (replace_deleted); grow only for what they cannot hold.
        live = self.live_labels()
        needed = max(self.index.get_current_count(), len(live) + len(labels))
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, 2 * self.index.get_max_elements()))
        self.index.add_items(np.asarray(vectors, dtype=np.float32), np.asarray(labels, dtype=np.int64),
                             replace_deleted=True)
        self._live.update(int(label) for label in labels)
        self.dirty = True

    def delete(self, labels) -> None:
        for label in labels:
            try:
                self.index.mark_deleted(int(label))
                self.dirty = True
                if self._live is not None:
                    self._live.discard(int(label))
            except RuntimeError:
                pass  # already deleted, or never added (file lagging SQLite): nothing to do

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """[(label, cosine similarity)] best first; with `allowed` (labels), only those."""
        live = len(self._live) if self._live is not None else self.index.get_current_count()
        if live == 0 or k <= 0:
            return []
        if allowed is not None:
            return self._search_allowed(query, k, allowed)
        k = min(k, live)
        self.index.set_ef(max(self.ef_search, k))
        try:
            labels, distances = self.index.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k)
        except RuntimeError:
            # Fewer live elements than k (many deletions): ask for fewer.
            labels, distances = self._search_shrinking(query, k)
        return [(int(l), float(1.0 - d)) for l, d in zip(labels[0], distances[0])]

    def _search_allowed(self, query: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[int, float]]:
        """Through the graph with hnswlib's filter callback (Collection.dense scores a small allowed set exactly
        from SQLite instead: the walk must visit most of the graph to collect k of a few allowed labels)."""
        allowed_set = set(allowed.tolist())
        k = min(k, len(allowed_set))
        self.index.set_ef(max(self.ef_search, k))
        try:
            # hnswlib keeps exploring until it holds ef allowed candidates, so a filter keeping 1% still yields k
            labels, distances = self.index.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k,
                                                     filter=allowed_set.__contains__)
        except RuntimeError:
            # Fewer than k allowed labels reachable (allowed texts the file does not hold yet, or a graph region
            # cut off by deletions): the exact scan finds all there are.
            return self._exact(query, k, allowed)
        return [(int(l), float(1.0 - d)) for l, d in zip(labels[0], distances[0])]

    def _exact(self, query: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[int, float]]:
        """Cosine with every allowed vector the file holds (hnswlib stores them normalised), best k. Only the
        fallback: get_items copies ~50 µs per label, where SQLite returns the same vectors ~20× faster."""
        if self._live is None:
            self.live_labels()
        labels = [label for label in allowed.tolist() if label in self._live]
        if not labels:
            return []
        vectors = np.asarray(self.index.get_items(labels), dtype=np.float32)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        sims = vectors @ (q / max(float(np.linalg.norm(q)), 1e-12))
        top = np.argsort(-sims, kind="stable")[:k]
        return [(labels[i], float(sims[i])) for i in top]

    def _search_shrinking(self, query, k):
        while k > 1:
            k //= 2
            try:
                return self.index.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k)
            except RuntimeError:
                continue
        return np.empty((1, 0), dtype=np.int64), np.empty((1, 0), dtype=np.float32)

    def reconcile(self, sqlite_labels: set[int], fetch) -> tuple[int, int]:
        """Make the file match SQLite. fetch(labels) -> float32 array of their embeddings. Returns (added, deleted)."""
        in_file = self.live_labels()
        missing = sorted(sqlite_labels - in_file)
        extra = in_file - sqlite_labels
        if missing:
            self.add(np.array(missing, dtype=np.int64), fetch(missing))
        self.delete(extra)
        return len(missing), len(extra)

    def save(self) -> None:
        if not self.dirty:
            return
        fd, tmp = tempfile.mkstemp(prefix=f"{self.path.name}.tmp-{os.getpid()}-", dir=self.path.parent)
        os.close(fd)
        try:
            self.index.save_index(tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.dirty = False
