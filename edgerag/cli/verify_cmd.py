"""`edgerag verify`: check any text (a paragraph another model wrote, a draft) against a collection."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.markup import escape

from ..errors import BadInputError
from ..retrieve.search import MODES
from .common import add_collection_flag, add_json_flag, collection_name, console, print_json, settings_from

STYLE = {"supported": "green", "contradicted": "red", "unsupported": "yellow", "unchecked": "dim"}


def register(sub) -> None:
    p = sub.add_parser("verify", help="check each sentence of a text or file against a collection",
                       description="Find the best passages for each sentence in the collection and report it as "
                                   "supported, contradicted (a passage on the topic states other numbers, names "
                                   "or the opposite) or unsupported, with the passage and the reason. Exit status "
                                   "1 when a sentence is contradicted or unsupported.")
    p.add_argument("text", metavar="TEXT_OR_FILE", help="the text itself, a file to read, or - for stdin")
    add_collection_flag(p)
    add_json_flag(p)
    p.add_argument("--mode", choices=MODES, default="hybrid", help="retriever (default: hybrid)")
    p.add_argument("--top-k", dest="top_k", type=int, default=5, help="passages to judge each sentence against")
    p.set_defaults(func=verify_cmd)


def read_text(arg: str) -> str:
    """The text to check: stdin for "-", a file's content when `arg` names one, else `arg` itself."""
    if arg == "-":
        return sys.stdin.read()
    path = Path(arg).expanduser()
    if len(arg) < 4096 and "\n" not in arg and path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(f"{path}: cannot read it as UTF-8 text ({exc})") from exc
    return arg


def verify_cmd(args) -> int:
    from ..generate.verify import verify_text
    from ..retrieve import Retriever
    from ..runtime import open_collection

    if args.top_k < 1:
        raise BadInputError("--top-k must be at least 1")
    text = read_text(args.text)
    settings = settings_from(args)
    collection, embedder = open_collection(settings, collection_name(args, settings))
    with collection:
        report = verify_text(text, Retriever.from_settings(collection, embedder, settings), args.top_k, args.mode)
    if args.json:
        print_json({"sentences": report.sentences, "counts": report.counts, "all_supported": report.all_supported})
    else:
        _print(report)
    return 0 if report.all_supported else 1


def _print(report) -> None:
    for s in report.sentences:
        console.print(f"[{STYLE[s.status]}]{s.status:>12}[/]  {escape(s.text)}")
        for reason in s.reasons:
            console.print(f"{'':14}[{STYLE[s.status]}]{escape(reason)}[/]")
        if s.evidence and s.status != "unchecked":
            what = "source" if s.status == "supported" else "closest"
            console.print(f"{'':14}{what}: [cyan]{escape(s.evidence.label)}[/] [dim]“{escape(s.evidence.passage)}”[/]")
    counts = ", ".join(f"{n} {status}" for status, n in report.counts.items() if n)
    console.print(f"\n[bold]{counts}[/]")
