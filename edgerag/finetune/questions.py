"""Questions made from a source sentence and an answer span in it: the one home for question synthesis, shared by
`finetune data` (training examples for the generator) and `embedder data` (pseudo-queries).

Three kinds, in the order `finetune data` tries them:
- fronted: made by rule where the sentence's shape allows a real question. The answer is the sentence's subject
  ("Peyton Manning became ..." → "Who became ...?"), or a date or place after was/were/is/are ("Super Bowl 50 was
  played on February 7, 2016" → "When was Super Bowl 50 played?"). Users ask who/when/where questions the other
  two kinds rarely make: 240 of the 1,190 real XQuAD-en questions open with who/when/where; v8's training
  questions had 8 "who" and no "when" or "where" among 374, and v9 refused 8 of 13 oracle "who" questions
  (docs/results/xquad-finetune-v9). A rule makes them for about 6% of XQuAD-en sentences.
- generator: the local model writes one for the span (answer-aware, few-shot), checked by `question_problem`;
- cloze: the sentence with the span replaced in place by a wh-word ("The tower was completed when?").
"""

from __future__ import annotations

import random
import re

from ..text import STOPWORDS, content_words, split_sentences
from ..text import words as word_tokens

_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = re.compile(rf"\b(?:{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{4}})\b")
_YEAR = re.compile(r"\b(?:1\d{3}|20\d{2})\b")
_NUMBERISH = re.compile(r"\b(?:\d[\d,.]*(?:\s?(?:%|percent|metres|meters|km|miles|years?|days?|hours?|minutes?|"
                        r"grams?|kg|euros?|dollars?|million|billion|nautical miles))?)\b")
_NAME = re.compile(r"\b(?:[A-Z][a-z]+(?:\s+(?:of|the|de|von)?\s*[A-Z][a-z]+)+)\b")


def sentences_of(chunk: str) -> list[str]:
    return [s.strip() for s in split_sentences(chunk) if 6 <= len(s.split()) <= 60]


def pick_span(sentence: str, rng: random.Random) -> str | None:
    """A short answer span in the sentence, preferring numbers and names (what real questions ask for)."""
    for pattern in (_DATE, _NUMBERISH, _NAME):
        found = [m.group(0).strip(" ,.") for m in pattern.finditer(sentence)
                 # a number inside a name ("Super Bowl 50") or a date ("February 7, 2016") is not an answer alone
                 if not (pattern is _NUMBERISH and re.search(r"(?:[A-Z]\w*|\d,?)\s+$", sentence[: m.start()]))]
        found = [f for f in found if len(f) >= 2 and not sentence.startswith(f)]
        if found:
            return rng.choice(found)
    words = sentence.rstrip(".!?").split()
    return " ".join(words[-3:]) if len(words) >= 8 else None


def cloze_question(sentence: str, span: str) -> str:
    asked = ("when" if _YEAR.fullmatch(span) or _DATE.fullmatch(span)
             else "how many" if span[:1].isdigit() else "what")
    body = sentence.rstrip(" .!?")
    if asked == "when":  # "played in when" → "played when"
        body = re.sub(rf"\b(?:in|on|at|during|by|since)\s+(?={re.escape(span)})", "", body, count=1)
    body = body.replace(span, asked, 1)
    return body[:1].upper() + body[1:] + "?"


