"""Finetune: two jobs side by side, each a validated form, then a child process (torch never enters the UI
process) whose JSON events are drawn live by one reader: loss chart, progress, ETA; cancel and resume; then the
gate's verdict and promoting the candidate.

- Generator (LoRA): `edgerag finetune train --events-jsonl -`; promoting makes the candidate the active generator.
- Embedder: `edgerag embedder run -c C [--promote] --events-jsonl -`; promoting re-embeds the collection with the
  adapted embedder, and Roll back returns the collection to its previous embedder and vectors.

Event contract (one JSON object per stdout line of the child):
  {"event": "start", "run_dir": "..."}  or {"event": "run", "run_dir": "..."}  (resume passes the folder back)
  {"event": "status", "message": "synthesizing training data"}           (optional; any phase text)
  {"event": "stage", "stage": "train"}, {"event": "say", "text": "..."}  (the embedder's phases and notes)
  {"event": "query"|"embed_progress", "done": 40, "total": 1000}         (progress of a phase)
  {"event": "step", "step": 3, "max_steps": 60, "loss": 2.31, "tokens_per_s": 410.0, "eta_s": 120.0}
      (the embedder says "total" for "max_steps" and reports no speed)
  {"event": "done", "adapter": "...", "model": "<store name of the exported candidate>"}
  {"event": "gate", "verdict": "better", "metric": "f1", "base": 0.31, "candidate": 0.36,
   "difference": [0.01, 0.09], "n": 120, "model": "<candidate store name>"}
  {"event": "outcome", "candidate": "...", "promoted": false, "checks": {"heldout:dense": {base, candidate, diff,
   verdict, n}, ...}}                                                   (the embedder's result)
  {"event": "error", "message": "..."}
Lines that are not JSON are kept in the log (data dir / finetune-tui.log).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import deque

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Footer, Label, ProgressBar, Select, TabbedContent, TabPane

from edgerag.errors import EdgeragError, ModelError
from edgerag.models import ModelStore
from edgerag.store.collection import list_collections

from ..widgets.embedder_form import EmbedderForm, embedder_args
from ..widgets.finetune_form import FinetuneForm, trainer_args
from ..widgets.gate_table import GateTable
from ..widgets.loss_chart import LossChart
from ..widgets.nav_bar import NavBar
from .base import SectionScreen

def _eta(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class FinetuneScreen(SectionScreen):
    SECTION = "finetune"
    BINDINGS = [Binding("ctrl+r", "start", "Start"), Binding("escape", "cancel", "Cancel"),
                Binding("ctrl+e", "resume", "Resume", priority=True)]  # over Input's ctrl+e while resumable

    class Choices(Message):
        def __init__(self, models: list[str], active: str | None, collections: list[str]):
            super().__init__()
            self.models, self.active, self.collections = models, active, collections

    class Event(Message):
        def __init__(self, data: dict):
            super().__init__()
            self.data = data

    class Ended(Message):
        def __init__(self, returncode: int, stderr_tail: list[str]):
            super().__init__()
            self.returncode, self.stderr_tail = returncode, stderr_tail

    class Embedders(Message):
        def __init__(self, collection: str, current: str | None, previous: str | None):
            super().__init__()
            self.collection, self.current, self.previous = collection, current, previous

    # What each job runs (the `edgerag` arguments before the form's) and how it resumes its run folder.
    JOBS = {"generator": (["finetune", "train"], lambda run_dir: ["--resume", run_dir] if run_dir else ["--resume"]),
            "embedder": (["embedder", "run"],
                         lambda run_dir: ["--resume", "--run-dir", run_dir] if run_dir else ["--resume"])}

    def __init__(self):
        super().__init__()
        self.job = "generator"  # of the last run started
        self.run_collection: str | None = None  # the embedder run's collection
        self.process: asyncio.subprocess.Process | None = None
        self.cancelled = False
        self.failed = False
        self.last_args: list[str] | None = None
        self.run_dir: str | None = None
        self.candidate: str | None = None
        self.checkpoint: int | None = None  # last step saved (what resume continues from)

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        with TabbedContent(id="ft-jobs"):
            with TabPane("Generator (LoRA)", id="generator"):
                yield FinetuneForm(id="ft-form")
            with TabPane("Embedder", id="embedder"):
                yield EmbedderForm(id="em-form")
        yield Label(Text("Ctrl+R starts training with these settings.", style="dim"), id="ft-status")
        yield ProgressBar(total=None, id="ft-bar", show_eta=False)
        yield LossChart(id="ft-chart")
        with Vertical(id="ft-result"):
            yield Label("", id="ft-outcome")
            yield GateTable(id="ft-gate")
            with Horizontal(classes="buttons"):
                yield Button("Promote candidate", id="ft-promote", variant="success", disabled=True)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(GateTable).display = False
        self.query_one(ProgressBar).display = False
        self.query_one("#ft-result").display = False

    def on_unmount(self) -> None:
        self._signal(signal.SIGTERM)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "cancel":
            return self.running
        if action == "resume":
            return not self.running and self.last_args is not None
        return True

    # -- choices -------------------------------------------------------------------------------------------
    def reload(self) -> None:
        self.load_choices()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False, description="reading models")
    def load_choices(self) -> None:
        store = ModelStore(self.app.settings.models_dir)
        models = [m.name for m in store.list() if m.kind == "generator" and m.format in ("gguf", "hf")]
        try:
            active = store.active_name("generator")
        except ModelError:
            active = None
        self.post_message(self.Choices(models, active, list_collections(self.app.settings.collections_dir)))

    def on_finetune_screen_choices(self, message: Choices) -> None:
        self.query_one(FinetuneForm).set_choices(message.models, message.active, message.collections)
        self.query_one(EmbedderForm).set_choices(message.collections)
        self.load_embedders()

    @on(Select.Changed, "#em-collection")
    def collection_changed(self) -> None:
        self.load_embedders()

    def load_embedders(self) -> None:
        name = self.query_one(EmbedderForm).collection
        if name is not None:
            self.read_embedders(name)

    @work(thread=True, exclusive=True, group="embedders", exit_on_error=False, description="reading the collection")
    def read_embedders(self, name: str) -> None:
        from edgerag.embedtune.swap import previous_embedder
        from edgerag.store.collection import collection_dir, recorded_embedder

        folder = collection_dir(self.app.settings.collections_dir, name)
        self.post_message(self.Embedders(name, recorded_embedder(self.app.settings.collections_dir, name),
                                         previous_embedder(folder)))

    def on_finetune_screen_embedders(self, message: Embedders) -> None:
        form = self.query_one(EmbedderForm)
        if form.collection == message.collection:
            form.show_embedders(message.current, message.previous)

    # -- starting, cancelling, resuming --------------------------------------------------------------------
    def action_start(self) -> None:
        job = self.query_one(TabbedContent).active or "generator"
        form = self.query_one(FinetuneForm if job == "generator" else EmbedderForm)
        values, errors = form.values()
        if errors:
            self.status(Text("; ".join(errors), style="bold red"))
            return
        if self.running:
            self.notify("a job is already running (Esc cancels it)", severity="warning")
            return
        self.job, self.run_dir = job, None
        self.run_collection = values.get("collection")
        self.query_one(LossChart).reset()
        self.launch(trainer_args(values) if job == "generator" else embedder_args(values))

    def action_resume(self) -> None:
        if self.last_args is not None and not self.running:
            self.launch(self.last_args, resume=True)

    def launch(self, args: list[str], resume: bool = False) -> None:
        if self.running:
            self.notify("a job is already running (Esc cancels it)", severity="warning")
            return
        self.last_args, self.cancelled, self.failed, self.candidate = args, False, False, None
        command, resume_args = self.JOBS[self.job]
        extra = resume_args(self.run_dir) if resume else []
        self.query_one("#ft-outcome", Label).update("")
        self.query_one("#ft-result").display = False
        self.query_one(ProgressBar).display = True
        self.query_one(GateTable).display = False
        self.query_one("#ft-promote", Button).disabled = True
        self.status(Text("starting the trainer…" if not resume else "resuming…", style="dim"))
        self.train(self.app.trainer_command(command + args + extra))

    def action_cancel(self) -> None:
        if self.running:
            self.cancelled = True
            self._signal(signal.SIGTERM)
            self.status(Text("cancelling…", style="yellow"))

    def _signal(self, sig: int) -> None:
        if self.running:
            try:
                os.killpg(self.process.pid, sig)  # the trainer's own session: its data loaders go too
            except (ProcessLookupError, PermissionError):
                pass

    @work(group="train", exit_on_error=False, description="training")
    async def train(self, command: list[str]) -> None:
        self.process = proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=1 << 20)
        self.refresh_bindings()
        tail: deque[str] = deque(maxlen=40)
        log_path = self.app.settings.data_dir / "finetune-tui.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)

        async def drain_stderr() -> None:
            async for raw in proc.stderr:
                tail.append(raw.decode("utf-8", "replace").rstrip())

        stderr_task = asyncio.create_task(drain_stderr())
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n")
            while True:
                try:
                    raw = await asyncio.wait_for(proc.stdout.readline(), timeout=0.5)
                except asyncio.TimeoutError:
                    if self.app.stopping.is_set():
                        self._signal(signal.SIGTERM)  # quitting: the trainer checkpoints and stops
                    continue
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").strip()
                try:
                    data = json.loads(line)
                except ValueError:
                    data = None
                if isinstance(data, dict) and "event" in data:
                    self.post_message(self.Event(data))
                elif line:
                    log.write(line + "\n")
            try:
                returncode = await asyncio.wait_for(proc.wait(), timeout=15)
            except asyncio.TimeoutError:
                self._signal(signal.SIGKILL)
                returncode = await proc.wait()
            await stderr_task
            log.write("\n".join(tail) + f"\n(exit {returncode})\n")
        self.post_message(self.Ended(returncode, list(tail)))

    # -- events --------------------------------------------------------------------------------------------
    def on_finetune_screen_event(self, message: Event) -> None:
        data, kind = message.data, message.data.get("event")
        if kind in ("start", "run"):
            self.run_dir = data.get("run_dir") or self.run_dir
            if data.get("total"):  # the embedder's training starts
                self.status(Text(f"training ({data.get('loss')}, {data.get('device')})…", style="dim"))
        elif kind == "status":
            self.status(Text(str(data.get("message", "")), style="dim"))
        elif kind == "stage":
            self.query_one(ProgressBar).update(total=None, progress=0)
            self.status(Text(f"{data.get('stage')}…", style="dim"))
        elif kind == "say":
            self.status(Text(str(data.get("text", "")), style="dim"))
        elif kind in ("query", "embed_progress"):
            self.query_one(ProgressBar).update(total=data.get("total"), progress=data.get("done", 0))
            what = "pseudo-queries" if kind == "query" else "embedding"
            self.status(Text.assemble((what, "bold"), f" {data.get('done')}/{data.get('total')}", ("  Esc cancels", "dim")))
        elif kind == "step":
            self.on_step(data)
        elif kind == "done":
            self.candidate = data.get("model") or self.candidate
            parts = [f"{key} {data[key]}" for key in ("adapter", "student") if data.get(key)]
            if data.get("model"):
                parts.append(f"candidate model {data['model']}")
            self.query_one("#ft-outcome", Label).update(Text.assemble(("trained  ", "bold green"), " · ".join(parts)))
            self.query_one("#ft-result").display = True
        elif kind == "checkpoint":
            self.checkpoint = data.get("step")
        elif kind == "gate":
            self.on_gate(data)
        elif kind == "outcome":
            self.on_outcome(data)
        elif kind == "error":
            self.failed = True
            self.app.show_error(EdgeragError(str(data.get("message", "training failed"))), "training")

    def on_step(self, data: dict) -> None:
        step, total = int(data.get("step", 0)), data.get("max_steps") or data.get("total")
        self.query_one(ProgressBar).update(total=total, progress=step)
        if data.get("loss") is not None:
            self.query_one(LossChart).add(float(data["loss"]))
        rate = data.get("tokens_per_s")
        self.status(Text.assemble(("training ", "bold"), f"step {step}/{total or '?'}",
                                  f" · {rate:.0f} tokens/s" if rate else "",
                                  f" · ETA {_eta(data.get('eta_s'))}" if "eta_s" in data else "",
                                  f" · checkpoint {self.checkpoint}" if self.checkpoint else "",
                                  ("  Esc cancels", "dim")))

    def on_gate(self, data: dict) -> None:
        self.query_one(GateTable).show(data)
        self.query_one("#ft-result").display = True
        self.candidate = data.get("model") or self.candidate
        self.query_one("#ft-promote", Button).disabled = self.candidate is None

    def on_outcome(self, data: dict) -> None:
        """The embedder run's result: its gate checks; promoted already (--promote), or a candidate to promote."""
        self.candidate = data.get("candidate") or self.candidate
        if data.get("checks"):
            self.query_one(GateTable).show_checks(data["checks"])
        verdict = ("promoted: the collection now answers with it", "bold green") if data.get("promoted") else \
            ("not promoted", "yellow")
        self.query_one("#ft-outcome", Label).update(Text.assemble(
            ("adapted embedder  ", "bold green"), str(self.candidate or "none"), "  ", verdict))
        self.query_one("#ft-result").display = True
        self.query_one("#ft-promote", Button).disabled = self.candidate is None or bool(data.get("promoted"))
        if data.get("promoted"):
            self.app.data_changed()
            self.load_embedders()

    def on_finetune_screen_ended(self, message: Ended) -> None:
        self.process = None
        self.refresh_bindings()
        if self.cancelled:
            saved = f"checkpoint at step {self.checkpoint}" if self.checkpoint else "no checkpoint yet"
            self.status(Text(f"cancelled ({saved}); Ctrl+E resumes", style="yellow"))
        elif message.returncode != 0:
            if not self.failed:
                last = next((line for line in reversed(message.stderr_tail) if line.strip()), "no output")
                self.app.show_error(EdgeragError(f"the trainer exited with status {message.returncode}: {last}"),
                                    "training")
            self.status(Text("training failed; Ctrl+E retries from the last checkpoint", style="red"))
        else:
            self.query_one(ProgressBar).update(total=1, progress=1)  # a last phase may have had no total
            self.status(Text("finished", style="bold green"))

    def worker_failed(self, worker) -> None:
        if worker.group == "write":
            self.load_embedders()  # what the collection answers with after the failed switch
        if worker.group == "train":
            self.process = None
            self.refresh_bindings()
            self.status(Text("the trainer could not be started", style="red"))

    def status(self, text: Text) -> None:
        self.query_one("#ft-status", Label).update(text)

    # -- promoting -----------------------------------------------------------------------------------------
    @on(Button.Pressed, "#ft-promote")
    def promote_pressed(self) -> None:
        if self.candidate:
            self.promote(self.candidate)

    @work(thread=True, exclusive=True, group="write", exit_on_error=False, description="promoting")
    def promote(self, name: str) -> None:
        if self.job == "embedder":  # re-embeds the collection (ONNX, no torch) beside its live index, then swaps
            from edgerag.embedtune.swap import promote

            result = promote(self.app.settings, self.run_collection, name)
            self.app.call_from_thread(self._promoted, f"{result.collection} now answers with {result.current}")
            return
        manifest = ModelStore(self.app.settings.models_dir).use(name)
        self.app.call_from_thread(self._promoted, f"{manifest.name} is now the active generator")

    def _promoted(self, message: str) -> None:
        self.notify(message, timeout=6)
        self.query_one("#ft-promote", Button).disabled = True
        self.app.data_changed()
        self.load_embedders()

    # -- rolling back an embedder ----------------------------------------------------------------------------
    @on(Button.Pressed, "#em-rollback")
    def rollback_pressed(self) -> None:
        name = self.query_one(EmbedderForm).collection
        if name is None or self.running:
            self.notify("wait for the running job to end (Esc cancels it)" if self.running else "choose a collection",
                        severity="warning")
            return
        self.query_one("#em-rollback", Button).disabled = True
        self.status(Text(f"rolling {name} back to its previous embedder…", style="dim"))
        self.rollback(name)

    @work(thread=True, exclusive=True, group="write", exit_on_error=False, description="rolling back")
    def rollback(self, name: str) -> None:
        from edgerag.embedtune.swap import rollback

        result = rollback(self.app.settings, name)
        self.app.call_from_thread(self._rolled_back, result)

    def _rolled_back(self, result) -> None:
        self.status(Text(f"{result.collection}: {result.previous} → {result.current} ({result.texts} texts, "
                         f"{result.reused} vectors reused)", style="green"))
        self.app.data_changed()
        self.load_embedders()
