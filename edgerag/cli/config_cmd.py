"""`edgerag config show`."""

from __future__ import annotations

from rich.table import Table

from ..config import config_path
from .common import add_json_flag, console, print_json, settings_from


def register(sub) -> None:
    parser = sub.add_parser("config", help="show the effective settings")
    cmds = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = cmds.add_parser("show", help="print every setting and where the config file is")
    add_json_flag(show)
    show.set_defaults(func=show_config)


def show_config(args) -> int:
    from ..accelerators import describe

    settings = settings_from(args)
    data = settings.as_dict()
    accelerators = describe(settings)  # what each engine found here and will use (GPU or CPU)
    if args.json:
        print_json({"config_file": str(config_path()), "settings": data, "accelerators": accelerators})
        return 0
    table = Table(title=f"settings (file: {config_path()}; env: EDGERAG_<NAME>)")
    table.add_column("setting")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, str(value))
    console.print(table)
    found = Table(title="accelerators (detected; the CPU is always the fallback)")
    found.add_column("engine")
    found.add_column("uses")
    found.add_column("note")
    for engine, info in accelerators.items():
        using = info.get("using")
        found.add_row(engine, ", ".join(using) if isinstance(using, list) else str(using), info.get("note", ""))
    console.print(found)
    return 0