# -- fronted questions ------------------------------------------------------------------------------------------
_BE = r"(?:was|were|is|are)"
# Words that open a sentence but are not its subject ("In September 2015 ...", "However ...").
_NOT_A_SUBJECT = frozenset("""In On At During After Before Since By From For When While Although However As Under Of
With Without Today Between Through Following Despite Unlike Like Because If Though Then Also Thus Meanwhile Later
Earlier Finally Eventually Afterwards Now Here There""".split())
_POSSESSIVE = frozenset({"His", "Her", "Its", "Their", "Our", "My"})
_DETERMINER = frozenset({"The", "A", "An", "This", "These", "That", "Those", "Some", "Many", "Most", "Several"})
# A capitalised phrase with one of these words names an institution, a place or a work, not a person: "What ...?".
_NOT_A_PERSON = frozenset("""University College School Parliament Church Committee Committees Council Association
Company Corporation Society Institute Museum Library Bible Act Acts Treaty River Sea Ocean Lake Mountains Forest Basin
Valley Island Islands Kingdom Empire Republic States State City County Street Stadium Party Army Navy Bank Group
Court Government Department Ministry Agency Board Office House Hall Park Airport Station Railway Network Union League
Conference Federation Organization Organisation Foundation Trust Centre Center Area Areas Region Province Southern
Northern Eastern Western North South East West""".split())
_OBJECT_OPENERS = frozenset("""a an the this these that those its his her their of over to in on with all about as for
from by into some many more most up out""".split())
_IRREGULAR_VERBS = frozenset("""is was were are has had have became becomes become won led made makes took gave wrote
built began held remained found lost left ran saw sold brought fought came went died lived""".split())


def _opens_with_a_verb(rest: str) -> bool:
    """The first words after a subject make a predicate: 'became the first ...', 'consists of ...'."""
    tokens = rest.split()
    if not tokens or not tokens[0].isalpha() or not tokens[0].islower():
        return False
    first = tokens[0]
    if first in _IRREGULAR_VERBS or (first.endswith("ed") and len(first) > 4):
        return True
    # "consists of", "represents over": a present-tense verb. A plural noun is followed by its verb instead
    # ("settlers had begun", "communities are"), so that follower rules it out.
    follower = tokens[1].lower() if len(tokens) > 1 else ""
    return len(first) > 3 and first.endswith("s") and not first.endswith("ss") and follower in _OBJECT_OPENERS


# Where one clause ends and the next begins (not the comma in "90,000"): also data.answer_sentence's cut points.
CLAUSE_BREAK = re.compile(r"[,;:]\s+|\s+(?=\()|\s+[-–—]\s+")


def _first_clause(text: str, min_words: int = 3) -> str:
    """Text up to its first clause break, when that leaves enough words (a question asks one thing)."""
    head = CLAUSE_BREAK.split(text, maxsplit=1)[0].strip()
    return head if len(head.split()) >= min_words else text.strip()


def subject_question(sentence: str, span: str) -> str | None:
    """'Peyton Manning became the first quarterback ...' (span "Peyton Manning") → 'Who became the first
    quarterback ...?'. None unless the span opens the sentence as its subject."""
    text = sentence.strip().rstrip(" .!?")
    tokens = span.split()
    if (not text.startswith(span) or tokens[0] in _NOT_A_SUBJECT | _POSSESSIVE or _DATE.search(span)
            or tokens[0].endswith("ing") or tokens[1:2] == ["of"]  # "Defining the East", "North of Los Angeles are"
            or not _opens_with_a_verb(text[len(span):])):
        return None
    person = tokens[0] not in _DETERMINER and len(tokens) <= 3 and not set(tokens) & _NOT_A_PERSON
    return f"{'Who' if person else 'What'} {_first_clause(text[len(span):])}?"


def _lowered_subject(subject: str) -> str | None:
    """The subject as it reads after "When was ...": 'The tower' → 'the tower', names kept; None for a phrase that
    is not a subject."""
    first = subject.split()[0]
    if first in _NOT_A_SUBJECT or first[:1].islower():
        return None
    if first in _DETERMINER or first.lower() in STOPWORDS or first in _POSSESSIVE:
        return subject[:1].lower() + subject[1:]
    return subject


