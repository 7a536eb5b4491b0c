"""`edgerag finetune data|train|export|evaluate|run`: make the generator better on your documents, measurably.

The work lives in edgerag.finetune (imported lazily: torch loads only when a training command runs). Progress
arrives as JSON-able events; `--events-jsonl -` prints them one per line on stdout (the TUI reads that),
otherwise rich draws them.
"""

from __future__ import annotations

import signal
from pathlib import Path

from rich.table import Table

from ..errors import BadInputError
from ..finetune import (FRONTED_QUESTIONS, GENERATOR_SECONDS, GENERATOR_TRIES, MAX_EPOCHS, MAX_EXAMPLES,
                        ORACLE_POSITION_CHOICES, ORACLE_POSITIONS, P_REFUSAL, REFUSAL_TWINS, TARGET_WORDS)
from ..logs import route_library_logs
from .common import (add_collection_flag, add_json_flag, console, err_console, print_event, print_json, progress_bars,
                     settings_from)


# `finetune run` defaults sized for a 2-core CPU so that the whole loop (data, training, export, gate) stays
# under ~45 minutes on the bundled 135M model: v3 spent 31.7 min with a 15-minute training budget on a loaded CPU,
# of which the gate took 13 (docs/results/xquad-finetune-v3), so 25 minutes of training still fits.
RUN_TIME_BUDGET_MIN = 25.0
RUN_EVAL_LIMIT = 30


def _training_flags(p, budget_default: float | None, eval_limit_default: int | None) -> None:
    p.add_argument("--base", default=None, help="base generator in the models store (default: the active one)")
    p.add_argument("--bits", type=int, choices=(0, 4, 16, 32), default=0,
                   help="0 = measured default (fp32 LoRA on CPU; NF4 QLoRA on GPU, fp32 there without bitsandbytes), "
                        "4 = QLoRA NF4, 16 = bf16, 32 = fp32")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (alpha = 2 x rank)")
    p.add_argument("--lora-layers", type=int, default=0, help="adapt only the top N layers (0 = all)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--time-budget", type=float, default=budget_default, metavar="MINUTES",
                        help="train for about this long: steps chosen from measured speed"
                             + (f" (default {budget_default:g})" if budget_default else ""))
    budget.add_argument("--steps", type=int, default=None, help="a fixed number of optimizer steps instead")
    p.add_argument("--max-epochs", type=float, default=MAX_EPOCHS,
                   help="with a time budget: stop after this many passes over the data even if the budget fits "
                        f"more (0 = no cap; default {MAX_EPOCHS:g}: more refused answerable questions, see "
                        "docs/results/xquad-finetune-v11)")
    p.add_argument("--lr", type=float, default=3e-4, help="learning rate")
    p.add_argument("--batch-size", type=int, default=0,
                   help="examples per step (0 = for this machine: 4 on a CPU, from GPU memory on CUDA)")
    p.add_argument("--max-seq-len", type=int, default=0,
                   help="longer examples are left out (0 = for this machine: 1536, shorter on a small GPU)")
    p.add_argument("--grad-checkpointing", action="store_true",
                   help="trade speed for memory (off by default: not needed for small models)")
    p.add_argument("--save-steps", type=int, default=20, help="checkpoint every N steps")
    _data_flags(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, default=None, help="where the run lives (default: data dir/finetune/<time>)")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="RUN_DIR",
                   help="continue a killed run (default: the latest one) from its last checkpoint")
    p.add_argument("--quant", action="append", default=None, choices=("Q8_0", "Q4_K_M", "F16"),
                   help="merged GGUF quantizations to export (default: Q8_0 and Q4_K_M; the first is evaluated)")
    p.add_argument("--no-export", action="store_true", help="stop after training (adapter in the run folder)")
    p.add_argument("--no-eval", action="store_true", help="skip the base-vs-candidate evaluation")
    p.add_argument("--heldout", type=Path, default=None, help="SQuAD-format questions for the gate "
                   "(default: the held-out synthetic questions)")
    p.add_argument("--squad", type=Path, default=None, help="also gate on a real SQuAD-format QA set (e.g. XQuAD)")
    p.add_argument("--eval-limit", type=int, default=eval_limit_default,
                   help="evaluate a random N questions per set" + (f" (default {eval_limit_default})"
                                                                   if eval_limit_default else " (default: all)"))
    _promote_flags(p)
    _output_flags(p)


