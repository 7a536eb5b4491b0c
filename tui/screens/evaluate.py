"""Evaluate: run a retrieval (BEIR) or answer-quality (SQuAD / HotpotQA) evaluation and read its numbers.

The same library calls as `edgerag eval retrieval|qa`; the run directory (report.md, plots) is written as usual
and a stopped run can be resumed from it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Label, ProgressBar, Select

from edgerag.evaluate.metrics import Estimate

from ..widgets.nav_bar import NavBar
from .base import SectionScreen

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_DATA = {"retrieval": SHARED / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip",
                "qa": SHARED / "qa" / "xquad_en" / "xquad.en.json"}
SYSTEMS_HINT = {"retrieval": "embedders to compare, comma-separated (default: the active one)",
                "qa": "generators [LABEL=]MODEL[+ADAPTER], comma-separated (default: active)"}
VERDICT_STYLE = {"better": "bold green", "worse": "bold red"}


class _Stopped(Exception):
    pass


def _default_data(kind: str) -> str:
    """The benchmark shipped next to this checkout, if there is one."""
    return str(DEFAULT_DATA[kind]) if DEFAULT_DATA[kind].exists() else ""


def _est(value) -> Estimate:
    return value if isinstance(value, Estimate) else Estimate(**value)


def _cell(metric: str, value) -> str:
    est = _est(value)
    return est.fmt(1, 1) if metric in ("answer_words", "tokens_per_s") else est.fmt(100)


class EvaluateScreen(SectionScreen):
    SECTION = "evaluate"
    BINDINGS = [Binding("ctrl+r", "run", "Run"), Binding("escape", "stop", "Stop"),
                Binding("ctrl+e", "resume", "Resume", priority=True)]  # over Input's ctrl+e while resumable

    class Progress(Message):
        def __init__(self, event):
            super().__init__()
            self.event = event

    class Finished(Message):
        def __init__(self, summary: dict | None):
            super().__init__()
            self.summary = summary  # None: stopped

    def __init__(self):
        super().__init__()
        self.stop_requested = threading.Event()
        self.running = False
        self.run_dir: Path | None = None  # of the last run started, for resume
        self.last_request: dict | None = None

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        with Vertical(id="eval-form"):
            with Horizontal(classes="form-row"):
                yield Select([("retrieval · BEIR", "retrieval"), ("answers · SQuAD/Hotpot", "qa")],
                             value="retrieval", allow_blank=False, id="eval-kind", compact=True)
                yield Select([(m, m) for m in ("hybrid", "dense", "bm25")], value="hybrid", allow_blank=False,
                             id="eval-mode", compact=True)
                yield Select([(c, c) for c in ("open", "oracle", "unanswerable")], value="open",
                             allow_blank=False, id="eval-condition", compact=True)
                yield Input("20", placeholder="limit", id="eval-limit", compact=True, type="integer")
            yield Input(_default_data("retrieval"), placeholder="dataset file or folder", id="eval-data",
                        compact=True)
            yield Input(placeholder=SYSTEMS_HINT["retrieval"], id="eval-systems", compact=True)
        yield Label(Text("Ctrl+R runs the evaluation; limit samples that many questions (empty: all).",
                         style="dim"), id="eval-status")
        yield ProgressBar(total=None, id="eval-bar", show_eta=False)
        yield DataTable(id="eval-results", zebra_stripes=True, cursor_type="row")
        yield DataTable(id="eval-diffs", zebra_stripes=True, cursor_type="row")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#eval-condition").display = False
        self.query_one("#eval-diffs").display = False
        self.query_one(ProgressBar).display = False

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "stop":
            return self.running
        if action == "resume":
            return not self.running and self.run_dir is not None and self.last_request is not None
        return True

    @on(Select.Changed, "#eval-kind")
    def kind_changed(self, event: Select.Changed) -> None:
        kind = str(event.value)
        self.query_one("#eval-condition").display = kind == "qa"
        data = self.query_one("#eval-data", Input)
        if not data.value or data.value in {str(p) for p in DEFAULT_DATA.values()}:
            data.value = _default_data(kind)
        self.query_one("#eval-systems", Input).placeholder = SYSTEMS_HINT[kind]

    # -- running -------------------------------------------------------------------------------------------
    def form(self) -> dict | None:
        """The form's values, or None after showing what is wrong."""
        limit_text = self.query_one("#eval-limit", Input).value.strip()
        data = Path(self.query_one("#eval-data", Input).value.strip()).expanduser()
        error = None
        if limit_text and (not limit_text.isdigit() or int(limit_text) <= 0):
            error = "limit must be a positive whole number (or empty for all)"
        elif not str(data) or not data.exists():
            error = f"{data}: no such dataset file or folder"
        if error:
            self.status(Text(error, style="bold red"))
            return None
        systems = [s.strip() for s in self.query_one("#eval-systems", Input).value.split(",") if s.strip()]
        return {"kind": str(self.query_one("#eval-kind", Select).value), "data": data,
                "limit": int(limit_text) if limit_text else None, "systems": systems or [None],
                "mode": str(self.query_one("#eval-mode", Select).value),
                "condition": str(self.query_one("#eval-condition", Select).value)}

    def action_run(self, resume: bool = False) -> None:
        if self.running:
            self.notify("an evaluation is already running (Esc stops it)", severity="warning")
            return
        request = self.last_request if resume else self.form()
        if request is None:
            return
        self.last_request, self.running = request, True
        self.stop_requested.clear()
        self.refresh_bindings()
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.status(Text("loading the dataset…", style="dim"))
        self.evaluate(request, self.run_dir if resume else None)

    def action_resume(self) -> None:
        self.action_run(resume=True)

    def action_stop(self) -> None:
        if self.running:
            self.stop_requested.set()
            self.status(Text("stopping after the current question…", style="yellow"))

    @work(thread=True, group="eval", exit_on_error=False, description="evaluating")
    def evaluate(self, request: dict, resume: Path | None) -> None:
        def on_event(event) -> None:
            if self.stop_requested.is_set() or self.app.stopping.is_set():
                raise _Stopped
            self.post_message(self.Progress(event))

        settings = self.app.settings
        try:
            if request["kind"] == "retrieval":
                from edgerag.evaluate.retrieval import RetrievalConfig, run_retrieval_eval

                config = RetrievalConfig(str(request["data"]), modes=[request["mode"]],
                                         embedders=request["systems"], limit=request["limit"], seed=settings.seed)
                result = run_retrieval_eval(settings, config, resume=resume, on_event=on_event)
            else:
                from edgerag.evaluate.datasets import load_qa_file
                from edgerag.evaluate.qa import QAConfig, run_qa_eval

                config = QAConfig(generators=request["systems"], condition=request["condition"],
                                  mode=request["mode"], limit=request["limit"], seed=settings.seed)
                result = run_qa_eval(settings, config, resume=resume, on_event=on_event,
                                     dataset=load_qa_file(request["data"]))
        except _Stopped:
            self.post_message(self.Finished(None))
            return
        self.post_message(self.Finished(result.summary))

    def on_evaluate_screen_progress(self, message: Progress) -> None:
        event, bar = message.event, self.query_one(ProgressBar)
        if event.kind == "run":
            self.run_dir = Path(event.info)
        elif event.kind == "phase":
            bar.update(total=event.total, progress=0)
            self.status(Text.assemble(("running ", "bold"), event.phase, ("  Esc stops", "dim")))
        elif event.kind == "advance":
            bar.advance(event.n)
            if event.info:
                self.status(Text.assemble(("running ", "bold"), event.info, ("  Esc stops", "dim")))
        elif event.kind == "ingest":
            bar.update(total=None)
            self.status(Text(f"indexing the dataset's passages… {event.n} chunks embedded", style="dim"))

    def on_evaluate_screen_finished(self, message: Finished) -> None:
        self.running = False
        self.refresh_bindings()
        if message.summary is None:
            self.status(Text(f"stopped; answers so far are kept in {self.run_dir} (Ctrl+E resumes)",
                             style="yellow"))
            return
        self.show_summary(message.summary)

    def worker_failed(self, worker) -> None:
        self.running = False
        self.refresh_bindings()
        self.status(Text("the evaluation failed: see the message", style="red"))

    def status(self, text: Text) -> None:
        self.query_one("#eval-status", Label).update(text)

    # -- results -------------------------------------------------------------------------------------------
    def show_summary(self, summary: dict) -> None:
        systems = summary["systems"]
        metrics = list(next(iter(systems.values()))["metrics"]) if systems else []
        n = summary.get("queries", summary.get("questions", 0))
        self.status(Text.assemble(("done ", "bold green"), f"{summary['dataset']}: {n} questions, ×100, "
                                  f"mean [95% CI] · report: {summary['run_dir']}/report.md"))
        table = self.query_one("#eval-results", DataTable)
        table.clear(columns=True)
        table.add_columns("metric", *systems)
        for m in metrics:
            table.add_row(m, *[_cell(m, s["metrics"][m]) for s in systems.values()])
        for label, ref in summary.get("published", {}).items():
            table.add_row(Text(f"published nDCG@10 ({label})", style="dim"),
                          *[f"{ref['ndcg@10'] * 100:.1f}" if name == label else "" for name in systems])
        curve = summary.get("recall_curve")
        if curve:  # the numbers behind recall_at_k.png
            for i, k in enumerate(curve["ks"]):
                table.add_row(Text(f"recall@{k} (curve)", style="dim"),
                              *[f"{curve[name][i] * 100:.1f}" for name in systems])
        diffs = self.query_one("#eval-diffs", DataTable)
        diffs.clear(columns=True)
        diffs.display = bool(summary.get("comparisons"))
        if diffs.display:
            base = summary["comparisons"][0]["base"]
            diffs.add_columns("metric", f"candidate − {base}", "difference", "verdict")
            for c in summary["comparisons"]:
                for m, cell in c["metrics"].items():
                    if cell["verdict"] != "n/a":
                        diffs.add_row(m, c["candidate"], _cell(m, cell["diff"]),
                                      Text(cell["verdict"], style=VERDICT_STYLE.get(cell["verdict"], "")))
