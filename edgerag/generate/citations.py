"""Parse [n] citations in an answer and check that each cited source supports the sentence citing it.

A source supports a sentence when both hold:
- it is about the same thing: the share of the sentence's content words found in the source (lexical), or the
  embedder cosine between sentence and source (semantic), passes its threshold; small models paraphrase and
  copy in equal measure, so either is enough;
- it states the same facts: every number (with its unit), date and capitalised name in the sentence is in the
  source, normalised ("two-year" = "2 years", "2,000" = "2000", case), and the source passage closest to the
  sentence does not say the opposite (one of them negated). Overlap alone passed "The warranty lasts 1 year and
  20 days [1]" against "a two-year limited warranty": a wrong fact next to a verified-looking quote.
A sentence on the same topic as a source but with a fact the source does not state, or that the source negates,
is *contradicted*; one no source is about is *unsupported*; each carries the reasons ("1 year not in [1]").
Sentences without a marker are matched to the best-supporting source and marked `attributed` (found by us, not
cited by the model). Given the question, a sentence of a few words ("in 1943 [1].") is checked as its answer: the
source must be about question and answer together, and state every word of the answer, its numbers in the unit the
question asks for ("18" answering "How many seconds…?" is not supported by a score of 20–18 where the source's
seconds are 17); one made only of the question's words is unsupported. Citations of numbers that were never given
are flagged as invalid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..text import (UNITS, Quantity, content_words, name_stems, names, negated, quantities,
                    split_sentences, stem, words)

LEXICAL_MIN = 0.5
SEMANTIC_MIN = 0.65
MIN_CONTENT_WORDS = 2  # "Yes." or "See above." carry no claim to check (unless they state a number or name)
# A reply sentence this short, given the question, is read as the answer to it ("in 1943 [1].", "black and white
# [1]."): finetuned models answer in a few words, and alone such a fragment carries no claim to check.
SHORT_ANSWER_WORDS = 5
# Replies that copy no source, so are not checked as an answer: a yes or no needs a reading of polarity we do not do.
REPLY_WORDS = frozenset("yes no yeah nope sure ok okay correct right true false indeed thanks thank see above "
                        "below".split())
MAX_RANGE = 20  # "[1-3]" expands; "[1-999]" is not a citation

_CHOICE = re.compile(r"\bor\b", re.IGNORECASE)  # "A or B?": its answer is one of its own words
# "How many seconds…?", "What percentage…?": the unit of the number a short answer gives.
_COUNTED = re.compile(r"\bhow\s+(?:many|much)\s+(?:of\s+)?([^\W\d_]+)(?:\s+([^\W\d_]+))?|\bwhat\s+(percent(?:age)?)\b",
                      re.IGNORECASE)
_MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:[,;–-]|and)\s*\d+)*)\s*\]")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\s*\d+(?:\s*(?:[,;–-]|and)\s*\d+)*\s*\])+")


@dataclass
class CheckedSentence:
    text: str
    cited: list[int]  # source numbers the model wrote
    supported_by: list[int]  # cited (or attributed) sources that pass the support check
    invalid: list[int] = field(default_factory=list)  # cited numbers that were not among the sources
    attributed: bool = False  # no marker; we matched the supporting source ourselves
    checked: bool = True  # False for sentences too short to carry a claim, and echoed source labels
    contradicted: bool = False  # a source on the same topic states other facts, or the opposite
    reasons: list[str] = field(default_factory=list)  # why it is not supported ("1 year not in [1]")
    against: list[int] = field(default_factory=list)  # no marker, contradicted: the source on its topic

    @property
    def unsupported(self) -> bool:
        return self.checked and not self.supported_by

    @property
    def status(self) -> str:
        """supported | contradicted | unsupported | unchecked"""
        if not self.checked:
            return "unchecked"
        if self.supported_by:
            return "supported"
        return "contradicted" if self.contradicted else "unsupported"


# -- markers and sentences ---------------------------------------------------------------------------------------
def markers(sentence: str) -> list[int]:
    """Source numbers cited in `sentence`, in order, once each: "[1][2]", "[1, 2]", "[1; 2]", "[1-3]"."""
    found: list[int] = []
    for group in _MARKER.findall(sentence):
        for part in re.split(r"\s*(?:[,;]|and)\s*", group):
            numbers = [int(n) for n in re.sub(r"\s", "", part).replace("–", "-").split("-") if n]
            if len(numbers) == 2 and numbers[0] <= numbers[1] and numbers[1] - numbers[0] < MAX_RANGE:
                found.extend(range(numbers[0], numbers[1] + 1))
            else:  # a lone number, or what only looks like a range ("[3-03-24]" from a date): each number
                found.extend(numbers)
    return list(dict.fromkeys(found))


def strip_markers(sentence: str) -> str:
    return re.sub(r"\s+([.!?,;:])", r"\1", _MARKER.sub("", sentence)).strip()


# A line that repeats a source the way the prompt shows it: "[1] (manual.md, Warranty) The K3 carries…".
_ECHO_LINE = re.compile(r"^[ \t]*((?:\[\s*\d+[^\]\n]*\][ \t]*)+)\(.*$", re.MULTILINE)


def split_answer(answer: str) -> list[tuple[str, bool]]:
    """(sentence, is_claim) in order. Markers that open a sentence close the previous one when it has none
    ("…grinder. [2] The hopper…"), else they belong to the sentence they open. A line echoing a source
    ("…every spring.\n[1] (a.md) The swallows…") gives its marker to the sentence before it, if that has none,
    and is no claim itself: small models often answer, then repeat the source they used."""
    out: list[list] = []
    pos = 0
    for echo in _ECHO_LINE.finditer(answer):
        out += _sentences(answer[pos:echo.start()], out)
        if out and out[-1][1] and not markers(out[-1][0]):
            out[-1][0] = f"{out[-1][0]} {echo.group(1).strip()}"
        out.append([echo.group(0).strip(), False])
        pos = echo.end()
    out += _sentences(answer[pos:], out)
    return [(text, claim) for text, claim in out]


def _sentences(text: str, before: list[list]) -> list[list]:
    out: list[list] = []
    for sentence in split_sentences(text.strip()):
        lead = _LEADING_MARKERS.match(sentence)
        previous = out[-1] if out else (before[-1] if before and before[-1][1] else None)
        if lead and previous is not None and not markers(previous[0]):
            previous[0] = f"{previous[0]} {lead.group(0).strip()}"
            sentence = sentence[lead.end():].strip()
            if not sentence:
                continue
        out.append([sentence, True])
    return out


# -- support -----------------------------------------------------------------------------------------------------
def lexical_support(sentence: str, source: str) -> float:
    words_ = set(content_words(sentence))
    if not words_:
        return 0.0
    return len(words_ & set(content_words(source))) / len(words_)


@dataclass
class Source:
    """What the check needs of one source, computed once."""
    text: str
    content: set
    stems: set
    quantities: list[Quantity]
    sentences: list[str]

    @classmethod
    def of(cls, text: str) -> "Source":
        sentences = split_sentences(text) or [text]
        return cls(text, set(content_words(text)), name_stems(text), quantities(text), sentences)


@dataclass
class Support:
    """One claim against one source."""
    score: float  # lexical + semantic, to rank sources
    related: bool  # same topic (overlap or cosine passes)
    missing: list[str]  # the claim's numbers/names the source does not state
    opposite: str | None  # the source passage that negates the claim

    @property
    def ok(self) -> bool:
        return self.related and not self.missing and self.opposite is None

    def reasons(self, ref: str) -> list[str]:
        """Why `ref` (e.g. "[1]") does not support the claim, in words a user reads."""
        if not self.related:
            return [f"{ref} is about something else"]
        out = [f"{m} not in {ref}" for m in self.missing]
        if self.opposite:
            out.append(f"{ref} says otherwise: “{_short(self.opposite)}”")
        return out


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _has_quantity(q: Quantity, source: Source) -> bool:
    """Does the source state this number, with this unit, about the same thing?
    - unit: must agree; a bare number in the source counts only if the source never gives that unit a number;
    - context (numbers without a unit): some occurrence shares a word around it ("9 sacks" is not "9 starts"),
      unless the source states no number about the claim's words at all (a paraphrase we cannot bind)."""
    unit_used = q.unit is not None and any(s.unit == q.unit for s in source.quantities)
    same = [s for s in source.quantities if math.isclose(s.value, q.value, rel_tol=1e-9)
            and (q.unit is None or s.unit == q.unit or (s.unit is None and not unit_used))]
    if not same or not q.context or q.unit:  # a unit already says what the number counts
        return bool(same)
    if any(s.context & q.context for s in same):
        return True
    return not any(s.context & q.context for s in source.quantities)


