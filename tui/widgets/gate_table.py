"""The A/B gate's verdict after finetuning: base vs candidate on held-out questions (the generator) or held-out
pseudo-queries and a BEIR set (the embedder), paired bootstrap CI."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

VERDICT_STYLE = {"better": "bold green", "worse": "bold red"}


def _pct(value) -> str:
    return f"{value * 100:.1f}" if isinstance(value, int | float) else str(value)


class GateTable(DataTable):
    COLUMNS = ("metric", "base", "candidate", "difference (95% CI)", "n", "verdict")

    def __init__(self, **kwargs):
        super().__init__(cursor_type="none", **kwargs)

    def show(self, gate: dict) -> None:
        """gate: the trainer's "gate" event (metric, base, candidate, difference [lo, hi], n, verdict)."""
        self._rows([(str(gate.get("metric", "")), gate.get("base"), gate.get("candidate"), gate.get("difference"),
                     gate.get("n", ""), gate.get("verdict", "?"))])

    def show_checks(self, checks: dict) -> None:
        """checks: the embedder gate's {"heldout:dense": {base: {mean}, candidate: {mean}, diff: {lo, hi}, n,
        verdict}, ...}: nDCG@10 per set and retrieval mode."""
        self._rows([(f"nDCG@10 {key}", c["base"]["mean"], c["candidate"]["mean"], [c["diff"]["lo"], c["diff"]["hi"]],
                     c.get("n", ""), c.get("verdict", "?")) for key, c in checks.items()])

    def _rows(self, rows: list[tuple]) -> None:
        self.clear(columns=True)
        self.add_columns(*self.COLUMNS)
        for metric, base, candidate, diff, n, verdict in rows:
            diff_text = f"[{diff[0] * 100:+.1f}, {diff[1] * 100:+.1f}]" if isinstance(diff, list | tuple) else str(diff)
            self.add_row(metric, _pct(base), _pct(candidate), diff_text, str(n),
                         Text(str(verdict), style=VERDICT_STYLE.get(str(verdict), "")))
        self.display = True
