"""The collection store: dedup, delete, rename, crash reconciliation, embedder mismatch."""

import numpy as np
import pytest

from edgerag.errors import CollectionError
from edgerag.store.collection import ChunkRecord, Collection, EmbedderId

EMB = EmbedderId("test-emb", "a" * 64, 8)
LONG = ("The grinder carries a two-year limited warranty from the date of purchase, covering defects in "
        "materials and workmanship, but not burr wear, water damage or commercial use of any kind at all.")


def _vec(seed):
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def _write(col, path, texts, seed=0):
    chunks = [ChunkRecord(t, None, None, 0, len(t), 10) for t in texts]
    ids = col.resolve_duplicates(texts, path)
    vecs = {i: _vec(seed + i) for i, tid in enumerate(ids) if tid is None}
    return col.write_document(path, f"hash-{path}-{seed}", 1, "txt", None, chunks, ids, vecs)


def test_exact_and_near_duplicates_are_stored_once(tmp_path):
    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/a.txt", [LONG, "Short one."])
    near = LONG.replace("two-year", "two year").upper() + "  "
    _write(col, "/b.txt", [near, "Short one.", LONG.replace("commercial", "industrial")], seed=10)
    counts = col.counts()
    assert counts == {"documents": 2, "chunks": 5, "texts": 2}
    # the near-duplicate keeps its own wording for citations
    industrial = [h for h in col.hits([r[0] for r in col.conn.execute("SELECT id FROM texts")]).values()]
    rows = col.conn.execute("SELECT own_text FROM chunks WHERE own_text IS NOT NULL").fetchall()
    assert any("industrial" in r[0] for r in rows) and industrial
    # deleting one document keeps texts the other still uses
    col.delete_document("/a.txt")
    assert col.counts()["texts"] == 2
    col.delete_document("/b.txt")
    assert col.counts() == {"documents": 0, "chunks": 0, "texts": 0}
    col.close()


def test_search_fts_and_vectors_follow_deletes(tmp_path):
    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/a.txt", ["alpha lighthouse keeper", "beta coffee grinder"], seed=1)
    assert [tid for tid, _ in col.bm25("lighthouse", 5)] != []
    grinder_id = col.bm25("grinder", 5)[0][0]
    assert col.dense(_vec(2), 1)[0][0] == grinder_id
    _write(col, "/a.txt", ["alpha lighthouse keeper"], seed=1)  # the file changed: grinder chunk gone
    assert col.bm25("grinder", 5) == []
    assert grinder_id not in [t for t, _ in col.dense(_vec(2), 5)]
    col.close()


def test_vector_file_lagging_sqlite_is_reconciled_on_open(tmp_path):
    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/a.txt", ["one text here", "two text here"])
    col.save()
    _write(col, "/b.txt", ["three text here"], seed=5)
    col.delete_document("/a.txt")
    col.conn.close()  # "killed": SQLite committed, vector file never saved after the last writes
    col = Collection.open(tmp_path, "c", EMB)
    labels = {tid for tid, _ in col.dense(_vec(5), 10)}
    assert labels == {r[0] for r in col.conn.execute("SELECT id FROM texts")}
    col.close()


def test_other_embedder_is_refused(tmp_path):
    Collection.open(tmp_path, "c", EMB, create=True).close()
    other = EmbedderId("other", "b" * 64, 8)
    with pytest.raises(CollectionError, match="reindex"):
        Collection.open(tmp_path, "c", other)


def test_missing_collection_and_bad_name(tmp_path):
    with pytest.raises(CollectionError, match="no collection named"):
        Collection.open(tmp_path, "nope", EMB)
    with pytest.raises(CollectionError, match="bad collection name"):
        Collection.open(tmp_path, "../evil", EMB, create=True)


def test_a_text_deleted_after_it_was_resolved_is_refused_without_change(tmp_path):
    from edgerag.store.collection import StaleDuplicates

    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/a.txt", [LONG, "kept text"])
    texts = [LONG, "new text"]
    ids = col.resolve_duplicates(texts, "/c.txt")  # LONG resolves to a's text ...
    _write(col, "/a.txt", ["kept text"], seed=3)  # ... which a's next version deletes
    before = col.counts()
    chunks = [ChunkRecord(t, None, None, 0, len(t), 10) for t in texts]
    with pytest.raises(StaleDuplicates) as err:
        col.write_document("/c.txt", "h", 1, "txt", None, chunks, ids, {1: _vec(9)})
    assert err.value.indices == [0] and col.counts() == before and col.problems() == []
    col.close()


def test_headings_are_indexed_but_not_part_of_the_cited_passage(tmp_path):
    from edgerag.store.collection import indexed_text

    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/other.txt", ["The lighthouse keeper logs the weather.", "Coffee beans keep best in the dark."])
    body = "Remove the burr carrier and rinse it under warm water."
    chunks = [ChunkRecord(body, 3, "Maintenance > Descaling", 0, len(body), 12)]
    col.write_document("/m.md", "h", 1, "md", None, chunks, col.resolve_duplicates([body], "/m.md",
                                                                                      ["Maintenance > Descaling"]),
                       {0: _vec(1)})
    hit_ids = [t for t, _ in col.bm25("descaling", 5)]
    assert hit_ids, "a question naming the section heading must match it"
    hit = col.hits(hit_ids)[hit_ids[0]]
    assert hit.text == body and hit.heading == "Maintenance > Descaling"
    assert indexed_text("Maintenance > Descaling", body).startswith("Maintenance > Descaling")
    # the same words under another heading are another indexed text
    assert col.resolve_duplicates([body], "/n.md", ["Cleaning"]) == [None]
    assert col.resolve_duplicates([body], "/n.md", ["Maintenance > Descaling"]) != [None]
    col.close()