def _data_flags(p) -> None:
    """How synthetic examples are made: `finetune data`, and `train`/`run` with --collection."""
    p.add_argument("--max-examples", type=int, default=MAX_EXAMPLES,
                   help=f"synthetic examples to make (default {MAX_EXAMPLES})")
    p.add_argument("--p-refusal", type=float, default=P_REFUSAL,
                   help="share of synthetic examples whose sources do not answer (target: the not-found reply; "
                        f"default {P_REFUSAL})")
    p.add_argument("--refusal-twins", action="store_true", default=REFUSAL_TWINS,
                   help="make each not-found example the twin of an answering one: the same question with the "
                        "answering source taken away")
    p.add_argument("--no-generator", action="store_true",
                   help="synthesize extractive (cloze) questions only: faster, no generator calls")
    p.add_argument("--generator-seconds", type=float, default=GENERATOR_SECONDS,
                   help="time box for generator-written questions; cloze questions make the rest "
                        f"(default {GENERATOR_SECONDS:g})")
    p.add_argument("--generator-tries", type=int, default=GENERATOR_TRIES,
                   help=f"generator questions tried per sentence before a cloze question (default {GENERATOR_TRIES})")
    p.add_argument("--oracle-positions", choices=ORACLE_POSITION_CHOICES, default=ORACLE_POSITIONS,
                   help="where the answering source stands among a prompt's sources: uniform at random, or where "
                        "hybrid retrieval ranks it for the question (the order the runtime shows; refused more in "
                        f"docs/results/xquad-finetune-v9) (default {ORACLE_POSITIONS})")
    p.add_argument("--fronted-questions", action="store_true", default=FRONTED_QUESTIONS,
                   help="who/what/when/where questions made by rule where a sentence allows one, before generator "
                        "and cloze questions (off by default: no gain in docs/results/xquad-finetune-v11)")
    p.add_argument("--target-words", type=int, default=TARGET_WORDS,
                   help="answer targets: the source sentence, or a window of at most this many words that holds "
                        f"the answer, ending with its [n] (default {TARGET_WORDS})")


def _data_options(args) -> dict:
    return dict(max_examples=args.max_examples, use_generator=not args.no_generator, p_refusal=args.p_refusal,
                generator_seconds=args.generator_seconds, generator_tries=args.generator_tries,
                oracle_positions=args.oracle_positions, fronted_questions=args.fronted_questions,
                target_words=args.target_words, refusal_twins=args.refusal_twins)


def _output_flags(p) -> None:
    add_json_flag(p)
    p.add_argument("--events-jsonl", default=None, metavar="-", help="print progress as JSON lines on stdout")


def _check_output(args) -> None:
    if getattr(args, "json", False) and args.events_jsonl == "-":
        raise BadInputError("--json (the result at the end) and --events-jsonl - (every event) both write stdout: "
                            "choose one")


def _promote_flags(p) -> None:
    p.add_argument("--promote", action="store_true",
                   help="make the candidate the active generator if the evaluation finds it not worse")
    p.add_argument("--force", action="store_true", help="with --promote: promote even if it is worse")


def register(sub) -> None:
    p = sub.add_parser("finetune", help="synthesize data, QLoRA-train, export GGUF, A/B-evaluate, promote")
    fsub = p.add_subparsers(dest="finetune_command", metavar="STEP")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    d = fsub.add_parser("data", help="synthesize training examples (JSONL) from a collection")
    add_collection_flag(d)
    d.add_argument("--out", type=Path, required=True, help="folder for train.jsonl, val.jsonl, heldout.json, card")
    _data_flags(d)
    d.add_argument("--base", default=None, help="the generator to be finetuned (default: the active one); its "
                   "questions come from the earliest model of its lineage in the store")
    d.add_argument("--seed", type=int, default=0)
    _output_flags(d)
    d.set_defaults(func=data_cmd)

    for name, help_text, budget, eval_limit in (
            ("train", "train a LoRA (--collection: synthesize data first; --data: your JSONL), export, evaluate",
             None, None),
            ("run", "the whole loop on a collection with defaults for a 2-core CPU", RUN_TIME_BUDGET_MIN,
             RUN_EVAL_LIMIT)):
        t = fsub.add_parser(name, help=help_text)
        source = t.add_mutually_exclusive_group()
        source.add_argument("--collection", "-c", default=None, help="synthesize training data from this collection")
        source.add_argument("--data", type=Path, default=None, help="training JSONL ({\"messages\": [...]} per line)")
        t.add_argument("--val", type=Path, default=None, help="validation JSONL (default: val.jsonl next to --data)")
        _training_flags(t, budget, eval_limit)
        t.set_defaults(func=train_cmd)

    e = fsub.add_parser("export", help="write the GGUF adapter and merged quantized GGUFs of a finished run")
    e.add_argument("run_dir", type=Path, help="the run folder (or its train/ folder)")
    e.add_argument("--quant", action="append", default=None, choices=("Q8_0", "Q4_K_M", "F16", "F32"))
    e.add_argument("--name", default=None, help="store name stem (default: <base>-ft-<run>)")
    e.add_argument("--replace", action="store_true", help="overwrite models of the same name")
    add_json_flag(e)
    e.set_defaults(func=export_cmd)

    v = fsub.add_parser("evaluate", help="A/B gate: base vs candidate on held-out questions; optionally promote")
    v.add_argument("--candidate", required=True, help="candidate generator (store name), e.g. <base>-ft-<run>-q8_0")
    v.add_argument("--base", default=None, help="base generator (default: the candidate's parent)")
    v.add_argument("--heldout", type=Path, action="append", default=None, metavar="FILE",
                   help="SQuAD/HotpotQA-format questions; repeat for several")
    v.add_argument("--limit", type=int, default=None)
    v.add_argument("--seed", type=int, default=0)
    _promote_flags(v)
    _output_flags(v)
    v.set_defaults(func=evaluate_cmd)


