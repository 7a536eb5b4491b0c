"""`edgerag ingest`, `ls`, `rm`, `reindex`: keeping collections in sync with files."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ..store.collection import list_collections, remove_collection
from .common import (add_collection_flag, add_json_flag, collection_name, console, err_console, human_size,
                     print_json, progress_bars, settings_from)


def register(sub) -> None:
    p = sub.add_parser("ingest", help="add or sync files and folders into a collection")
    p.add_argument("paths", nargs="+", type=Path)
    add_collection_flag(p)
    add_json_flag(p)
    p.add_argument("--watch", action="store_true",
                   help="keep syncing as files change (debounced; Ctrl-C stops); --json prints one line per sync")
    p.set_defaults(func=ingest_cmd)

    p = sub.add_parser("ls", help="list collections, or the documents of one collection")
    p.add_argument("name", nargs="?", help="collection to list documents of")
    add_json_flag(p)
    p.set_defaults(func=ls_cmd)

    p = sub.add_parser("rm", help="remove a document (by path) from a collection, or a whole collection")
    p.add_argument("target", help="document path, or the collection name with --all")
    add_collection_flag(p)
    p.add_argument("--all", action="store_true", help="remove the whole collection named by TARGET")
    add_json_flag(p)
    p.set_defaults(func=rm_cmd)

    p = sub.add_parser("reindex", help="re-embed a collection with the active embedder")
    add_collection_flag(p)
    add_json_flag(p)
    p.add_argument("--rollback", action="store_true",
                   help="return to the embedder and vectors the collection had before its last switch")
    p.set_defaults(func=reindex_cmd)


def ingest_cmd(args) -> int:
    from ..ingest import ingest

    if args.watch:
        from .watch_view import watch_cmd

        return watch_cmd(args)

    settings = settings_from(args)
    name = collection_name(args, settings)
    progress = progress_bars(disable=args.json, remaining=False)
    state = {"chunks": 0, "start": None}

    def on_event(event) -> None:
        if event.kind == "scanned":
            state["files"] = progress.add_task("files", total=event.files_total, info="")
            state["emb"] = progress.add_task("chunks embedded", total=None, info="")
            state["start"] = time.perf_counter()
        elif event.kind == "file":
            o = event.outcome
            info = f"{o.status}: {Path(o.path).name}"
            progress.update(state["files"], advance=0 if o.status == "removed" else 1, info=info[:60])
            if o.status == "failed" and not args.json:
                progress.console.print(f"[red]failed[/] {escape(o.path)}: {escape(o.reason)}")
        elif event.kind == "embedded":
            state["chunks"] += event.chunks
            rate = state["chunks"] / max(1e-6, time.perf_counter() - state["start"])
            progress.update(state["emb"], completed=state["chunks"], info=f"{rate:.0f} chunks/s")

    with progress:
        report = ingest(settings, args.paths, name, on_event)
    if args.json:
        print_json({"collection": name, "summary": report.summary, "seconds": round(report.seconds, 2),
                    "timings": report.timings, "new_chunks": report.new_chunks,
                    "files": [o for o in report.outcomes if o.status != "unchanged"]})
    else:
        table = Table(title=f"collection {name}: {report.seconds:.1f}s, {report.new_chunks} new chunks embedded")
        for col in report.summary:
            table.add_column(col, justify="right")
        table.add_row(*[str(v) for v in report.summary.values()])
        console.print(table)
        odd = [o for o in report.outcomes if o.status in ("failed", "unsupported")]
        if odd:
            reasons = Table(title="not ingested")
            reasons.add_column("file")
            reasons.add_column("reason")
            for o in odd:
                reasons.add_row(escape(o.path), escape(o.reason))  # "[ocr]" is not markup
            console.print(reasons)
        notes = [o for o in report.outcomes if o.reason and o.status in ("added", "updated")]
        if notes:  # read, but not all of it (scanned pages without OCR, unreadable pages)
            table = Table(title="ingested with warnings")
            table.add_column("file")
            table.add_column("warning")
            for o in notes:
                table.add_row(escape(o.path), escape(o.reason))
            console.print(table)
    return 1 if report.failed else 0


def ls_cmd(args) -> int:
    from ..store.collection import Collection

    settings = settings_from(args)
    root = settings.collections_dir
    if not args.name:
        rows = []
        for name in list_collections(root):
            with Collection.open(root, name) as col:
                rows.append({"name": name, **col.counts(), "embedder": col.embedder_name})
        if args.json:
            print_json(rows)
            return 0
        table = Table(title=f"collections in {root}")
        for col in ("name", "documents", "chunks", "texts", "embedder"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], str(r["documents"]), str(r["chunks"]), str(r["texts"]), r["embedder"])
        console.print(table if rows else "no collections yet: run `edgerag ingest PATH`")
        return 0
    with Collection.open(root, args.name) as col:
        docs = col.documents()
    if args.json:
        print_json(docs)
        return 0
    table = Table(title=f"documents in {args.name}")
    for col in ("path", "format", "size", "chunks", "ingested"):
        table.add_column(col)
    for d in docs:
        table.add_row(d.path, d.format, human_size(d.size), str(d.n_chunks), d.ingested_at)
    console.print(table)
    return 0


def rm_cmd(args) -> int:
    from ..store.collection import Collection

    settings = settings_from(args)
    if args.all:
        remove_collection(settings.collections_dir, args.target)
        if args.json:
            print_json({"removed_collection": args.target})
        else:
            console.print(f"removed collection {args.target}")
        return 0
    from ..errors import BadInputError

    name = collection_name(args, settings)
    with Collection.open(settings.collections_dir, name) as col:
        path = str(Path(args.target).expanduser().resolve())
        removed = path if col.delete_document(path) else args.target if col.delete_document(args.target) else None
        if removed is None:
            raise BadInputError(f"{args.target}: not a document of collection {name!r}")
        counts = col.counts()
    if args.json:
        print_json({"collection": name, "removed": removed, **counts})
    else:
        console.print(f"removed {args.target} from {name}")
    return 0


def reindex_cmd(args) -> int:
    from ..embed import load_active_embedder
    from ..runtime import embedder_id
    from ..store.collection import Collection

    settings = settings_from(args)
    name = collection_name(args, settings)
    if args.rollback:
        from .embedder_cmd import rollback_cmd

        return rollback_cmd(args)
    embedder = load_active_embedder(settings)
    started = time.perf_counter()
    with Collection.open(settings.collections_dir, name) as col, \
            err_console.status(f"re-embedding {name}") if not args.json else nullcontext():
        col.acquire_write_lock()
        col.replace_all_embeddings(embedder_id(settings, embedder), embedder.embed)
        counts = col.counts()
    if args.json:
        print_json({"collection": name, "embedder": embedder.name, **counts,
                    "seconds": round(time.perf_counter() - started, 2)})
    else:
        console.print(f"reindexed {name}: {counts['texts']} texts with {embedder.name}")
    return 0

