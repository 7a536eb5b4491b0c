"""The A/B gate finetuning calls: evaluate a candidate and its base on the same held-out questions and decide.

The verdict comes from a paired bootstrap of the per-question difference (candidate − base) on one metric:
'better' when the whole 95% interval is above zero, 'worse' when it is below, else 'no different'. Both systems
answer exactly the same questions with the same retrieval, so question difficulty cancels out and small real
gains are detectable on a few hundred questions.

    from edgerag.evaluate.gate import gate_generator
    result = gate_generator(settings, "heldout.json", candidate="smollm2-135m-instruct-q4_1+adapter.gguf")
    if result.verdict == "better": ...

Each call writes a normal run directory (report.md, plots) and can be resumed with `resume=result.run_dir`.

A verdict on one metric is not enough to promote a generator: a model can gain F1 by answering in bare spans
while refusing half the answerable questions and citing worse. `gate_generator` therefore also runs the
unanswerable condition (gold passages removed) and checks the guards in GUARDS; `result.promotable` is what
promotion should ask, `result.failures` says which guard failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import BadInputError
from .datasets import BeirDataset, QADataset, load_beir, load_qa_file
from .events import EvalEvent, ignore
from .metrics import Estimate
from .qa import QAConfig, metrics_for, primary_metric, run_qa_eval
from .retrieval import METRICS as RETRIEVAL_METRICS
from .retrieval import RetrievalConfig, run_retrieval_eval
from .systems import GeneratorSpec


# (condition, metric, rule) that promotion needs; "answerable" is the gated condition (open or oracle).
# "not worse": the paired-bootstrap verdict is not "worse"; "+5 points": candidate mean ≤ base mean + 0.05.
GUARDS = (
    ("answerable", "f1", "not worse"),
    ("answerable", "contains", "not worse"),
    ("answerable", "refusal", "+5 points"),
    ("answerable", "model_citation_precision", "not worse"),
    ("unanswerable", "refusal", "not worse"),  # correct refusal when the answer is not in the sources
)
REFUSAL_MARGIN = 0.05


@dataclass
class Guard:
    condition: str  # open | oracle | unanswerable
    metric: str
    rule: str  # "not worse" | "+5 points"
    base: float | None
    candidate: float | None
    verdict: str  # the paired-bootstrap verdict of candidate vs base
    passed: bool

    def describe(self) -> str:
        name = "correct refusal" if self.condition == "unanswerable" else self.metric
        fmt = lambda v: "–" if v is None else f"{100 * v:.1f}"  # noqa: E731
        return f"{name} ({self.condition}) {fmt(self.base)} → {fmt(self.candidate)}: {self.rule}"


@dataclass
class GateResult:
    verdict: str  # better | no different | worse
    metric: str
    base: Estimate
    candidate: Estimate
    difference: Estimate  # candidate − base, paired bootstrap
    n: int  # questions both systems answered
    run_dir: Path
    summary: dict
    guards: list[Guard] = field(default_factory=list)
    unanswerable: dict | None = None  # the unanswerable run's summary, when it ran

    @property
    def passed(self) -> bool:
        return self.verdict == "better"

    @property
    def failures(self) -> list[str]:
        return [g.describe() for g in self.guards if not g.passed]

    @property
    def promotable(self) -> bool:
        """No guard failed: what promotion asks (a 'no different' F1 with every guard kept may be promoted)."""
        return not self.failures


def check_guards(summaries: dict[str, dict]) -> list[Guard]:
    """The GUARDS over `summaries` (condition → a two-system qa summary: base first, then the candidate).
    Guards whose condition did not run are left out."""
    out = []
    for condition, metric, rule in GUARDS:
        key = condition if condition == "unanswerable" else next((c for c in summaries if c != "unanswerable"), None)
        summary = summaries.get(key) if key else None
        if not summary or not summary.get("comparisons") or metric not in summary["comparisons"][0]["metrics"]:
            continue
        comparison = summary["comparisons"][0]
        mean = lambda system: _est(summary["systems"][comparison[system]]["metrics"][metric]).mean  # noqa: E731
        base, cand = mean("base"), mean("candidate")
        verdict = comparison["metrics"][metric]["verdict"]
        if rule == "+5 points":
            passed = base is None or cand is None or cand <= base + REFUSAL_MARGIN + 1e-12
        else:
            passed = verdict != "worse"
        out.append(Guard(key, metric, rule, base, cand, verdict, passed))
    return out


def _est(value) -> Estimate:
    return value if isinstance(value, Estimate) else Estimate(**value)


def _result(summary: dict, metric: str, run_dir: Path) -> GateResult:
    comparison = summary["comparisons"][0]
    base, cand = comparison["base"], comparison["candidate"]
    cell = comparison["metrics"][metric]
    return GateResult(cell["verdict"], metric, _est(summary["systems"][base]["metrics"][metric]),
                      _est(summary["systems"][cand]["metrics"][metric]), _est(cell["diff"]),
                      comparison["n"], run_dir, summary)


def gate_generator(settings: Settings, heldout: QADataset | str | Path, candidate: str | GeneratorSpec,
                   base: str | GeneratorSpec | None = None, *, condition: str = "open", metric: str | None = None,
                   limit: int | None = None, seed: int = 0, resamples: int = 1000, name: str | None = None,
                   resume: Path | None = None, unanswerable: bool = True,
                   on_event: Callable[[EvalEvent], None] = ignore) -> GateResult:
    """Candidate generator vs base (default: the active generator) on held-out QA.

    heldout: a QADataset built in memory (e.g. synthesized questions held out from training) or a SQuAD /
    HotpotQA file. candidate/base: GeneratorSpec or its string form `[LABEL=]MODEL[+ADAPTER]`.
    condition: open (retrieval, the product's path), oracle (gold passages given) or unanswerable.
    metric: default F1 (refusal rate for unanswerable).
    unanswerable: also run the same questions with their gold passages removed, for the correct-refusal guard
    (a second run directory, named in the first one's `unanswerable.run`, so `resume=result.run_dir` resumes
    both; its "run" event is not passed on). `result.guards` holds every guard."""
    metric = metric or primary_metric(condition)
    if metric not in metrics_for(condition) or metrics_for(condition)[metric] is None:
        raise BadInputError(f"metric {metric!r} cannot gate the {condition} condition")
    dataset = heldout if isinstance(heldout, QADataset) else load_qa_file(heldout)
    base_spec = base if isinstance(base, GeneratorSpec) else GeneratorSpec.parse(base)
    cand_spec = candidate if isinstance(candidate, GeneratorSpec) else GeneratorSpec.parse(candidate)
    if not base_spec.label:
        base_spec = GeneratorSpec(base_spec.model, base_spec.adapter, "base")
    if not cand_spec.label:
        cand_spec = GeneratorSpec(cand_spec.model, cand_spec.adapter, "candidate")
    config = QAConfig(generators=[base_spec, cand_spec], condition=condition, limit=limit, seed=seed,
                      resamples=resamples, name=name or f"gate-{dataset.name}-{condition}")
    result = run_qa_eval(settings, config, resume=resume, on_event=on_event, dataset=dataset)
    gate = _result(result.summary, metric, result.run_dir)
    summaries = {condition: result.summary}
    if unanswerable and condition != "unanswerable":
        pointer = result.run_dir / "unanswerable.run"
        previous = Path(pointer.read_text(encoding="utf-8").strip()) if pointer.is_file() else None

        def forward(event: EvalEvent) -> None:
            if event.kind == "run":  # callers remember the first run; this one is found from it
                pointer.write_text(f"{event.info}\n", encoding="utf-8")
            else:
                on_event(event)

        config = QAConfig(generators=[base_spec, cand_spec], condition="unanswerable", limit=limit, seed=seed,
                          resamples=resamples, name=f"{config.name}-unanswerable")
        gate.unanswerable = run_qa_eval(settings, config, resume=previous if previous and previous.is_dir() else None,
                                        on_event=forward, dataset=dataset).summary
        summaries["unanswerable"] = gate.unanswerable
    gate.guards = check_guards(summaries)
    return gate


def gate_embedder(settings: Settings, heldout: BeirDataset | str | Path, candidate: str, base: str | None = None,
                  *, mode: str = "dense", metric: str = "ndcg@10", split: str = "test", limit: int | None = None,
                  seed: int = 0, resamples: int = 1000, name: str | None = None, resume: Path | None = None,
                  on_event: Callable[[EvalEvent], None] = ignore) -> GateResult:
    """Candidate embedder (a model name in the store) vs base (default: the active embedder) on held-out
    BEIR-format retrieval (a BeirDataset or a BEIR folder/zip), scored on `metric` in `mode` (dense or hybrid)."""
    if metric not in RETRIEVAL_METRICS:
        raise BadInputError(f"unknown metric {metric!r} (choose {', '.join(RETRIEVAL_METRICS)})")
    if mode == "bm25":
        raise BadInputError("BM25 does not use the embedder: gate an embedder in dense or hybrid mode")
    dataset = heldout if isinstance(heldout, BeirDataset) else load_beir(heldout, split)
    from ..models import ModelStore

    store = ModelStore(settings.models_dir)
    base_name = base or store.active("embedder").name
    if store.get(candidate).name == base_name:
        raise BadInputError(f"candidate and base are the same embedder ({base_name})")
    config = RetrievalConfig(split=dataset.split, modes=[mode], embedders=[base_name, candidate], limit=limit,
                             seed=seed, resamples=resamples, name=name or f"gate-{dataset.name}-{mode}")
    result = run_retrieval_eval(settings, config, resume=resume, on_event=on_event, dataset=dataset)
    return _result(result.summary, metric, result.run_dir)
