"""The package's sentence splitter (edgerag/text.py, a regex with an abbreviation list) against pysbd, the
rule-based "golden rules" segmenter, on the 240 XQuAD-en paragraphs: agreement and speed. The cases it must get
right (abbreviations, decimals, citation markers) are tests in tests/test_citations.py.

Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/sentences.py   (pysbd: pip install pysbd)
"""

import json
import time

from _common import DATA, report

import edgerag  # noqa: F401  (first: network features off)
from edgerag.text import split_sentences

CASES = [  # (text, the split we want)
    ("Dr. Smith met Mr. Jones at 3.5 p.m. on Jan. 5. They talked, e.g. about coffee.",
     ["Dr. Smith met Mr. Jones at 3.5 p.m. on Jan. 5.", "They talked, e.g. about coffee."]),
    ("The U.S. Army was founded in 1775. Convention No. 81 applies.",
     ["The U.S. Army was founded in 1775.", "Convention No. 81 applies."]),
    ("It ended.[1] Next one [2][3]. Done [1-3].", ["It ended.[1]", "Next one [2][3].", "Done [1-3]."]),
    ("Swallows return every spring.\n[1] (a.md, T) The swallows return.",
     ["Swallows return every spring.", "[1] (a.md, T) The swallows return."]),
    ("The answer is no. The next one, etc. Then. So did I. Fine!",
     ["The answer is no.", "The next one, etc.", "Then.", "So did I.", "Fine!"]),
]


def best_time(fn, texts, rounds=3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - t0)
    return best / len(texts)


def main() -> None:
    data = json.loads((DATA / "qa" / "xquad_en" / "xquad.en.json").read_text(encoding="utf-8"))
    paragraphs = [p["context"] for article in data["data"] for p in article["paragraphs"]]
    ours = [split_sentences(p) for p in paragraphs]
    rows = [("edgerag.text", f"{best_time(split_sentences, paragraphs) * 1e3:.3f} ms/paragraph, "
                             f"{sum(got == want for text, want in CASES for got in [split_sentences(text)])}/"
                             f"{len(CASES)} cases")]
    try:
        import pysbd
    except ImportError:
        rows.append(("pysbd", "not installed (pip install pysbd)"))
    else:
        seg = pysbd.Segmenter(language="en", clean=False)

        def theirs(text):
            return [s.strip() for s in seg.segment(text) if s.strip()]

        same = sum(a == theirs(p) for a, p in zip(ours, paragraphs))
        rows.append(("pysbd 0.3", f"{best_time(theirs, paragraphs) * 1e3:.3f} ms/paragraph, "
                                  f"{sum(theirs(text) == want for text, want in CASES)}/{len(CASES)} cases"))
        rows.append(("same split", f"{same}/{len(paragraphs)} XQuAD paragraphs"))
    report(f"sentence splitting, {len(paragraphs)} XQuAD-en paragraphs", rows)


if __name__ == "__main__":
    main()
