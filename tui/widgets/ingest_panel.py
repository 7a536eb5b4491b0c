"""Ingestion progress: a bar over files, the file being decided, and a log of what happened to each file
(failures with their reasons)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar, RichLog

STYLE = {"added": "green", "updated": "cyan", "renamed": "cyan", "removed": "magenta", "failed": "red",
         "unsupported": "yellow", "unchanged": "dim"}


def elapsed(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.0f} min"


class IngestPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Label("", id="ingest-title")
        yield ProgressBar(total=None, show_eta=False, id="ingest-bar")
        yield Label("", id="ingest-current")
        yield RichLog(id="ingest-log", max_lines=500, wrap=False)

    def begin(self, collection: str, paths: list[Path]) -> None:
        self.display = True
        self.chunks = 0
        what = ", ".join(p.name or str(p) for p in paths)
        title = Text.assemble(("ingesting ", "bold"), what, (f" → {collection}", "bold"), ("  Esc stops", "dim"))
        self.query_one("#ingest-title", Label).update(title)
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#ingest-current", Label).update("scanning…")
        self.query_one(RichLog).clear()

    def event(self, event) -> None:
        bar = self.query_one(ProgressBar)
        if event.kind == "scanned":
            bar.update(total=max(1, event.files_total))
        elif event.kind == "embedded":
            self.chunks += event.chunks
            self.query_one("#ingest-current", Label).update(f"embedding… {self.chunks} chunks")
        elif event.kind == "file" and event.outcome is not None:
            o = event.outcome
            if o.status != "removed":
                bar.advance(1)
            name = Path(o.path).name
            self.query_one("#ingest-current", Label).update(f"{o.status}: {name}")
            if o.status != "unchanged":
                line = Text.assemble((f"{o.status:<12}", STYLE.get(o.status, "")), name)
                if o.chunks and o.status in ("added", "updated"):
                    line.append(f"  {o.chunks} chunks", style="dim")
                if o.reason:
                    line.append(f"  {o.reason}", style=STYLE.get(o.status, "dim"))
                self.query_one(RichLog).write(line)

    def finish(self, report) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=bar.total or 1, progress=bar.total or 1)
        counts = ", ".join(f"{n} {status}" for status, n in report.summary.items() if n)
        bad = len(report.failed) + report.count("unsupported")
        self.query_one("#ingest-title", Label).update(Text.assemble(
            ("done ", "bold green" if not report.failed else "bold yellow"),
            f"{report.collection}: {counts or 'nothing to do'} in {elapsed(report.seconds)}, "
            f"{report.new_chunks} new chunks"))
        self.query_one("#ingest-current", Label).update(
            Text(f"{bad} file(s) not ingested: reasons below", style="yellow") if bad else
            Text("every file is in the collection", style="green"))

    def stopped(self) -> None:
        self.query_one("#ingest-title", Label).update(Text("stopped: files done so far are kept; re-sync to finish",
                                                           style="yellow"))
        self.query_one("#ingest-current", Label).update("")
