"""What a finetuned model could score if it copied its training targets perfectly: F1 and contains of
`finetune.data.answer_sentence` windows against the gold answers, per target width, on the XQuAD-en questions whose
answer lies within one sentence of its paragraph. The replies are graded against 2-3 word gold spans, so the width
caps F1 (the `--target-words` default comes from this and from training runs: docs/results/xquad-finetune-v14).

    .venv/bin/python bench/target_bound.py [--widths 4,6,8,12]
"""

from __future__ import annotations

import argparse

from _common import DATA

from edgerag.evaluate.datasets import load_squad
from edgerag.evaluate.metrics import contains_answer, token_f1
from edgerag.finetune.data import answer_sentence
from edgerag.finetune.questions import sentences_of


def one_sentence_questions(path) -> list[tuple[str, list[str]]]:
    """(the sentence holding the first gold answer, all gold answers) per question."""
    squad = load_squad(path)
    sentences = {key: sentences_of(context.text) for key, context in squad.contexts.items()}
    items = []
    for item in squad.items:
        sentence = next((s for s in sentences[item.gold[0]] if item.answers[0] in s), None)
        if sentence:
            items.append((sentence, item.answers))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="4,6,8,12")
    args = parser.parse_args()
    items = one_sentence_questions(DATA / "qa" / "xquad_en" / "xquad.en.json")
    print(f"{len(items)} XQuAD-en questions answered within one sentence\n")
    print("| target words | perfect-copy F1 | perfect-copy contains |\n|---|---|---|")
    for width in (int(w) for w in args.widths.split(",")):
        targets = [(answer_sentence(sentence, golds[0], width) or "", golds) for sentence, golds in items]
        f1 = sum(token_f1(t, golds) for t, golds in targets) / len(items)
        contains = sum(contains_answer(t, golds) for t, golds in targets) / len(items)
        print(f"| {width} | {100 * f1:.1f} | {100 * contains:.1f} |")


if __name__ == "__main__":
    main()