class _Printer:
    """Events → JSON lines (for the TUI) or rich progress bars and lines (for people)."""

    def __init__(self, jsonl: bool):
        self.jsonl = jsonl
        self.progress = None
        self.tasks: dict[str, int] = {}

    def __call__(self, event: dict) -> None:
        if self.jsonl:
            print_event(event)
            return
        kind = event.get("event")
        if kind == "step":
            self._bar("training", event["step"], event.get("max_steps"),
                      f"loss {event['loss']:.3f} · {event.get('tokens_per_s') or 0:.0f} tok/s")
        elif kind == "example":
            self._bar("synthesizing", event["done"], event.get("total"), event.get("origin", ""))
        elif kind == "eval":
            self._bar(f"evaluating {event['set']}", None, None, event.get("info", ""), advance=1)
        else:
            self.stop()
            if kind == "status":
                err_console.print(f"[dim]{event['message']}[/dim]")
            elif kind == "start":
                err_console.print(f"run folder: {event['run_dir']}  (if interrupted: --resume {event['run_dir']})")
            elif kind == "data":
                err_console.print(f"data: {event['examples']} examples, generator acceptance "
                                  f"{event['generator_acceptance']:.0%}; validation split {event.get('split', '')} "
                                  f"(card: {event['card']})")
            elif kind == "checkpoint":
                err_console.print(f"[dim]checkpoint at step {event['step']}[/dim]")
            elif kind == "done" and event.get("adapter"):
                err_console.print(f"trained: adapter {event['adapter']}"
                                  + (f", candidate {event['model']}" if event.get("model") else ""))
            elif kind == "exported":
                err_console.print(f"exported: {event['adapter']}, {', '.join(event['merged'])}")
            elif kind == "gate":
                lo, hi = event["difference"]
                err_console.print(f"[bold]{event['set']}[/bold]: {event['metric']} base {event['base']:.3f} → "
                                  f"candidate {event['candidate']:.3f} (difference 95% CI [{lo:+.3f}, {hi:+.3f}], "
                                  f"n={event['n']}): [bold]{event['verdict']}[/bold]  report: {event['run_dir']}")
            elif kind == "promoted":
                err_console.print(f"[green]{event['model']} is now the active generator[/green]"
                                  + (" (forced)" if event.get("forced") else ""))

    def _bar(self, name: str, done, total, info: str, advance: int | None = None) -> None:
        if self.progress is None:
            self.progress = progress_bars()
            self.progress.start()
            self.tasks = {}
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total, info="")
        if advance:
            self.progress.update(self.tasks[name], advance=advance, info=info[:40])
        else:
            self.progress.update(self.tasks[name], completed=done, total=total, info=info[:40])

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _graceful_sigterm() -> None:
    """SIGTERM (the TUI's Cancel) asks the trainer to checkpoint and stop at the end of the current step."""
    from ..finetune.train import request_stop

    signal.signal(signal.SIGTERM, lambda *_: request_stop())


def data_cmd(args) -> int:
    from ..finetune.pipeline import synthesize_data

    _check_output(args)
    settings = settings_from(args)
    printer = _Printer(args.events_jsonl == "-")
    route_library_logs(settings, "finetune")
    card = synthesize_data(settings, args.collection or settings.default_collection, args.out, args.base, printer,
                           seed=args.seed, **_data_options(args))
    printer.stop()
    if printer.jsonl:
        printer({"event": "data", "examples": card.examples, "generator_acceptance": card.generator_acceptance,
                 "rejections": card.rejections, "split": card.split, "card": str(args.out / "data_card.json")})
        return 0
    if args.json:
        print_json({"out": args.out, "card": card})
        return 0
    table = Table(title=f"synthetic data in {args.out}")
    table.add_column("")
    table.add_column("count", justify="right")
    for split, n in card.examples.items():
        table.add_row(f"{split} examples", str(n))
    table.add_row("with the answering chunk among the sources", str(card.with_oracle))
    table.add_row("teaching the not-found reply", str(card.refusals))
    for origin, n in card.question_sources.items():
        table.add_row(f"questions from {origin}", str(n))
    table.add_row("generator acceptance", f"{card.generator_acceptance:.0%}")
    table.add_row("targets restating their question", f"{card.targets_restating_question:.0%}")
    for reason, n in sorted(card.rejections.items(), key=lambda kv: -kv[1]):
        table.add_row(f"rejected: {reason}", str(n))
    console.print(table)
    console.print(f"validation split: {card.split}")
    return 0


