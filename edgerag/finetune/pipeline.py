"""The whole finetuning loop as one resumable job: data → train → export → gate → (promote).

Each stage leaves a completion marker in the run folder (data/data_card.json, adapter/, export.json, gate.json),
so `--resume` after a kill skips finished stages and continues training from its last checkpoint. Progress
reaches the caller as JSON-able events (the CLI draws them with rich or prints them as JSON lines for the TUI).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from ..config import Settings
from ..errors import BadInputError
from ..evaluate.datasets import QADataset, load_qa_file
from ..models import ModelStore
from . import MAX_EPOCHS, SynthesisOptions, run_folder
from ..fileio import write_text_atomic

Emit = Callable[[dict], None]


@dataclass
class FinetuneOptions(SynthesisOptions):
    """`finetune train/run`: what to train on, how, and what to do after; with --collection, the synthesis knobs
    (SynthesisOptions) too."""
    base: str | None = None  # store name of the base generator (default: the active one)
    collection: str | None = None  # synthesize data from this collection ...
    data: Path | None = None  # ... or train on this JSONL (chat messages)
    val: Path | None = None  # validation JSONL for --data (default: val.jsonl next to it, if any)
    heldout: Path | None = None  # SQuAD-format questions for the gate (default: the synthesized held-out set)
    squad: Path | None = None  # a real QA set the gate also reports (e.g. XQuAD)
    run_dir: Path | None = None
    resume: bool = False
    # training
    bits: int = 0  # 0: the measured default for this machine (train.default_bits)
    rank: int = 16
    lora_layers: int = 0  # 0 = all layers
    steps: int = 120
    time_budget_min: float | None = None  # if set, steps are chosen from measured speed to fit it
    max_epochs: float = MAX_EPOCHS  # with a time budget: at most this many passes over the data (0 = no cap)
    learning_rate: float = 3e-4
    batch_size: int = 4
    max_seq_len: int = 1536
    save_steps: int = 20
    gradient_checkpointing: bool = False
    seed: int = 0
    # after training
    export: bool = True
    quants: tuple[str, ...] = ("Q8_0", "Q4_K_M")
    evaluate: bool = True
    eval_limit: int | None = None
    promote: bool = False
    force: bool = False


@dataclass
class FinetuneOutcome:
    run_dir: Path
    adapter: str | None = None
    merged: list[str] = field(default_factory=list)
    gates: dict = field(default_factory=dict)  # dataset name -> gate summary
    promoted: str | None = None
    timings: dict = field(default_factory=dict)  # stage -> seconds


def runs_root(settings: Settings) -> Path:
    return settings.data_dir / "finetune"


def latest_run(settings: Settings) -> Path:
    return run_folder.latest_run(runs_root(settings), f"no finetuning run to resume in {runs_root(settings)}")


def _options_record(opts: FinetuneOptions) -> dict:
    return run_folder.options_record(opts, volatile=("resume", "run_dir", "promote", "force"))


def _start(settings: Settings, opts: FinetuneOptions) -> Path:
    if not opts.resume and (opts.collection is None) == (opts.data is None):
        raise BadInputError("give either --collection (synthesize data) or --data FILE.jsonl")
    return run_folder.open_run(runs_root(settings), opts.run_dir, _options_record(opts), opts.resume,
                               "finetuning run")


def synthesize_data(settings: Settings, collection_name: str, out_dir: Path, generator_name: str | None, emit: Emit,
                    **options):
    """`finetune data` on a collection; `options` are DataConfig fields (max_examples, p_refusal, ...)."""
    from ..generate.llm import load_generator
    from ..retrieve import Retriever
    from ..runtime import open_collection
    from .data import DataConfig, synthesize

    collection, embedder = open_collection(settings, collection_name)
    try:
        retriever = Retriever.from_settings(collection, embedder, settings)
        generator = None
        if options.get("use_generator", True):
            # Questions come from the root of the base's lineage: a generator finetuned for cited answers replies in
            # that format instead of writing a question (a second round on top of v3 accepted 6% of its questions,
            # 203 rejected as "not a question", against 23% for the bundled model).
            store = ModelStore(settings.models_dir)
            writer = store.lineage_root(generator_name or store.active("generator").name)
            emit({"event": "status", "message": f"questions written by {writer}"})
            generator = load_generator(settings, writer)
        config = DataConfig(collection_name, out_dir, **options)
        return synthesize(collection, retriever, generator, config, on_event=emit)
    finally:
        collection.close()


def _json_or_none(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def training_finished(train_dir: Path) -> bool:
    """train() saves the adapter, then loss_history.json, then the loss curve: all three whole means done (a kill
    while writing any of them leaves a torn file; training then resumes from its last checkpoint to redo them)."""
    png = train_dir / "loss_curve.png"
    return ((train_dir / "adapter" / "adapter_model.safetensors").is_file()
            and _json_or_none(train_dir / "loss_history.json") is not None
            and png.is_file() and png.read_bytes()[-8:-4] == b"IEND")


def drop_incomplete_checkpoints(train_dir: Path) -> bool:
    """Keep the checkpoints a resume can trust; True if one is left (resume), False for a fresh start.

    The Trainer writes a checkpoint's files in place, then our callback writes its train_config.json and the loss
    history up to its step: a checkpoint without both (the process died while saving it) would resume from a torn
    optimizer or trainer state, or lose loss-curve points, so it is removed and the one before it is used (the
    Trainer keeps two). The run's own train_config.json, if torn, is restored from a kept checkpoint's copy."""
    import shutil

    if not train_dir.is_dir():
        return False
    history = _json_or_none(train_dir / "loss_history.partial.json")
    logged = max((step for step, _ in history), default=0) if isinstance(history, list) else -1
    kept = []
    for checkpoint in train_dir.glob("checkpoint-*"):
        step = checkpoint.name.removeprefix("checkpoint-")
        if step.isdigit() and int(step) <= logged and all(
                _json_or_none(checkpoint / f) is not None for f in ("train_config.json", "trainer_state.json")):
            kept.append((int(step), checkpoint))
        else:
            shutil.rmtree(checkpoint, ignore_errors=True)
    if not kept:
        shutil.rmtree(train_dir)  # killed before the first whole checkpoint: nothing to keep
        return False
    if _json_or_none(train_dir / "train_config.json") is None:
        newest = max(kept)[1] / "train_config.json"
        write_text_atomic(train_dir / "train_config.json", newest.read_text(encoding="utf-8"))
    return True


def stoppable(emit: Emit, stage: str) -> Emit:
    """Cancel (SIGTERM -> train.request_stop, the TUI's Esc) must end synthesis, export and the gate too, not only
    training: they report through emit, so the first event after a stop request raises TrainingStopped. Every
    stage is resumable (data card written last, models added via staging, gate records appended)."""
    from .train import _STOP, TrainingStopped

    def checked(event: dict) -> None:
        emit(event)
        if _STOP.is_set():
            _STOP.clear()
            raise TrainingStopped(f"cancelled during {stage}; `--resume` continues the run")

    return checked


def run_finetune(settings: Settings, opts: FinetuneOptions, emit: Emit = lambda e: None) -> FinetuneOutcome:
    """The loop in one process, or one rank of several (torchrun / accelerate launch, see distributed.py): the main
    process prepares the run alone, every rank trains, the main process exports, evaluates and promotes."""
    from . import distributed
    from .train import TrainConfig, train

    distributed.init()
    if not distributed.is_main():
        emit = _silent  # one copy of the events: the main process's
    store = ModelStore(settings.models_dir)
    opts.base = opts.base or store.active_name("generator")
    # Stages 1-2a on the main process only; a failure there stops every rank (torchrun ends the others).
    prepared = _prepare(settings, opts, emit) if distributed.is_main() else None
    run_dir, train_file, val_file, heldout, resume_training, timings = distributed.share(prepared)
    outcome = FinetuneOutcome(run_dir, timings=timings)

    # 2b. train, on every rank
    train_dir = run_dir / "train"
    if not training_finished(train_dir):
        config = TrainConfig(base=opts.base, train_file=str(train_file), val_file=str(val_file) if val_file else None,
                             out_dir=str(train_dir), bits=opts.bits, lora_r=opts.rank, lora_alpha=2 * opts.rank,
                             lora_layers=opts.lora_layers, max_steps=opts.steps,
                             time_budget_min=opts.time_budget_min, max_epochs=opts.max_epochs,
                             learning_rate=opts.learning_rate,
                             batch_size=opts.batch_size, max_seq_len=opts.max_seq_len, save_steps=opts.save_steps,
                             gradient_checkpointing=opts.gradient_checkpointing, seed=opts.seed)
        result = train(config, settings, resume=resume_training, on_event=emit)
        outcome.timings.update(train_s=round(result.seconds, 1), train_tokens_per_s=round(result.tokens_per_s, 1),
                               train_peak_rss_mb=round(result.peak_rss_mb))
    if not distributed.is_main():
        return outcome  # export, gate and promotion are the main process's
    return _after_training(settings, opts, emit, store, outcome, heldout)


def _silent(event: dict) -> None:
    pass


def _prepare(settings: Settings, opts: FinetuneOptions, emit: Emit):
    """Run folder, training data, and a training folder ready to start or resume (main process only)."""
    from .base import prepare_base

    run_dir = _start(settings, opts)
    emit({"event": "start", "run_dir": str(run_dir)})
    outcome = FinetuneOutcome(run_dir)

    # 1. data
    train_file, val_file, heldout = opts.data, opts.val, opts.heldout
    if opts.collection:
        data_dir = run_dir / "data"
        if not (data_dir / "data_card.json").is_file():
            emit({"event": "status", "message": f"synthesizing training data from {opts.collection!r}"})
            started = time.perf_counter()
            card = synthesize_data(settings, opts.collection, data_dir, opts.base, stoppable(emit, "data synthesis"),
                                   **opts.synthesis_options(), seed=opts.seed)
            outcome.timings["data_s"] = round(time.perf_counter() - started, 1)
            emit({"event": "data", "examples": card.examples, "generator_acceptance": card.generator_acceptance,
                  "rejections": card.rejections, "split": card.split, "card": str(data_dir / "data_card.json")})
        train_file, val_file = data_dir / "train.jsonl", data_dir / "val.jsonl"
        heldout = heldout or data_dir / "heldout.json"
        if not val_file.is_file():
            val_file = None  # the data card says why (too few documents or chunks for a validation split)
    elif val_file is None and (Path(train_file).parent / "val.jsonl").is_file():
        val_file = Path(train_file).parent / "val.jsonl"
        if not val_file.read_text(encoding="utf-8").strip():
            emit({"event": "status", "message": f"{val_file} is empty: training without validation"})
            val_file = None

    # 2a. a training folder to start or resume; the base model converted once (the other ranks then load the cache)
    train_dir = run_dir / "train"
    resume_training = False
    if not training_finished(train_dir):
        resume_training = drop_incomplete_checkpoints(train_dir)
        prepare_base(settings, opts.base, say=lambda m: emit({"event": "status", "message": m}))
    return run_dir, train_file, val_file, heldout, resume_training, outcome.timings


def _after_training(settings: Settings, opts: FinetuneOptions, emit: Emit, store: ModelStore,
                    outcome: FinetuneOutcome, heldout) -> FinetuneOutcome:
    run_dir = outcome.run_dir
    train_dir = run_dir / "train"

    # 3. export
    if not opts.export:
        emit({"event": "done", "adapter": str(train_dir / "adapter"), "model": None})
        return outcome
    export_record = run_dir / "export.json"
    if not export_record.is_file():
        from .export import export_run

        started = time.perf_counter()
        stoppable(emit, "export")({"event": "status", "message": "exporting"})  # a stop during training ends here
        exported = export_run(train_dir, settings, quants=opts.quants, name=f"{opts.base}-ft-{run_dir.name}",
                              replace=True, on_event=stoppable(emit, "export"))
        write_text_atomic(export_record, json.dumps({"adapter": exported.adapter, "merged": exported.merged}) + "\n")
        outcome.timings["export_s"] = round(time.perf_counter() - started, 1)
    exported = json.loads(export_record.read_text())
    outcome.adapter, outcome.merged = exported["adapter"], exported["merged"]
    candidate = outcome.merged[0] if outcome.merged else None
    emit({"event": "done", "adapter": outcome.adapter, "model": candidate})

    # 4. gate
    if opts.evaluate and candidate:
        sets = [("heldout", heldout)] if heldout and Path(heldout).is_file() else []
        sets += [("real", opts.squad)] if opts.squad else []
        for label, path in sets:
            try:
                questions = load_qa_file(path)
            except BadInputError as exc:
                if label == "real":
                    raise  # the user's own file: a bad one is their error to see
                emit({"event": "status", "message": f"not evaluating on {label} questions: {exc}"})
                continue
            outcome.gates[label] = gate(settings, run_dir, label, questions, opts.base, candidate,
                                        opts.eval_limit, opts.seed, stoppable(emit, "the A/B gate"))
        if not outcome.gates:
            emit({"event": "status", "message": "no held-out questions to evaluate on (give --heldout or --squad)"})
        record_gates(store, [exported["adapter"], *exported["merged"]], outcome.gates)

    # 5. promote
    if opts.promote and candidate:
        outcome.promoted = promote(store, candidate, outcome.gates, opts.force, emit)
    write_text_atomic(run_dir / "outcome.json", json.dumps({
        "adapter": outcome.adapter, "merged": outcome.merged, "gates": outcome.gates,
        "promoted": outcome.promoted, "timings": outcome.timings}, indent=2, default=str) + "\n")
    return outcome


def gate(settings: Settings, run_dir: Path, label: str, questions: QADataset, base: str, candidate: str,
         limit: int | None, seed: int, emit: Emit) -> dict:
    """A/B of base vs candidate on one question set; the result is cached in the run folder (gate-<label>.json)."""
    from ..evaluate.gate import gate_generator

    cached = run_dir / f"gate-{label}.json"
    if cached.is_file():
        summary = json.loads(cached.read_text())
    else:
        emit({"event": "status", "message": f"evaluating base vs candidate on {label} questions ({questions.name})"})
        # The evaluation writes its run folder under <data>/runs/; the pointer file remembers which one, so a
        # cancelled or killed gate continues its own records instead of starting over.
        pointer = run_dir / f"gate-{label}.run"
        resume = Path(pointer.read_text(encoding="utf-8").strip()) if pointer.is_file() else None
        resume = resume if resume and resume.is_dir() else None

        def on_eval(event) -> None:
            if event.kind == "run":
                pointer.write_text(str(event.info) + "\n", encoding="utf-8")
            elif event.kind == "advance":
                emit({"event": "eval", "set": label, "info": event.info})

        result = gate_generator(settings, questions, candidate=f"candidate={candidate}", base=f"base={base}",
                                limit=limit, seed=seed, name=f"gate-{label}", resume=resume, on_event=on_eval)
        summary = {"set": label, "questions": questions.source, "verdict": result.verdict, "metric": result.metric,
                   "base": result.base.mean, "candidate": result.candidate.mean,
                   "difference": [result.difference.lo, result.difference.hi], "n": result.n,
                   "run_dir": str(result.run_dir), "model": candidate,
                   "verdicts": {name: cell["verdict"] for name, cell
                                in result.summary["comparisons"][0]["metrics"].items()},
                   "metrics": {name: {s: result.summary["systems"][s]["metrics"][name] for s in ("base", "candidate")}
                               for name in result.summary["systems"]["base"]["metrics"]},
                   # The evaluation's guards (F1, contains, refusals, correct refusals, model-citation precision).
                   "failures": result.failures, "guards": [asdict(g) for g in result.guards]}
        write_text_atomic(cached, json.dumps(summary, indent=2, default=_jsonable) + "\n")
        summary = json.loads(cached.read_text())
    emit({"event": "gate", **{k: summary[k] for k in ("set", "verdict", "metric", "base", "candidate",
                                                      "difference", "n", "model", "run_dir")}})
    return summary


def _jsonable(obj):
    return asdict(obj) if is_dataclass(obj) else str(obj)


def record_gates(store: ModelStore, names: list[str], gates: dict) -> None:
    for name in names:
        manifest = store.get(name)
        manifest.lineage["evaluation"] = {label: {k: g[k] for k in ("verdict", "metric", "base", "candidate",
                                                                     "difference", "n", "run_dir")}
                                          for label, g in gates.items()}
        store.update_manifest(manifest)


def gate_failures(gates: dict) -> list[str]:
    """Why the candidate may not be promoted: a worse gated metric, or a guard of evaluate/gate.py that failed (a
    model that answers better but refuses far more often, or cites the wrong passages, is no improvement)."""
    failures = []
    for label, g in gates.items():
        if g["verdict"] == "worse":
            failures.append(f"{g['metric']} on {label}")
        failures += [f"{failure} on {label}" for failure in g.get("failures", [])]
    return failures


def promote(store: ModelStore, candidate: str, gates: dict, force: bool, emit: Emit) -> str | None:
    """Make the candidate the active generator if no gate found it worse, on the gated metric or a guard metric
    (or --force)."""
    worse = gate_failures(gates)
    if not gates and not force:
        emit({"event": "status", "message": f"{candidate} was not evaluated; not promoted (use --force)"})
        return None
    if worse and not force:
        emit({"event": "status", "message": f"{candidate} is worse than the base ({', '.join(worse)}): "
                                            "not promoted (--force overrides)"})
        return None
    store.use(candidate)
    emit({"event": "promoted", "model": candidate, "forced": bool(worse) or not gates})
    return candidate
