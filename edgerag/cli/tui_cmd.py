"""`edgerag tui`: open the Textual app (imported only when asked for, so the CLI stays light)."""

from __future__ import annotations


def register(sub) -> None:
    parser = sub.add_parser("tui", help="open the terminal UI")
    parser.set_defaults(func=run_tui)


def run_tui(args) -> int:
    from tui.app import run

    return run()
