"""Models: the store's models with lineage and checksums; set the active generator and embedder; import."""

from __future__ import annotations

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
    ]

    class Loaded(Message):
        def __init__(self, manifests: list, active: dict[str, str]):
            super().__init__()
            self.manifests, self.active = manifests, active

    class Verified(Message):
        def __init__(self, problems: list):
            super().__init__()
            self.problems = problems

    def __init__(self):
        super().__init__()
        self.manifests: list = []
        self.active: dict[str, str] = {}
        self.problems: dict[str, list[str]] | None = None  # model → problems, after a verify

    @property
    def store(self) -> ModelStore:
        return ModelStore(self.app.settings.models_dir)

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        with Vertical(id="models-body"):
            yield Label("", id="models-title", classes="pane-title")
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
