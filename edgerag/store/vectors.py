"""The hnswlib index file: cosine space, labels = texts.id, saved atomically (write temp file, then rename).

SQLite holds every embedding, so this file is a cache that can lag after a crash: `reconcile()` adds the vectors
SQLite has and the file lacks, and marks deleted the labels SQLite no longer has.
"""

from __future__ import annotations

import os
from pathlib import Path

import hnswlib
import numpy as np


class HnswVectors:
    def __init__(self, path: Path, dim: int, m: int = 16, ef_construction: int = 200, ef_search: int = 128):
        self.path, self.dim, self.ef_search = Path(path), dim, ef_search
        self.index = hnswlib.Index(space="cosine", dim=dim)
        self.dirty = False
        if self.path.is_file():
            try:
                self.index.load_index(str(self.path), max_elements=0)
            except RuntimeError:
                # A damaged file is only a cache: start empty and let reconcile() rebuild it from SQLite.
                self.index = hnswlib.Index(space="cosine", dim=dim)
                self.index.init_index(max_elements=1024, M=m, ef_construction=ef_construction)
                self.dirty = True
        else:
            self.index.init_index(max_elements=1024, M=m, ef_construction=ef_construction)
        self.index.set_ef(ef_search)

    def labels(self) -> set[int]:
        return set(int(i) for i in self.index.get_ids_list())

    def is_live(self, label: int) -> bool:
        try:
            self.index.get_items([int(label)])
            return True
        except RuntimeError:  # hnswlib raises for deleted (or unknown) labels
            return False

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        if len(labels) == 0:
            return
        needed = self.index.get_current_count() + len(labels)
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, 2 * self.index.get_max_elements()))
        self.index.add_items(np.asarray(vectors, dtype=np.float32), np.asarray(labels, dtype=np.int64))
        self.dirty = True

    def delete(self, labels) -> None:
        for label in labels:
            try:
                self.index.mark_deleted(int(label))
                self.dirty = True
            except RuntimeError:
                pass  # already deleted, or never added (file lagging SQLite): nothing to do

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """[(label, cosine similarity)] best first."""
        live = self.index.get_current_count()
        if live == 0 or k <= 0:
            return []
        k = min(k, live)
        self.index.set_ef(max(self.ef_search, k))
        try:
            labels, distances = self.index.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k)
        except RuntimeError:
            # Fewer live elements than k (many deletions): ask for fewer.
            labels, distances = self._search_shrinking(query, k)
        return [(int(l), float(1.0 - d)) for l, d in zip(labels[0], distances[0])]

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
        in_file = self.labels()
        missing = sorted(sqlite_labels - in_file)
        extra = in_file - sqlite_labels
        if missing:
            self.add(np.array(missing, dtype=np.int64), fetch(missing))
        self.delete(extra)
        return len(missing), len(extra)

    def save(self) -> None:
        if not self.dirty:
            return
        tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        self.index.save_index(str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
