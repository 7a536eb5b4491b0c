"""The one-line section switcher at the top of every screen (keys F2–F6, or click)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

# (mode, key, label) in the order the bar shows them; the app binds the keys.
SECTIONS = (("chat", "f2", "Chat"), ("library", "f3", "Library"), ("models", "f4", "Models"),
            ("evaluate", "f5", "Evaluate"), ("finetune", "f6", "Finetune"))


class NavBar(Static):
    def __init__(self, current: str):
        super().__init__(id="nav")
        self.current = current

    def on_mount(self) -> None:
        parts = [Content.from_markup("[b]edgerag[/b] ")]
        for mode, key, label in SECTIONS:
            if mode == self.current:
                text = f"[reverse] {key.upper()} {label} [/reverse]"
            else:
                text = f" [dim]{key.upper()}[/dim] {label} "
            parts.append(Content.from_markup(f"[@click=app.switch_mode('{mode}')]{text}[/]"))
        self.update(Content("").join(parts))
