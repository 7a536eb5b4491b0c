"""One assistant turn: text streamed in piece by piece, then redrawn with the citation check's verdicts."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Static


class AnswerView(Static, can_focus=True):
    """Focus it (Tab, click) to show its sources in the side panel and make it the one Ctrl+Y copies."""

    class Selected(Message):
        def __init__(self, view: "AnswerView"):
            super().__init__()
            self.view = view

    def __init__(self):
        super().__init__(Text("…", style="dim"), classes="answer")
        self.pieces: list[str] = []
        self.answer = None  # edgerag.generate.answer.Answer once finished

    @property
    def text(self) -> str:
        return self.answer.text if self.answer is not None else "".join(self.pieces).strip()

    def status(self, message: str) -> None:
        if not self.pieces:
            self.update(Text(message, style="dim italic"))

    def append(self, piece: str) -> None:
        self.pieces.append(piece)
        self.update(Text("".join(self.pieces).lstrip()) + Text("▌", style="dim"))

    def finish(self, answer) -> None:
        self.answer = answer
        self.update(render_answer(answer))

    def stopped_early(self) -> None:
        """Stopped before any text came (still retrieving)."""
        self.update(Text("■ stopped before answering", style="dim italic"))

    def on_focus(self) -> None:
        if self.answer is not None:
            self.post_message(self.Selected(self))


def render_answer(answer) -> Text:
    if answer.not_found:
        why = answer.not_found_reason or "no passage in this collection answers it"
        return Text.assemble((answer.text or "Not found in your documents.", "italic"), "\n",
                             (f"{why}; try other words or another collection", "dim"))
    body = Text(answer.text)
    flagged = answer.flagged
    for sentence in flagged:
        body.highlight_words([sentence.text], "underline yellow")
    notes = []
    if answer.interrupted:
        notes.append(("■ stopped", "yellow"))
    if answer.citations:
        marks = " ".join(f"[{c.number}]" for c in answer.citations)
        notes.append((f"cites {marks}", "green" if answer.grounded else "yellow"))
    if answer.sentences and not answer.grounded:
        notes.append(("⚠ no sentence matches a source", "yellow"))
    elif flagged:
        n = len(flagged)
        notes.append((f"⚠ {n} unsupported sentence{'s' * (n > 1)} underlined", "yellow"))
    if rate := answer.timings.get("tokens_per_s"):
        notes.append((f"{rate:.0f} tok/s", "dim"))
    meta = Text("  ·  ").join(Text(t, style=s) for t, s in notes)
    # Why each flagged sentence fails the check ("contradicted: 1 year not in [1]"): a wrong fact next to a
    # verified-looking quote is worse than no answer, so the reason is shown, not only a mark.
    why = [Text(f"⚠ {_short(s.text)} {s.status}: {'; '.join(s.reasons) or 'no source states it'}", style="yellow")
           for s in flagged]
    return Text("\n").join([body, *([meta] if notes else []), *why])


def _short(sentence: str, limit: int = 40) -> str:
    sentence = " ".join(sentence.split())
    return f"“{sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + '…'}”"
