"""The real TUI beside real CLI commands on one collection (the fault suite's concurrent-use scenarios, issue 12):
the one-writer lock makes the second writer fail with a message naming the holder, or wait (watch mode retries),
and the collection is never corrupted.

Both sides use the bundled ONNX embedder. To make the overlap certain rather than a race, the side that must hold
the lock is paused inside its first embedding batch (it holds the write lock from the start of its sync):
in-process for the TUI (its embedder waits on an Event), for the CLI by a wrapper that runs `edgerag.cli.main`
with an embedder that waits for a file to appear.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from test_tui_support import REPO, SAMPLES, idle, notifications, pilot, wait_for

from edgerag.embed.onnx_embedder import OnnxEmbedder
from edgerag.store.collection import Collection
from tui.app import create_app

SIZE = (80, 24)
NAME = "shared"

HELD_CLI = r'''
import sys, time
from pathlib import Path
from edgerag.embed.onnx_embedder import OnnxEmbedder
flag, go = Path(sys.argv[1]), Path(sys.argv[2])
embed = OnnxEmbedder.embed
def held(self, texts, progress=None):
    flag.write_text("holding")
    while not go.exists():
        time.sleep(0.05)
    return embed(self, texts, progress)
OnnxEmbedder.embed = held
from edgerag.cli import main
sys.exit(main(sys.argv[3:]))
'''


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for f in SAMPLES.iterdir():
        (docs / f.name).write_bytes(f.read_bytes())
    return docs


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgerag.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env={**os.environ, "ORT_DISABLE_TELEMETRY": "1"})


def _busy(pid: int) -> re.Pattern:
    return re.compile(rf"collection '{NAME}' is being changed by another edgerag process \(pid {pid}\)")


def _consistent(settings, documents: int) -> None:
    with Collection.open(settings.collections_dir, NAME) as col:
        assert col.problems() == []
        assert col.counts()["documents"] == documents, col.counts()


@pilot
async def test_cli_writers_are_refused_while_the_tui_library_ingests(settings, tmp_path, monkeypatch):
    docs = _docs(tmp_path)
    holding, go = threading.Event(), threading.Event()
    embed = OnnxEmbedder.embed

    def held(self, texts, progress=None):
        holding.set()
        go.wait(900)  # released by the test once the CLI commands have run (slow on a busy machine)
        return embed(self, texts, progress)

    monkeypatch.setattr(OnnxEmbedder, "embed", held)
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await idle(pilot, timeout=300)  # the Library screen composed (a busy machine takes its time)
        app.screen.start_ingest([docs], NAME)
        await wait_for(pilot, holding.is_set, timeout=300, what="the TUI's ingest to hold the write lock")
        # the real commands, in another process, while the TUI's worker is inside its sync
        runs = await asyncio.to_thread(lambda: {
            "ingest": _cli("ingest", str(docs), "-c", NAME),
            "rm": _cli("rm", str(docs / "lighthouse-history.txt"), "-c", NAME),
            "reindex": _cli("reindex", "-c", NAME)})
        go.set()
        await idle(pilot, timeout=300)
        assert "done" in str(app.screen.query_one("#ingest-title").render())
    for command, run in runs.items():
        assert run.returncode != 0 and _busy(os.getpid()).search(run.stderr), (command, run.stderr[-500:])
        assert "Traceback" not in run.stderr
    _consistent(settings, 3)
    again = _cli("ingest", str(docs), "-c", NAME, "--json")  # the lock is free again: the CLI goes through
    assert again.returncode == 0, again.stderr[-500:]


@pilot
async def test_the_tui_refuses_or_waits_while_a_cli_ingest_runs(settings, tmp_path):
    from edgerag.ingest import ingest

    docs = _docs(tmp_path)
    ingest(settings, [docs], NAME)
    (docs / "new-note.md").write_text("# Tides\n\nThe harbour master posts the tide tables every Monday at dawn.\n")
    flag, go = tmp_path / "holding", tmp_path / "go"
    cli = subprocess.Popen([sys.executable, "-c", HELD_CLI, str(flag), str(go), "ingest", str(docs), "-c", NAME],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                           env={**os.environ, "ORT_DISABLE_TELEMETRY": "1"})
    try:
        deadline = time.monotonic() + 600
        while not flag.exists():
            assert cli.poll() is None, cli.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the CLI ingest never reached its first embedding batch"
            time.sleep(0.1)
        busy = _busy(cli.pid)
        app = create_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f3")
            await idle(pilot, timeout=300)
            screen = app.screen
            assert screen.selected == NAME and screen.query_one("#documents").row_count == 3

            await pilot.press("s")  # re-sync: refused, said in a notification, the panel not left busy
            await idle(pilot, timeout=300)
            assert any(busy.search(n) for n in notifications(app)), notifications(app)
            assert "Traceback" not in " ".join(notifications(app))

            screen.query_one("#documents").focus()
            await pilot.press("d", "y")  # remove a document: refused the same way, nothing removed
            await idle(pilot, timeout=300)
            assert sum(bool(busy.search(n)) for n in notifications(app)) >= 2, notifications(app)
            assert screen.query_one("#documents").row_count == 3

            await pilot.press("w")  # watch mode: its first sync waits for the CLI (retried), then goes through
            status = lambda: str(screen.query_one("#watch-status").render())  # noqa: E731
            await wait_for(pilot, lambda: "sync postponed" in status(), timeout=300, what="the watcher to wait")
            assert "being changed" in status().replace("\n", " "), status()
            go.write_text("")
            out, err = await asyncio.to_thread(cli.communicate, timeout=300)
            assert cli.returncode == 0, err[-2000:]
            await wait_for(pilot, lambda: "last sync" in status(), timeout=300, what="the watcher's retry")
            await pilot.press("w")
            await idle(pilot, timeout=300)
        _consistent(settings, 4)
    finally:
        go.write_text("")
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