def be_question(sentence: str, span: str) -> str | None:
    """'Super Bowl 50 was played on February 7, 2016, at Levi's Stadium' (span the date) → 'When was Super Bowl 50
    played?'; a name after in/at/near → 'Where was ...?'. None unless the sentence is 'SUBJECT was/were/is/are
    ... PREPOSITION SPAN' in one clause."""
    if _DATE.fullmatch(span) or _YEAR.fullmatch(span):
        wh, preposition = "When", r"(?:in|on|during)"
    elif _NAME.fullmatch(span):
        wh, preposition = "Where", r"(?:in|at|near)"
    else:
        return None
    m = re.match(rf"^(?P<subject>[^,;:()]+?)\s+(?P<be>{_BE})\s+(?P<rest>.+)$", sentence.strip().rstrip(" .!?"))
    if not m or span in m["subject"] or len(m["subject"].split()) > 8:
        return None
    subject = _lowered_subject(m["subject"])
    at = re.search(rf"\b{preposition}\s+(?:the\s+)?{re.escape(span)}", m["rest"])
    if subject is None or at is None:
        return None
    before = m["rest"][: at.start()].rstrip(" ,")
    if not before or re.search(r"[,;:()]|\b(?:who|which|that)\b", before):
        return None  # the span is not in the main clause
    after = CLAUSE_BREAK.split(m["rest"][at.end():], maxsplit=1)[0].rstrip()
    return f"{wh} {m['be']} {subject} {before}{after}?"


MAX_WORDS = 20  # real questions are short (XQuAD-en: 11 words on average); a longer fronted one asks many things


def fronted_questions(sentence: str) -> list[tuple[str, str]]:
    """Every (span, question) the rules above make from the sentence."""
    spans = [m.group(0) for m in _NAME.finditer(sentence)] + [m.group(0) for m in _DATE.finditer(sentence)]
    spans += [m.group(0) for m in _YEAR.finditer(sentence) if not _DATE.search(sentence[max(0, m.start() - 20):
                                                                                        m.end()])]
    out = []
    for span in dict.fromkeys(spans):
        question = subject_question(sentence, span) or be_question(sentence, span)
        if question and normalized(span) not in normalized(question) and 4 <= len(question.split()) <= MAX_WORDS:
            out.append((span, question))
    return out


# -- generator questions and their checks -----------------------------------------------------------------------
def normalized(text: str) -> str:
    """Lower-cased words joined by single spaces: how questions and spans are compared."""
    return " ".join(word_tokens(text))


_NUMBER_CUES = ("how", "when", "year", "number", "percent", "score", "date", "amount", "price", "age", "many", "much")


def question_problem(question: str, span: str, sentence: str) -> str | None:
    words = question.split()
    if not question.endswith("?"):
        return "not a question"
    if not 4 <= len(words) <= 40:
        return "question length"
    if normalized(span) and normalized(span) in normalized(question):
        return "question contains the answer"
    # The question must ask for the kind of thing the span is (a 135M model often asks about something else).
    if span[:1].isdigit() and not any(cue in normalized(question).split() for cue in _NUMBER_CUES):
        return "question does not ask for a number or date"
    if len(set(content_words(question)) & set(content_words(sentence))) < 2:
        return "question not grounded in the sentence"
    return None


# Two worked examples: measured on SmolLM2-135M, the zero-shot instruction produced almost no usable questions
# ("What is the answer to this question?"), the few-shot chat produces real ones.
QG_SHOTS = [
    {"role": "system", "content": "You turn a fact into a question."},
    {"role": "user", "content": "Fact: The Eiffel Tower was completed in 1889.\nAnswer: 1889"},
    {"role": "assistant", "content": "When was the Eiffel Tower completed?"},
    {"role": "user", "content": "Fact: Marie Curie discovered polonium with her husband Pierre.\nAnswer: Marie Curie"},
    {"role": "assistant", "content": "Who discovered polonium with her husband Pierre?"},
]


def generator_question(generator, sentence: str, span: str, temperature: float = 0.2) -> str:
    messages = QG_SHOTS + [{"role": "user", "content": f"Fact: {sentence}\nAnswer: {span}"}]
    text = generator.chat(messages, max_tokens=48, temperature=temperature)
    first = text.strip().split("\n")[0].strip().strip('"')
    return first[: first.index("?") + 1] if "?" in first else first
