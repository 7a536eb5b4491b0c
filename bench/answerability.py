"""How well the "not found" gate tells answerable questions from unanswerable ones, before any model runs.

For each question of a QA set it computes what the gate judges, on the passages the ask pipeline would show:
- answerable: open retrieval over a scratch collection of all the set's passages (the product's path);
- unanswerable: the same retrieval with the gold passages and every passage containing the answer removed (the
  `eval qa --unanswerable` condition, its `wrong_hits`).
and prints, per threshold, the share of each the gate refuses: the embedding-cosine test alone (`min_relevance`),
and with the lexical coverage test (`min_coverage`: the idf-weighted share of the question's content words that
the best passage mentions, store/keyword.py). The coverage threshold is chosen as the largest one that keeps
refusals of answerable questions within --budget points of the cosine gate's on two sets: half of the XQuAD
questions (split by article, so no passage is in both halves), and the queries of a BEIR set (NFCorpus: short topic
titles against medical abstracts, which share fewer words with what answers them; all have relevant documents).
It is reported on the other XQuAD half and on HotpotQA, which played no part in choosing it.

    EDGERAG_BENCH_HOME=... .venv/bin/python bench/answerability.py [--squad FILE] [--hotpot FILE] [--beir FILE]

XQuAD-en, HotpotQA (first 100) and NFCorpus from ../shared/data by default.

No generator runs: this is the gate alone. `edgerag eval qa` reports the gate and the model together.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import DATA, bench_home

from edgerag.cli.common import progress_bars
from edgerag.config import load_settings
from edgerag.evaluate.corpus import scratch_collection
from edgerag.evaluate.datasets import QADataset, load_beir, load_hotpot, load_squad
from edgerag.evaluate.qa import wrong_hits

THRESHOLDS = [round(0.05 * i, 2) for i in range(0, 17)]


def features(engine, question: str, hits) -> tuple[float, float]:
    """(best cosine, coverage) of the shown passages, as the gate (AnswerEngine.relevant) computes them; (-1, 0)
    when nothing is shown."""
    return (engine.similarity(hits, question), engine.coverage(hits, question).share) if hits else (-1.0, 0.0)


def open_engine(settings, name: str, contexts):
    from edgerag.embed import load_active_embedder
    from edgerag.generate.answer import AnswerEngine
    from edgerag.retrieve import Retriever

    embedder = load_active_embedder(settings)
    collection = scratch_collection(settings, name, contexts, embedder)
    return collection, AnswerEngine(Retriever.from_settings(collection, embedder, settings), None, settings)


def qa_features(settings, dataset: QADataset) -> list[dict]:
    """One row per question: its article (for the split) and the gate's inputs in both conditions."""
    collection, engine = open_engine(settings, dataset.name, dataset.contexts.values())
    rows = []
    with collection, progress_bars() as bars:
        task = bars.add_task(dataset.name, total=len(dataset.items), info="")
        for item in dataset.items:
            bars.advance(task)
            shown = engine.retrieve(item.question)  # as `ask` retrieves; the gate reuses its query embedding
            wrong, _ = wrong_hits(engine.retriever, item, engine.mode, engine.top_k)
            rows.append({"group": item.gold[0].rsplit("-", 1)[0], "answerable": features(engine, item.question, shown),
                         "unanswerable": features(engine, item.question, wrong) if wrong else None})
    return rows


def refused(row_features, min_relevance: float, min_coverage: float) -> bool:
    cosine, coverage = row_features
    return cosine < min_relevance or coverage < min_coverage


def rate(rows: list[dict], condition: str, min_relevance: float, min_coverage: float) -> float:
    judged = [r[condition] for r in rows if r[condition] is not None]
    return 100.0 * sum(refused(f, min_relevance, min_coverage) for f in judged) / max(len(judged), 1)


