"""Snapshot tests (pytest-textual-snapshot): the main screens at 80×24, compared with the accepted SVGs in
tests/__snapshots__/test_tui_snapshots/. After an intended change of the look, review and accept with
`pytest tests/test_tui_snapshots.py --snapshot-update`.

Everything shown is made deterministic: a fake answer engine, a fake trainer, a synthetic models store, paths
under a temporary HOME (shown as ~/...), and ingestion "just now".
"""

from __future__ import annotations

import difflib
import html
import pickle
import re

import pytest
from test_tui_support import (SAMPLES, FakeEngine, fake_collection, fake_trainer, idle,  # noqa: F401
                              tables_measured, wait_for)

from edgerag.models import Manifest, ModelStore
from tui.app import create_app

pytest.importorskip("pytest_textual_snapshot")


@pytest.fixture()
def matches_snapshot(snap_compare, request):
    """snap_compare that, on a mismatch, fails with the screen lines that differ: CI shows a failing test's output,
    not the snapshot_report.html the plugin writes beside it."""
    def compare(app, run_before) -> bool:
        if snap_compare(app, run_before=run_before):
            return True
        from pytest_textual_snapshot import node_to_report_path

        report = pickle.loads(node_to_report_path(request.node).read_bytes())
        accepted, now = _screen_lines(report[1]), _screen_lines(report[2])
        texts = lambda lines: [" ".join(text for _, text in line) for line in lines]  # noqa: E731
        diff = list(difflib.unified_diff(texts(accepted), texts(now), "accepted", "now", lineterm="", n=0))
        if not diff:  # the same text in other colours or styles: show the styled runs of the lines that differ
            diff = [f"line {i}: {a} -> {b}" for i, (a, b) in enumerate(zip(accepted, now)) if a != b]
        pytest.fail("the screen differs from the accepted snapshot:\n" + "\n".join(diff), pytrace=False)
    return compare


def _screen_lines(svg: str) -> list[list[tuple[str, str]]]:
    """(style class, text) runs per terminal line of a Textual SVG screenshot."""
    lines: dict[int, list[tuple[str, str]]] = {}
    for cls, line, text in re.findall(r'<text class="terminal-(?:\d+-)?([^"]*)"[^>]*clip-path="url\(#terminal-'
                                      r'(?:\d+-)?line-(\d+)\)"[^>]*>(.*?)</text>', svg):  # accepted ones lack the id
        lines.setdefault(int(line), []).append((cls, html.unescape(text)))
    return [lines[i] for i in sorted(lines)]


