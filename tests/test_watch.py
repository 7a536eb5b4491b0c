"""Watch mode keeps a collection in step with a folder (edits, renames, deletes, a kill), and e-mail attachments
are documents of their own that follow their mail."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, shared
from edgerag.ingest import ingest
from edgerag.ingest.loaders import ocr
from edgerag.ingest.watch import watch
from edgerag.runtime import open_collection

SAMPLES = REPO / "docs" / "samples"


def _state(settings, name="default"):
    col, _ = open_collection(settings, name)
    with col:
        assert col.problems() == []
        return {Path(d.path).name: d for d in col.documents()}, col.counts()


def _bm25_paths(settings, query, name="default"):
    col, _ = open_collection(settings, name)
    with col:
        return {h.path for h in col.hits([t for t, _ in col.bm25(query, 5)]).values()}


# ---- attachments ----------------------------------------------------------------------------------------------


def test_mail_attachments_are_documents_that_follow_their_mail(settings, tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    src = shared("documents", "unstructured_example_docs", "eml", "fake-email-attachment.eml")
    shutil.copy(src, folder / "a.eml")
    shutil.copy(shared("documents", "unstructured_example_docs", "eml", "mime-multipart-digest.eml"), folder / "d.eml")
    report = ingest(settings, [folder], "default")
    added = sorted(Path(o.path).name for o in report.outcomes if o.status == "added")
    assert added == ["a.eml", "a.eml::fake-attachment.txt", "d.eml", "d.eml::First Message.eml",
                     "d.eml::Second Message.eml", "d.eml::Third Message.eml"]
    assert _bm25_paths(settings, "fake attachment") >= {str(folder / "a.eml::fake-attachment.txt")}
    again = ingest(settings, [folder], "default")  # attachments do not look "gone" (no such file on disk)
    assert again.summary["removed"] == 0 and again.summary["unchanged"] == 2

    (folder / "a.eml").rename(folder / "b.eml")  # renamed with their mail, nothing re-embedded
    report = ingest(settings, [folder], "default")
    assert report.summary["renamed"] == 1 and report.new_chunks == 0
    docs, _ = _state(settings)
    assert "b.eml::fake-attachment.txt" in docs and "a.eml::fake-attachment.txt" not in docs

    text = (folder / "d.eml").read_text()
    cut = text.index("--boundary123\nContent-Type: message/rfc822\n\nFrom: grace")  # drop the third message
    (folder / "d.eml").write_text(text[:cut] + "--boundary123--\n")
    report = ingest(settings, [folder], "default")
    assert {(Path(o.path).name, o.status) for o in report.outcomes if o.status != "unchanged"} == {
        ("d.eml", "updated"), ("d.eml::Third Message.eml", "removed")}

    (folder / "b.eml").unlink()  # the mail goes, its attachments go with it
    ingest(settings, [folder], "default")
    docs, _ = _state(settings)
    assert sorted(docs) == ["d.eml", "d.eml::First Message.eml", "d.eml::Second Message.eml"]


@pytest.mark.skipif(ocr.available(), reason="with the ocr extra the pages are read")
def test_scanned_pages_are_named_in_the_cli_report(settings, tmp_path, capsys, monkeypatch):
    import pypdfium2 as pdfium

    from edgerag.cli import main

    monkeypatch.setenv("COLUMNS", "300")
    folder = tmp_path / "scans"
    folder.mkdir()
    pdf = pdfium.PdfDocument.new()
    pdf.import_pages(pdfium.PdfDocument(shared("documents", "docling_testdata", "pdf", "sources",
                                               "multi_page.pdf").read_bytes()), [0])
    pdf.import_pages(pdfium.PdfDocument(shared("documents", "unstructured_example_docs", "pdf",
                                               "loremipsum-flat.pdf").read_bytes()), [0])
    pdf.save(folder / "mixed.pdf")
    shutil.copy(shared("documents", "unstructured_example_docs", "pdf", "single_table.pdf"), folder / "scan.pdf")
    assert main(["ingest", str(folder), "--json"]) == 1  # scan.pdf gives no text at all: failed
    files = {Path(f["path"]).name: (f["status"], f["reason"]) for f in json.loads(capsys.readouterr().out)["files"]}
    assert files == {"mixed.pdf": ("added", "page(s) 2: scanned, no text (install edgerag[ocr])"),
                     "scan.pdf": ("failed", "scanned, no text (install edgerag[ocr]): 1 scanned page(s)")}
    (folder / "mixed.pdf").write_bytes((folder / "mixed.pdf").read_bytes() + b"\n")  # changed: read again
    main(["ingest", str(folder)])
    out = capsys.readouterr().out
    assert "ingested with warnings" in out and "page(s) 2: scanned, no text (install edgerag[ocr])" in out


# ---- watch mode -----------------------------------------------------------------------------------------------


class Watcher:
    """watch() in a thread; events in a queue; stop() ends it."""

    def __init__(self, settings, folder):
        self.events: queue.Queue = queue.Queue()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

        def run():
            try:
                watch(settings, [folder], "default", on_event=self.events.put, stop=self.stop_event, quiet_ms=200,
                      max_wait_ms=2000, retry_s=0.5)
            except BaseException as exc:  # surfaced by next_sync()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def next_sync(self, timeout=180):  # generous: 2 shared cores
        deadline, seen = time.time() + timeout, []
        while time.time() < deadline:
            if self.error:
                raise self.error
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            assert event.kind != "stopped", "the watcher stopped on its own"
            if event.kind == "synced":
                return event
            seen.append((event.kind, event.changes, event.message))
        raise AssertionError(f"no sync within the timeout; events: {seen}")

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def _changed(event):
    return {(Path(o.path).name, o.status) for o in event.report.outcomes if o.status != "unchanged"}


def test_watch_follows_edits_renames_and_deletes(settings, tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES, folder)
    w = Watcher(settings, folder)
    try:
        first = w.next_sync()
        assert first.initial and first.report.summary["added"] == 3

        manual = folder / "aurora-k3-manual.md"
        manual.write_text(manual.read_text().replace("two-year", "five-year"))
        assert _changed(w.next_sync()) == {("aurora-k3-manual.md", "updated")}
        assert str(manual) in _bm25_paths(settings, "five-year warranty")

        (folder / "lighthouse-history.txt").rename(folder / "harbour-light.txt")
        assert _changed(w.next_sync()) == {("harbour-light.txt", "renamed")}

        (folder / "travel-policy.html").unlink()
        (folder / ".hidden-notes.txt").write_text("hidden files are not documents")  # ignored by the filter
        assert _changed(w.next_sync()) == {("travel-policy.html", "removed")}

        for i in range(5):  # a burst of saves is one sync (debounced), not five
            (folder / "burst.txt").write_text(f"Draft number {i} of the harbour pilot schedule.")
            time.sleep(0.05)
        assert _changed(w.next_sync()) == {("burst.txt", "added")}
        time.sleep(1.0)
        assert all(e.kind != "synced" for e in list(w.events.queue))
    finally:
        w.stop()
    docs, counts = _state(settings)
    assert sorted(docs) == ["aurora-k3-manual.md", "burst.txt", "harbour-light.txt"]


def test_watch_retries_while_another_writer_holds_the_collection(settings, tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES, folder)
    ingest(settings, [folder], "default")
    col, _ = open_collection(settings, "default")
    col.acquire_write_lock()  # e.g. a long `edgerag reindex` in another process
    w = Watcher(settings, folder)
    try:
        event = w.events.get(timeout=180)
        assert event.kind == "error" and "default" in event.message
        col.close()  # the other writer is done: the watcher's next retry goes through
        assert w.next_sync().report.summary["unchanged"] == 3
    finally:
        col.close()
        w.stop()


def test_watch_syncs_an_adapted_collection_with_its_own_embedder_across_promote_and_rollback(settings, tmp_path):
    """A collection promoted to another embedder (`edgerag embedder promote`) keeps syncing with that embedder,
    not the active one; a rollback between two syncs is followed by the next sync."""
    from edgerag.embedtune.swap import promote, rollback
    from edgerag.models import ModelStore

    store = ModelStore(settings.models_dir)
    active = store.active_name("embedder")
    other = next(m.name for m in store.list() if m.kind == "embedder" and m.format == "onnx" and m.name != active)
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES, folder)
    ingest(settings, [folder], "default")
    promote(settings, "default", other)

    def check(expected: str, query: str, path: Path) -> None:
        col, embedder = open_collection(settings, "default")
        with col:
            assert col.problems() == [] and col.embedder_name == embedder.name == expected
            hits = col.hits([t for t, _ in col.dense(embedder.embed([query])[0], 3)]).values()
            assert str(path) in {h.path for h in hits}  # the new text's vector is the collection embedder's

    w = Watcher(settings, folder)
    try:
        assert w.next_sync().report.summary["unchanged"] == 3  # before the fix: refused, retried for ever
        manual = folder / "aurora-k3-manual.md"
        manual.write_text(manual.read_text().replace("two-year", "five-year"))
        assert _changed(w.next_sync()) == {("aurora-k3-manual.md", "updated")}
        check(other, "five-year warranty on the grinder", manual)
        assert store.active_name("embedder") == active  # the watcher switched nothing

        rollback(settings, "default")  # between two syncs (the watcher holds the write lock only while syncing)
        note = folder / "pilot.txt"
        note.write_text("The harbour pilot boards incoming ships at buoy seven, weather permitting.")
        assert _changed(w.next_sync()) == {("pilot.txt", "added")}
        check(active, "where does the harbour pilot board", note)
    finally:
        w.stop()


def _xquad_folder(tmp_path, n):
    data = json.loads(shared("qa", "xquad_en", "xquad.en.json").read_text())
    paragraphs = [p["context"] for a in data["data"] for p in a["paragraphs"]][:n]
    return paragraphs


def test_killed_watcher_leaves_a_consistent_collection_that_catches_up(settings, home, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "start.txt").write_text("The watcher starts with one file.")
    env = {**os.environ, "EDGERAG_HOME": str(home), "EDGERAG_EMBED_BATCH_SIZE": "4", "EDGERAG_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "edgerag.cli", "ingest", str(folder), "--watch", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = json.loads(Lines(proc).next())  # one JSON line per sync
        assert first["event"] == "synced" and first["initial"] and first["summary"]["added"] == 1
        # all 240 XQuAD paragraphs: more new chunks than one embedding batch (EMBED_BATCH_CHUNKS), so the sync
        # commits the first batch's files and is still embedding the rest when it is killed, however fast the machine
        paragraphs = _xquad_folder(tmp_path, 240)
        for i, text in enumerate(paragraphs):
            (folder / f"p{i:03d}.txt").write_text(text)
        total = len(paragraphs) + 1
        db = settings.collections_dir / "default" / "collection.sqlite"
        deadline = time.time() + 120
        while time.time() < deadline:  # kill it in the middle of the sync those files started
            time.sleep(0.05)
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT count(*) FROM documents").fetchone()[0] >= 11:
                    break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    docs, counts = _state(settings)
    assert 11 <= counts["documents"] < total  # killed midway, consistent (problems() == [] in _state)
    report = ingest(settings, [folder], "default")  # the next run, watching or not, redoes only the rest
    assert report.summary["added"] == total - counts["documents"]
    assert report.summary["unchanged"] == counts["documents"]
    assert _state(settings)[1]["documents"] == total


class Lines:
    """A subprocess's stdout lines, read by a thread, so a test waits with a timeout instead of hanging."""

    def __init__(self, proc):
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.q.put(line) for line in proc.stdout], daemon=True).start()

    def next(self, timeout=180) -> str:
        return self.q.get(timeout=timeout)


