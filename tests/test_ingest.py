"""Ingest keeps a collection in sync with a folder: no-op re-runs, edits, deletes, renames, failures, crashes."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, shared
from edgerag.cli import main
from edgerag.ingest import ingest
from edgerag.runtime import open_collection
from edgerag.store.collection import Collection

SAMPLES = REPO / "docs" / "samples"


@pytest.fixture()
def folder(tmp_path):
    target = tmp_path / "docs"
    shutil.copytree(SAMPLES, target)
    return target


def _consistent(settings, name="default"):
    col, _ = open_collection(settings, name)
    with col:
        assert col.problems() == []
        return col.counts(), {d.path: d.content_hash for d in col.documents()}


def test_ingest_then_reingest_is_a_no_op(settings, folder):
    first = ingest(settings, [folder], "default")
    assert first.summary["added"] == 3 and not first.failed
    counts, docs = _consistent(settings)
    assert counts["documents"] == 3 and counts["chunks"] >= 3
    again = ingest(settings, [folder], "default")
    assert again.summary["unchanged"] == 3 and again.new_chunks == 0
    assert sum(again.summary.values()) == 3
    assert _consistent(settings) == (counts, docs)


def test_edit_delete_rename_are_reflected_exactly(settings, folder):
    ingest(settings, [folder], "default")
    manual = folder / "aurora-k3-manual.md"
    manual.write_text(manual.read_text().replace("two-year", "five-year"))
    (folder / "travel-policy.html").unlink()
    (folder / "lighthouse-history.txt").rename(folder / "harbour-light.txt")
    report = ingest(settings, [folder], "default")
    assert report.summary == {"added": 0, "updated": 1, "renamed": 1, "removed": 1, "unchanged": 0,
                              "failed": 0, "unsupported": 0}
    assert report.new_chunks >= 1  # only the edited chunk(s) are embedded again; the rename costs nothing
    counts, docs = _consistent(settings)
    assert sorted(Path(p).name for p in docs) == ["aurora-k3-manual.md", "harbour-light.txt"]
    col, emb = open_collection(settings, "default")
    with col:
        texts = " ".join(h.text for h in col.hits([t for t, _ in col.bm25("warranty", 5)]).values())
        assert "five-year" in texts and "two-year" not in texts
        assert col.bm25("meal allowance euros", 5) == []


def test_unreadable_files_are_skipped_with_reasons(settings, folder, capsys):
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    (folder / "notes.xyz").write_text("unsupported")
    code = main(["ingest", str(folder), "--json"])
    assert code == 1  # something failed
    out = json.loads(capsys.readouterr().out)
    reasons = {Path(f["path"]).name: (f["status"], f["reason"]) for f in out["files"]}
    assert out["summary"]["added"] == 3 and out["summary"]["failed"] == 3
    assert reasons["notes.xyz"][0] == "unsupported"
    for name in ("empty.txt", "binary.txt", "broken.pdf"):
        assert reasons[name][0] == "failed" and reasons[name][1]


def test_missing_path_is_an_error_before_any_work(settings, tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "nope")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    assert not (settings.collections_dir / "default").exists()


@pytest.mark.slow  # every example through the real embedder (minutes); the fault suite's fast part uses a hashing one
def test_unstructured_examples_finish_without_crash(settings):
    folder = shared("documents", "unstructured_example_docs")
    report = ingest(settings, [folder], "mixed")
    assert report.summary["added"] > 50
    for o in report.failed:
        assert o.reason  # every failure is named
    _consistent(settings, "mixed")


def _xquad_folder(tmp_path, n):
    data = json.loads(shared("qa", "xquad_en", "xquad.en.json").read_text())
    target = tmp_path / "xquad"
    target.mkdir()
    paragraphs = [p["context"] for a in data["data"] for p in a["paragraphs"]][:n]
    for i, text in enumerate(paragraphs):
        (target / f"p{i:03d}.txt").write_text(text)
    return target


def test_kill_during_ingest_leaves_a_consistent_resumable_collection(settings, home, tmp_path):
    folder = _xquad_folder(tmp_path, 240)
    env = {**os.environ, "EDGERAG_HOME": str(home), "EDGERAG_EMBED_BATCH_SIZE": "4", "EDGERAG_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "edgerag.cli", "ingest", str(folder), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = settings.collections_dir / "default" / "collection.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.2)
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    if conn.execute("SELECT count(*) FROM documents").fetchone()[0] >= 20:
                        break
            except sqlite3.Error:
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    counts, _ = _consistent(settings)
    assert 20 <= counts["documents"] < 240  # killed midway
    report = ingest(settings, [folder], "default")
    assert report.summary["added"] == 240 - counts["documents"]
    assert report.summary["unchanged"] == counts["documents"]
    final, _ = _consistent(settings)
    assert final["documents"] == 240


# -- the batch writer with a deterministic embedder (fast; the faults under test are not about embedding) ---------
sys.path.insert(0, str(REPO / "bench"))
from faults import HashEmbedder, integrity  # noqa: E402
from faults import ingest as hash_ingest  # noqa: E402
from faults import state as hash_state  # noqa: E402

BLOCKS = {k: f"# Topic {k}\n\nThe {k} paragraph talks about item {k} at length, with enough words to stand on its "
             f"own as one chunk of text about {k}.\n\n" for k in "ABCDEF"}


def _write_files(folder: Path, layout: dict[str, str]) -> None:
    for f in folder.glob("*.md"):
        f.unlink()
    for name, keys in layout.items():
        (folder / name).write_text("".join(BLOCKS[k] for k in keys), encoding="utf-8")


def _edits():
    """Text moving between files: every (source, target) order among files sorting before, between and after,
    into an existing or a new file; splits and merges."""
    start = {"b.md": "AB", "m.md": "CD", "y.md": "EF"}
    names = ["b.md", "m.md", "y.md", "a-new.md", "n-new.md", "z-new.md"]
    for src in ("b.md", "m.md", "y.md"):
        for dst in names:
            if dst == src:
                continue
            end = {k: v for k, v in start.items()}
            moved = end[src][0]
            end[src] = end[src][1:]
            end[dst] = end.get(dst, "") + moved
            yield f"move {moved} {src}->{dst}", start, end
    yield "split", start, {"b.md": "A", "a-new.md": "B", "m.md": "CD", "y.md": "EF"}
    yield "merge", start, {"b.md": "ABCD", "y.md": "EF"}
    yield "merge into new", start, {"a-new.md": "ABCDEF"}
    yield "swap", start, {"b.md": "CD", "m.md": "AB", "y.md": "EF"}
    yield "rotate", start, {"b.md": "EF", "m.md": "AB", "y.md": "CD"}


@pytest.mark.parametrize("name,start,end", list(_edits()), ids=[e[0] for e in _edits()])
def test_text_moving_between_files_in_one_batch(tmp_path, name, start, end):
    folder = tmp_path / "docs"
    folder.mkdir()
    _write_files(folder, start)
    hash_ingest(tmp_path / "data", [folder])
    _write_files(folder, end)
    report = hash_ingest(tmp_path / "data", [folder])  # one batch: every file is written by one flush
    assert not report.failed
    assert integrity(tmp_path / "data", HashEmbedder()) == []
    fresh = tmp_path / "fresh"
    hash_ingest(fresh, [folder])
    assert hash_state(tmp_path / "data", folder) == hash_state(fresh, folder)


def test_changing_chunk_size_rechunks_every_document(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES, folder)
    first = hash_ingest(tmp_path / "data", [folder], chunk_tokens=120, overlap=10)
    assert first.summary["added"] == 3
    again = hash_ingest(tmp_path / "data", [folder], chunk_tokens=120, overlap=10)
    assert again.summary["unchanged"] == 3
    smaller = hash_ingest(tmp_path / "data", [folder], chunk_tokens=40, overlap=5)
    assert smaller.summary["updated"] == 3 and smaller.new_chunks > 0
    assert integrity(tmp_path / "data") == []
    fresh = tmp_path / "fresh"
    hash_ingest(fresh, [folder], chunk_tokens=40, overlap=5)
    assert hash_state(tmp_path / "data", folder) == hash_state(fresh, folder)


def test_a_file_that_takes_too_long_fails_by_name_and_the_run_goes_on(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES, folder)
    # lexbor spends minutes in C on 200,000 nested tags: only a parser in a killable child process can stop it
    (folder / "deep.html").write_text("<html><body>" + "<div>" * 200_000 + "x" + "</div>" * 200_000 + "</body></html>")
    started = time.perf_counter()
    report = hash_ingest(tmp_path / "data", [folder], time_limit=3)
    assert time.perf_counter() - started < 30
    assert report.summary["added"] == 3
    [slow] = report.failed
    assert slow.path.endswith("deep.html") and "file_time_limit" in slow.reason
    assert integrity(tmp_path / "data") == []


def test_rm_and_reindex_speak_json(settings, folder, capsys):
    assert main(["ingest", str(folder), "--json"]) == 0
    capsys.readouterr()
    target = folder / "travel-policy.html"
    assert main(["rm", str(target), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["removed"] == str(target) and out["documents"] == 2
    assert main(["reindex", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["collection"] == "default" and out["texts"] > 0 and out["embedder"]
    assert main(["rm", "default", "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"removed_collection": "default"}