@pytest.fixture()
def tilde_home(tmp_path, monkeypatch):
    """Paths under tmp_path display as ~/..., the same on every run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_chat_after_an_answer(settings, matches_snapshot):
    fake_collection(settings)
    app = create_app(settings, engine_factory=lambda *_: FakeEngine())

    async def ask(pilot):
        await pilot.press(*"how long is the warranty?", "enter")
        await idle(pilot)
        # The question box keeps focus: a blinking cursor would be on or off depending on how long the answer took.
        app.screen.query_one("#question").cursor_blink = False
        await pilot.pause()

    assert matches_snapshot(app, run_before=ask)


def test_chat_light_theme_with_a_source_open(settings, matches_snapshot):
    fake_collection(settings)
    app = create_app(settings, engine_factory=lambda *_: FakeEngine())

    async def ask(pilot):
        await pilot.press("ctrl+t", *"warranty?", "enter")
        await idle(pilot)
        await pilot.press("ctrl+o", "down", "enter")
        await idle(pilot)

    assert matches_snapshot(app, run_before=ask)


def test_library_after_ingesting(settings, tilde_home, matches_snapshot, monkeypatch):
    monkeypatch.setattr("tui.widgets.ingest_panel.elapsed", lambda _seconds: "0.5s")  # wall time varies
    docs = tilde_home / "docs"
    docs.mkdir()
    for f in sorted(SAMPLES.iterdir()):
        (docs / f.name).write_bytes(f.read_bytes())
    (docs / "notes.xyz").write_text("not a supported format")
    app = create_app(settings)

    async def add(pilot):
        await pilot.press("f3", "a")
        app.screen.query_one("#path").value = str(docs)
        await pilot.press("tab", "ctrl+u", *"manuals", "enter")
        await idle(pilot)
        await tables_measured(pilot)

    assert matches_snapshot(app, run_before=add)


def synthetic_store(root):
    """Three models with a lineage chain and fixed bytes, so sizes and checksums never change."""
    store = ModelStore(root)
    specs = [("smollm2-135m-instruct-q4_1", "generator", "gguf", "Q4_1", None, {}),
             ("smollm2-135m-demo-ft-q4_1", "generator", "gguf", "Q4_1", "smollm2-135m-instruct-q4_1",
              {"made_by": "edgerag finetune (LoRA r=8, 60 steps)", "gate": "f1 +4.1 [+1.0, +9.0] better"}),
             ("all-minilm-l6-v2-onnx-int8", "embedder", "onnx", "int8", None, {"made_by": "optimum export"})]
    for name, kind, fmt, quant, parent, lineage in specs:
        manifest = Manifest(name, kind, fmt, quant, source=f"pypi:{name.split('-')[0]}==0.1", license="apache-2.0",
                            parent=parent, lineage=lineage, created="2026-01-01T00:00:00+00:00")
        main = "model.gguf" if fmt == "gguf" else "model.onnx"
        manifest.details = {"main_file": main}
        store.add(manifest, lambda d, n=name, m=main: (d / m).write_bytes(n.encode() * 1000))
    store.use("smollm2-135m-demo-ft-q4_1")
    store.use("all-minilm-l6-v2-onnx-int8")
    return store


def test_models_with_lineage(tilde_home, matches_snapshot):
    from edgerag.config import Settings

    synthetic_store(tilde_home / "store")
    app = create_app(Settings(models_dir=tilde_home / "store", data_dir=tilde_home / "data"))

    async def show(pilot):
        await pilot.press("f4")
        await idle(pilot)
        await pilot.press("down")
        await idle(pilot)
        await tables_measured(pilot)

    assert matches_snapshot(app, run_before=show)


def _finished_job(settings, fake_trainer, job: str, steps_field: str):
    """The Finetune screen after a stand-in run of one of its jobs (40 steps) has finished."""
    fake_collection(settings)
    app = create_app(settings, trainer_command=fake_trainer)

    async def run(pilot):
        await pilot.press("f6")
        await idle(pilot)
        app.screen.query_one("#ft-jobs").active = job
        await idle(pilot)
        app.screen.query_one(steps_field).value = "40"
        await pilot.press("ctrl+r")
        # Until the run's end is drawn: right after Ctrl+R the process is None too, not started yet.
        await wait_for(pilot, lambda: str(app.screen.query_one("#ft-status").content) == "finished",
                       what=f"the {job} run")
        await idle(pilot)
        await tables_measured(pilot)
        if job == "embedder":
            # The embedder line is read by a thread that can race the first open of the stand-in collection's
            # empty database: read it once more now that everything has settled, as a user's reselect would.
            app.screen.load_embedders()
            await idle(pilot)

    return app, run


def test_finetune_after_training(settings, fake_trainer, matches_snapshot):
    app, run = _finished_job(settings, fake_trainer, "generator", "#ft-steps")
    assert matches_snapshot(app, run_before=run)


def test_finetune_embedder_after_a_run(settings, fake_trainer, matches_snapshot):
    app, run = _finished_job(settings, fake_trainer, "embedder", "#em-steps")
    assert matches_snapshot(app, run_before=run)


def test_evaluate_form(settings, matches_snapshot):
    app = create_app(settings)

    async def open_form(pilot):
        await pilot.press("f5")
        app.screen.query_one("#eval-data").value = "~/data/nfcorpus.zip"
        await idle(pilot)

    assert matches_snapshot(app, run_before=open_form)


def test_help(settings, matches_snapshot):
    fake_collection(settings)
    app = create_app(settings, engine_factory=lambda *_: FakeEngine())
    async def help_screen(pilot):
        await pilot.press("f1")
        await idle(pilot)

    assert matches_snapshot(app, run_before=help_screen)
