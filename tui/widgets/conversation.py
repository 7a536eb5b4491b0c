"""The scrolling conversation: questions and the answers streamed under them."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from .answer_view import AnswerView

EMPTY = ("Ask a question about the documents in this collection.\n"
         "Answers cite their sources as [n]; the sources appear on the right.")


class Conversation(VerticalScroll):
    def on_mount(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.remove_children()
        self.mount(Static(Text(EMPTY, style="dim"), classes="hint"))

    def note(self, text: str) -> None:
        self.mount(Static(Text(text, style="dim italic"), classes="hint"))
        self.scroll_end(animate=False)

    def ask(self, question: str) -> AnswerView:
        for hint in self.query(".hint"):
            hint.remove()
        self.mount(Static(Text.assemble(("› ", "bold"), question), classes="question"))
        view = AnswerView()
        self.mount(view)
        self.scroll_end(animate=False)
        return view

    def last_answer(self) -> AnswerView | None:
        views = list(self.query(AnswerView))
        return views[-1] if views else None