def train_cmd(args) -> int:
    from ..finetune import distributed
    from ..finetune.pipeline import FinetuneOptions, run_finetune

    _check_output(args)
    settings = settings_from(args)
    # `run` defaults to the default collection, unless the user brought data or resumes a run.
    if args.finetune_command == "run" and not (args.collection or args.data or args.resume):
        args.collection = settings.default_collection
    resume = args.resume is not None
    opts = FinetuneOptions(
        base=args.base, collection=args.collection, data=args.data, val=args.val, heldout=args.heldout,
        squad=args.squad, run_dir=Path(args.resume) if resume and args.resume != "latest" else args.run_dir,
        resume=resume, **_data_options(args), bits=args.bits, rank=args.rank, lora_layers=args.lora_layers,
        steps=args.steps or 120, time_budget_min=None if args.steps else args.time_budget, max_epochs=args.max_epochs,
        learning_rate=args.lr, batch_size=args.batch_size, max_seq_len=args.max_seq_len,
        gradient_checkpointing=args.grad_checkpointing, save_steps=args.save_steps, seed=args.seed,
        export=not args.no_export,
        quants=tuple(args.quant or ("Q8_0", "Q4_K_M")), evaluate=not args.no_eval, eval_limit=args.eval_limit,
        promote=args.promote, force=args.force)
    # Under torchrun / accelerate launch every rank runs this command: the main process alone draws progress,
    # prints events and results (the pipeline writes every file from it too); the others log to their own file.
    main = distributed.is_main()
    printer = _Printer(args.events_jsonl == "-")
    route_library_logs(settings, "finetune" if main else f"finetune-rank{distributed.rank()}")
    _graceful_sigterm()
    try:
        outcome = run_finetune(settings, opts, printer)
    except Exception as exc:
        printer.stop()
        if printer.jsonl and main:
            printer({"event": "error", "message": str(exc)})
        raise
    printer.stop()
    if not main:
        return 0
    if args.json:
        print_json(outcome)
    elif not printer.jsonl:
        err_console.print(f"done: {outcome.run_dir}")
    return 0


def export_cmd(args) -> int:
    from ..finetune.export import export_run

    settings = settings_from(args)
    route_library_logs(settings, "finetune")  # llama.cpp's quantizer prints every tensor otherwise
    run_dir = args.run_dir / "train" if (args.run_dir / "train" / "train_config.json").is_file() else args.run_dir
    printer = _Printer(False)
    result = export_run(run_dir, settings, quants=tuple(args.quant or ("Q8_0", "Q4_K_M")), name=args.name,
                        replace=args.replace, on_event=printer)
    if args.json:
        print_json(result)
    else:
        console.print(f"adapter: {result.adapter}\nmerged:  {', '.join(result.merged)}")
    return 0


def evaluate_cmd(args) -> int:
    from ..evaluate.datasets import load_qa_file
    from ..finetune.pipeline import gate, promote, record_gates
    from ..models import ModelStore

    _check_output(args)
    settings = settings_from(args)
    store = ModelStore(settings.models_dir)
    candidate = store.get(args.candidate)
    base = args.base or candidate.parent
    if not base:
        raise BadInputError(f"{candidate.name} has no parent model recorded: pass --base")
    if not args.heldout:
        run = Path(candidate.lineage.get("run_dir", "")).parent
        default = run / "data" / "heldout.json"
        if not default.is_file():
            raise BadInputError("give --heldout FILE (no synthesized held-out set recorded for this candidate)")
        args.heldout = [default]
    printer = _Printer(args.events_jsonl == "-")
    out_dir = settings.data_dir / "finetune" / f"evaluate-{candidate.name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    gates = {}
    for path in args.heldout:
        label = path.stem
        gates[label] = gate(settings, out_dir, label, load_qa_file(path), base, candidate.name, args.limit,
                            args.seed, printer)
    printer.stop()
    record_gates(store, [candidate.name], gates)
    promoted = promote(store, candidate.name, gates, args.force, printer) if args.promote else None
    if args.json:
        print_json({"candidate": candidate.name, "base": base, "gates": gates, "promoted": promoted})
    return 0
