"""`edgerag embedder data|train|export|gate|run|promote|rollback`: adapt the embedder to a collection's documents.

The work lives in edgerag.embedtune (torch loads only in train/export/run). Stage commands work on a run folder
(default: the latest under <data>/embedtune); `run` does the whole loop. Progress: rich bars, or JSON lines with
`--events-jsonl -`.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from ..embedtune import MAX_QUERIES, MAX_SEQ_LENGTH, NEGATIVES, QUERY_TYPES, TEACHER_SCALE
from ..errors import BadInputError
from .common import (add_collection_flag, add_json_flag, collection_name, console, err_console, print_event, print_json,
                     progress_bars, settings_from)


def register(sub) -> None:
    group = sub.add_parser("embedder", help="adapt the embedder to a collection (data, train, export, gate, promote)")
    cmds = group.add_subparsers(dest="embedder_command", metavar="STEP")

    # The stage commands: their own flags, then the run folder's (`data` starts a run, the others continue one).
    for stage, help_text, flag_groups in (
            ("data", "pseudo-queries with hybrid-retriever teacher scores (starts a run)", (add_collection_flag,
                                                                                           _data_flags)),
            ("train", "train the student on a run's data (listwise distillation by default)", (_train_flags,)),
            ("export", "ONNX int8 export of a run's student into the models store", (_name_flag,)),
            ("gate", "candidate vs current embedder on held-out pseudo-queries (and --beir)", (_gate_flags,))):
        p = cmds.add_parser(stage, help=help_text)
        for add_flags in flag_groups:
            add_flags(p)
        _run_flags(p, new=stage == "data")
        p.set_defaults(func=functools.partial(_stage, stage=stage))

    p = cmds.add_parser("run", help="the whole loop: data, train, export, gate, and with --promote, reindex")
    for add_flags in (add_collection_flag, _data_flags, _train_flags, _gate_flags, _name_flag):
        add_flags(p)
    p.add_argument("--promote", action="store_true", help="reindex the collection with the candidate if the gate "
                   "finds it not worse anywhere")
    p.add_argument("--force", action="store_true", help="with --promote: promote even if the gate says worse")
    _run_flags(p, new=True)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir (default: the latest)")
    p.set_defaults(func=run_cmd)

    p = cmds.add_parser("promote", help="reindex a collection with an embedder (the old index kept for --rollback)")
    add_collection_flag(p)
    p.add_argument("model", help="embedder name in the models store")
    add_json_flag(p)
    p.set_defaults(func=promote_cmd)

    p = cmds.add_parser("rollback", help="return a collection to its previous embedder and vectors")
    add_collection_flag(p)
    add_json_flag(p)
    p.set_defaults(func=rollback_cmd)


def _data_flags(p) -> None:
    p.add_argument("--max-queries", type=int, default=None, help=f"pseudo-queries to make (default {MAX_QUERIES})")
    p.add_argument("--negatives", type=int, default=None,
                   help=f"teacher-ranked negatives per query (default {NEGATIVES})")
    p.add_argument("--types", type=_query_types, default=None, metavar="T1,T2",
                   help=f"pseudo-query types to make (default: all of {','.join(QUERY_TYPES)}; one title per "
                        "title/heading first, then the others in turn)")
    p.add_argument("--generator-seconds", type=float, default=None,
                   help="time box for generator-written questions (default 0: cloze questions only)")
    p.add_argument("--seed", type=int, default=None)


def _query_types(text: str) -> list[str]:
    types = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in types if t not in QUERY_TYPES]
    if bad or not types:
        raise argparse.ArgumentTypeError(f"unknown query type(s) {', '.join(bad) or repr(text)} "
                                         f"(choose from {', '.join(QUERY_TYPES)})")
    return types


def _train_flags(p) -> None:
    p.add_argument("--loss", choices=("distill", "infonce"), default=None,
                   help="distill: listwise KL to the hybrid teacher (default); infonce: the contrastive ablation")
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--steps", dest="max_steps", type=int, default=None, help="stop after N optimizer steps")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--max-seq-length", type=int, default=None,
                   help=f"passage tokens in training (default {MAX_SEQ_LENGTH})")
    p.add_argument("--teacher-scale", type=float, default=None,
                   help=f"distill: teacher logits = scale × fused score / best (default {TEACHER_SCALE:g}; lower "
                        "spreads the teacher's mass over the ranked candidates)")
    p.add_argument("--freeze-layers", type=int, default=None, metavar="N",
                   help="keep the embeddings and the lowest N transformer layers as they are (cheaper steps; "
                        "default 0: train all)")
    p.add_argument("--base-weights", type=Path, default=None,
                   help="PyTorch folder of the embedder to adapt, when the store does not know it")


def _name_flag(p) -> None:
    p.add_argument("--name", default=None, help="store name of the adapted embedder")


def _gate_flags(p) -> None:
    p.add_argument("--beir", type=Path, default=None, metavar="DIR_OR_ZIP", help="also gate on a labelled BEIR set")
    p.add_argument("--beir-limit", type=int, default=None, help="evaluate a random N of its queries")


def _run_flags(p, new: bool = False) -> None:
    p.add_argument("--run-dir", type=Path, default=None,
                   help="the run folder" + (" (default: <data>/embedtune/<time>)" if new else " (default: the latest)"))
    add_json_flag(p)
    p.add_argument("--events-jsonl", default=None, metavar="-", help="print progress as JSON lines on stdout")


class _Progress:
    """Events → one rich bar per phase, or JSON lines."""

    def __init__(self, args):
        self.jsonl = getattr(args, "events_jsonl", None) == "-"
        self.bars = progress_bars(disable=self.jsonl or getattr(args, "json", False))
        self.task = None

    def __call__(self, event: dict) -> None:
        if self.jsonl:
            print_event(event)
            return
        kind = event.get("event")
        if kind in ("stage", "embed"):
            what = event.get("stage") or f"embedding with {event.get('embedder', 'the new embedder')}"
            self.task = self.bars.add_task(what, total=event.get("total"), info="")
        elif kind == "start":
            self.task = self.bars.add_task(f"training ({event['loss']}, {event['device']})", total=event["total"],
                                           completed=event["resumed_from"], info="")
        elif kind == "step" and self.task is not None:
            self.bars.update(self.task, completed=event["step"], info=f"loss {event['loss']:.4f}")
        elif kind in ("query", "embed_progress") and self.task is not None:
            self.bars.update(self.task, completed=event["done"], total=event["total"], info="")
        elif kind == "say":
            err_console.print(event["text"])

    def __enter__(self):
        self.bars.__enter__()
        return self

    def __exit__(self, *exc):
        self.bars.__exit__(*exc)


# The flags that become EmbedRunOptions fields; a stage command continuing a run may change those after the data.
_DATA_FIELDS = ("max_queries", "negatives", "types", "generator_seconds", "seed")
_LATER_FIELDS = ("loss", "epochs", "max_steps", "batch_size", "lr", "max_seq_length", "teacher_scale",
                 "freeze_layers", "base_weights", "beir", "beir_limit", "name")


def _given(args, names) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _options(args, settings):
    from ..embedtune.pipeline import EmbedRunOptions

    return EmbedRunOptions(collection=collection_name(args, settings), run_dir=args.run_dir,
                           **_given(args, _DATA_FIELDS + _LATER_FIELDS))


def _stage(args, stage: str) -> int:
    from ..embedtune.pipeline import latest_run, load_options, run_embedder_loop
    from ..logs import route_library_logs

    settings = settings_from(args)
    if stage == "data":
        opts, continuing = _options(args, settings), False
    else:
        route_library_logs(settings, "embedder")
        opts, continuing = load_options(args.run_dir or latest_run(settings), **_given(args, _LATER_FIELDS)), True
    with _Progress(args) as progress:
        outcome = run_embedder_loop(settings, opts, emit=progress, stop_after=stage, continuing=continuing)
    return _report(args, outcome)


def run_cmd(args) -> int:
    from ..embedtune.pipeline import run_embedder_loop
    from ..logs import route_library_logs

    if args.json and args.events_jsonl == "-":
        raise BadInputError("--json and --events-jsonl - both write stdout: choose one")
    settings = settings_from(args)
    route_library_logs(settings, "embedder")
    opts = _options(args, settings)
    opts.promote, opts.force = args.promote, args.force
    with _Progress(args) as progress:
        try:
            outcome = run_embedder_loop(settings, opts, resume=args.resume, emit=progress)
        except Exception as exc:  # the TUI shows the message (the CLI's error line goes to stderr as ever)
            if progress.jsonl:
                print_event({"event": "error", "message": str(exc)})
            raise
    return _report(args, outcome)


def _report(args, outcome) -> int:
    if args.json:
        print_json({"run_dir": outcome.run_dir, "candidate": outcome.candidate, "gate": outcome.gate,
                    "promoted": outcome.promoted, "timings": outcome.timings})
        return 0
    if getattr(args, "events_jsonl", None) == "-":
        print_event({"event": "outcome", "run_dir": str(outcome.run_dir), "candidate": outcome.candidate,
                     "promoted": outcome.promoted, "checks": outcome.gate.get("checks", {})})
        return 0
    console.print(f"run: {outcome.run_dir}")
    if outcome.candidate:
        console.print(f"candidate embedder: {outcome.candidate}")
    for key, check in outcome.gate.get("checks", {}).items():
        d = check["diff"]
        console.print(f"  {key}: nDCG@10 {check['base']['mean'] * 100:.1f} → {check['candidate']['mean'] * 100:.1f} "
                      f"({d['mean'] * 100:+.1f} [{d['lo'] * 100:+.1f}, {d['hi'] * 100:+.1f}], n={check['n']}) "
                      f"{check['verdict']}")
    if outcome.promoted:
        console.print("promoted: the collection now answers with the adapted embedder "
                      "(`edgerag embedder rollback` returns)")
    return 0


def promote_cmd(args) -> int:
    from ..embedtune.swap import promote

    settings = settings_from(args)
    result = promote(settings, collection_name(args, settings), args.model)
    return _switched(args, result)


def rollback_cmd(args) -> int:
    from ..embedtune.swap import rollback

    settings = settings_from(args)
    result = rollback(settings, collection_name(args, settings))
    return _switched(args, result)


def _switched(args, result) -> int:
    if args.json:
        print_json(result)
    else:
        console.print(f"{result.collection}: {result.previous} → {result.current} ({result.texts} texts, "
                      f"{result.reused} vectors reused)")
    return 0
