"""One collection: `<data>/collections/<name>/` holding `collection.sqlite` and `vectors.hnsw`.

The `meta` table is the collection's manifest: the embedder (name + model sha256) and dimension the vectors
were made with, and the HNSW parameters. Opening with another embedder is refused; `edgerag reindex` re-embeds.

Each document is written in one SQLite transaction (its chunks, new texts, embeddings), so a killed process
leaves either the old or the new version of a file, never half of one. The vector file is saved atomically and
reconciled against SQLite whenever a collection is opened (labels, plus a spot check that the file's vectors are
SQLite's): readers reconcile in memory, the writer also saves. One writer at a time holds the collection's
write lock (lock.py); a second one is refused with a message naming the holder.

A chunk is indexed (FTS5 and embedding) as its heading followed by its text, so a question that names a section
finds it; the passage shown and cited is the text alone.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import CollectionError
from ..filters import Where
from . import dedup
from .lock import LockBusy, WriteLock
from .schema import connect
from .vectors import HnswVectors
from .keyword import KEYWORDS_FILE, KeywordIndex, remove_strays as remove_keyword_strays

DB_FILE, VECTORS_FILE = "collection.sqlite", "vectors.hnsw"
# A filter allowing at most this many texts is searched exactly (their stored embeddings times the query) instead of
# through the HNSW graph with hnswlib's filter callback, which visits most of the graph (a Python call per node) to
# collect k of a few allowed texts. bench/filters.py on NFCorpus (8k chunks, 323 queries, p50, 2 cores at load ~2):
# exact 0.6 ms vs the graph 6.1 ms at 81 allowed texts, 3.0 vs 4.5 ms at 404, 6.8 vs 3.2 ms at 807. Exact is exact.
EXACT_SCAN_MAX = 512
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HEADING_CHARS = 160  # of a heading that lead a chunk's indexed text (the embedder truncates at 256 tokens)


@dataclass(frozen=True)
class EmbedderId:
    name: str
    sha256: str
    dim: int


@dataclass
class ChunkRecord:
    text: str
    page: int | None
    heading: str | None
    start: int
    end: int
    n_tokens: int


@dataclass
class DocumentRow:
    id: int
    path: str
    content_hash: str
    size: int
    format: str
    title: str | None
    n_chunks: int
    ingested_at: str
    chunking: str = ""  # the chunker parameters this document was split with (see sync.chunking_stamp)
    modified: float | None = None  # the file's modification time (unix seconds); None for records


@dataclass
class TextHit:
    """A retrieved text with where it first occurs (the citation shown to the user)."""
    text_id: int
    text: str
    path: str
    page: int | None
    heading: str | None
    start: int
    end: int
    doc_id: int


class StaleDuplicates(Exception):
    """write_document was given text ids that no longer exist (an earlier write of the same batch deleted them):
    the caller resolves those chunks again, embeds what is now new, and retries."""

    def __init__(self, indices: list[int]):
        super().__init__(f"{len(indices)} chunk(s) point at texts deleted since they were resolved")
        self.indices = indices


def indexed_text(heading: str | None, text: str) -> str:
    """What the embedder sees for a chunk: its heading, then its text."""
    return f"{heading[:HEADING_CHARS]}\n\n{text}" if heading else text


def text_key(heading: str | None, text: str) -> str:
    """A stored text's identity: the same words under another heading are indexed differently, so stored apart."""
    return dedup.exact_key(f"{heading}\n{text}" if heading else text)


def _busy(name: str, holder: str) -> CollectionError:
    return CollectionError(f"collection {name!r} is being changed by another edgerag process ({holder}): "
                           "wait for it to finish, then run the command again")


def collection_dir(data_root: Path, name: str) -> Path:
    if not NAME_RE.match(name):
        raise CollectionError(f"bad collection name {name!r}: use letters, digits, '.', '_' or '-'")
    return Path(data_root) / name


def list_collections(data_root: Path) -> list[str]:
    root = Path(data_root)
    return sorted(p.name for p in root.iterdir() if (p / DB_FILE).is_file()) if root.is_dir() else []


