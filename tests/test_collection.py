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