def choose(answerable_sets: list[list[dict]], min_relevance: float, budget: float) -> float:
    """The largest coverage threshold that keeps, on every one of these sets, refusals of answerable questions
    within `budget` points of the cosine gate's own."""
    def within(rows, t):
        return rate(rows, "answerable", min_relevance, t) <= rate(rows, "answerable", min_relevance, 0.0) + budget
    return max(t for t in THRESHOLDS if all(within(rows, t) for rows in answerable_sets))


def curve(label: str, rows: list[dict], min_relevance: float) -> None:
    print(f"\n{label} ({len(rows)} questions): refused %, answerable / unanswerable")
    print("| min_coverage | answerable | unanswerable |\n|---|---|---|")
    for t in THRESHOLDS:
        unanswerable = rate(rows, "unanswerable", min_relevance, t) if any(r["unanswerable"] for r in rows) else None
        print(f"| {t:.2f} | {rate(rows, 'answerable', min_relevance, t):.1f} "
              f"| {'–' if unanswerable is None else f'{unanswerable:.1f}'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=DATA / "qa" / "xquad_en" / "xquad.en.json")
    parser.add_argument("--hotpot", type=Path, help="a HotpotQA distractor JSON, a second held-out set",
                        default=DATA / "distractor" / "hotpotqa_distractor_dev100" / "hotpot_dev_distractor_first100.json")
    parser.add_argument("--beir", type=Path, default=DATA / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip",
                        help="a BEIR zip/folder whose queries the threshold must not refuse either")
    parser.add_argument("--budget", type=float, default=5.0,
                        help="points of refusal on answerable questions the coverage test may add (default 5)")
    args = parser.parse_args()
    bench_home()
    settings = load_settings()
    cut = settings.min_relevance
    squad = load_squad(args.squad)
    rows = qa_features(settings, squad)
    groups = sorted({r["group"] for r in rows})
    tune = [r for r in rows if groups.index(r["group"]) % 2 == 0]
    test = [r for r in rows if groups.index(r["group"]) % 2 == 1]
    beir = load_beir(args.beir) if args.beir else None
    brows = beir_features(settings, beir) if beir else []
    chosen = choose([tune, brows] if brows else [tune], cut, args.budget)
    curve(f"{squad.name}, tuning half", tune, cut)
    if brows:
        curve(f"{beir.name} queries (all have relevant documents)", brows, cut)
    print(f"\nchosen: min_coverage {chosen:.2f}, the largest that keeps refusals of answerable questions within "
          f"{args.budget:g} points of the cosine gate's (min_relevance {cut}) on the {squad.name} tuning half"
          + (f" and the {beir.name} queries" if brows else ""))
    summary = [("cosine gate alone", 0.0), (f"with min_coverage {chosen:.2f}", chosen)]
    print("\n| set | gate | refuses answerable % | refuses unanswerable % |\n|---|---|---|---|")
    for gate, threshold in summary:
        print(f"| {squad.name}, held-out half ({len(test)}) | {gate} | {rate(test, 'answerable', cut, threshold):.1f} "
              f"| {rate(test, 'unanswerable', cut, threshold):.1f} |")
    if args.hotpot:
        hotpot = load_hotpot(args.hotpot)
        hrows = qa_features(settings, hotpot)
        for gate, threshold in summary:
            print(f"| {hotpot.name} ({len(hrows)}) | {gate} | {rate(hrows, 'answerable', cut, threshold):.1f} "
                  f"| {rate(hrows, 'unanswerable', cut, threshold):.1f} |")
    curve(f"{squad.name}, held-out half", test, cut)


def beir_features(settings, beir) -> list[dict]:
    """Open retrieval for every query of a BEIR set: all have relevant documents, so none should be refused."""
    collection, engine = open_engine(settings, beir.name, beir.corpus.values())
    rows = []
    with collection, progress_bars() as bars:
        task = bars.add_task(beir.name, total=len(beir.queries), info="")
        for query in beir.queries.values():
            bars.advance(task)
            shown = engine.retrieve(query)
            rows.append({"answerable": features(engine, query, shown), "unanswerable": None})
    return rows

if __name__ == "__main__":
    main()
