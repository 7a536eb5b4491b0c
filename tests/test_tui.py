"""Pilot tests: each screen driven by keys in a headless 80×24 app built by the same factory as `edgerag tui`."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from test_tui_support import (REPO, SAMPLES, FakeEngine, fake_collection, fake_trainer, idle,  # noqa: F401
                              notifications, pilot, wait_for)

from edgerag.errors import CollectionError
from edgerag.models import ModelStore
from edgerag.store.collection import list_collections
from tui.app import create_app
from tui.screens.chunk import ChunkScreen
from tui.screens.help import HelpScreen
from tui.widgets.answer_view import AnswerView
from tui.widgets.sources_panel import SourcesPanel

SIZE = (80, 24)


def chat_app(settings, engine=None, **kw):
    fake_collection(settings)
    engine = engine or FakeEngine()
    return create_app(settings, engine_factory=lambda _s, _name: engine, **kw), engine


# -- chat ----------------------------------------------------------------------------------------------------
@pilot
async def test_chat_streams_the_answer_and_shows_cited_sources(settings):
    hold = threading.Event()
    app, engine = chat_app(settings, FakeEngine(hold=hold))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"how long is the warranty?", "enter")
        view = app.screen.query_one(AnswerView)
        await wait_for(pilot, lambda: "K3 has a" in view.text, what="first streamed pieces")
        assert view.answer is None and "warranty [1]" not in view.text  # mid-stream: partial text only
        hold.set()
        await idle(pilot)
        assert engine.questions == ["how long is the warranty?"]
        assert view.answer is not None and view.text.endswith("sold it [2].")
        panel = app.screen.query_one(SourcesPanel)
        assert [e[0].number for e in panel.entries] == [1, 2]
        assert [e[2] for e in panel.entries] == [True, False]  # the second citation is flagged unsupported
        rendered = str(view.render())
        assert "cites [1] [2]" in rendered and "1 unsupported sentence" in rendered

        await pilot.press("ctrl+o", "enter")  # open the first cited passage
        assert isinstance(app.screen, ChunkScreen) and "two-year limited warranty" in app.screen.source.text
        await pilot.press("escape")
        await pilot.press("ctrl+y")
        assert "answer copied to the clipboard" in notifications(app)
        assert app.clipboard.startswith("The Aurora K3 has a two-year")


@pilot
async def test_chat_stop_keeps_the_partial_answer_and_new_chat_clears(settings):
    hold = threading.Event()
    app, engine = chat_app(settings, FakeEngine(hold=hold))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"first question", "enter")
        view = app.screen.query_one(AnswerView)
        await wait_for(pilot, lambda: "K3 has a" in view.text, what="streaming")
        await pilot.press("escape")  # stop: the next token raises inside the engine
        hold.set()
        await idle(pilot)
        assert view.answer.interrupted and "■ stopped" in str(view.render())
        await pilot.press("up")  # the question box remembers earlier questions
        assert app.screen.query_one("#question").value == "first question"
        await pilot.press("ctrl+n")
        assert not app.screen.query(AnswerView)


@pilot
async def test_chat_errors_become_notifications_not_tracebacks(settings):
    def broken(_settings, name):
        raise CollectionError(f"collection {name!r} was built with another embedder")

    fake_collection(settings)
    app = create_app(settings, engine_factory=broken)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"anything", "enter")
        await idle(pilot)
        assert any("built with another embedder" in n for n in notifications(app))
        assert app.is_running and app.screen.streaming is None

    def buggy(_settings, _name):
        raise ZeroDivisionError("oops")

    app = create_app(settings, engine_factory=buggy)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        assert any("ZeroDivisionError" in n and "tui.log" in n for n in notifications(app))
        assert "ZeroDivisionError" in app.log_path.read_text()


@pilot
async def test_chat_without_collections_points_to_the_library(settings):
    app = create_app(settings, engine_factory=lambda *_: FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"hello", "enter")
        assert any("Library (F3)" in n for n in notifications(app))


@pytest.mark.slow
@pilot
async def test_chat_with_the_real_models(settings):
    from edgerag.ingest import ingest

    ingest(settings, [SAMPLES], "demo")
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"How long is the Aurora K3 warranty?", "enter")
        view = app.screen.query_one(AnswerView)
        await wait_for(pilot, lambda: view.answer is not None, timeout=120, what="the real answer")
        assert view.answer.sources and view.text
        assert app.screen.query_one(SourcesPanel).entries


# -- library -------------------------------------------------------------------------------------------------
@pilot
async def test_library_ingests_a_folder_shows_progress_failures_and_removes(settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for f in SAMPLES.iterdir():
        (docs / f.name).write_bytes(f.read_bytes())
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3", "a")
        app.screen.query_one("#path").value = str(docs)  # typing a long temp path key by key is slow
        await pilot.press("tab", "ctrl+u", *"manuals", "enter")
        screen = app.screen
        await idle(pilot)
        assert list_collections(settings.collections_dir) == ["manuals"]
        assert screen.query_one("#documents").row_count == 3
        assert "done" in str(screen.query_one("#ingest-title").render())
        log = "\n".join(str(line.text) for line in screen.query_one("#ingest-log").lines)
        assert "added" in log and "broken.pdf" in log and "failed" in log
        bar = screen.query_one("#ingest-bar")
        assert bar.total == 4 and bar.progress == 4

        await pilot.press("s")  # re-sync: nothing changed
        await idle(pilot)
        assert "nothing to do" in str(screen.query_one("#ingest-title").render()) or \
            "unchanged" in str(screen.query_one("#ingest-title").render())

        screen.query_one("#documents").focus()
        await pilot.press("d", "y")
        await idle(pilot)
        assert screen.query_one("#documents").row_count == 2
        await pilot.press("x", "y")
        await idle(pilot)
        assert list_collections(settings.collections_dir) == []


@pilot
async def test_library_add_dialog_validates(settings, tmp_path):
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3", "a")
        app.screen.query_one("#path").value = str(tmp_path / "missing")
        await pilot.press("enter")
        assert "no such file or folder" in str(app.screen.query_one("#dialog-error").render())
        app.screen.query_one("#path").value = str(tmp_path)
        await pilot.press("tab", "ctrl+u", *"bad name!", "enter")
        assert "collection name" in str(app.screen.query_one("#dialog-error").render())
        await pilot.press("escape")
        assert not list_collections(settings.collections_dir)


@pilot
async def test_quitting_mid_ingest_leaves_the_collection_consistent(settings, tmp_path):
    from edgerag.store.collection import Collection

    docs = tmp_path / "many"
    docs.mkdir()
    text = (SAMPLES / "lighthouse-history.txt").read_text()
    for i in range(40):
        (docs / f"note-{i:02d}.txt").write_text(f"Note {i}. " + text.replace("1852", str(1800 + i)))
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        app.screen.start_ingest([docs], "many")
        await wait_for(pilot, lambda: app.screen.query_one("#ingest-bar").progress >= 1, what="first file")
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    with Collection.open(settings.collections_dir, "many") as col:
        assert col.problems() == []
        assert 0 < col.counts()["documents"] <= 40, col.counts()


@pilot
async def test_quitting_mid_answer_does_not_hang(settings):
    app, engine = chat_app(settings, FakeEngine(delay=0.3))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"question", "enter")
        view = app.screen.query_one(AnswerView)
        await wait_for(pilot, lambda: view.pieces, what="the first piece")
        await pilot.press("ctrl+q")
    assert app.return_code == 0 and len(engine.questions) == 1


# -- models --------------------------------------------------------------------------------------------------
@pilot
async def test_models_switch_the_active_embedder_and_verify(settings):
    store = ModelStore(settings.models_dir)
    before = store.active_name("embedder")
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await idle(pilot)
        screen = app.screen
        names = [m.name for m in screen.manifests]
        target = next(n for n in names if store.get(n).kind == "embedder" and n != before)
        for _ in range(names.index(target)):
            await pilot.press("down")
        await pilot.press("u")
        await idle(pilot)
        assert store.active_name("embedder") == target
        assert any(f"active embedder: {target}" in n for n in notifications(app))
        await pilot.press("v")
        await idle(pilot)
        assert any("match their checksums" in n for n in notifications(app))


# -- evaluate ------------------------------------------------------------------------------------------------
def tiny_beir(folder):
    import json

    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": "The Aurora K3 grinder has a two-year warranty.", "d2": "Lighthouses guide ships at night.",
            "d3": "Travel expenses need receipts within 30 days.", "d4": "Store coffee beans in airtight jars."}
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n"
                                                 for k, v in docs.items()))
    queries = {"q1": "how long is the grinder warranty", "q2": "when are travel receipts due"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n"
                                                  for k, v in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return folder


@pilot
async def test_evaluate_runs_retrieval_and_shows_the_table(settings, tmp_path):
    data = tiny_beir(tmp_path / "beir")
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        screen = app.screen
        screen.query_one("#eval-limit").value = "abc"
        await pilot.press("ctrl+r")
        assert "positive whole number" in str(screen.query_one("#eval-status").render())
        screen.query_one("#eval-limit").value = ""
        screen.query_one("#eval-data").value = str(data)
        await pilot.press("ctrl+r")
        await idle(pilot)
        table = screen.query_one("#eval-results")
        assert [str(c.label) for c in table.columns.values()] == ["metric", "hybrid"]
        assert table.get_row_at(0)[0] == "ndcg@10" and table.row_count > 4
        assert "report.md" in str(screen.query_one("#eval-status").render())


@pytest.mark.slow
@pilot
async def test_evaluate_runs_qa_with_the_real_generator(settings, tmp_path):
    import json

    context = (SAMPLES / "lighthouse-history.txt").read_text()
    qas = [{"id": "q1", "question": "When was the Old Harbour Lighthouse built?",
            "answers": [{"text": "1852", "answer_start": context.index("1852")}]},
           {"id": "q2", "question": "Who was the last resident keeper?",
            "answers": [{"text": "Thomas Byrne", "answer_start": context.index("Thomas Byrne")}]}]
    squad = tmp_path / "tiny-squad.json"
    squad.write_text(json.dumps({"version": "1.1", "data": [{"title": "Lighthouse",
                                                             "paragraphs": [{"context": context, "qas": qas}]}]}))
    app = create_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        screen = app.screen
        screen.query_one("#eval-kind").value = "qa"
        screen.query_one("#eval-condition").value = "oracle"
        screen.query_one("#eval-data").value = str(squad)
        await pilot.press("ctrl+r")
        await idle(pilot, timeout=300)
        rows = [screen.query_one("#eval-results").get_row_at(i)[0]
                for i in range(screen.query_one("#eval-results").row_count)]
        assert "f1" in rows and "em" in rows


# -- finetune ------------------------------------------------------------------------------------------------
@pilot
async def test_finetune_validates_starts_charts_cancels_resumes_and_promotes(settings, fake_trainer, monkeypatch):
    fake_collection(settings)
    monkeypatch.setenv("FAKE_TRAINER_DELAY", "0.2")  # cancelled long before its end, even on a busy machine
    app = create_app(settings, trainer_command=fake_trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await idle(pilot)
        screen = app.screen
        screen.query_one("#ft-rank").value = "0"
        await pilot.press("ctrl+r")
        assert "LoRA rank" in str(screen.query_one("#ft-status").render()) and screen.process is None
        screen.query_one("#ft-rank").value = "16"
        screen.query_one("#ft-steps").value = "200"
        await pilot.press("ctrl+r")
        chart = screen.query_one("#ft-chart")
        await wait_for(pilot, lambda: len(chart.losses) >= 12, what="loss points")
        assert chart.losses[0] > chart.losses[-1]  # the chart moves
        assert "tokens/s" in str(screen.query_one("#ft-status").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.process is None, 120, "the cancelled child to end")  # a busy machine
        await idle(pilot)
        assert screen.process is None
        assert "cancelled (checkpoint at step " in str(screen.query_one("#ft-status").render())
        first = fake_trainer.log.read_text().splitlines()[0].split()
        assert first[first.index("--rank") + 1] == "16" and first[first.index("--collection") + 1] == "demo"

        monkeypatch.setenv("FAKE_TRAINER_DELAY", "0")
        screen.query_one("#ft-lr").focus()  # Ctrl+E still resumes from inside an input
        await pilot.press("ctrl+e")  # resume: same arguments plus --resume RUN_DIR
        await idle(pilot)
        resumed = fake_trainer.log.read_text().splitlines()[1]
        assert resumed.endswith("--resume /runs/fake")
        assert "finished" in str(screen.query_one("#ft-status").render())
        assert screen.query_one("#ft-gate").row_count == 1
        await pilot.click("#ft-promote")
        await idle(pilot)
        assert ModelStore(settings.models_dir).active_name("embedder") == "all-minilm-l6-v2-onnx-fp32"


@pilot
async def test_finetune_trainer_failure_is_a_notification(settings, tmp_path):
    fake_collection(settings)
    app = create_app(settings, trainer_command=lambda args: [sys.executable, "-c",
                                                             "import sys; sys.exit('no torch here')"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await idle(pilot)
        await pilot.press("ctrl+r")
        await idle(pilot)
        assert any("exited with status 1: no torch here" in n for n in notifications(app))


def _cli(argv_line: str):
    """A logged child command line (after `edgerag`) as the real CLI parser reads it."""
    from edgerag.cli import build_parser

    return build_parser().parse_args(argv_line.split())


@pilot
async def test_finetune_embedder_form_runs_the_cli_charts_resumes_promotes_and_rolls_back(settings, fake_trainer,
                                                                                           monkeypatch):
    from edgerag.embedtune.swap import previous_embedder
    from edgerag.ingest import ingest
    from edgerag.store.collection import collection_dir, recorded_embedder

    ingest(settings, [SAMPLES], "demo")  # a real collection: promotion and rollback below re-embed it for real
    store = ModelStore(settings.models_dir)
    active = store.active_name("embedder")
    other = next(m.name for m in store.list() if m.kind == "embedder" and m.format == "onnx" and m.name != active)
    monkeypatch.setenv("FAKE_TRAINER_MODEL", other)  # the "adapted" candidate the stand-in run reports
    monkeypatch.setenv("FAKE_TRAINER_DELAY", "0.2")  # cancelled long before its end, even on a busy machine
    app = create_app(settings, trainer_command=fake_trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await idle(pilot)
        screen = app.screen
        await pilot.click("#ft-jobs Tab#--content-tab-embedder")  # the Embedder tab, next to the generator's
        await idle(pilot)
        assert screen.query_one("#ft-jobs").active == "embedder"
        current = str(screen.query_one("#em-current").render())
        assert active in current and "previous none" in current and screen.query_one("#em-rollback").disabled

        screen.query_one("#em-queries").value = "5"
        screen.query_one("#em-steps").value = "x"
        await pilot.press("ctrl+r")
        status = str(screen.query_one("#ft-status").render())
        assert "queries: a whole number" in status and "steps: empty" in status and screen.process is None
        screen.query_one("#em-queries").value = "200"
        screen.query_one("#em-steps").value = "200"
        screen.query_one("#em-loss").value = "infonce"
        screen.query_one("#em-promote").value = False
        await pilot.press("ctrl+r")
        chart = screen.query_one("#ft-chart")
        await wait_for(pilot, lambda: len(chart.losses) >= 12, 60, "loss points")
        assert chart.losses[0] > chart.losses[-1]
        assert "step " in str(screen.query_one("#ft-status").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.process is None, 120, "the cancelled child to end")  # a busy machine
        await idle(pilot)
        assert screen.process is None and "cancelled (checkpoint at step " in str(
            screen.query_one("#ft-status").render())

        first = fake_trainer.log.read_text().splitlines()[0]
        args = _cli(first)  # what the form asked for is what `edgerag embedder run` accepts
        assert (args.embedder_command, args.collection, args.loss, args.max_queries, args.max_steps, args.promote,
                args.events_jsonl, args.resume) == ("run", "demo", "infonce", 200, 200, False, "-", False)

        monkeypatch.setenv("FAKE_TRAINER_DELAY", "0")
        await pilot.press("ctrl+e")  # resume: the same arguments plus the run folder the run reported
        await wait_for(pilot, lambda: "finished" in str(screen.query_one("#ft-status").render()), 120, "the resumed run")
        await idle(pilot)
        resumed = fake_trainer.log.read_text().splitlines()[1]
        assert resumed == first + " --resume --run-dir /runs/fake-embedder"
        args = _cli(resumed)
        assert args.resume and str(args.run_dir) == "/runs/fake-embedder" and args.func.__name__ == "run_cmd"
        assert "finished" in str(screen.query_one("#ft-status").render())
        gate = screen.query_one("#ft-gate")
        assert gate.row_count == 2 and "not promoted" in str(screen.query_one("#ft-outcome").render())

        await pilot.click("#ft-promote")  # re-embeds the collection with the candidate, beside its index
        await idle(pilot)
        assert recorded_embedder(settings.collections_dir, "demo") == other
        assert store.active_name("embedder") == active  # a collection's switch, not the active model's
        await wait_for(pilot, lambda: f"previous {active}" in str(screen.query_one("#em-current").render()),
                       what="the embedder line")
        assert screen.query_one("#ft-promote").disabled and not screen.query_one("#em-rollback").disabled

        await pilot.click("#em-rollback")  # back to the previous embedder and its very vectors
        await idle(pilot)
        assert recorded_embedder(settings.collections_dir, "demo") == active
        assert previous_embedder(collection_dir(settings.collections_dir, "demo")) == other  # rollback goes forward
        assert f"demo: {other} → {active}" in str(screen.query_one("#ft-status").render())
        assert notifications(app) == [f"demo now answers with {other}"]  # and no error


@pytest.mark.slow
@pilot
async def test_finetune_embedder_tab_runs_the_real_cli_child_on_a_tiny_student(settings, tmp_path):
    """The Embedder tab's job is the real `edgerag embedder run` child (torch in the child only), its events drawn:
    the data, train, export and gate stages on a 2-layer student, then the gate's checks and the candidate."""
    from test_embedtune import _tiny_student
    from xquad import build_collection

    build_collection(settings, "xq", n_articles=4)
    tiny = _tiny_student(tmp_path)

    def command(args: list[str]) -> list[str]:  # the app's own command, with the tiny student as the weights
        from tui.app import default_trainer_command

        return default_trainer_command([*args, "--base-weights", str(tiny), "--negatives", "3", "--batch-size", "4"])

    app = create_app(settings, trainer_command=command)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await idle(pilot)
        screen = app.screen
        screen.query_one("#ft-jobs").active = "embedder"
        await idle(pilot)
        screen.query_one("#em-collection").value = "xq"
        screen.query_one("#em-queries").value = "60"
        screen.query_one("#em-steps").value = "3"
        screen.query_one("#em-promote").value = False
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.process is None and screen.last_args, 900, "the embedder run")
        await idle(pilot)
        assert not notifications(app), notifications(app)
        assert "finished" in str(screen.query_one("#ft-status").render())
        assert len(screen.query_one("#ft-chart").losses) == 3
        assert screen.query_one("#ft-gate").row_count >= 2 and screen.candidate
        assert "not promoted" in str(screen.query_one("#ft-outcome").render())
        assert ModelStore(settings.models_dir).get(screen.candidate).lineage["collection"] == "xq"


# -- app-wide ------------------------------------------------------------------------------------------------
@pilot
async def test_every_screen_renders_at_80x24_help_and_theme(settings):
    app, _ = chat_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        for key, mode in (("f3", "library"), ("f4", "models"), ("f5", "evaluate"), ("f6", "finetune"),
                          ("f2", "chat")):
            await pilot.press(key)
            await idle(pilot)
            assert app.current_mode == mode
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark
        await pilot.press("ctrl+q")
    assert app.return_code == 0


def test_the_tui_does_not_import_torch(tmp_path):
    code = ("import sys; from tui.app import create_app; from edgerag.config import Settings; "
            f"create_app(Settings(models_dir={str(tmp_path)!r}, data_dir={str(tmp_path)!r})); "
            "bad = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_setting_is_one_line_not_a_traceback(tmp_path):
    env = {**__import__("os").environ, "EDGERAG_HOME": str(tmp_path), "EDGERAG_TOP_K": "abc"}
    result = subprocess.run([sys.executable, "-m", "tui"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "edgerag: error: setting top_k: cannot read 'abc' as int"
