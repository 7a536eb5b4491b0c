"""The embedder loop as one run folder: data → train → export → gate → (promote), each stage resumable.

`<data>/embedtune/<run>/`: `options.json`, `data/` (train.jsonl, heldout.jsonl, data_card.json last), `train/`
(checkpoint/, student/ last, loss_curve.png), `export.json`, `gate.json`, `outcome.json`. A stage whose marker
exists is skipped on `--resume`; training continues from its checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import BadInputError
from ..finetune import run_folder
from ..models import ModelStore
from .data import EmbedDataConfig
from .train import EmbedTrainConfig

Emit = Callable[[dict], None]


@dataclass
class EmbedRunOptions:
    collection: str
    run_dir: Path | None = None
    name: str | None = None  # store name of the adapted embedder (default: <collection>-<base>-<run>)
    base: str | None = None  # ONNX embedder to adapt (default: the collection's own embedder)
    base_weights: Path | None = None  # its PyTorch folder, when the store does not know it
    # data (defaults: the data and training configs', one home each)
    max_queries: int = EmbedDataConfig.max_queries
    negatives: int = EmbedDataConfig.negatives
    types: list[str] | None = None  # pseudo-query types (None: all of data.QUERY_TYPES)
    generator_seconds: float = EmbedDataConfig.generator_seconds
    seed: int = 0
    # training
    loss: str = EmbedTrainConfig.loss
    epochs: float = EmbedTrainConfig.epochs
    batch_size: int = EmbedTrainConfig.batch_size
    lr: float = EmbedTrainConfig.lr
    teacher_scale: float = EmbedTrainConfig.teacher_scale
    temperature: float = EmbedTrainConfig.temperature
    max_seq_length: int = EmbedTrainConfig.max_seq_length
    freeze_layers: int = EmbedTrainConfig.freeze_layers
    max_steps: int | None = None
    # gate
    beir: Path | None = None
    beir_limit: int | None = None
    promote: bool = False
    force: bool = False


@dataclass
class EmbedRunOutcome:
    run_dir: Path
    candidate: str | None = None
    gate: dict = field(default_factory=dict)
    promoted: bool = False
    timings: dict = field(default_factory=dict)


def runs_root(settings: Settings) -> Path:
    return settings.data_dir / "embedtune"


def _record(opts: EmbedRunOptions) -> dict:
    return run_folder.options_record(opts, volatile=("run_dir", "promote", "force"))


def start_run(settings: Settings, opts: EmbedRunOptions, resume: bool) -> Path:
    return run_folder.open_run(runs_root(settings), opts.run_dir, _record(opts), resume, "embedder run")


def make_data(settings: Settings, opts: EmbedRunOptions, out_dir: Path, emit: Emit = lambda e: None):
    from ..retrieve import Retriever
    from ..runtime import open_collection
    from .data import EmbedDataConfig, synthesize

    generator = None
    if opts.generator_seconds > 0:
        from ..generate.llm import load_generator

        generator = load_generator(settings)
    collection, embedder = open_collection(settings, opts.collection)
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        config = EmbedDataConfig(collection=opts.collection, out_dir=out_dir, max_queries=opts.max_queries,
                                 negatives=opts.negatives, generator_seconds=opts.generator_seconds, seed=opts.seed,
                                 **({"types": tuple(opts.types)} if opts.types else {}))
        return synthesize(collection, retriever, config, generator, emit)


def base_embedder(settings: Settings, opts: EmbedRunOptions) -> str:
    from ..store.collection import recorded_embedder

    if opts.base:
        return ModelStore(settings.models_dir).get(opts.base).name
    return recorded_embedder(settings.collections_dir, opts.collection) or \
        ModelStore(settings.models_dir).active_name("embedder")


STAGES = ("data", "train", "export", "gate", "promote")


def load_options(run_dir: Path, **overrides) -> EmbedRunOptions:
    """A run's saved options with `overrides` (the flags a stage command was given) applied and saved back."""
    path = Path(run_dir) / "options.json"
    if not path.is_file():
        raise BadInputError(f"{run_dir}: not an embedder run (no options.json); start one with `edgerag embedder data`")
    saved = json.loads(path.read_text(encoding="utf-8"))
    for key in ("base_weights", "beir"):
        if saved.get(key):
            saved[key] = Path(saved[key])
    opts = EmbedRunOptions(**saved, run_dir=Path(run_dir))
    for key, value in overrides.items():
        if value is not None:
            setattr(opts, key, value)
    run_folder.save_options(Path(run_dir), _record(opts))
    return opts


def latest_run(settings: Settings) -> Path:
    return run_folder.latest_run(runs_root(settings), f"no embedder run in {runs_root(settings)}: start one with "
                                 "`edgerag embedder data`")