def test_cli_watch_prints_a_change_report(settings, home, tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES, folder)
    env = {**os.environ, "EDGERAG_HOME": str(home), "COLUMNS": "300"}
    proc = subprocess.Popen([sys.executable, "-m", "edgerag.cli", "ingest", str(folder), "--watch"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = Lines(proc)
    try:
        first = out.next()
        assert "initial sync" in first and "3 added" in first
        assert sorted(out.next().strip() for _ in range(3)) == [
            "+ aurora-k3-manual.md", "+ lighthouse-history.txt", "+ travel-policy.html"]
        (folder / "lighthouse-history.txt").unlink()
        assert "1 removed" in out.next()
        assert out.next().strip() == f"- {folder / 'lighthouse-history.txt'}"
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert "stopped watching after 2 sync(s)" in "".join(out.q.queue)


# ---- the TUI's Library screen turns watching on and off -------------------------------------------------------


def test_library_screen_toggles_watch_mode(settings, tmp_path):
    import asyncio

    from test_tui_support import wait_for
    from tui.app import create_app

    folder = tmp_path / "docs"
    shutil.copytree(SAMPLES, folder)
    ingest(settings, [folder], "manuals")

    async def drive():
        app = create_app(settings)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("f3")
            screen = app.screen
            await wait_for(pilot, lambda: screen.query_one("#documents").row_count == 3, 60, "documents")
            await pilot.press("w")
            status = screen.query_one("#watch-status")
            await wait_for(pilot, lambda: "last sync" in str(status.render()), 180, "the first sync")
            (folder / "new-note.txt").write_text("The harbour pilot boards at buoy seven.")
            await wait_for(pilot, lambda: screen.query_one("#documents").row_count == 4, 180, "the new file")
            await pilot.press("w")
            await wait_for(pilot, lambda: not status.display, 60, "watching to stop")
            assert screen.watching is None

    asyncio.run(drive())
