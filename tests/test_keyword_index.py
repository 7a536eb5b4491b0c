"""The derived keyword index (store/keyword.py): same ranking as FTS5, follows every write, and survives kills.

Real text (NFCorpus abstracts and queries), a real collection; the embeddings are random because BM25 does not
read them. No models needed, so these run in a few seconds.
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from conftest import REPO, shared
from edgerag.store.collection import ChunkRecord, Collection, EmbedderId
from edgerag.store.keyword import KEYWORDS_FILE, KeywordIndex
from edgerag.store.lock import WriteLock

EMBEDDER = EmbedderId("test-embedder", "0" * 64, 8)


@pytest.fixture(scope="module")
def nfcorpus():
    with zipfile.ZipFile(shared("retrieval", "beir_nfcorpus", "nfcorpus.zip")) as zf:
        docs = [json.loads(line) for line in zf.read("nfcorpus/corpus.jsonl").decode().splitlines()[:400]]
        queries = [json.loads(line)["text"] for line in zf.read("nfcorpus/queries.jsonl").decode().splitlines()]
    return docs, queries[::40]


def write(col: Collection, key: str, text: str, heading: str | None = None, seed: int = 0) -> None:
    vec = np.random.default_rng(seed).normal(size=EMBEDDER.dim).astype(np.float32)
    chunk = ChunkRecord(text=text, page=None, heading=heading, start=0, end=len(text), n_tokens=len(text.split()))
    col.write_document(f"record://{key}", key, len(text), "record", None, [chunk], [None], {0: vec})


def build(root, docs) -> Collection:
    col = Collection.open(root, "kw", EMBEDDER, create=True)
    for i, d in enumerate(docs):
        write(col, d["_id"], d["text"], d.get("title") or None, seed=i)
    return col


def test_same_ranking_and_scores_as_fts5(tmp_path, nfcorpus):
    docs, queries = nfcorpus
    col = build(tmp_path, docs)
    agree = total = 0
    for q in queries:
        ours, fts = col.bm25(q, 10), col.fts5_bm25(q, 10)
        reference = dict(fts)
        for text_id, score in ours:  # every text both return has the same score (FTS5 floors idf at 1e-6, we at 0)
            if text_id in reference:
                assert score == pytest.approx(reference[text_id], rel=0.02, abs=1e-3), q
        agree += sum(a[0] == b[0] for a, b in zip(ours, fts))
        total += max(len(ours), len(fts))
    assert total > 100 and agree / total >= 0.95, f"{agree}/{total} positions agree with FTS5"
    col.close()


def test_follows_adds_updates_and_deletes(tmp_path, nfcorpus):
    docs, _ = nfcorpus
    col = build(tmp_path, docs[:50])
    write(col, "new", "Zymurgy is the chemistry of fermentation in brewing.", heading="Brewing notes")
    (top, _), = col.bm25("zymurgy", 5)
    assert col.hits([top])[top].path == "record://new"
    assert col.bm25("brewing notes", 1)[0][0] == top  # the heading is indexed too, as in FTS5
    write(col, "new", "Oenology is the science of wine.")  # the file changed: old text gone, new text found
    assert col.bm25("zymurgy", 5) == [] and len(col.bm25("oenology", 5)) == 1
    col.delete_document("record://new")
    assert col.bm25("oenology", 5) == [] and col.problems() == []
    col.close()


def test_reopen_loads_the_file_without_rebuilding(tmp_path, nfcorpus):
    docs, queries = nfcorpus
    col = build(tmp_path, docs[:100])
    expected = col.bm25(queries[0], 10)
    col.close()
    path = tmp_path / "kw" / KEYWORDS_FILE
    mtime = path.stat().st_mtime_ns
    col = Collection.open(tmp_path, "kw", EMBEDDER)
    assert col.keywords.stamp() == col.keywords.sqlite_stamp() and not col.keywords.dirty  # stamp matched
    assert col.bm25(queries[0], 10) == expected
    col.close()
    assert path.stat().st_mtime_ns == mtime


def test_a_reader_writes_the_missing_file_once(tmp_path, nfcorpus):
    """A collection from before the keyword file existed: the first open (a search, no writer busy) saves the
    rebuilt index, so later opens load it instead of rebuilding it every time."""
    docs, queries = nfcorpus
    col = build(tmp_path, docs[:80])
    expected = col.bm25(queries[2], 10)
    col.close()
    path = tmp_path / "kw" / KEYWORDS_FILE
    path.unlink()
    col = Collection.open(tmp_path, "kw", EMBEDDER)
    assert path.is_file() and not col.keywords.dirty and not col.lock.held
    col.close()
    mtime = path.stat().st_mtime_ns
    col = Collection.open(tmp_path, "kw", EMBEDDER)
    assert not col.keywords.dirty and col.bm25(queries[2], 10) == expected
    col.close()
    assert path.stat().st_mtime_ns == mtime


CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    from edgerag.store.collection import ChunkRecord, Collection, EmbedderId
    root, docs = sys.argv[1], json.loads(sys.stdin.read())
    col = Collection.open(root, "kw", EmbedderId("test-embedder", "0" * 64, 8))
    def write(key, text):
        chunk = ChunkRecord(text=text, page=None, heading=None, start=0, end=len(text), n_tokens=1)
        col.write_document("record://" + key, key, len(text), "record", None, [chunk], [None],
                           {0: np.ones(8, np.float32)})
    for d in docs:
        write(d["_id"], d["text"])                 # committed to SQLite, index file not saved
    col.delete_document("record://" + docs[0]["_id"])
    write("late", "Quokkas live on Rottnest Island.")
    os.kill(os.getpid(), signal.SIGKILL)           # killed between the SQLite commits and the index save
""")


