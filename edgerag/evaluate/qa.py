"""Answer-quality evaluation: the library call behind `edgerag eval qa`.

Every question goes through `AnswerEngine.ask`, the same pipeline as `edgerag ask`, under one of three conditions:
- open:         normal retrieval over a scratch collection holding all the dataset's contexts;
- oracle:       retrieval skipped, the gold context(s) given as the only sources (isolates the generator);
- unanswerable: retrieved passages with every gold context, and every passage containing the answer, removed;
                a correct system refuses. `pipeline_refusal` also counts the engine's own relevance gate, which
                would have refused before the model ran.

What the model did is reported apart from what the answer checker did for it (the base model writes markers in
few answers, so a precision over all citations mostly grades the checker's own attributions):
- model_markers: share of answers (refusals left out) in which the model wrote at least one [n];
- model_citation_precision: of the markers the model wrote, the share the checker confirms (the cited source
  supports the sentence, facts included);
- attribution_rate: share of claim-bearing sentences whose source the checker found (the model gave no marker);
- answer_supported: every claim-bearing sentence of the answer is supported (facts included);
  answer_contradicted: at least one sentence states a number, name or polarity its source contradicts;
- contains (gold answer in the reply), EM/F1 (SQuAD), refusal (on answerable questions: lower is better; in the
  unanswerable condition the same number is the correct-refusal rate: higher is better).
A cited source is *relevant* when it comes from a gold context or contains a gold answer (yes/no answers
excepted): citation precision = relevant cited / cited, recall = relevant cited / relevant shown (citations
include the checker's matches for unmarked sentences, supported or contradicted). `citation_supported`: share of all citations the checker finds supported.
`gold_shown`: a relevant passage was among the sources shown.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import Settings, replace
from ..errors import BadInputError
from ..generate.citations import strip_markers
from ..retrieve import Hit, Retriever
from ..retrieve.search import MODES
from ..store.collection import TextHit
from . import metrics as M
from .corpus import key_of, paths_of, record_path, scratch_collection
from .datasets import QADataset, QAItem, load_hotpot, load_squad, subset
from .events import EvalEvent, ignore
from .report import RunDir, comparison_rows, config_block, md_table, metric_columns, summarise
from .systems import GeneratorSpec, resolve_all

CONDITIONS = ("open", "oracle", "unanswerable")
# name → higher is better (None: reported, no verdict)
ANSWER_METRICS = {"em": True, "f1": True, "contains": True, "refusal": False, "model_markers": True,
                  "model_citation_precision": True, "attribution_rate": None, "answer_supported": True,
                  "answer_contradicted": False, "citation_precision": True, "citation_recall": True,
                  "citation_supported": True, "gold_shown": None, "answer_words": None,
                  "restates_question": None, "tokens_per_s": True}
UNANSWERABLE_METRICS = {"refusal": True, "pipeline_refusal": True, "contains": None, "answer_words": None,
                        "tokens_per_s": True}
IDENTITY = ("kind", "source", "dataset_sha", "condition", "systems", "limit", "seed", "mode", "top_k",
            "temperature", "max_tokens", "chunking", "context_tokens", "min_relevance", "min_coverage", "focus_words",
            "repeat_penalty")
YES_NO = {"yes", "no"}


@dataclass
class QAConfig:
    squad: str | None = None
    hotpot: str | None = None
    generators: list[str | None] = field(default_factory=lambda: [None])
    condition: str = "open"
    mode: str | None = None  # retriever (default: settings' retrieve_mode)
    top_k: int | None = None
    temperature: float = 0.0  # greedy by default: reproducible, and resumed runs match uninterrupted ones
    max_tokens: int | None = None
    limit: int | None = None
    seed: int = 0
    resamples: int = 1000
    name: str | None = None


@dataclass
class QAResult:
    run_dir: Path
    summary: dict


def metrics_for(condition: str) -> dict[str, bool | None]:
    return UNANSWERABLE_METRICS if condition == "unanswerable" else ANSWER_METRICS


def primary_metric(condition: str) -> str:
    return "refusal" if condition == "unanswerable" else "f1"


def load_dataset(config: QAConfig) -> QADataset:
    if bool(config.squad) == bool(config.hotpot):
        raise BadInputError("give exactly one of --squad FILE or --hotpot FILE")
    return load_squad(config.squad) if config.squad else load_hotpot(config.hotpot)


def dataset_sha(dataset: QADataset) -> str:
    h = hashlib.sha256()
    for item in dataset.items:
        h.update(json.dumps(asdict(item), sort_keys=True).encode())
    for key in sorted(dataset.contexts):
        h.update(key.encode() + b"\0" + dataset.contexts[key].full_text.encode() + b"\0")
    return h.hexdigest()[:16]


# -- one question ------------------------------------------------------------------------------------------------
def extractive(answers: list[str]) -> bool:
    """An answer a text can contain (not "yes" / "no")."""
    return not all(M.normalize_answer(a) in YES_NO for a in answers)


def _is_relevant(text: str, owners: list[str], item: QAItem, gold_paths: set[str]) -> bool:
    return bool(gold_paths & set(owners)) or (extractive(item.answers) and bool(M.contains_answer(text, item.answers)))


def oracle_hits(dataset: QADataset, item: QAItem) -> list[Hit]:
    """The gold contexts, whole, as retrieval hits (negative text ids: they are not looked up in the store)."""
    hits = []
    for i, key in enumerate(item.gold, start=1):
        text = dataset.contexts[key].full_text
        hits.append(Hit(-i, 1.0, None, None, TextHit(-i, text, record_path(key), None, None, 0, len(text), -1)))
    return hits


def wrong_hits(retriever: Retriever, item: QAItem, mode: str, top_k: int) -> tuple[list[Hit], int]:
    """Top-k retrieved passages after removing the gold contexts and any passage containing the answer."""
    gold_paths = {record_path(k) for k in item.gold}
    hits = retriever.search(item.question, k=top_k * 4, mode=mode)
    owners = paths_of(retriever.collection, [h.text_id for h in hits])
    kept = [h for h in hits if not _is_relevant(h.text, owners.get(h.text_id) or [h.source.path], item, gold_paths)]
    return kept[:top_k], len(hits) - len(kept)


def answer_record(system: str, item: QAItem, answer, owners: dict[int, list[str]], condition: str) -> dict:
    gold_paths = {record_path(k) for k in item.gold}
    prediction = "" if answer.not_found else strip_markers(answer.text)
    sources = [{"n": s.number, "key": key_of(s.path),
                "relevant": _is_relevant(s.text, owners.get(s.text_id) or [s.path], item, gold_paths)}
               for s in answer.sources]
    relevant = [s["n"] for s in sources if s["relevant"]]
    cited = [c.number for c in answer.citations]
    precision, recall = M.citation_scores(cited, relevant)
    if answer.not_found:
        precision = recall = None
    return {
        "system": system, "item_id": item.id, "question": item.question, "answers": item.answers,
        "condition": condition, "text": answer.text, "prediction": prediction, "not_found": answer.not_found,
        "em": M.exact_match(prediction, item.answers), "f1": M.token_f1(prediction, item.answers),
        "contains": M.contains_answer(prediction, item.answers), "refusal": float(answer.not_found),
        "citation_precision": precision, "citation_recall": recall,
        "citation_supported": (sum(c.supported for c in answer.citations) / len(cited)) if cited else None,
        "cited": cited, **M.check_metrics(answer), "sources": sources,
        "gold_shown": float(bool(relevant)), "answer_words": M.answer_length(prediction) if prediction else 0,
        "restates_question": float(M.restates(prediction, item.question)) if prediction else None,
        "tokens_per_s": answer.timings.get("tokens_per_s") or None,
        "completion_tokens": answer.timings.get("completion_tokens"),
        "seconds": round(answer.timings.get("total_s", 0.0), 3),
    }


def ask_one(engine, dataset: QADataset, item: QAItem, condition: str, system: str) -> dict:
    extra: dict = {}
    if condition == "oracle":
        override = oracle_hits(dataset, item)
    elif condition == "unanswerable":
        override, dropped = wrong_hits(engine.retriever, item, engine.mode, engine.top_k)
        extra = {"dropped": dropped, "gate_refusal": not engine.relevant(override, item.question)}
    else:
        override = None
    if override is not None and not override:
        return {"system": system, "item_id": item.id, "question": item.question, "condition": condition,
                "skipped": "no passages left to show", **{m: None for m in metrics_for(condition)}}
    answer = engine.ask(item.question, sources_override=override)
    if answer.interrupted:  # the engine swallows Ctrl-C mid-stream; a half answer must not be recorded as done
        raise KeyboardInterrupt
    owners = paths_of(engine.retriever.collection, [s.text_id for s in answer.sources if s.text_id > 0])
    record = answer_record(system, item, answer, owners, condition)
    if condition == "unanswerable":
        record.update(extra)
        record["pipeline_refusal"] = float(answer.not_found or extra["gate_refusal"])
    return record


# -- a run -------------------------------------------------------------------------------------------------------
def evaluate_generators(settings: Settings, dataset: QADataset, specs: list[GeneratorSpec], items: list[QAItem],
                        run: RunDir, condition: str, mode: str, top_k: int,
                        on_event: Callable[[EvalEvent], None] = ignore) -> dict:
    """Answer every item with every generator, appending one record per answer; skips what `run` already has."""
    from ..embed import load_active_embedder
    from ..generate.answer import AnswerEngine

    done = {(r["system"], r["item_id"]) for r in run.records()}
    if all((s.label, i.id) in done for s in specs for i in items):
        return {}
    embedder = load_active_embedder(settings)
    collection = scratch_collection(settings, dataset.name, dataset.contexts.values(), embedder, on_event)
    timings: dict[str, dict] = {}
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        for spec in specs:
            todo = [i for i in items if (spec.label, i.id) not in done]
            on_event(EvalEvent("phase", spec.label, total=len(items)))
            on_event(EvalEvent("advance", n=len(items) - len(todo), info="resumed" if done else ""))
            if not todo:
                continue
            on_event(EvalEvent("advance", n=0, info="loading model"))
            engine = AnswerEngine(retriever, spec.load(settings), settings, mode=mode, top_k=top_k)
            t0 = time.perf_counter()
            for item in todo:
                record = ask_one(engine, dataset, item, condition, spec.label)
                run.append(record)
                if record.get("not_found") or record.get("skipped"):
                    shown = "refused" if record.get("not_found") else "skipped"
                else:
                    shown = "answered" if condition == "unanswerable" else f"F1 {record['f1']:.2f}"
                on_event(EvalEvent("advance", n=1, info=shown))
            timings[spec.label] = {"seconds_per_question": round((time.perf_counter() - t0) / len(todo), 2)}
            del engine
    return timings


def summarise_run(run: RunDir, dataset: QADataset, specs: list[GeneratorSpec], condition: str, resamples: int,
                  seed: int, timings: dict | None = None) -> dict:
    records = [r for r in run.records() if not r.get("skipped")]
    metrics = metrics_for(condition)
    labels = [s.label for s in specs]
    table, comparisons = summarise(records, "system", "item_id", metrics, labels, resamples, seed)
    primary = primary_metric(condition)
    return {"kind": "qa", "dataset": dataset.name, "condition": condition,
            "questions": len({r["item_id"] for r in records}),
            "skipped": sum(1 for r in run.records() if r.get("skipped")),
            "systems": {s.label: {"generator": s.as_dict(), "metrics": table[s.label]} for s in specs},
            "comparisons": comparisons, "primary": primary,
            "verdicts": {c["candidate"]: c["metrics"][primary]["verdict"] for c in comparisons},
            "timings": timings or {}, "run_dir": str(run.path)}


# What each row of report.md means (the module docstring has the full definitions).
LEGEND = {
    "em": "exact match with a gold answer (SQuAD normalisation)", "f1": "token F1 with the best gold answer",
    "contains": "a gold answer appears in the reply", "refusal": "refused an answerable question (lower is better)",
    "model_markers": "answers in which the model wrote an [n] marker",
    "model_citation_precision": "markers the model wrote that the checker confirms (facts included)",
    "attribution_rate": "claim-bearing sentences whose source the checker found (the model gave no marker)",
    "answer_supported": "every claim-bearing sentence supported by a source, numbers and names included",
    "answer_contradicted": "a sentence states a number, name or polarity its source contradicts",
    "citation_precision": "cited sources (the model's and the checker's) that are relevant",
    "citation_recall": "relevant sources shown that are cited",
    "citation_supported": "citations (the model's and the checker's) the checker finds supported",
    "gold_shown": "a relevant passage was among the sources shown", "answer_words": "words in the reply",
    "restates_question": "answers whose words are at least 80% the question's (refusals aside)",
    "tokens_per_s": "generation speed",
}
UNANSWERABLE_LEGEND = {"refusal": "correct refusal: refused with the answer removed from the sources",
                       "pipeline_refusal": "correct refusal counting the relevance gate before the model",
                       "contains": "a gold answer appears anyway (from the model's memory)"}


def _legend(condition: str) -> list[str]:
    legend = {**LEGEND, **UNANSWERABLE_LEGEND} if condition == "unanswerable" else LEGEND
    return [f"- **{m}**: {legend[m]}" for m in metrics_for(condition) if m in legend] + [""]


def _fmt(metric: str, est: M.Estimate) -> str:
    if metric in ("answer_words", "tokens_per_s"):
        return est.fmt(1, 1)
    return est.fmt(100)


def write_report(run: RunDir, summary: dict) -> None:
    from . import plots

    condition = summary["condition"]
    metrics = list(metrics_for(condition))
    systems = {k: v["metrics"] for k, v in summary["systems"].items()}
    title = f"{summary['dataset']}, {condition} ({summary['questions']} questions), 95% bootstrap CI"
    pct_metrics = [m for m in metrics if m not in ("answer_words", "tokens_per_s")]
    if condition == "unanswerable":
        shares = {k: ((v["refusal"].mean or 0.0), 1 - (v["refusal"].mean or 0.0)) for k, v in systems.items()}
        plots.refusals(run.path / "refusals.png", f"{summary['dataset']}: gold passages removed", shares)
        figure = "![refusals](refusals.png)"
    else:
        plots.grouped_bars(run.path / "answers.png", title, pct_metrics, systems)
        figure = "![answers](answers.png)"
    parts = [f"# Answers: {summary['dataset']}, {condition}", "",
             f"{summary['questions']} questions. Percentages ×100 (answer_words and tokens_per_s as is), mean "
             f"[95% bootstrap CI]." + (f" {summary['skipped']} skipped (nothing left to show)."
                                       if summary["skipped"] else ""), "",
             md_table(["metric", *systems], metric_columns(systems, metrics, _fmt)), "", *_legend(condition),
             figure, ""]
    if summary["comparisons"]:
        judged = [m for m, higher in metrics_for(condition).items() if higher is not None]
        plots.differences(run.path / "differences.png", "candidate − base (paired bootstrap)",
                          summary["comparisons"], [m for m in judged if m in pct_metrics])
        verdicts = ", ".join(f"**{c}: {v}**" for c, v in summary["verdicts"].items())
        parts += [f"## Side by side (verdict on {summary['primary']}: {verdicts})", "",
                  md_table(["comparison", "metric", "difference", "verdict"],
                           comparison_rows(summary["comparisons"], judged, _fmt)), "",
                  "![differences](differences.png)", ""]
    parts += ["## Examples", ""] + _examples(run.records(), list(systems)) + \
             ["## Configuration", "", config_block(run.config), ""]
    run.write("report.md", "\n".join(parts))


def _examples(records: list[dict], systems: list[str], n: int = 5) -> list[str]:
    by_item: dict[str, dict[str, dict]] = {}
    for r in records:
        by_item.setdefault(r["item_id"], {})[r["system"]] = r
    out = []
    for item_id, rows in list(by_item.items())[:n]:
        first = next(iter(rows.values()))
        out.append(f"- **{first['question']}** (gold: {' | '.join(first.get('answers', []))})")
        for s in systems:
            if s in rows:
                text = (rows[s].get("text") or rows[s].get("skipped") or "").replace("\n", " ")
                flags = [f"{c['status']}: {'; '.join(c['reasons'])}" for c in rows[s].get("checks") or []
                         if c["status"] in ("contradicted", "unsupported")]
                out.append(f"  - {s}: {text[:300]}" + (f" ⚠ {' | '.join(flags)}" if flags else ""))
    return out + [""]


def run_qa_eval(settings: Settings, config: QAConfig, resume: Path | None = None,
                on_event: Callable[[EvalEvent], None] = ignore, dataset: QADataset | None = None) -> QAResult:
    """Check the generators, load the data (or take `dataset`), run or resume, write summary, report and plots."""
    if config.condition not in CONDITIONS:
        raise BadInputError(f"unknown condition {config.condition!r} (choose {', '.join(CONDITIONS)})")
    mode = config.mode or settings.retrieve_mode
    if mode not in MODES:
        raise BadInputError(f"unknown mode {mode!r} (choose {', '.join(MODES)})")
    settings = replace(settings, temperature=config.temperature, max_tokens=config.max_tokens)
    specs = resolve_all(settings, [g if isinstance(g, GeneratorSpec) else GeneratorSpec.parse(g)
                                   for g in config.generators])  # a bad generator fails before any work
    dataset = dataset or load_dataset(config)
    top_k = config.top_k or settings.top_k
    items = subset(dataset.items, config.limit, config.seed)
    source = config.squad or config.hotpot
    run_config = {"kind": "qa", "source": str(Path(source).expanduser().resolve()) if source else dataset.source,
                  "dataset_sha": dataset_sha(dataset), "condition": config.condition,
                  "systems": [s.as_dict() for s in specs], "limit": config.limit, "seed": config.seed,
                  "mode": mode, "top_k": top_k, "temperature": settings.temperature,
                  "max_tokens": settings.max_tokens, "resamples": config.resamples,
                  "chunking": {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap},
                  "context_tokens": settings.context_tokens, "min_relevance": settings.min_relevance,
                  "min_coverage": settings.min_coverage, "focus_words": settings.focus_words,
                  "repeat_penalty": settings.repeat_penalty}
    run = RunDir.resume(resume, run_config, IDENTITY) if resume else \
        RunDir.create(settings.runs_dir, config.name or f"qa-{dataset.name}-{config.condition}", run_config)
    on_event(EvalEvent("run", info=str(run.path)))
    timings = evaluate_generators(settings, dataset, specs, items, run, config.condition, mode, top_k, on_event)
    summary = summarise_run(run, dataset, specs, config.condition, config.resamples, config.seed,
                            run.merged_timings(timings))
    run.write_summary(summary)
    write_report(run, summary)
    return QAResult(run.path, summary)
