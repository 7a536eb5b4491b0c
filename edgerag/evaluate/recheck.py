"""Grade a finished `eval qa` run again with today's answer checker, without generating anything.

When the checker or the refusal rule changes, the model's recorded answers are still the model's answers (greedy
decoding makes them the same a new run would get), but every metric derived from them (refusal, F1 on the
prediction, markers confirmed, supported, contradicted) may change. `recheck_qa_run` replays each recorded answer
through the same pipeline (same retrieval, same sources under the same numbers, same context budget from the
generator's own tokenizer) in place of the model's output, and writes a new run directory with the regraded
records, summary, report and plots. The original run is left as it was; the new one names it (`rechecked_from`).

    edgerag eval recheck RUN_DIR        # → runs/<timestamp>-<name>-recheck
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..config import Settings, replace
from ..errors import BadInputError
from .corpus import scratch_collection
from .datasets import load_qa_file
from .events import EvalEvent, ignore
from .qa import QAResult, ask_one, dataset_sha, summarise_run, write_report
from .report import RunDir
from .systems import GeneratorSpec

# What a replay cannot know (no generation ran): carried over from the recorded answer.
GENERATION_FIELDS = ("tokens_per_s", "completion_tokens", "seconds")


class ReplayedGenerator:
    """Stands in for a generator: the real one's tokenizer and window (they decide which sources fit), and the
    recorded reply instead of a generation."""

    def __init__(self, real):
        from ..generate.llm import GenerationStats

        self.real, self.reply, self.stats = real, "", GenerationStats()
        self.n_ctx = real.n_ctx

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def stream_chat(self, messages, **_kw):
        yield self.reply


def recheck_qa_run(settings: Settings, run_dir: Path, name: str | None = None,
                   on_event: Callable[[EvalEvent], None] = ignore) -> QAResult:
    from ..embed import load_active_embedder
    from ..generate.answer import AnswerEngine
    from ..retrieve import Retriever

    old = RunDir(Path(run_dir).expanduser(), {})
    config_file = old.path / "config.json"
    if not config_file.is_file():
        raise BadInputError(f"{old.path}: not a run directory (no config.json)")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("kind") != "qa":
        raise BadInputError(f"{old.path}: only `eval qa` runs can be rechecked (this one is {config.get('kind')!r})")
    records = old.records()
    if not records:
        raise BadInputError(f"{old.path}: the run has no recorded answers")
    dataset = load_qa_file(config["source"])
    if dataset_sha(dataset) != config["dataset_sha"]:
        raise BadInputError(f"{config['source']}: the questions changed since the run; it cannot be regraded")
    # The run's own settings: they decide retrieval and the context, so the sources come out as they were.
    settings = replace(settings, temperature=config["temperature"], max_tokens=config["max_tokens"],
                       chunk_tokens=config["chunking"]["chunk_tokens"],
                       chunk_overlap=config["chunking"]["chunk_overlap"],
                       context_tokens=config["context_tokens"], min_relevance=config["min_relevance"],
                       # runs from before the coverage test and the focus had neither
                       min_coverage=config.get("min_coverage", 0.0), focus_words=config.get("focus_words", 0))
    specs = [GeneratorSpec(**s) for s in config["systems"]]
    items = {item.id: item for item in dataset.items}
    embedder = load_active_embedder(settings)
    collection = scratch_collection(settings, dataset.name, dataset.contexts.values(), embedder, on_event)
    with collection:  # the run dir only once the collection opened: a refusal to open leaves nothing behind
        new = RunDir.create(settings.runs_dir, f"{name or old.path.name.split('-', 2)[-1]}-recheck",
                            {**config, "rechecked_from": str(old.path.resolve())})
        on_event(EvalEvent("run", info=str(new.path)))
        retriever = Retriever.from_settings(collection, embedder, settings)
        for spec in specs:
            mine = [r for r in records if r["system"] == spec.label]
            on_event(EvalEvent("phase", f"{spec.label} (recheck)", total=len(mine)))
            replay = ReplayedGenerator(spec.load(settings))
            engine = AnswerEngine(retriever, replay, settings, mode=config["mode"], top_k=config["top_k"])
            for r in mine:
                if r.get("skipped"):
                    new.append(r)
                else:
                    replay.reply = r["text"]
                    regraded = ask_one(engine, dataset, items[r["item_id"]], config["condition"], spec.label)
                    shown = [(s["n"], s["key"]) for s in regraded["sources"]]
                    if shown != [(s["n"], s["key"]) for s in r["sources"]]:
                        raise BadInputError(f"{r['item_id']}: the sources differ from the recorded run's "
                                            "(collection or retrieval changed), so its answer cannot be regraded")
                    new.append({**regraded, **{k: r.get(k) for k in GENERATION_FIELDS}})
                on_event(EvalEvent("advance", n=1))
            del engine, replay
    summary = summarise_run(new, dataset, specs, config["condition"], config["resamples"], config["seed"],
                            old.merged_timings({}))
    new.write_summary(summary)
    write_report(new, summary)
    return QAResult(new.path, summary)