# "How many pounds": weight or money; "how many degrees": angle or temperature. Not read as units.
_AMBIGUOUS_UNITS = frozenset("pound pounds degree degrees".split())
# "How many of the seconds": the counted word comes after these.
_DETERMINERS = frozenset("the its their his her these those our your my".split())


def counted_unit(question: str) -> tuple[str, str] | None:
    """(the word as written, its unit) when a "how many / how much / what percentage" question counts a unit:
    "How many seconds…?" -> ("seconds", "second"). None otherwise: "How many tackles…?" counts a thing, whose
    number a source may state next to any of several words ("killed 7 and injured 12 people"), too loosely bound to
    test; "How much does it cost?" names nothing counted."""
    match = _COUNTED.search(question)
    if not match:
        return None
    if match.group(3):
        return "percent", "percent"
    first, second = match.group(1), match.group(2)
    word = (second if first.lower() in _DETERMINERS else first) or ""
    unit = UNITS.get(word.lower()) if word.lower() not in _AMBIGUOUS_UNITS else None
    return (word, unit) if unit else None


def answer_quantities(claim: str, asked: str = "") -> list[Quantity]:
    """The claim's numbers. A short answer's bare numbers take the unit its question counts: "18" answering "How many
    seconds…?" is 18 seconds, so when the source counts seconds (17 of them), its "20–18" score does not support it.
    Not an answer that says what it counts ("27-30%", "two terms"), nor a year ("1939" to "How many years…?" is a
    date)."""
    found = quantities(claim)
    asked_for = counted_unit(asked) if asked else None
    if not asked_for or any(q.unit or q.phrase != q.surface for q in found):
        return found
    word, unit = asked_for
    return [q if _looks_like_year(q) else Quantity(q.value, unit, q.surface, q.context, f"{q.surface} {word}")
            for q in found]


