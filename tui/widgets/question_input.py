"""The question box: an Input that remembers earlier questions (↑ / ↓)."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class QuestionInput(Input):
    BINDINGS = [Binding("up", "older", "Earlier question", show=False),
                Binding("down", "newer", "Later question", show=False)]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.history: list[str] = []
        self._pos = 0

    def remember(self, question: str) -> None:
        if not self.history or self.history[-1] != question:
            self.history.append(question)
        self._pos = len(self.history)

    def action_older(self) -> None:
        if self._pos > 0:
            self._pos -= 1
            self.value = self.history[self._pos]
            self.cursor_position = len(self.value)

    def action_newer(self) -> None:
        if self._pos < len(self.history):
            self._pos += 1
            self.value = self.history[self._pos] if self._pos < len(self.history) else ""
            self.cursor_position = len(self.value)
