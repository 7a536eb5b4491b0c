"""Progress events for shells: the library never prints, the CLI draws bars from these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalEvent:
    """kind: 'phase' (a new bar: `phase`, `total`), 'advance' (`n` more done, `info` for the bar's text),
    or 'ingest' (a scratch collection is being built; `total` records, `n` embedded chunks so far)."""
    kind: str
    phase: str = ""
    total: int | None = None
    n: int = 0
    info: str = ""


def ignore(_event: EvalEvent) -> None:
    pass