def _looks_like_year(q: Quantity) -> bool:
    return q.value.is_integer() and 1000 <= q.value <= 2100 and q.surface.isdigit()


def missing_facts(claim: str, source: Source, asked: str = "") -> list[str]:
    """The numbers, dates and names of `claim` that `source` does not state, as written in the claim. `asked`: the
    question a short answer replies to (it may give the unit of the answer's bare numbers)."""
    missing = [q.phrase for q in answer_quantities(claim, asked) if not _has_quantity(q, source)]
    missing += [n.surface for n in names(claim) if not all(s in source.stems for s in n.stems)]
    return list(dict.fromkeys(missing))


def closest_sentence(claim: str, sentences: list[str]) -> tuple[str, float]:
    """The source sentence sharing the most of the claim's content words, and that share."""
    words_ = set(content_words(claim))
    best, share = sentences[0] if sentences else "", 0.0
    for s in sentences:
        overlap = len(words_ & set(content_words(s))) / max(1, len(words_))
        if overlap > share:
            best, share = s, overlap
    return best, share


def _number_words(text: str) -> set[str]:
    """The words of `text` that are part of a number it states ("3", "three", "2 million"): missing_facts checks
    those, reading "3" and "three" as the same. A bare "one" is not among them (quantities reads it as a pronoun)."""
    return {w for q in quantities(text) for w in words(q.surface)}


def missing_words(claim: str, source: Source) -> list[str]:
    """The claim's content words the source does not use (stems compared), as written in the claim; the words of
    its numbers are left to missing_facts."""
    numeric = _number_words(claim)
    return list(dict.fromkeys(w for w in words(claim) if w not in numeric
                              and (stems := content_words(w)) and stems[0] not in source.content))


def support(claim: str, source: Source, semantic: float = 0.0, asked: str = "") -> Support:
    """`asked`: the question a short answer replies to. The topic is then judged on question and answer together,
    every word of the answer must be the source's (a fragment is copied or it is not stated there), and there is no
    polarity test (a fragment has none of its own: "black and white" is not the opposite of a passage that says
    "did not include sound"). `semantic` is the cosine of the same text the topic is judged on."""
    lexical = lexical_support(f"{asked} {claim}" if asked else claim, source.text)
    related = lexical >= LEXICAL_MIN or semantic >= SEMANTIC_MIN
    missing = missing_facts(claim, source, asked) if related else []
    opposite = None
    if related and asked:
        missing += [f"“{w}”" for w in missing_words(claim, source)]
    elif related:
        passage, share = closest_sentence(claim, source.sentences)
        if share >= LEXICAL_MIN and negated(claim) != negated(passage):
            opposite = passage
    return Support(lexical + semantic, related, missing, opposite)


def is_claim(plain: str) -> bool:
    return len(content_words(plain)) >= MIN_CONTENT_WORDS or bool(quantities(plain) or names(plain))


def is_short_answer(plain: str) -> bool:
    said = words(plain)
    return 0 < len(said) <= SHORT_ANSWER_WORDS and any(content_words(w) for w in said if w not in REPLY_WORDS)


def as_answered(plain: str, question: str) -> str:
    """What a sentence is judged on: a short answer together with its question ("1943" alone says nothing)."""
    return f"{question.strip()} {plain}" if question.strip() and is_short_answer(plain) else plain


def best_passage(sentence: str, source: str, max_chars: int = 300) -> str:
    """The source sentence that shares the most content words with `sentence` (what the UI highlights)."""
    candidates = split_sentences(source.strip()) or [source]
    words_ = set(content_words(sentence))
    best = max(candidates, key=lambda s: len(words_ & set(content_words(s))))
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"


