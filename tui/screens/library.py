"""Library: collections and their documents; add a folder and watch it ingest; remove; re-sync; keep a
collection in sync with its folders while they change (watch mode, edgerag.ingest.watch)."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, OptionList
from textual.widgets.option_list import Option

from edgerag.errors import BadInputError
from edgerag.store.collection import NAME_RE, Collection, list_collections, remove_collection

from ..widgets.ingest_panel import IngestPanel
from ..widgets.nav_bar import NavBar
from .base import SectionScreen
from .confirm import ConfirmDialog
from .path_dialog import PathDialog


class _Stopped(Exception):
    """Raised from the progress callback to stop an ingestion between files."""


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def age(stamp: str, now: datetime | None = None) -> str:
    try:
        then = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return stamp or "?"
    seconds = ((now or datetime.now(timezone.utc)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return then.astimezone().strftime("%Y-%m-%d")


def display_path(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home):] if path.startswith(home + "/") else path


def common_folder(paths: list[str]) -> Path | None:
    """The deepest folder holding every document (file paths only), to show paths relative to it."""
    files = [p for p in paths if "://" not in p]
    if not files:
        return None
    return Path(os.path.commonpath([str(Path(p).parent) for p in files]))


def sync_roots(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """The folders a re-sync rescans: the documents' folders, nested ones folded into their parents.
    Returns (existing folders, folders that are gone)."""
    folders = sorted({Path(p).parent for p in paths if "://" not in p})
    roots = [f for f in folders if not any(other in f.parents for other in folders)]
    return [r for r in roots if r.is_dir()], [r for r in roots if not r.is_dir()]


class LibraryScreen(SectionScreen):
    SECTION = "library"
    BINDINGS = [
        Binding("a", "add", "Add folder"),
        Binding("s", "sync", "Re-sync"),
        Binding("d", "delete_document", "Remove doc"),
        Binding("x", "remove_collection", "Remove collection"),
        Binding("w", "watch", "Watch on/off"),
        Binding("escape", "stop", "Stop", show=False),
    ]

    class Loaded(Message):
        def __init__(self, collections: list[dict], selected: str | None, documents: list):
            super().__init__()
            self.collections, self.selected, self.documents = collections, selected, documents

    class Progress(Message):
        def __init__(self, event):
            super().__init__()
            self.event = event

    class Ingested(Message):
        def __init__(self, collection: str, report):
            super().__init__()
            self.collection, self.report = collection, report  # report is None when stopped

    class Watched(Message):
        """A watch-mode event (edgerag.ingest.watch.WatchEvent) for the collection being watched."""

        def __init__(self, collection: str, event):
            super().__init__()
            self.collection, self.event = collection, event

    def __init__(self):
        super().__init__()
        self.selected: str | None = None
        self.documents: list = []
        self.stop_requested = threading.Event()
        self.watching: str | None = None  # the collection kept in sync, if any
        self.watch_stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        with Horizontal(id="library-body"):
            with Vertical(id="collections-pane", classes="pane"):
                yield Label("Collections", classes="pane-title")
                yield OptionList(id="collections")
            with Vertical(id="documents-pane", classes="pane"):
                yield Label("", id="collection-info")
                yield Label("", id="watch-status")
                yield DataTable(id="documents", cursor_type="row", zebra_stripes=True)
                yield IngestPanel(id="ingest")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#documents", DataTable)
        table.add_columns("document", "format", "size", "chunks", "synced")
        self.query_one(IngestPanel).display = False
        self.query_one("#watch-status", Label).display = False
        self.query_one("#collections", OptionList).focus()

    # -- reading -------------------------------------------------------------------------------------------
    def reload(self) -> None:
        self.load(self.selected)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False, description="reading the library")
    def load(self, selected: str | None) -> None:
        root = self.app.settings.collections_dir
        rows, documents = [], []
        names = list_collections(root)
        if selected not in names:
            selected = names[0] if names else None
        for name in names:
            with Collection.open(root, name) as col:
                rows.append({"name": name, **col.counts(), "embedder": col.embedder_name})
                if name == selected:
                    documents = col.documents()
        self.post_message(self.Loaded(rows, selected, documents))

    def on_library_screen_loaded(self, message: Loaded) -> None:
        self.selected, self.documents = message.selected, message.documents
        options = self.query_one("#collections", OptionList)
        with self.prevent(OptionList.OptionHighlighted):
            options.clear_options()
            options.add_options(Option(Text.assemble((c["name"], "bold"), f"\n{c['documents']} docs · "
                                                     f"{c['chunks']} chunks", style=""), id=c["name"])
                                for c in message.collections)
            if self.selected:
                options.highlighted = options.get_option_index(self.selected)
        info = next((c for c in message.collections if c["name"] == self.selected), None)
        label = self.query_one("#collection-info", Label)
        if info is None:
            label.update(Text("No collections yet. Press a to add a folder of documents.", style="dim"))
        folder = common_folder([d.path for d in self.documents])
        if info is not None:
            label.update(Text.assemble((info["name"], "bold"), f"  {info['documents']} documents · "
                                       f"{info['chunks']} chunks · {info['texts']} unique texts\n",
                                       ("in ", "dim"), display_path(str(folder)) if folder else "–",
                                       ("  embedder ", "dim"), info["embedder"]))
        table = self.query_one("#documents", DataTable)
        table.clear()
        for doc in self.documents:
            shown = doc.path if "://" in doc.path or not folder else os.path.relpath(doc.path, folder)
            table.add_row(shown, doc.format, human_size(doc.size), str(doc.n_chunks), age(doc.ingested_at),
                          key=doc.path)

    @on(OptionList.OptionHighlighted, "#collections")
    def collection_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id != self.selected:
            self.load(event.option.id)

    def _changed(self) -> None:
        self.app.data_changed()
        self._seen_version = self.app.data_version
        self.load(self.selected)

    # -- ingesting -----------------------------------------------------------------------------------------
    def action_add(self) -> None:
        def check(name: str) -> str | None:
            return None if NAME_RE.match(name) else "collection name: letters, digits, '.', '_' or '-'"

        def done(result) -> None:
            if result:
                self.start_ingest([result[0]], result[1])

        self.app.push_screen(PathDialog("Add a folder or file", "folder or file to ingest, e.g. ~/Documents",
                                        "into collection (new or existing)",
                                        self.selected or self.app.settings.default_collection, check), done)

    def action_sync(self) -> None:
        if not self.selected:
            self.notify("no collection selected", severity="warning")
            return
        roots, gone = sync_roots([d.path for d in self.documents])
        if gone:
            self.notify("gone, their documents stay until removed: " + ", ".join(map(str, gone)),
                        severity="warning", timeout=8)
        if not roots:
            self.notify("nothing to re-sync: no document folder exists", severity="warning")
            return
        self.start_ingest(roots, self.selected)

    def start_ingest(self, paths: list[Path], name: str) -> None:
        if any(w.group == "ingest" and w.is_running for w in self.workers):
            self.notify("an ingestion is already running", severity="warning")
            return
        self.stop_requested.clear()
        self.query_one(IngestPanel).begin(name, paths)
        self.ingest(paths, name)

    @work(thread=True, group="ingest", exit_on_error=False, description="ingesting")
    def ingest(self, paths: list[Path], name: str) -> None:
        from edgerag.ingest import ingest

        def on_event(event) -> None:
            if self.stop_requested.is_set() or self.app.stopping.is_set():
                raise _Stopped
            self.post_message(self.Progress(event))

        try:
            report = ingest(self.app.settings, paths, name, on_event)
        except _Stopped:
            report = None
        self.post_message(self.Ingested(name, report))

    def on_library_screen_progress(self, message: Progress) -> None:
        self.query_one(IngestPanel).event(message.event)

    def on_library_screen_ingested(self, message: Ingested) -> None:
        panel = self.query_one(IngestPanel)
        panel.finish(message.report) if message.report else panel.stopped()
        self.selected = message.collection
        self._changed()

    def action_stop(self) -> None:
        if any(w.group == "ingest" and w.is_running for w in self.workers):
            self.stop_requested.set()
            self.notify("stopping after the current file…", timeout=3)

    def worker_failed(self, worker) -> None:
        if worker.group == "watch":
            self.watching = None
            self._watch_line("")
        if worker.group == "ingest":
            self.query_one(IngestPanel).stopped()
            self._changed()

    # -- watching ------------------------------------------------------------------------------------------
    def action_watch(self) -> None:
        if self.watching:
            self.watch_stop.set()
            self.notify(f"stopped watching {self.watching}", timeout=3)
            return
        if not self.selected:
            self.notify("no collection selected", severity="warning")
            return
        roots, _gone = sync_roots([d.path for d in self.documents])
        if not roots:
            self.notify("nothing to watch: no document folder exists", severity="warning")
            return
        self.watching = self.selected
        self.watch_stop.clear()
        self._watch_line(f"watching {', '.join(display_path(str(r)) for r in roots)}: first sync…")
        self.run_watch(roots, self.selected)

    @work(thread=True, group="watch", exit_on_error=False, description="watching")
    def run_watch(self, roots: list[Path], name: str) -> None:
        from edgerag.ingest.watch import watch

        watch(self.app.settings, roots, name, lambda e: self.post_message(self.Watched(name, e)),
              stop=self.watch_stop)

    def _watch_line(self, text: str) -> None:
        label = self.query_one("#watch-status", Label)
        label.display = bool(text)
        label.update(Text(text, style="bold green") if text else "")

    def on_library_screen_watched(self, message: Watched) -> None:
        from edgerag.ingest.watch import changed

        event, clock = message.event, datetime.fromtimestamp(message.event.at).strftime("%H:%M:%S")
        if event.kind == "stopped":
            self.watching = None
            self._watch_line("")
        elif event.kind == "changes":
            self._watch_line(f"watching {message.collection}: {event.changes} change(s) at {clock}, syncing…")
        elif event.kind == "error":
            self._watch_line(f"watching {message.collection}: sync postponed at {clock} ({event.message})")
        elif event.kind == "synced":
            rows = changed(event.report)
            self._watch_line(f"watching {message.collection}: last sync {clock}, "
                             f"{len(rows)} change(s)  (w stops)")
            if rows and not event.initial or any(o.status == "failed" for o in rows):
                marks = {"added": "+", "updated": "~", "renamed": "→", "removed": "-", "failed": "!"}
                shown = [f"{marks.get(o.status, '?')} {Path(o.path).name}" for o in rows[:8]]
                self.notify("\n".join(shown + ([f"… and {len(rows) - 8} more"] if len(rows) > 8 else [])),
                            title=f"{message.collection} synced", timeout=6)
            if rows:
                self._changed()

    def on_unmount(self) -> None:
        self.watch_stop.set()  # the watcher thread ends with the screen

    # -- removing ------------------------------------------------------------------------------------------
    def action_delete_document(self) -> None:
        table = self.query_one("#documents", DataTable)
        if not self.selected or table.row_count == 0:
            self.notify("no document selected", severity="warning")
            return
        path = self.documents[table.cursor_row].path
        self.app.push_screen(ConfirmDialog(f"Remove {display_path(path)} from {self.selected}?\n"
                                           "(the file itself is not touched)"),
                             lambda yes: yes and self.remove(self.selected, path))

    def action_remove_collection(self) -> None:
        if not self.selected:
            self.notify("no collection selected", severity="warning")
            return
        self.app.push_screen(ConfirmDialog(f"Remove the whole collection {self.selected}?\n"
                                           "(its index is deleted; your files are not touched)"),
                             lambda yes: yes and self.remove(self.selected, None))

    @work(thread=True, group="write", exit_on_error=False, description="removing")
    def remove(self, name: str, path: str | None) -> None:
        root = self.app.settings.collections_dir
        if path is None:
            remove_collection(root, name)
        else:
            with Collection.open(root, name) as col:
                if not col.delete_document(path):
                    raise BadInputError(f"{path} is not in {name} any more")
        self.app.call_from_thread(self._removed, name, path)

    def _removed(self, name: str, path: str | None) -> None:
        if path is None:
            self.selected = None
        self.notify(f"removed {'collection ' + name if path is None else display_path(path)}", timeout=4)
        self._changed()
