"""F1: every key, per section, and what each section does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = ("Everything works from the keyboard, and the mouse works too. Tab / Shift+Tab move between panes, "
         "Enter activates, Esc stops a job or closes a dialog.")

KEYS = {
    "Anywhere": [("F1", "this help"), ("F2 … F6", "Chat · Library · Models · Evaluate · Finetune"),
                 ("Ctrl+T", "dark / light theme"), ("Ctrl+P", "command palette"),
                 ("Ctrl+Q", "quit (running jobs stop at a safe point first)")],
    "Chat": [("Enter", "ask the question typed below"), ("Esc", "stop the answer being written"),
             ("Ctrl+N", "new chat (forget the conversation)"), ("Ctrl+Y", "copy the selected (or last) answer"),
             ("Ctrl+O", "go to the cited sources; Enter reads the whole passage"),
             ("Ctrl+L", "choose the collection"), ("↑ ↓", "earlier questions, in the question box"),
             ("Tab", "select an earlier answer to see its sources")],
    "Library": [("a", "add a folder or file to a collection (new or existing)"),
                ("s", "re-sync the collection with its folders"), ("d", "remove the selected document"),
                ("x", "remove the whole collection"), ("Esc", "stop ingesting (after the current file)")],
    "Models": [("u", "make the selected model the active generator or embedder"),
               ("v", "verify every file's checksum"), ("i", "import a .gguf file or a model folder"),
               ("s", "start/stop `edgerag serve`, the OpenAI-compatible server (its URL is shown)")],
    "Evaluate": [("Ctrl+R", "run the evaluation described by the form"),
                 ("Esc", "stop it (answers so far are kept)"), ("Ctrl+E", "resume the stopped run")],
    "Finetune": [("Ctrl+R", "start training with the form's settings"), ("Esc", "cancel training"),
                 ("Ctrl+E", "resume from the last checkpoint")],
}

OUTRO = ("Answers cite sources as [n]. A source flagged unsupported is cited by a sentence the checker could not "
         "match to that passage; underlined sentences have no supporting source.")


def help_text() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row(Text("edgerag — keys", style="bold underline"), "")
    grid.add_row("", Text(INTRO, style="dim"))
    for section, keys in KEYS.items():
        grid.add_row("", "")
        grid.add_row(Text(section, style="bold reverse"), "")
        for key, what in keys:
            grid.add_row(key, what)
    grid.add_row("", "")
    grid.add_row("", Text(OUTRO, style="dim"))
    grid.add_row("", Text("Esc or F1 closes this help.", style="dim italic"))
    return grid


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(help_text())