# -- the answer --------------------------------------------------------------------------------------------------
def _judge_cited(plain: str, cited: list[int], srcs: list[Source], sem_row, index: dict[int, int],
                 asked: str = "") -> CheckedSentence:
    """index: source number -> position in srcs."""
    results = {n: support(plain, srcs[index[n]], float(sem_row[index[n]]) if sem_row is not None else 0.0, asked)
               for n in cited}
    ok = [n for n, r in results.items() if r.ok]
    related = [n for n, r in results.items() if r.related and r.opposite is None]
    if not ok and len(related) > 1:  # facts spread over the cited sources: "born in 1900 [1] in Paris [2]"
        merged = Source.of("\n\n".join(srcs[index[n]].text for n in related))
        if not missing_facts(plain, merged, asked) and not (asked and missing_words(plain, merged)):
            ok = related
    if ok:
        return CheckedSentence("", cited, ok)
    reasons = [r for n, res in results.items() for r in res.reasons(f"[{n}]")]
    contradicted = any(r.related and (r.missing or r.opposite) for r in results.values())
    return CheckedSentence("", cited, [], contradicted=contradicted, reasons=reasons)


def check_answer(answer: str, sources: list[str], embed=None, numbers: list[int] | None = None,
                 question: str = "") -> list[CheckedSentence]:
    """sources[i] is the text of source [numbers[i]], default [i+1] (a chat keeps one numbering for all its turns,
    so a turn's sources need not be 1..k). embed(list[str]) -> normalised vectors, optional. `question`: what the
    answer replies to; with it a sentence of at most SHORT_ANSWER_WORDS words is checked as its answer."""
    numbers = list(numbers) if numbers is not None else list(range(1, len(sources) + 1))
    index = {n: i for i, n in enumerate(numbers)}
    parts = split_answer(answer)
    plain = [strip_markers(s) for s, _ in parts]
    asked = [question.strip() if question.strip() and is_short_answer(p) else "" for p in plain]
    srcs = [Source.of(s) for s in sources]
    semantic = None
    if embed is not None and parts and sources:
        vecs = np.asarray(embed([as_answered(p, question) for p in plain] + list(sources)))
        semantic = vecs[: len(plain)] @ vecs[len(plain):].T

    out = []
    for i, (sentence, claim) in enumerate(parts):
        cited = markers(sentence)
        valid = [n for n in cited if n in index]
        invalid = [n for n in cited if n not in valid]
        if not claim or not (asked[i] or is_claim(plain[i])):
            out.append(CheckedSentence(sentence, cited, [], invalid, checked=False))
            continue
        row = semantic[i] if semantic is not None else None
        if asked[i] and not _CHOICE.search(asked[i]) and set(content_words(plain[i])) <= set(content_words(asked[i])):
            # "At the time of Martin Luther what was in demand?" -> "in demand [1].": a source saying it proves
            # nothing. A question that offers a choice ("... or did they remain black and white?") is answered so.
            out.append(CheckedSentence(sentence, cited, [], invalid, reasons=["it repeats the question"]))
            continue
        if cited:
            checked = _judge_cited(plain[i], valid, srcs, row, index, asked[i])
            checked.reasons += [f"[{n}] is not one of the sources" for n in invalid]
        else:
            checked = _judge_unmarked(plain[i], srcs, row, numbers, asked[i])
        checked.text, checked.invalid = sentence, invalid
        out.append(checked)
    return out


def best_support(claim: str, srcs: list[Source], similarities=None,
                 asked: str = "") -> tuple[str, int | None, Support | None]:
    """(status, index of the source, its Support) for a claim checked against every source, no marker given:
    the best-scoring source that supports it; else the best one on the same topic (contradicted); else the
    best-scoring one (unsupported). `similarities[j]`: embedder cosine of the claim and source j, optional."""
    results = sorted(((support(claim, s, float(similarities[j]) if similarities is not None else 0.0, asked), j)
                      for j, s in enumerate(srcs)), key=lambda r: -r[0].score)
    for res, j in results:
        if res.ok:
            return "supported", j, res
    for res, j in results:
        if res.related:
            return "contradicted", j, res
    return "unsupported", (results[0][1] if results else None), (results[0][0] if results else None)


def _judge_unmarked(plain: str, srcs: list[Source], sem_row, numbers: list[int], asked: str = "") -> CheckedSentence:
    """No marker: the best source that supports it (attributed), else why the closest related one does not."""
    status, j, res = best_support(plain, srcs, sem_row, asked)
    if status == "supported":
        return CheckedSentence("", [], [numbers[j]], attributed=True)
    if status == "contradicted":
        return CheckedSentence("", [], [], contradicted=True, reasons=res.reasons(f"[{numbers[j]}]"),
                               against=[numbers[j]])
    return CheckedSentence("", [], [], reasons=["no source states it"])