def run_embedder_loop(settings: Settings, opts: EmbedRunOptions, resume: bool = False,
                      emit: Emit = lambda e: None, stop_after: str | None = None,
                      continuing: bool = False) -> EmbedRunOutcome:
    """The whole loop, or up to `stop_after`. `continuing`: opts came from load_options (a stage command on an
    existing run), so finished stages are skipped without the --resume identity check."""
    from .data import load_card, read_examples
    from .export import export_student, record_gate, torch_weights
    from .gate import gate_on_beir, gate_on_collection
    from .swap import promote
    from .train import EmbedTrainConfig, train_embedder

    run_dir = Path(opts.run_dir) if continuing else start_run(settings, opts, resume)
    resume = resume or continuing
    outcome = EmbedRunOutcome(run_dir)
    emit({"event": "run", "run_dir": str(run_dir)})
    store = ModelStore(settings.models_dir)
    base = base_embedder(settings, opts)
    data_dir, train_dir = run_dir / "data", run_dir / "train"

    t0 = time.perf_counter()
    if not (data_dir / "data_card.json").is_file():
        emit({"event": "stage", "stage": "data"})
        make_data(settings, opts, data_dir, emit)
    card = load_card(data_dir)
    outcome.timings["data"] = round(time.perf_counter() - t0, 1)
    if stop_after == "data":
        return outcome

    t0 = time.perf_counter()
    config = EmbedTrainConfig(data_dir=data_dir, out_dir=train_dir,
                              base=opts.base_weights or torch_weights(store, base), loss=opts.loss,
                              epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr,
                              teacher_scale=opts.teacher_scale, temperature=opts.temperature,
                              max_seq_length=opts.max_seq_length, freeze_layers=opts.freeze_layers,
                              max_steps=opts.max_steps, seed=opts.seed)
    if not (train_dir / "student" / "config.json").is_file():
        emit({"event": "stage", "stage": "train"})
        train_embedder(config, emit, resume=resume)
    outcome.timings["train"] = round(time.perf_counter() - t0, 1)
    if stop_after == "train":
        return outcome

    t0 = time.perf_counter()
    if (run_dir / "export.json").is_file():
        candidate = json.loads((run_dir / "export.json").read_text(encoding="utf-8"))["name"]
    else:
        emit({"event": "stage", "stage": "export"})
        candidate = opts.name or f"{opts.collection}-{base}-{run_dir.name}"[:100]
        samples = [e["positive"] for e in read_examples(data_dir / "heldout.jsonl")[:20]] \
            if (data_dir / "heldout.jsonl").is_file() else []
        lineage = {"parent_embedder": base, "collection": opts.collection, "data_card_sha256": card["sha256"],
                   "training": config.record(), "run_dir": str(run_dir)}
        result = export_student(store, train_dir / "student", candidate, base, lineage, samples,
                                settings.data_dir / "tmp", lambda m: emit({"event": "say", "text": m}))
        (run_dir / "export.json").write_text(json.dumps({"name": candidate, "torch": result.torch_name,
                                                         "cosine": result.cosine}, indent=2), encoding="utf-8")
    outcome.candidate = candidate
    outcome.timings["export"] = round(time.perf_counter() - t0, 1)
    if stop_after == "export":
        return outcome

    t0 = time.perf_counter()
    emit({"event": "stage", "stage": "gate"})
    heldout = read_examples(data_dir / "heldout.jsonl") if (data_dir / "heldout.jsonl").is_file() else []
    report = gate_on_collection(settings, opts.collection, candidate, heldout, seed=opts.seed, on_event=emit)
    if opts.beir:
        gate_on_beir(settings, report, opts.beir, base, candidate, limit=opts.beir_limit, seed=opts.seed)
    outcome.gate = report.as_dict()
    (run_dir / "gate.json").write_text(json.dumps(outcome.gate, indent=2), encoding="utf-8")
    record_gate(store, candidate, outcome.gate)
    outcome.timings["gate"] = round(time.perf_counter() - t0, 1)

    if opts.promote:
        if not report.checks:
            emit({"event": "say", "text": "no held-out queries and no --beir set: nothing to gate on; not promoted"})
        elif report.promotable or opts.force:
            t0 = time.perf_counter()
            emit({"event": "stage", "stage": "promote"})
            promote(settings, opts.collection, candidate, report.vectors, emit)
            outcome.promoted = True
            outcome.timings["promote"] = round(time.perf_counter() - t0, 1)
        else:
            emit({"event": "say", "text": "not promoted: " + "; ".join(report.failures)})
    (run_dir / "outcome.json").write_text(json.dumps(
        {"candidate": candidate, "promoted": outcome.promoted, "gate": outcome.gate, "timings": outcome.timings},
        indent=2), encoding="utf-8")
    return outcome
