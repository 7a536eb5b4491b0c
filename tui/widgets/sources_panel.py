"""The side panel: the sources an answer cites, each with the passage it was matched to; Enter opens one."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class SourcesPanel(Vertical):
    class Opened(Message):
        """The user wants to read a whole source passage."""

        def __init__(self, source, passage: str, supported: bool | None):
            super().__init__()
            self.source, self.passage, self.supported = source, passage, supported

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.entries: list[tuple] = []  # (source, passage, supported or None when shown but not cited, reasons)

    def compose(self) -> ComposeResult:
        yield Label("Sources", id="sources-title")
        yield OptionList(id="sources-list")

    def clear(self) -> None:
        self.show(None)

    def show(self, answer) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        title = self.query_one("#sources-title", Label)
        self.entries = []
        if answer is None:
            title.update("Sources")
            return
        if answer.citations:
            self.entries = [(c.source, c.passage, c.supported, c.reasons) for c in answer.citations]
            title.update(f"Sources cited ({len(answer.citations)})")
        else:
            self.entries = [(s, "", None, []) for s in answer.sources]
            title.update(f"Shown to the model ({len(answer.sources)}), none cited" if answer.sources
                         else "No sources")
        options.add_options(Option(_entry(*e), id=str(i)) for i, e in enumerate(self.entries))
        if self.entries:
            options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        source, passage, supported, _reasons = self.entries[int(event.option.id)]
        self.post_message(self.Opened(source, passage, supported))


def _entry(source, passage: str, supported: bool | None, reasons: list[str]) -> Text:
    where = Path(source.path).name
    if source.page:
        where += f" p.{source.page}"
    head = Text.assemble((f"[{source.number}] ", "bold"), (where, "bold"))
    if source.heading:
        head.append(f" › {source.heading}", style="dim")
    if supported is False:
        head.append("  ⚠ unsupported", style="yellow")
        if reasons:  # what the fact check found: "1 year not in [1]"
            head.append("\n" + "; ".join(reasons), style="yellow")
    snippet = " ".join((passage or source.text).split())
    if len(snippet) > 140:
        snippet = snippet[:139] + "…"
    return Text.assemble(head, "\n", (f"“{snippet}”" if passage else snippet, "italic" if passage else "dim"))