def test_reconcile_rebuilds_a_vector_file_holding_other_vectors(tmp_path):
    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/a.txt", ["one text here", "two text here", "three text here"])
    col.close()
    # the same labels with other vectors (a reindex killed between its commit and its file save, or a restored
    # backup): labels agree, so only comparing vectors finds it
    from edgerag.store.vectors import HnswVectors

    col = Collection.open(tmp_path, "c", EMB)
    ids = sorted(col.vectors.live_labels())
    col.close()
    stale = HnswVectors(tmp_path / "c" / "vectors.hnsw.other", 8)
    stale.add(np.array(ids), np.stack([_vec(100 + i) for i in range(len(ids))]))
    stale.path = tmp_path / "c" / "vectors.hnsw"
    stale.dirty = True
    stale.save()
    col = Collection.open(tmp_path, "c", EMB)
    assert col.problems() == []
    assert col.dense(_vec(0), 1)[0][1] > 0.99  # the stored vector of "one text here" is found again
    col.close()


def test_reindex_killed_after_its_commit_is_rebuilt_on_open(tmp_path, monkeypatch):
    from edgerag.store.vectors import HnswVectors

    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/a.txt", ["one text here", "two text here"])
    col.close()
    new = EmbedderId("new-emb", "c" * 64, 8)
    col = Collection.open(tmp_path, "c", EMB)

    def killed(self):
        raise KeyboardInterrupt("killed before the new vector file was written")

    monkeypatch.setattr(HnswVectors, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        col.replace_all_embeddings(new, lambda texts: np.stack([_vec(50 + i) for i in range(len(texts))]))
    col.lock.release()
    col.conn.close()
    monkeypatch.undo()
    col = Collection.open(tmp_path, "c", new)  # committed: the collection now belongs to the new embedder
    assert col.problems() == []
    assert col.dense(_vec(50), 1)[0][1] > 0.99
    col.close()


def test_deleted_vector_slots_are_reused(tmp_path):
    col = Collection.open(tmp_path, "c", EMB, create=True)
    for round_ in range(6):  # a file rewritten again and again: old texts deleted, new ones added
        _write(col, "/a.txt", [f"version {round_} sentence {i}" for i in range(50)], seed=round_ * 100)
    assert col.vectors.index.get_current_count() <= 100  # not 300 tombstones + 50 live
    assert col.problems() == []
    col.close()


def test_second_writer_is_refused_and_readers_are_not(tmp_path):
    col = Collection.open(tmp_path, "c", EMB, create=True)
    _write(col, "/a.txt", ["one text here"])  # holds the write lock from the first write until close
    reader = Collection.open(tmp_path, "c", EMB)
    assert reader.documents() and reader.dense(_vec(0), 1)
    with pytest.raises(CollectionError, match=r"being changed by another edgerag process \(pid \d+\)"):
        reader.delete_document("/a.txt")
    reader.close()
    col.close()
    other = Collection.open(tmp_path, "c", EMB)  # released on close
    assert other.delete_document("/a.txt")
    other.close()


def test_vector_file_temp_names_are_unique_per_writer(tmp_path, monkeypatch):
    from edgerag.store.vectors import HnswVectors

    names = []
    a, b = HnswVectors(tmp_path / "v.hnsw", 8), HnswVectors(tmp_path / "v.hnsw", 8)
    for v in (a, b):
        v.add(np.array([1]), _vec(1)[None])
        v.index = _Recording(v.index, names)
        v.save()
    assert len(set(names)) == 2 and all(n.startswith(str(tmp_path / "v.hnsw.tmp-")) for n in names)
    assert [p.name for p in tmp_path.iterdir()] == ["v.hnsw"]


class _Recording:
    def __init__(self, index, names):
        self._index, self._names = index, names

    def save_index(self, path):
        self._names.append(path)
        self._index.save_index(path)

    def __getattr__(self, name):
        return getattr(self._index, name)


def test_connections_that_open_a_store_at_once_each_apply_every_migration_once(tmp_path):
    """The TUI reads a collection from several worker threads: connections opening the same new (or older) store
    together must not apply a migration twice ("duplicate column name: heading" in a TUI run), nor fail to switch
    a new file to WAL ("database is locked")."""
    import sqlite3
    import threading

    from edgerag.store.schema import MIGRATIONS, connect

    for attempt in range(5):
        path = tmp_path / f"store-{attempt}.sqlite"
        start, errors = threading.Barrier(6), []

        def open_it():
            start.wait()
            try:
                connect(path).close()
            except sqlite3.Error as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        conn = sqlite3.connect(path)
        assert [row[0] for row in conn.execute("SELECT id FROM migrations ORDER BY id")] == \
            list(range(1, len(MIGRATIONS) + 1))
        conn.close()
