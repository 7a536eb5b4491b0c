"""A whole source passage, with the sentence the answer was matched to highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class ChunkScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, source, passage: str = "", supported: bool | None = None):
        super().__init__()
        self.source, self.passage, self.supported = source, passage, supported

    def compose(self) -> ComposeResult:
        src = self.source
        where = src.path + (f", page {src.page}" if src.page else "") + (f" › {src.heading}" if src.heading else "")
        verdict = {True: ("supported: the highlighted sentence backs the answer", "green"),
                   False: ("unsupported: the answer's sentence does not match this passage", "yellow"),
                   None: ("shown to the model, not cited", "dim")}[self.supported]
        body = Text(src.text.strip())
        if self.passage:
            body.highlight_words([self.passage.strip()], "bold reverse")
        with Vertical(id="chunk-dialog", classes="dialog"):
            yield Label(Text.assemble((f"[{src.number}] ", "bold"), where), id="chunk-title")
            yield Label(Text(verdict[0], style=verdict[1]))
            with VerticalScroll(id="chunk-body"):
                yield Static(body)
            yield Label(Text("Esc to close", style="dim"))
