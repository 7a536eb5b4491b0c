"""The live training chart: a sparkline of the loss per step, with the numbers a sparkline cannot show."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class LossChart(Vertical):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.losses: list[float] = []

    def compose(self) -> ComposeResult:
        yield Label(Text("loss: waiting for the first step", style="dim"), id="loss-label")
        yield Sparkline([], id="loss-spark", summary_function=lambda xs: sum(xs) / len(xs))

    def reset(self) -> None:
        self.losses = []
        self.query_one(Sparkline).data = []
        self.query_one("#loss-label", Label).update(Text("loss: waiting for the first step", style="dim"))

    def add(self, loss: float) -> None:
        self.losses.append(loss)
        self.query_one(Sparkline).data = list(self.losses)
        first, best = self.losses[0], min(self.losses)
        self.query_one("#loss-label", Label).update(Text.assemble(
            ("loss ", "bold"), f"{loss:.3f}", ("  first ", "dim"), f"{first:.3f}", ("  best ", "dim"),
            f"{best:.3f}", ("  steps plotted ", "dim"), str(len(self.losses))))
