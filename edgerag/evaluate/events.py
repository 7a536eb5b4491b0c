"""Progress events for shells: the library never prints, the CLI draws bars from these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalEvent:
    """kind: 'run' (the run directory, in `info`, is ready: print it, it is what --resume needs),
    'phase' (a new bar: `phase`, `total`), or 'advance' (`n` more done, `info` for the bar's text)."""
    kind: str
    phase: str = ""
    total: int | None = None
    n: int = 0
    info: str = ""


def ignore(_event: EvalEvent) -> None:
    pass
