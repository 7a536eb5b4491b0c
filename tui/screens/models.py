"""Models: the store's models with lineage and checksums; set the active generator and embedder; import;
start and stop `edgerag serve` (the OpenAI-compatible server) and show its URL.

The server runs as a child process (`edgerag serve --quiet`): llama.cpp generation and uvicorn then never compete
with the UI for the GIL, a crash in either cannot take the other down, and the UI process stays as light as it was.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, Static

from edgerag.errors import ModelError
from edgerag.models import ModelStore
from edgerag.models.importing import import_model

from ..widgets.nav_bar import NavBar
from .base import SectionScreen
from .library import display_path, human_size
from .path_dialog import PathDialog


class ModelsScreen(SectionScreen):
    SECTION = "models"
    BINDINGS = [
        Binding("u", "use", "Use"),
        Binding("v", "verify", "Verify"),
        Binding("i", "import_model", "Import"),
        Binding("s", "toggle_serve", "Serve"),
    ]
    SERVE_PORT = 8000  # the OpenAI-compatible server's port (`edgerag serve`'s default); 0 picks a free one

    class Loaded(Message):
        def __init__(self, manifests: list, active: dict[str, str]):
            super().__init__()
            self.manifests, self.active = manifests, active

    class ServeChanged(Message):
        def __init__(self, state: str, url: str | None = None, note: str = ""):
            super().__init__()
            self.state, self.url, self.note = state, url, note  # state: starting | on | off

    class Verified(Message):
        def __init__(self, problems: list):
            super().__init__()
            self.problems = problems

    def __init__(self):
        super().__init__()
        self.manifests: list = []
        self.active: dict[str, str] = {}
        self.problems: dict[str, list[str]] | None = None  # model → problems, after a verify
        self.serve_process: asyncio.subprocess.Process | None = None
        self.serve_url: str | None = None
        self.serve_busy = False  # from pressing s until the server process has ended

    @property
    def store(self) -> ModelStore:
        return ModelStore(self.app.settings.models_dir)

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        with Vertical(id="models-body"):
            yield Label("", id="models-title", classes="pane-title")
            yield Label(self._serve_text("off"), id="serve-status")
            yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="model-detail", classes="pane"):
                yield Static("", id="model-info")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#models", DataTable)
        table.add_columns("name", "kind", "format", "quant", "size", "active")
        table.focus()

    def reload(self) -> None:
        self.load()

    def on_unmount(self) -> None:
        self._stop_server()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False, description="reading the models store")
    def load(self) -> None:
        store = self.store
        manifests = store.list()
        active = {}
        for kind in ("generator", "embedder"):
            try:
                active[kind] = store.active_name(kind)
            except ModelError:
                pass
        self.post_message(self.Loaded(manifests, active))

    def on_models_screen_loaded(self, message: Loaded) -> None:
        self.manifests, self.active = message.manifests, message.active
        self.query_one("#models-title", Label).update(
            Text.assemble(("Models", "bold"), f" in {display_path(str(self.app.settings.models_dir))}"))
        table = self.query_one("#models", DataTable)
        row = table.cursor_row
        table.clear()
        for m in self.manifests:
            active = self.active.get(m.kind) == m.name
            table.add_row(m.name, m.kind, m.format, m.quantization, human_size(m.size),
                          Text(f"✓ {m.kind}", style="bold green") if active else "", key=m.name)
        if not self.manifests:
            self.query_one("#model-info", Static).update(
                Text("No models yet: run `edgerag models prepare`, or press i to import one.", style="dim"))
        elif row is not None:
            table.move_cursor(row=min(row, len(self.manifests) - 1))
            self.show_detail(min(row, len(self.manifests) - 1))

    @on(DataTable.RowHighlighted, "#models")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail(event.cursor_row)

    def show_detail(self, index: int) -> None:
        if not 0 <= index < len(self.manifests):
            return
        self.query_one("#model-info", Static).update(self.render_manifest(self.manifests[index]))

    def render_manifest(self, m) -> Table:
        by_name = {x.name: x for x in self.manifests}
        chain, parent = [m.name], m.parent
        while parent and parent not in chain:
            chain.append(parent)
            parent = by_name[parent].parent if parent in by_name else None
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("model", f"{m.name} · {m.kind} · {m.format} · {m.quantization} · {human_size(m.size)}")
        grid.add_row("lineage", " ← ".join(chain) if len(chain) > 1 else "(original, no parent)")
        for key, value in (m.lineage or {}).items():
            grid.add_row(f"  {key}", Text(str(value)[:300]))
        grid.add_row("source", Text(m.source))
        grid.add_row("license", m.license)
        problems = None if self.problems is None else self.problems.get(m.name, [])
        for f in m.files:
            bad = [p for p in (problems or []) if f.path in p]
            mark = Text("") if problems is None else Text(" ✗ " + "; ".join(bad), style="red") if bad \
                else Text(" ✓", style="green")
            grid.add_row("file", Text.assemble(f.path, (f"  {human_size(f.size)}", "dim")))
            grid.add_row("", Text.assemble(("sha256 ", "dim"), f.sha256[:32], ("…", "dim"), mark))
        if problems is None:
            grid.add_row("", Text("press v to verify every checksum", style="dim"))
        return grid

    def selected(self):
        table = self.query_one("#models", DataTable)
        if not self.manifests or table.cursor_row is None:
            self.notify("no model selected", severity="warning")
            return None
        return self.manifests[table.cursor_row]

    # -- actions -------------------------------------------------------------------------------------------
    def action_use(self) -> None:
        manifest = self.selected()
        if manifest is not None:
            self.use(manifest.name)

    @work(thread=True, exclusive=True, group="write", exit_on_error=False, description="activating")
    def use(self, name: str) -> None:
        manifest = self.store.use(name)
        self.app.call_from_thread(self._changed, f"active {manifest.kind}: {manifest.name}")

    def action_verify(self) -> None:
        self.notify("verifying checksums…", timeout=2)
        self.verify()

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False, description="verifying")
    def verify(self) -> None:
        self.post_message(self.Verified(self.store.verify()))

    def on_models_screen_verified(self, message: Verified) -> None:
        self.problems = {m.name: [] for m in self.manifests}
        for p in message.problems:
            self.problems.setdefault(p.model, []).append(f"{p.file}: {p.problem}")
        n_files = sum(len(m.files) for m in self.manifests)
        if message.problems:
            self.notify(f"{len(message.problems)} problem(s): " + "; ".join(map(str, message.problems[:3])) +
                        " (re-run `edgerag models prepare` or re-import)", severity="error", timeout=15)
        else:
            self.notify(f"all {n_files} files match their checksums", timeout=5)
        self.show_detail(self.query_one("#models", DataTable).cursor_row or 0)

    def action_import_model(self) -> None:
        def done(result) -> None:
            if result:
                self.import_path(result[0], result[1] or None)

        self.app.push_screen(PathDialog("Import a model", "a .gguf file, or an HF / ONNX model folder",
                                        "name in the store (optional)", name_hint="default: from the file name"),
                             done)

    @work(thread=True, exclusive=True, group="write", exit_on_error=False, description="importing")
    def import_path(self, path, name: str | None) -> None:
        self.app.call_from_thread(self.notify, f"importing {path.name}…", timeout=3)
        manifest = import_model(self.store, path, name)
        self.app.call_from_thread(self._changed, f"imported {manifest.name} ({manifest.kind}, {manifest.format})")

    def _changed(self, note: str) -> None:
        self.notify(note, timeout=5)
        self.app.data_changed()
        self._seen_version = self.app.data_version
        self.load()

    # -- edgerag serve -------------------------------------------------------------------------------------
    @property
    def serving(self) -> bool:
        return self.serve_process is not None and self.serve_process.returncode is None

    def serve_command(self) -> list[str]:
        return [sys.executable, "-m", "edgerag.cli", "serve", "--port", str(self.SERVE_PORT), "--quiet"]

    def action_toggle_serve(self) -> None:
        if self.serving:
            self._stop_server()
            self.query_one("#serve-status", Label).update(self._serve_text("stopping"))
        elif not self.serve_busy:
            self.serve_busy = True
            self.run_server(self.serve_command())

    def worker_failed(self, worker) -> None:
        if worker.group == "serve":
            self.on_models_screen_serve_changed(self.ServeChanged("off"))

    def _stop_server(self) -> None:
        if self.serving:
            try:
                os.killpg(self.serve_process.pid, signal.SIGTERM)  # uvicorn shuts down gracefully on SIGTERM
            except (ProcessLookupError, PermissionError):
                pass

    @staticmethod
    def _serve_text(state: str, url: str | None = None) -> Text:
        if state == "on":
            return Text.assemble(("serve ", "bold"), ("● ", "bold green"), (url or "", "bold cyan"),
                                 ("  OpenAI-compatible; model rag:<collection> answers with citations · "
                                  "s stops", "dim"))
        if state in ("starting", "stopping"):
            return Text.assemble(("serve ", "bold"), (f"{state}…", "yellow"))
        return Text.assemble(("serve ", "bold"), ("off", "dim"),
                             ("  press s to start an OpenAI-compatible server on this machine", "dim"))

    @work(group="serve", exit_on_error=False, description="edgerag serve")
    async def run_server(self, command: list[str]) -> None:
        settings = self.app.settings
        # The child must see the stores this app shows, whatever the app was started with.
        env = {**os.environ, "EDGERAG_MODELS_DIR": str(settings.models_dir),
               "EDGERAG_DATA_DIR": str(settings.data_dir)}
        log_path = settings.data_dir / "serve.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.post_message(self.ServeChanged("starting"))
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            self.serve_process = proc = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log, env=env,
                start_new_session=True)
            while True:
                try:
                    raw = await asyncio.wait_for(proc.stdout.readline(), timeout=0.5)
                except asyncio.TimeoutError:
                    if self.app.stopping.is_set():
                        self._stop_server()
                    continue
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").strip()
                if "listening on " in line:
                    self.post_message(self.ServeChanged("on", line.split("listening on ", 1)[1]))
            try:
                returncode = await asyncio.wait_for(proc.wait(), timeout=10)
            except asyncio.TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
                returncode = await proc.wait()
        lines = [x for x in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
        note = "" if returncode in (0, -signal.SIGTERM) else f"exit {returncode}: {lines[-1] if lines else ''}"
        self.post_message(self.ServeChanged("off", note=note))

    def on_models_screen_serve_changed(self, message: ServeChanged) -> None:
        self.serve_url = message.url if message.state == "on" else None
        self.serve_busy = message.state != "off"
        self.query_one("#serve-status", Label).update(self._serve_text(message.state, message.url))
        if message.state == "on":
            self.notify(f"serving on {message.url}", timeout=5)
        elif message.state == "off" and message.note:
            self.notify(f"edgerag serve stopped ({message.note}); log in "
                        f"{display_path(str(self.app.settings.data_dir / 'serve.log'))}", severity="error",
                        timeout=15)
