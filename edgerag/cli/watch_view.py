"""`edgerag ingest PATH --watch`: prints what edgerag.ingest.watch reports (ingest_cmd hands over to watch_cmd).

A status line (rich spinner on stderr) says what is watched and when the last sync ran; after every sync the
files that changed are printed one per line ("+ added", "~ updated", "→ renamed", "- removed", "! failed").
With --json each sync is one JSON line on stdout. Ctrl-C stops watching; exit code 0.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from rich.markup import escape

from .common import collection_name, console, err_console, settings_from

_MARK = {"added": "[green]+[/]", "updated": "[yellow]~[/]", "renamed": "[cyan]→[/]", "removed": "[red]-[/]",
         "failed": "[red]![/]", "unsupported": "[dim]?[/]"}


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def watch_cmd(args) -> int:
    import json
    import sys

    from ..ingest.watch import changed, watch

    settings = settings_from(args)
    name = collection_name(args, settings)
    where = ", ".join(str(p) for p in args.paths)
    status = err_console.status(f"watching {where} → {name}: first sync...") if not args.json else None
    state = {"syncs": 0, "changes": 0}

    def line(text: str) -> None:
        if status is not None:
            status.update(f"watching {where} → {name}: {text}  (Ctrl-C stops)")

    def on_event(event) -> None:
        if event.kind == "changes":
            state["changes"] += event.changes
            line(f"{event.changes} change(s) at {_clock(event.at)}, syncing...")
        elif event.kind == "error":
            if args.json:
                sys.stdout.write(json.dumps({"event": "error", "message": event.message}) + "\n")
                sys.stdout.flush()
            else:
                console.print(f"[red]{_clock(event.at)} sync postponed:[/] {escape(event.message)}")
            line("waiting to retry")
        elif event.kind == "synced":
            state["syncs"] += 1
            report = event.report
            rows = changed(report)
            if args.json:
                sys.stdout.write(json.dumps({"event": "synced", "initial": event.initial, "summary": report.summary,
                                             "seconds": round(report.seconds, 2), "new_chunks": report.new_chunks,
                                             "files": [vars(o) for o in rows]}, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                head = "initial sync" if event.initial else "sync"
                counts = ", ".join(f"{v} {k}" for k, v in report.summary.items() if v and k != "unchanged")
                console.print(f"[bold]{_clock(event.at)} {head}[/] in {report.seconds:.1f}s: "
                              f"{counts or 'nothing changed'}")
                for o in rows:
                    why = f"  [dim]{escape(o.reason)}[/]" if o.reason else ""  # reasons may hold "[ocr]"
                    shown = o.path if o.status == "removed" else Path(o.path).name
                    console.print(f"  {_MARK.get(o.status, ' ')} {escape(shown)}{why}")
            docs = report.summary["added"] + report.summary["updated"] + report.summary["renamed"] \
                + report.summary["unchanged"]
            line(f"{docs} documents, last sync {_clock(event.at)}")

    # The first Ctrl-C asks the watcher to stop at its next wake-up (after a sync in progress ends), instead of
    # raising KeyboardInterrupt inside whatever runs then: one raised while the status line's console lock was
    # held left its refresh thread waiting for ever, and the process with it. A second Ctrl-C interrupts at once.
    stop = threading.Event()

    def ask_to_stop(signum, frame) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        if status is not None:
            status.start()
        watch(settings, args.paths, name, on_event, stop=stop)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
        if status is not None:
            status.stop()
    if not args.json:
        console.print(f"stopped watching after {state['syncs']} sync(s), {state['changes']} change event(s)")
    else:
        sys.stdout.write(json.dumps({"event": "stopped", "syncs": state["syncs"], "changes": state["changes"]}) + "\n")
    return 0