def test_killed_between_commit_and_save_is_reconciled_on_open(tmp_path, nfcorpus):
    docs, _ = nfcorpus
    build(tmp_path, docs[:100]).close()
    more = [{"_id": d["_id"] + "-v2", "text": d["text"] + " Reprinted."} for d in docs[100:130]]
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], input=json.dumps(more), text=True,
                           cwd=REPO, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.returncode == -9, child.stderr
    busy = WriteLock(tmp_path / "kw")
    busy.acquire()  # another writer is busy: a reader reconciles in memory only
    col = Collection.open(tmp_path, "kw", EMBEDDER)
    stale = KeywordIndex(tmp_path / "kw" / KEYWORDS_FILE, col.conn)
    assert stale.stamp() != stale.sqlite_stamp()  # the file on disk still lags SQLite ...
    assert col.problems() == []  # ... and the opened collection does not
    assert col.hits([col.bm25("quokkas rottnest", 1)[0][0]])
    gone = col.conn.execute("SELECT count(*) FROM documents WHERE path = ?", ("record://" + more[0]["_id"],))
    assert gone.fetchone()[0] == 0
    col.close()
    busy.release()
    reader = Collection.open(tmp_path, "kw", EMBEDDER)  # no writer now: this reader persists the reconciled index
    assert not reader.lock.held
    reader.close()
    fresh = Collection.open(tmp_path, "kw", EMBEDDER)
    assert fresh.keywords.stamp() == fresh.keywords.sqlite_stamp() and not fresh.keywords.dirty
    fresh.close()


def test_damaged_file_and_stray_temp_file(tmp_path, nfcorpus):
    docs, queries = nfcorpus
    col = build(tmp_path, docs[:60])
    expected = col.bm25(queries[1], 10)
    col.close()
    folder = tmp_path / "kw"
    (folder / KEYWORDS_FILE).write_bytes(b"not an index")  # a damaged cache
    (folder / (KEYWORDS_FILE + ".tmp-4242")).write_bytes(b"half a file")  # a writer killed while saving
    col = Collection.open(tmp_path, "kw", EMBEDDER)  # a reader rebuilds it and, with no writer busy, saves it
    assert col.bm25(queries[1], 10) == expected and col.problems() == []
    assert not (folder / (KEYWORDS_FILE + ".tmp-4242")).exists()
    col.close()
    assert KeywordIndex(folder / KEYWORDS_FILE, None).stamp()[1] == len(col_texts(tmp_path))


def col_texts(root) -> list[int]:
    col = Collection.open(root, "kw", EMBEDDER)
    try:
        return [r[0] for r in col.conn.execute("SELECT id FROM texts")]
    finally:
        col.close()


def test_coverage_is_the_share_of_what_the_question_asks_about_that_a_text_mentions(tmp_path):
    manual = (REPO / "docs" / "samples" / "aurora-k3-manual.md").read_text(encoding="utf-8")
    sections = [f"Aurora K3. {s}" for s in manual.split("\n## ") if s.strip()]
    col = Collection.open(tmp_path, "kw", EMBEDDER, create=True)
    for i, section in enumerate(sections):  # every section names the grinder: "aurora" is in all texts
        write(col, f"s{i}", section, seed=i)
    kw = col.keywords
    warranty = next(s for s in sections if "Warranty" in s)
    cleaning = next(s for s in sections if "Cleaning" in s)
    asked = "How long does the Aurora K3 warranty last?"
    share = {name: kw.coverage(asked, texts).share for name, texts in
             {"both": [cleaning, warranty], "warranty": [warranty], "cleaning": [cleaning]}.items()}
    assert share["both"] == share["warranty"] > share["cleaning"] > 0  # the best text counts; a common term weighs
    assert kw.coverage(asked, [cleaning]).missing == ("warranty",)  # "long", "last": words the documents never use
    # how the question asks is not what it asks about
    assert kw.coverage("Can you briefly explain the Aurora K3 warranty, please?", [warranty]) == \
        kw.coverage("the Aurora K3 warranty", [warranty])
    # a name no text mentions weighs most: the same question about another product is mostly not covered
    other = kw.coverage("How long does the Zephyr X9 warranty last?", [warranty])
    assert other.share < 0.4 < share["warranty"] and set(other.missing) == {"Zephyr", "X9"}
    assert kw.coverage("How does it work?", [warranty]).share == 1.0  # no content words: nothing to judge by
    assert kw.coverage(asked, []).share == 0.0
    # a capital that opens the question is no name: "Name" is an ordinary word the documents do not use
    assert kw.coverage("Name the grinder's warranty period", [warranty]).share == 1.0
    assert kw.coverage("Zephyr warranty?", [warranty]).missing == ()  # unknown and opening: not counted either
    col.close()
