"""Helpers shared by the command modules: settings from flags, JSON output, the rich console."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from ..config import Settings, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def progress_bars(disable: bool = False, remaining: bool = True) -> Progress:
    """The CLI's one progress display (on stderr, so --json / --events-jsonl output stays clean)."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=err_console, disable=disable, transient=False)


def print_event(event: dict) -> None:
    """One progress event as a JSON line on stdout, flushed at once: the `--events-jsonl -` output the TUI reads
    from its child processes (finetune, embedder)."""
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


def settings_from(args) -> Settings:
    """Settings with only the flags the user actually typed applied on top (unset flags are None)."""
    names = {f.name for f in dataclasses.fields(Settings)}
    return load_settings(**{k: v for k, v in vars(args).items() if k in names and v is not None})


def add_collection_flag(parser) -> None:
    parser.add_argument("--collection", "-c", default=None, help="collection name (default: settings' default_collection)")


def collection_name(args, settings: Settings) -> str:
    return args.collection or settings.default_collection


def add_json_flag(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")


def _default(obj):
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, default=_default, indent=2, ensure_ascii=False) + "\n")


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
