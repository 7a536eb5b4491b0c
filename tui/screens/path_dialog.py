"""Ask for a path (and a name): adding a folder to a collection, importing a model."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Function
from textual.widgets import Button, Input, Label


def _exists(value: str) -> bool:
    return bool(value.strip()) and Path(value.strip()).expanduser().exists()


class PathDialog(ModalScreen[tuple[Path, str] | None]):
    """Returns (path, name) or None. `name_check` returns an error message or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, path_hint: str, name_label: str, name: str = "", name_check=None,
                 name_hint: str = ""):
        super().__init__()
        self.title_text, self.path_hint, self.name_label = title, path_hint, name_label
        self.name_default, self.name_check, self.name_hint = name, name_check or (lambda _v: None), name_hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="path-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(placeholder=self.path_hint, id="path",
                        validators=[Function(_exists, "no such file or folder")], valid_empty=False)
            yield Label(self.name_label)
            yield Input(self.name_default, placeholder=self.name_hint, id="name")
            yield Label("", id="dialog-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        raw_path = self.query_one("#path", Input).value.strip()
        name = self.query_one("#name", Input).value.strip()
        error = None if _exists(raw_path) else f"{raw_path or '(empty)'}: no such file or folder"
        error = error or self.name_check(name)
        if error:
            self.query_one("#dialog-error", Label).update(error)
            return
        self.dismiss((Path(raw_path).expanduser().resolve(), name))

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)
