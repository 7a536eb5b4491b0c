"""Where a finetuned model's wrong answers come from: of the answers that do not contain the gold answer, how many
copy text verbatim from the gold passage, and whether that copy lies in the answer's own sentence (the right sentence,
the wrong words of it) or in another one (the wrong sentence). Reads the results of `edgerag eval qa --oracle` runs;
the gold passages come from the SQuAD file they ran on.

    .venv/bin/python bench/answer_misses.py RUN_DIR [RUN_DIR ...] [--squad FILE]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from _common import DATA

from edgerag.evaluate.datasets import load_squad
from edgerag.finetune.questions import sentences_of


def contexts(path: Path) -> dict[str, str]:
    """question id -> its paragraph."""
    squad = load_squad(path)
    return {item.id: squad.contexts[item.gold[0]].text for item in squad.items}


def kind_of_miss(prediction: str, answers: list[str], context: str) -> str:
    """'not copied' | 'answer's sentence' | 'another sentence' for an answer without the gold answer."""
    copy = prediction.strip().rstrip(".").strip()
    if not copy or copy not in context:
        return "not copied"
    sentences = sentences_of(context)
    holding_answer = [s for s in sentences if any(a in s for a in answers)]
    return "answer's sentence" if any(copy in s for s in holding_answer) else "another sentence"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="eval qa run folders (with results.jsonl)")
    parser.add_argument("--squad", type=Path, default=DATA / "qa" / "xquad_en" / "xquad.en.json")
    args = parser.parse_args()
    paragraph_of = contexts(args.squad)
    print("| run | system | answers | refused | contain the gold answer | miss: copied from the answer's sentence "
          "| miss: copied from another sentence | miss: not copied verbatim |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        results = [json.loads(line) for line in (run / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        for system in sorted({r["system"] for r in results}):
            mine = [r for r in results if r["system"] == system and r["condition"] == "oracle"]
            if not mine:
                continue
            kinds = Counter(kind_of_miss(r["prediction"], r["answers"], paragraph_of[r["item_id"]])
                            for r in mine if not r["contains"] and not r["refusal"])
            right_sentence = kinds["answer's sentence"]
            print(f"| {run.name} | {system} | {len(mine)} | {sum(r['refusal'] for r in mine):.0f} "
                  f"| {sum(r['contains'] for r in mine):.0f} | {right_sentence} "
                  f"| {kinds['another sentence']} | {kinds['not copied']} |")


if __name__ == "__main__":
    main()
