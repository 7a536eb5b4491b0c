"""The `edgerag` command: argument parsing and printing only; every command calls one library function.

One module per command group registers its subcommands. Errors from the library (EdgeragError) become one
line on stderr and a non-zero exit code here, the CLI's single display point for errors.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import EdgeragError
from . import (ask_cmd, config_cmd, embedder_cmd, eval_cmd, finetune_cmd, ingest_cmd, models_cmd, serve_cmd, tui_cmd,
               verify_cmd)

GROUPS = (models_cmd, config_cmd, ingest_cmd, ask_cmd, verify_cmd, eval_cmd, finetune_cmd, embedder_cmd, serve_cmd,
          tui_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgerag",
        description="Offline chat over your documents with cited answers. No network, ever.",
    )
    parser.add_argument("--version", action="version", version=f"edgerag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeragError as exc:
        print(f"edgerag: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgerag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
