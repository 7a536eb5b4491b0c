"""How much of the answer the focus keeps: sources cut to the sentences around the one that best covers the question.

The ask pipeline cuts each source to `focus_words` words around its sentence with the best coverage of the
question (retrieve/context.py focus) before the model reads it. This measures, per width, what that costs and
saves, with no generator:
- kept: the share of questions whose gold answer is still in what the model is shown, with the gold passage(s)
  alone (`eval qa --oracle`) and with open retrieval (what `ask` shows: the top-k, assembled);
- words: the mean number of words of sources the model reads.
The baseline is width 0: whole chunks, as before the focus. What the width does to the model's answers is measured
by `edgerag eval qa` with EDGERAG_FOCUS_WORDS=W (docs/results/focus).

    EDGERAG_BENCH_HOME=... .venv/bin/python bench/focus.py [--squad FILE] [--hotpot FILE|none]

XQuAD-en and HotpotQA (first 100; extractive answers only: "yes"/"no" cannot be found in a text) by default.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from _common import DATA, bench_home
from answerability import open_engine

from edgerag.cli.common import progress_bars
from edgerag.config import load_settings
from edgerag.evaluate import metrics as M
from edgerag.evaluate.datasets import QADataset, load_hotpot, load_squad
from edgerag.evaluate.qa import extractive, oracle_hits
from edgerag.retrieve.context import assemble

WIDTHS = [0, 20, 30, 40, 60, 80, 120]


def shown_text(engine, hits, question: str, width: int) -> list[str]:
    """The source texts the model would read at this width (as AnswerEngine.ask cuts and assembles them)."""
    engine.settings = replace(engine.settings, focus_words=width)
    cut = engine.focused(hits, question)
    return [h.text for h in assemble(cut, engine.generator.count_tokens, engine.budget(question, []))]


def measure(settings, dataset: QADataset) -> tuple[int, dict[str, dict[int, tuple[float, float]]]]:
    """(questions measured, {condition: {width: (answer kept %, mean words shown)}})."""
    collection, engine = open_engine(settings, dataset.name, dataset.contexts.values())
    engine.generator = _TokenCounter(settings.context_tokens)
    items = [i for i in dataset.items if extractive(i.answers)]
    out = {c: {w: [0, 0] for w in WIDTHS} for c in ("oracle", "open")}
    with collection, progress_bars() as bars:
        task = bars.add_task(dataset.name, total=len(items), info="")
        for item in items:
            bars.advance(task)
            hits = {"oracle": oracle_hits(dataset, item), "open": engine.retrieve(item.question)}
            for condition, found in hits.items():
                for width in WIDTHS:
                    texts = shown_text(engine, found, item.question, width)
                    out[condition][width][0] += bool(M.contains_answer(" ".join(texts), item.answers))
                    out[condition][width][1] += sum(len(t.split()) for t in texts)
    n = max(len(items), 1)
    return len(items), {c: {w: (100.0 * kept / n, words / n) for w, (kept, words) in by.items()}
                        for c, by in out.items()}


class _TokenCounter:
    """What AnswerEngine.budget asks of a generator, without loading one (about 4 tokens per 3 words)."""

    def __init__(self, n_ctx: int):
        self.n_ctx = n_ctx

    def count_tokens(self, text: str) -> int:
        return len(text.split()) * 4 // 3


def table(name: str, result: dict) -> None:
    print(f"\n{name}: gold answer kept in what the model reads, and the words it reads")
    print("| focus_words | oracle: kept % | oracle: words | open: kept % | open: words |\n|---|---|---|---|---|")
    for width in WIDTHS:
        (ok, ow), (pk, pw) = result["oracle"][width], result["open"][width]
        print(f"| {width or 'whole (baseline)'} | {ok:.1f} | {ow:.0f} | {pk:.1f} | {pw:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=DATA / "qa" / "xquad_en" / "xquad.en.json")
    hotpot = DATA / "distractor" / "hotpotqa_distractor_dev100" / "hotpot_dev_distractor_first100.json"
    parser.add_argument("--hotpot", type=Path, default=hotpot, help="a HotpotQA distractor JSON; 'none' skips it")
    args = parser.parse_args()
    bench_home()
    settings = load_settings()
    for dataset in (load_squad(args.squad), None if args.hotpot.name == "none" else load_hotpot(args.hotpot)):
        if dataset is not None:
            n, result = measure(settings, dataset)
            table(f"{dataset.name} ({n} questions with an extractive answer)", result)


if __name__ == "__main__":
    main()