def recorded_embedder(data_root: Path, name: str) -> str | None:
    """The name of the embedder a collection's vectors were made with (None: no such collection yet), read
    without reconciling its files: `runtime.open_collection` picks the collection's own embedder with it."""
    path = collection_dir(data_root, name) / DB_FILE
    if not path.is_file():
        return None
    conn = connect(path)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'embedder_name'").fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def remove_collection(data_root: Path, name: str) -> None:
    folder = collection_dir(data_root, name)
    if not (folder / DB_FILE).is_file():
        raise CollectionError(f"no collection named {name!r}")
    lock = WriteLock(folder)
    try:
        lock.acquire()
    except LockBusy as exc:
        raise _busy(name, exc.holder) from None
    try:
        shutil.rmtree(folder)
    finally:
        lock.release()


class Collection:
    def __init__(self, folder: Path, conn, vectors: HnswVectors | None, name: str):
        self.folder, self.conn, self.vectors, self.name = folder, conn, vectors, name
        self._simhashes: dedup.SimhashIndex | None = None
        self.lock = WriteLock(folder)
        self.keywords: KeywordIndex | None = None  # the derived BM25 file (keyword.py)

    # -- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, data_root: Path, name: str, embedder: EmbedderId | None = None, create: bool = False,
             hnsw: dict | None = None) -> "Collection":
        """Open (or create) a collection. With `embedder`, refuse a collection built by another embedder."""
        folder = collection_dir(data_root, name)
        if not (folder / DB_FILE).is_file():
            if not create:
                known = ", ".join(list_collections(data_root)) or "none yet; run `edgerag ingest PATH`"
                raise CollectionError(f"no collection named {name!r} (collections: {known})")
            if embedder is None:
                raise CollectionError("creating a collection needs an embedder")
            folder.mkdir(parents=True, exist_ok=True)
        conn = connect(folder / DB_FILE)
        col = cls(folder, conn, None, name)
        meta = col.meta()
        if not meta.get("embedder_name"):
            if embedder is None:
                raise CollectionError(f"collection {name!r} has no embedder recorded")
            col._set_meta(embedder_name=embedder.name, embedder_sha256=embedder.sha256, dim=str(embedder.dim),
                          created=_now(), **{k: str(v) for k, v in (hnsw or {}).items()})
            meta = col.meta()
        elif embedder is not None and (meta["embedder_sha256"] != embedder.sha256 or int(meta["dim"]) != embedder.dim):
            raise CollectionError(
                f"collection {name!r} was built with embedder {meta['embedder_name']} "
                f"(sha256 {meta['embedder_sha256'][:12]}…), but the active embedder is {embedder.name} "
                f"(sha256 {embedder.sha256[:12]}…): run `edgerag reindex -c {name}` "
                f"or `edgerag models use {meta['embedder_name']}`"
            )
        col.vectors = HnswVectors(folder / VECTORS_FILE, int(meta["dim"]), m=int(meta.get("hnsw_m", 16)),
                                  ef_construction=int(meta.get("hnsw_ef_construction", 200)),
                                  ef_search=int((hnsw or {}).get("hnsw_ef_search", meta.get("hnsw_ef_search", 128))))
        col.keywords = KeywordIndex(folder / KEYWORDS_FILE, conn)
        col.reconcile()
        if col.keywords.dirty and not col.lock.held:
            col._persist_keywords()
        return col

    def _persist_keywords(self) -> None:
        """A reader rebuilt the keyword file in memory (a collection from before it existed, or a damaged/lagging
        file): write it now if no writer is busy, so the next open loads it instead of rebuilding (~2 s at 8k
        chunks). Under the write lock SQLite cannot change, so reconcile again from a fresh snapshot first."""
        try:
            if not self.lock.try_acquire():
                return  # a writer is busy; it saves its own reconciled file
        except OSError:
            return  # a read-only folder: keep the in-memory index
        try:
            remove_keyword_strays(self.folder)
            self.conn.execute("BEGIN")
            try:
                self.keywords.reconcile()
            finally:
                self.conn.execute("COMMIT")
            self.keywords.save()
        finally:
            self.lock.release()

    def close(self) -> None:
        try:
            if self.lock.held:
                self.save()
        finally:
            self.lock.release()
            self.conn.close()

    # -- the write lock ------------------------------------------------------------------------------------
    def acquire_write_lock(self) -> None:
        """Become this collection's one writer until close(), or raise CollectionError naming the holder.
        Every write takes it implicitly; long jobs (ingest, reindex) take it first so they fail before working."""
        if self.lock.held:
            return
        try:
            self.lock.acquire()
        except LockBusy as exc:
            raise _busy(self.name, exc.holder) from None
        for stray in self.folder.glob(VECTORS_FILE + ".tmp-*"):  # left by a killed writer; none is live now
            stray.unlink(missing_ok=True)
        remove_keyword_strays(self.folder)
        self.reconcile()  # the file may have changed since we opened: persist the reconciled state

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- manifest ------------------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self.conn.execute("SELECT key, value FROM meta")}

    def _set_meta(self, **values: str) -> None:
        self.acquire_write_lock()
        with self._txn():
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    @property
    def embedder_name(self) -> str:
        return self.meta()["embedder_name"]

    # -- consistency ---------------------------------------------------------------------------------------
    def _txn(self):
        conn = self.conn

        class _Txn:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, *_):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Txn()

    def reconcile(self) -> tuple[int, int]:
        """Bring the vector file in line with SQLite (after a crash between commit and save): labels first, then
        a spot check that the file's vectors are SQLite's (a file left from another embedding of the same texts,
        e.g. a reindex killed at the wrong moment, has the right labels and the wrong vectors: rebuilt whole).
        Saved only by the writer; a reader keeps the reconciled index in memory."""
        # One read transaction: a writer may delete texts between our statements, and the ids and the rows
        # fetched for them must come from the same snapshot.
        self.conn.execute("BEGIN")
        try:
            if self.keywords is not None:  # the derived BM25 file, by the same rules (stamp check, then difference)
                self.keywords.reconcile()
                if self.lock.held:
                    self.keywords.save()
            return self._reconcile() if self.vectors is not None else (0, 0)
        finally:
            self.conn.execute("COMMIT")

    def _reconcile(self) -> tuple[int, int]:
        ids = {r[0] for r in self.conn.execute("SELECT id FROM texts")}
        if not self._vectors_agree(ids):
            meta = self.meta()
            self.vectors = HnswVectors(self.folder / (VECTORS_FILE + ".rebuild"), int(meta["dim"]),
                                       m=int(meta.get("hnsw_m", 16)),
                                       ef_construction=int(meta.get("hnsw_ef_construction", 200)),
                                       ef_search=self.vectors.ef_search)
            self.vectors.path, self.vectors.dirty = self.folder / VECTORS_FILE, True
        added, deleted = self.vectors.reconcile(ids, self.embeddings)
        if (added or deleted or self.vectors.dirty) and self.lock.held:
            self.vectors.save()
        return added, deleted

    def _vectors_agree(self, ids: set[int], sample: int = 8) -> bool:
        live = sorted(self.vectors.live_labels() & ids)
        if not live:
            return True
        step = max(1, len(live) // sample)
        probe = live[::step][:sample] + live[-1:]
        stored = self.embeddings(probe)
        stored /= np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)  # hnswlib keeps unit vectors
        in_file = np.asarray(self.vectors.index.get_items(probe), dtype=np.float32)
        return in_file.shape == stored.shape and bool(np.allclose(in_file, stored, atol=1e-3))

    def problems(self) -> list[str]:
        """Integrity check (tests and `edgerag ls --check`): every cross-reference between the tables and the
        vector file holds. An empty list means consistent."""
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        out = []
        if n := one("SELECT count(*) FROM texts t WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.text_id = t.id)"):
            out.append(f"{n} texts used by no chunk")
        if n := one("SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM texts t WHERE t.id = c.text_id)"):
            out.append(f"{n} chunks pointing at missing texts")
        if n := one("SELECT count(*) FROM documents d WHERE n_chunks != (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)"):
            out.append(f"{n} documents whose chunk count is wrong")
        fts, texts = one("SELECT count(*) FROM texts_fts"), one("SELECT count(*) FROM texts")
        if fts != texts:
            out.append(f"full-text index has {fts} rows for {texts} texts")
        ids = {r[0] for r in self.conn.execute("SELECT id FROM texts")}
        live = self.vectors.live_labels()
        if live != ids:
            out.append(f"vector file: {len(ids - live)} missing, {len(live - ids)} stale")
        elif not self._vectors_agree(ids, sample=64):
            out.append("vector file: vectors differ from the stored embeddings")
        if self.keywords is not None:
            out += self.keywords.problems(ids)
        return out

    def save(self) -> None:
        if self.vectors is not None:
            self.vectors.save()
        if self.keywords is not None:
            self.keywords.save()

    # -- reading -------------------------------------------------------------------------------------------
    def documents(self) -> list[DocumentRow]:
        return [DocumentRow(**dict(r)) for r in self.conn.execute("SELECT * FROM documents ORDER BY path")]

    def document(self, path: str) -> DocumentRow | None:
        row = self.conn.execute("SELECT * FROM documents WHERE path = ?", (path,)).fetchone()
        return DocumentRow(**dict(row)) if row else None

    def documents_with_hash(self, content_hash: str) -> list[DocumentRow]:
        rows = self.conn.execute("SELECT * FROM documents WHERE content_hash = ?", (content_hash,))
        return [DocumentRow(**dict(r)) for r in rows]

    def chunks_of(self, path: str) -> list[tuple[str, str | None, int | None]]:
        """(text as the document says it, heading, page) of each chunk of one document, in order."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT coalesce(c.own_text, t.text), c.heading, c.page FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "JOIN texts t ON t.id = c.text_id WHERE d.path = ? ORDER BY c.ord", (path,))]

    def counts(self) -> dict[str, int]:
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        return {"documents": one("SELECT count(*) FROM documents"), "chunks": one("SELECT count(*) FROM chunks"),
                "texts": one("SELECT count(*) FROM texts")}

    def embeddings(self, text_ids) -> np.ndarray:
        dim = self.vectors.dim if self.vectors else int(self.meta()["dim"])
        out = np.zeros((len(text_ids), dim), dtype=np.float32)
        for start in range(0, len(text_ids), 900):  # stay under SQLite's bound-parameter limit
            part = list(text_ids[start:start + 900])
            q = f"SELECT id, embedding FROM texts WHERE id IN ({','.join('?' * len(part))})"
            found = {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in self.conn.execute(q, part)}
            for i, tid in enumerate(part):
                out[start + i] = found[tid]
        return out

    def all_hits(self) -> list[TextHit]:
        """Every text with its first occurrence, in id order (finetuning data walks the whole collection)."""
        ids = [r[0] for r in self.conn.execute("SELECT id FROM texts ORDER BY id")]
        out: dict[int, TextHit] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
            out.update(self.hits(ids[start:start + 900]))
        return [out[i] for i in ids if i in out]

    def hits(self, text_ids: list[int], where: Where | None = None) -> dict[int, TextHit]:
        """Each text with its first occurrence (lowest document id, then position); with `where`, its first
        occurrence the filter allows (a text shared by several documents is cited from an allowed one)."""
        if not text_ids:
            return {}
        clause, params = self._where_sql(where)
        q = f"""SELECT t.id AS text_id, coalesce(c.own_text, t.text) AS text, d.path, c.page, c.heading, c.start, c.end, d.id AS doc_id
                FROM texts t JOIN chunks c ON c.text_id = t.id JOIN documents d ON d.id = c.doc_id
                WHERE t.id IN ({','.join('?' * len(text_ids))}) AND {clause} ORDER BY d.id, c.ord"""
        out: dict[int, TextHit] = {}
        for r in self.conn.execute(q, list(text_ids) + params):
            out.setdefault(r["text_id"], TextHit(**dict(r)))
        return out

    def bm25(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """[(text_id, score)] best first; score is FTS5's -bm25 (higher is better), from the derived keyword index.
        `allowed` (sorted text ids, from allowed_texts): only those are scored."""
        return self.keywords.search(query, k, allowed)

    def fts5_bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        """The same ranking straight from FTS5, the record of truth (query terms OR-ed): the reference the keyword
        index is tested and benchmarked against."""
        terms = [t for t in dedup.normalise(query) if len(t) > 1]
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
        rows = self.conn.execute(
            "SELECT rowid, bm25(texts_fts) AS s FROM texts_fts WHERE texts_fts MATCH ? ORDER BY s LIMIT ?",
            (match, k))
        return [(r[0], -r[1]) for r in rows]

    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """[(text_id, cosine)] best first; with `allowed` (sorted text ids), only those."""
        if allowed is not None and len(allowed) <= EXACT_SCAN_MAX:
            return self._dense_exact(vector, k, allowed)
        return self.vectors.search(vector, k, allowed)

    def _dense_exact(self, vector: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[int, float]]:
        """Cosine with each allowed text's stored embedding, best k (a text deleted meanwhile is skipped)."""
        ids, rows = [], []
        for start in range(0, len(allowed), 900):  # stay under SQLite's bound-parameter limit
            part = allowed[start:start + 900].tolist()
            for text_id, blob in self.conn.execute(
                    f"SELECT id, embedding FROM texts WHERE id IN ({','.join('?' * len(part))})", part):
                ids.append(text_id)
                rows.append(np.frombuffer(blob, dtype=np.float32))
        if not ids or k <= 0:
            return []
        matrix = np.stack(rows)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        sims = (matrix @ q) / np.maximum(np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(q)), 1e-12)
        top = np.argsort(-sims, kind="stable")[:k]
        return [(ids[i], float(sims[i])) for i in top]

    # -- metadata filters (filters.py parses them; this is their one translation to SQL) ---------------------
    def allowed_texts(self, where: Where) -> np.ndarray:
        """The ids (sorted int64) of the texts occurring in a chunk the filter allows: what retrieval may search."""
        clause, params = self._where_sql(where)
        rows = self.conn.execute(f"SELECT DISTINCT c.text_id FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                 f"WHERE {clause}", params).fetchall()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def filter_facts(self) -> dict:
        """What a filter could match, for the message when one matches nothing: documents per extension, the range
        of modification times, whether any chunk has a page."""
        self._register_filter_functions()
        exts: dict[str, int] = {}
        for ext, n in self.conn.execute("SELECT edgerag_ext(path), count(*) FROM documents GROUP BY 1 ORDER BY 2 DESC"):
            exts[ext or "(none)"] = n
        lo, hi = self.conn.execute("SELECT min(m), max(m) FROM (SELECT coalesce(modified, edgerag_mtime(path)) AS m "
                                   "FROM documents)").fetchone()
        paged = self.conn.execute("SELECT 1 FROM chunks WHERE page IS NOT NULL LIMIT 1").fetchone() is not None
        return {"documents": sum(exts.values()), "exts": exts, "modified": (lo, hi), "paged": paged}

    def _where_sql(self, where: Where | None) -> tuple[str, list]:
        """A filter as a WHERE clause over chunks `c` joined to documents `d`, and its parameters."""
        if not where:
            return "1", []
        self._register_filter_functions()
        parts, params = [], []
        if where.paths:
            parts.append("(" + " OR ".join("edgerag_regexp(?, d.path)" for _ in where.paths) + ")")
            params += list(where.path_regexes)
        if where.exts:
            parts.append(f"edgerag_ext(d.path) IN ({','.join('?' * len(where.exts))})")
            params += list(where.exts)
        for op, when in where.modified:
            # A file ingested before the column existed has NULL until the next ingest: read its time now.
            parts.append(f"coalesce(d.modified, edgerag_mtime(d.path)) {op} ?")
            params.append(when)
        if where.pages:
            parts.append("(" + " OR ".join("c.page BETWEEN ? AND ?" for _ in where.pages) + ")")
            params += [p for pair in where.pages for p in pair]
        return " AND ".join(parts), params

    def _register_filter_functions(self) -> None:
        if getattr(self, "_filter_functions", False):
            return
        compiled: dict[str, re.Pattern] = {}

        def regexp(pattern: str, path: str) -> bool:
            rx = compiled.get(pattern) or compiled.setdefault(pattern, re.compile(pattern))
            return rx.search(path) is not None

        self.conn.create_function("edgerag_regexp", 2, regexp, deterministic=True)
        self.conn.create_function("edgerag_ext", 1, _extension, deterministic=True)
        self.conn.create_function("edgerag_mtime", 1, _file_mtime)
        self._filter_functions = True

    # -- writing -------------------------------------------------------------------------------------------
    def _simhash_index(self) -> dedup.SimhashIndex:
        if self._simhashes is None:
            rows = self.conn.execute("SELECT id, simhash FROM texts").fetchall()
            self._simhashes = dedup.SimhashIndex([r[0] for r in rows], [r[1] for r in rows])
        return self._simhashes

    def resolve_duplicates(self, texts: list[str], path: str | None = None,
                           headings: list[str | None] | None = None) -> list[int | None]:
        """For each text (under its heading), the id of a stored exact or near duplicate, or None if it is new.

        A near match is only taken from *another* document and under the same heading: a file's own previous
        version never absorbs its edits (an edited sentence must be embedded and searchable as it now reads).
        """
        out: list[int | None] = []
        index = self._simhash_index()
        for text, heading in zip(texts, headings or [None] * len(texts)):
            row = self.conn.execute("SELECT id FROM texts WHERE norm_hash = ?", (text_key(heading, text),)).fetchone()
            if row:
                out.append(row[0])
                continue
            near = index.nearest(dedup.simhash(text)) if dedup.long_enough(text) else None
            if near is not None and not self.conn.execute(
                    "SELECT 1 FROM chunks c JOIN documents d ON d.id = c.doc_id JOIN texts t ON t.id = c.text_id "
                    "WHERE c.text_id = ? AND d.path != ? AND t.heading IS ? LIMIT 1",
                    (near, path or "", heading)).fetchone():
                near = None
            out.append(near)
        return out

    def write_document(self, path: str, content_hash: str, size: int, fmt: str, title: str | None,
                       chunks: list[ChunkRecord], text_ids: list[int | None], new_vectors: dict[int, np.ndarray],
                       chunking: str = "", modified: float | None = None) -> int:
        """Replace whatever `path` held with these chunks, in one transaction.

        text_ids[i] is the stored text chunk i duplicates, or None; new_vectors maps the index i of each new text
        to its embedding (of indexed_text(heading, text)). Texts that no document uses any more are deleted (with
        their vectors). Raises StaleDuplicates, changing nothing, if a given text id no longer exists.
        """
        self.acquire_write_lock()
        added: list[tuple[int, np.ndarray]] = []
        keyword_rows: list[tuple[int, str | None, str]] = []
        with self._txn():
            given = sorted({t for t in text_ids if t is not None})
            present = {r[0] for start in range(0, len(given), 900) for r in self.conn.execute(
                f"SELECT id FROM texts WHERE id IN ({','.join('?' * len(given[start:start + 900]))})",
                given[start:start + 900])}
            stale = [i for i, t in enumerate(text_ids) if t is not None and t not in present]
            if stale:
                raise StaleDuplicates(stale)
            old = self.conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
            old_text_ids = []
            if old:
                old_text_ids = [r[0] for r in self.conn.execute("SELECT text_id FROM chunks WHERE doc_id = ?", (old[0],))]
                self.conn.execute("DELETE FROM documents WHERE id = ?", (old[0],))
            cur = self.conn.execute(
                "INSERT INTO documents (path, content_hash, size, format, title, n_chunks, ingested_at, chunking, "
                "modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (path, content_hash, size, fmt, title, len(chunks), _now(), chunking, modified))
            doc_id = cur.lastrowid
            resolved = list(text_ids)
            for i, chunk in enumerate(chunks):
                key = text_key(chunk.heading, chunk.text)
                if resolved[i] is None:
                    row = self.conn.execute("SELECT id FROM texts WHERE norm_hash = ?", (key,)).fetchone()
                    if row:  # an earlier chunk of this same batch or document
                        resolved[i] = row[0]
                    else:
                        if i not in new_vectors:
                            raise CollectionError(f"{path}: chunk {i} is new but has no embedding")
                        vec = new_vectors[i]
                        sim = dedup.simhash(chunk.text)
                        resolved[i] = self.conn.execute(
                            "INSERT INTO texts (norm_hash, simhash, text, embedding, heading) VALUES (?, ?, ?, ?, ?)",
                            (key, sim, chunk.text, np.asarray(vec, dtype=np.float32).tobytes(), chunk.heading)).lastrowid
                        added.append((resolved[i], vec))
                        keyword_rows.append((resolved[i], chunk.heading, chunk.text))
                        if dedup.long_enough(chunk.text):
                            self._simhash_index().add(resolved[i], sim)
                own = None
                if text_ids[i] is not None:  # matched a stored text: keep this chunk's wording if it differs
                    stored = self.conn.execute("SELECT norm_hash FROM texts WHERE id = ?", (resolved[i],)).fetchone()
                    own = chunk.text if stored[0] != key else None
                self.conn.execute(
                    "INSERT INTO chunks (doc_id, ord, text_id, page, heading, start, end, n_tokens, own_text) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc_id, i, resolved[i], chunk.page, chunk.heading, chunk.start, chunk.end, chunk.n_tokens, own))
            orphans = self._delete_orphans(old_text_ids)
        if added:
            self.vectors.add(np.array([a[0] for a in added]), np.stack([a[1] for a in added]))
        self.vectors.delete(orphans)
        self.keywords.add(keyword_rows)
        self.keywords.delete(orphans)
        return doc_id

    def set_modified(self, path: str, modified: float | None) -> None:
        """Record a file's modification time, and its attachments' (an unchanged or renamed file whose time
        changed; documents ingested before the column existed)."""
        self.acquire_write_lock()
        with self._txn():  # attachments are "path::name": the index range [path::, path:;) holds exactly them
            self.conn.execute("UPDATE documents SET modified = ? WHERE path = ? OR (path >= ? AND path < ?)",
                              (modified, path, path + "::", path + ":;"))

    def rename_document(self, old_path: str, new_path: str) -> None:
        self.acquire_write_lock()
        with self._txn():
            self.conn.execute("UPDATE documents SET path = ? WHERE path = ?", (new_path, old_path))

    def delete_document(self, path: str) -> bool:
        self.acquire_write_lock()
        with self._txn():
            row = self.conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
            if not row:
                return False
            text_ids = [r[0] for r in self.conn.execute("SELECT text_id FROM chunks WHERE doc_id = ?", (row[0],))]
            self.conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
            orphans = self._delete_orphans(text_ids)
        self.vectors.delete(orphans)
        self.keywords.delete(orphans)
        return True

    def _delete_orphans(self, text_ids: list[int]) -> list[int]:
        """Delete texts no chunk references any more; returns their ids. Call inside a transaction."""
        orphans = [t for t in set(text_ids)
                   if not self.conn.execute("SELECT 1 FROM chunks WHERE text_id = ? LIMIT 1", (t,)).fetchone()]
        for start in range(0, len(orphans), 900):
            part = orphans[start:start + 900]
            self.conn.execute(f"DELETE FROM texts WHERE id IN ({','.join('?' * len(part))})", part)
        if orphans and self._simhashes is not None:
            self._simhashes.remove(orphans)
        return orphans

    def replace_all_embeddings(self, embedder: EmbedderId, embed) -> None:
        """Re-embed every text with a new embedder and rebuild the vector file (`edgerag reindex`).

        Crash-safe in this order: embed everything (nothing changed yet); remove the old vector file; commit the
        new embeddings and embedder together; write the new file. A kill at any point leaves SQLite consistent
        with itself and either no vector file (rebuilt from SQLite on open) or one made from the new embeddings.
        """
        self.acquire_write_lock()
        rows = self.conn.execute("SELECT id, heading, text FROM texts ORDER BY id").fetchall()
        vectors = embed([indexed_text(r["heading"], r["text"]) for r in rows]) if rows \
            else np.zeros((0, embedder.dim), np.float32)
        (self.folder / VECTORS_FILE).unlink(missing_ok=True)
        with self._txn():
            self.conn.executemany("UPDATE texts SET embedding = ? WHERE id = ?",
                                  [(v.astype(np.float32).tobytes(), r["id"]) for v, r in zip(vectors, rows)])
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [("embedder_name", embedder.name), ("embedder_sha256", embedder.sha256),
                                   ("dim", str(embedder.dim))])
        meta = self.meta()
        fresh = HnswVectors(self.folder / (VECTORS_FILE + ".rebuild"), embedder.dim,
                            m=int(meta.get("hnsw_m", 16)), ef_construction=int(meta.get("hnsw_ef_construction", 200)),
                            ef_search=self.vectors.ef_search if self.vectors else 128)
        fresh.add(np.array([r["id"] for r in rows], dtype=np.int64), vectors)
        fresh.path = self.folder / VECTORS_FILE
        fresh.dirty = True
        fresh.save()
        self.vectors = fresh

    # -- queries other packages need (the store is the only code that runs SQL on a collection) -------------
    def indexed_texts(self) -> list[tuple[int, str | None, str]]:
        """(text id, heading, text) of every text in id order: what replace_all_embeddings embeds, in its order."""
        return [tuple(r) for r in self.conn.execute("SELECT id, heading, text FROM texts ORDER BY id")]

    def text_origins(self) -> list[tuple[int, str, int]]:
        """(text id, text, id of the first document using it) for every text, in id order."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT t.id, t.text, min(c.doc_id) AS doc FROM texts t JOIN chunks c ON c.text_id = t.id "
            "GROUP BY t.id ORDER BY t.id")]

    def texts_of_documents(self, doc_ids) -> list[tuple[int, str]]:
        """(text id, text) of every text used by these documents, in id order."""
        ids = sorted(set(doc_ids))
        out: dict[int, str] = {}
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            out.update(self.conn.execute(
                f"SELECT DISTINCT t.id, t.text FROM texts t JOIN chunks c ON c.text_id = t.id "
                f"WHERE c.doc_id IN ({','.join('?' * len(part))})", part).fetchall())
        return sorted(out.items())

    def paths_of(self, text_ids) -> dict[int, list[str]]:
        """Every document path that contains each text (a stored text is shared by all documents holding the
        same or a near-duplicate chunk; a hit names only the first), in document order."""
        text_ids = list(text_ids)
        out: dict[int, list[str]] = {t: [] for t in text_ids}
        for start in range(0, len(text_ids), 900):
            part = text_ids[start:start + 900]
            rows = self.conn.execute(
                f"SELECT c.text_id, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id "
                f"WHERE c.text_id IN ({','.join('?' * len(part))}) ORDER BY d.id, c.ord", part)
            for text_id, path in rows:
                if path not in out[text_id]:
                    out[text_id].append(path)
        return out


def _extension(path: str) -> str:
    """Lower-case extension of a stored path's last name (an attachment `mail.eml::a.pdf` is a pdf)."""
    name = path.rsplit("::", 1)[-1].rsplit("/", 1)[-1]
    return name.rpartition(".")[2].lower() if "." in name.lstrip(".") else ""


def _file_mtime(path: str) -> float | None:
    """The modification time of the file a stored path came from (its e-mail, for an attachment), or None."""
    if "://" in path:
        return None  # a record, not a file
    try:
        return os.stat(path.split("::", 1)[0]).st_mtime
    except (OSError, ValueError):
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
