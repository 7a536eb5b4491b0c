"""Metrics, each the standard definition so numbers compare with published ones, plus bootstrap intervals.

- Answers: SQuAD v1.1's official normalisation, exact match and token F1 (max over the gold answers).
- Citations: what the model wrote (its [n] markers and how many the fact-level checker confirms) apart from what
  the checker attributed to unmarked sentences (`check_metrics`).
- Retrieval: trec_eval's definitions as BEIR computes them with pytrec_eval: nDCG@k with linear graded gain
  rel/log2(rank+1) and the ideal DCG over all judged relevant documents; Recall@k over documents with grade > 0;
  MRR@k = 1/rank of the first relevant document within k.
- Uncertainty: percentile bootstrap over questions (Efron & Tibshirani 1993); for two systems on the same
  questions, a paired bootstrap of the per-question differences (Koehn 2004), which is far tighter than comparing
  two separate intervals because per-question difficulty cancels out.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..generate.citations import strip_markers
from ..text import words

VERDICTS = ("better", "no different", "worse")

# -- answers -----------------------------------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse whitespace (SQuAD v1.1 evaluate script)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds)) if golds else 0.0


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    return max((_f1(prediction, g) for g in golds), default=0.0)


def contains_answer(text: str, golds: Sequence[str]) -> float:
    """1 when a normalised gold answer appears in the normalised text as whole words. Fairer than EM for a
    generator that answers in a sentence ("The game was played on February 7, 2016 [1].")."""
    hay = f" {normalize_answer(text)} "
    return float(any(n and f" {n} " in hay for n in (normalize_answer(g) for g in golds)))


def restates(reply: str, question: str, share: float = 0.8) -> bool:
    """At least `share` of the reply's words (citation markers aside) are words of the question: a model trained
    on targets that repeat their cloze question answers real questions with their own words
    (docs/results/xquad-finetune-v7: 42% of its answers, 3 of which held the answer)."""
    said = words(strip_markers(reply))
    asked = set(words(question))
    return bool(said) and sum(w in asked for w in said) >= share * len(said)


def answer_length(text: str) -> int:
    """Words in the answer (the package's tokenizer: "two-year" is two), citation markers not counted."""
    return len(words(strip_markers(text)))


def check_metrics(answer) -> dict:
    """What the model wrote vs what the checker found, per answer (None where undefined: a refusal has no
    claims to support, an answer without markers no model-citation precision)."""
    if answer.not_found:
        return {"model_markers": None, "model_citation_precision": None, "attribution_rate": None,
                "answer_supported": None, "answer_contradicted": None, "checks": []}
    claims = [s for s in answer.sentences if s.checked]
    written = [(n, s) for s in answer.sentences for n in s.cited]
    return {
        "model_markers": float(bool(written)),
        "model_citation_precision": (sum(n in s.supported_by for n, s in written) / len(written)) if written else None,
        "attribution_rate": (sum(s.attributed for s in claims) / len(claims)) if claims else None,
        "answer_supported": float(bool(claims) and all(s.supported_by for s in claims)),
        "answer_contradicted": float(any(s.status == "contradicted" for s in claims)),
        "checks": [{"text": s.text, "status": s.status, "cited": s.cited, "supported_by": s.supported_by,
                    "reasons": s.reasons} for s in answer.sentences],
    }


# -- retrieval ---------------------------------------------------------------------------------------------------
def _relevant(qrels: Mapping[str, int]) -> dict[str, int]:
    return {d: g for d, g in qrels.items() if g > 0}


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    rel = _relevant(qrels)
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return dcg / ideal if ideal > 0 else 0.0


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    rel = _relevant(qrels)
    return len(rel.keys() & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    rel = _relevant(qrels)
    return next((1.0 / i for i, d in enumerate(ranked[:k], start=1) if d in rel), 0.0)


def relevant_ranks(ranked: Sequence[str], qrels: Mapping[str, int]) -> list[int]:
    """1-based ranks at which relevant documents were retrieved: with the count of relevant documents this gives
    Recall@k for every k up to the depth retrieved (the recall curve), without storing whole rankings."""
    rel = _relevant(qrels)
    return [i for i, d in enumerate(ranked, start=1) if d in rel]


def recall_curve(ranks: Sequence[int], n_relevant: int, ks: Iterable[int]) -> list[float]:
    return [sum(r <= k for r in ranks) / n_relevant if n_relevant else 0.0 for k in ks]


# -- citations ---------------------------------------------------------------------------------------------------
def citation_scores(cited: Iterable[int], relevant: Iterable[int]) -> tuple[float | None, float | None]:
    """Precision: share of the cited source numbers that are relevant (None when nothing is cited).
    Recall: share of the relevant sources shown to the model that it cited (None when none was shown)."""
    cited, relevant = set(cited), set(relevant)
    hit = len(cited & relevant)
    return (hit / len(cited) if cited else None), (hit / len(relevant) if relevant else None)


# -- uncertainty -------------------------------------------------------------------------------------------------
@dataclass
class Estimate:
    mean: float | None
    lo: float | None
    hi: float | None
    n: int

    def as_dict(self) -> dict:
        return asdict(self)

    def fmt(self, scale: float = 1.0, digits: int = 1) -> str:
        if self.mean is None:
            return "–"
        return f"{self.mean * scale:.{digits}f} [{self.lo * scale:.{digits}f}, {self.hi * scale:.{digits}f}]"


def _clean(values: Iterable) -> np.ndarray:
    return np.array([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))],
                    dtype=np.float64)


def _resample_means(data: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    # In blocks, so 1000 resamples of 10k questions do not allocate a 10M-element index array at once.
    out = np.empty(resamples)
    block = max(1, 2_000_000 // max(1, len(data)))
    for start in range(0, resamples, block):
        n = min(block, resamples - start)
        out[start:start + n] = data[rng.integers(0, len(data), size=(n, len(data)))].mean(axis=1)
    return out


def bootstrap_ci(values: Iterable, resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """Mean with a percentile-bootstrap interval. None/NaN values (metric undefined for that question) are
    left out; with no values the estimate is empty."""
    data = _clean(values)
    if len(data) == 0:
        return Estimate(None, None, None, 0)
    means = _resample_means(data, resamples, np.random.default_rng(seed))
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(data.mean()), float(lo), float(hi), len(data))


def paired_bootstrap(base: Sequence, candidate: Sequence, resamples: int = 1000, seed: int = 0,
                     confidence: float = 0.95, higher_is_better: bool = True) -> tuple[Estimate, str]:
    """(candidate − base) per question, its mean and bootstrap interval, and a verdict: 'better' when the whole
    interval favours the candidate, 'worse' when it favours the base, else 'no different'. Questions where
    either system's value is undefined are left out of the pairing."""
    if len(base) != len(candidate):
        raise ValueError("paired bootstrap needs the same questions for both systems")
    pairs = [(b, c) for b, c in zip(base, candidate) if _clean([b]).size and _clean([c]).size]
    diff = bootstrap_ci([c - b for b, c in pairs], resamples, seed, confidence)
    return diff, verdict(diff, higher_is_better)


def verdict(diff: Estimate, higher_is_better: bool = True) -> str:
    if diff.mean is None:
        return "no different"
    lo, hi = (diff.lo, diff.hi) if higher_is_better else (-diff.hi, -diff.lo)
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no different"
