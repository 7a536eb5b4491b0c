"""Parse [n] citations in an answer and check that each cited source supports the sentence citing it.

Support is measured two ways, because small models paraphrase and copy in equal measure:
- lexical: the share of the sentence's content words found in the source (stemmed by a crude suffix strip);
- semantic: embedder cosine between the sentence and the source passage.
A sentence is supported by a source when either passes its threshold. Sentences without a marker are matched
to the best-supporting source and marked `attributed` (found by us, not cited by the model); sentences no
source supports are flagged. Citations of numbers that were never given are flagged as invalid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

LEXICAL_MIN = 0.5
SEMANTIC_MIN = 0.65
MIN_CONTENT_WORDS = 2  # "Yes." or "See above." carry no claim to check

_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE = re.compile(r"(?<=[.!?])(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset("""a an and are as at be been but by can could did do does for from had has have he her his
how i if in into is it its may might not of on or our she so than that the their them there these they this those
to was we were what when where which who whom why will with would you your also about after before such very
only other some any more most then out over under up down per via""".split())


@dataclass
class CheckedSentence:
    text: str
    cited: list[int]  # source numbers the model wrote
    supported_by: list[int]  # cited (or attributed) sources that pass the support check
    invalid: list[int] = field(default_factory=list)  # cited numbers that were not among the sources
    attributed: bool = False  # no marker; we matched the supporting source ourselves
    checked: bool = True  # False for sentences too short to carry a claim

    @property
    def unsupported(self) -> bool:
        return self.checked and not self.supported_by


def content_words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def _stem(word: str) -> str:
    for suffix in ("ing", "edly", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def split_sentences(answer: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE.split(answer.strip()) if p.strip()]
    # re.split keeps trailing markers attached to the sentence before them only if the regex consumed them; the
    # lookbehind form above leaves markers like "... end. [2] Next" split off, so re-attach orphan markers.
    out: list[str] = []
    for part in parts:
        if out and _MARKER.fullmatch(part):
            out[-1] += " " + part
        else:
            out.append(part)
    return out


def markers(sentence: str) -> list[int]:
    found: list[int] = []
    for group in _MARKER.findall(sentence):
        found.extend(int(n) for n in re.split(r"\s*[,;]\s*", group))
    return list(dict.fromkeys(found))


def strip_markers(sentence: str) -> str:
    return re.sub(r"\s+([.!?,;:])", r"\1", _MARKER.sub("", sentence)).strip()


def lexical_support(sentence: str, source: str) -> float:
    words = set(content_words(sentence))
    if not words:
        return 0.0
    return len(words & set(content_words(source))) / len(words)


def best_passage(sentence: str, source: str, max_chars: int = 300) -> str:
    """The source sentence that shares the most content words with `sentence` (what the UI highlights)."""
    candidates = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", source.strip()) if s.strip()] or [source]
    words = set(content_words(sentence))
    best = max(candidates, key=lambda s: len(words & set(content_words(s))))
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"


def check_answer(answer: str, sources: list[str], embed=None) -> list[CheckedSentence]:
    """sources[i] is the text of source [i+1]. embed(list[str]) -> normalised vectors, optional."""
    sentences = split_sentences(answer)
    plain = [strip_markers(s) for s in sentences]
    semantic = None
    if embed is not None and sentences and sources:
        vecs = embed(plain + list(sources))
        semantic = np.asarray(vecs[: len(plain)]) @ np.asarray(vecs[len(plain):]).T

    def supports(i: int, n: int) -> bool:
        lex = lexical_support(plain[i], sources[n - 1])
        sem = float(semantic[i, n - 1]) if semantic is not None else 0.0
        return lex >= LEXICAL_MIN or sem >= SEMANTIC_MIN

    out = []
    for i, sentence in enumerate(sentences):
        cited = markers(sentence)
        valid = [n for n in cited if 1 <= n <= len(sources)]
        invalid = [n for n in cited if n not in valid]
        checked = len(content_words(plain[i])) >= MIN_CONTENT_WORDS
        if not checked:
            out.append(CheckedSentence(sentence, cited, [], invalid, checked=False))
            continue
        if cited:
            out.append(CheckedSentence(sentence, cited, [n for n in valid if supports(i, n)], invalid))
            continue
        scored = [(lexical_support(plain[i], src) + (float(semantic[i, j]) if semantic is not None else 0.0), j + 1)
                  for j, src in enumerate(sources)]
        best = max(scored, default=(0.0, 0))[1]
        supported = [best] if best and supports(i, best) else []
        out.append(CheckedSentence(sentence, [], supported, [], attributed=bool(supported)))
    return out
