"""The A/B gate's verdict after finetuning: base vs candidate on held-out questions, paired bootstrap CI."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

VERDICT_STYLE = {"better": "bold green", "worse": "bold red"}


def _pct(value) -> str:
    return f"{value * 100:.1f}" if isinstance(value, int | float) else str(value)


class GateTable(DataTable):
    def __init__(self, **kwargs):
        super().__init__(cursor_type="none", **kwargs)

    def show(self, gate: dict) -> None:
        """gate: the trainer's "gate" event (metric, base, candidate, difference [lo, hi], n, verdict)."""
        self.clear(columns=True)
        self.add_columns("metric", "base", "candidate", "difference (95% CI)", "n", "verdict")
        diff = gate.get("difference")
        diff_text = f"[{diff[0] * 100:+.1f}, {diff[1] * 100:+.1f}]" if isinstance(diff, list | tuple) else str(diff)
        verdict = str(gate.get("verdict", "?"))
        self.add_row(str(gate.get("metric", "")), _pct(gate.get("base")), _pct(gate.get("candidate")), diff_text,
                     str(gate.get("n", "")), Text(verdict, style=VERDICT_STYLE.get(verdict, "")))
        self.display = True
