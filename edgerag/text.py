"""The package's one sentence splitter, word tokenizer and stemmer, and the facts (numbers, quantities, names) a
sentence states. Chunking, context assembly, the citation check, `verify`, evaluation and finetuning data all
use these, so "a sentence" and "a word" mean the same thing everywhere.

Sentences: a regex with an abbreviation list, chosen over pysbd 0.3 (the rule-based "golden rules" segmenter) by
bench/sentences.py: on the 240 XQuAD-en paragraphs the two split 216 the same way (where they differ pysbd splits
"[citation needed]" off, or inside "Y. pestis" and "approx. 4 kg"; the regex splits inside quoted speech), pysbd
misses one of the five must-pass cases ("So did I. Fine!"), and it is ~100x slower (~20 ms a paragraph on 2
cores, which would add a third to ingest time).
Stemming: Snowball English (Porter2), the algorithm SQLite FTS5's porter tokenizer is the ancestor of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

# -- sentences ---------------------------------------------------------------------------------------------------
# Words that end in "." without ending a sentence: lower-cased, without the final dot. Kept to those that rarely
# end a sentence themselves ("no.", "etc.", "sun." do, so they are not here).
ABBREVIATIONS = frozenset("""mr mrs ms dr prof st jr sr mt ft vs e.g i.e cf fig figs approx inc ltd corp dept gov lt
capt sgt rev vol vols eds pp jan feb apr jun jul aug sep sept oct nov dec u.s u.k u.n a.m p.m ph.d b.sc m.sc""".split())
# A candidate boundary: . ! ? … (and closing quotes/brackets after it) then whitespace; a blank line; or a line
# break before a list item or a citation marker ("...spring.\n[1] (a.md) ..." is how small models echo sources).
_BOUNDARY = re.compile(r"(?<=[.!?…])((?:[\"'”’)\]]|\[\d[\d,;\s–-]*\])*)(\s+)|\n[ \t]*\n\s*|\n\s*(?=[-*•]\s|\d{1,2}[.)]\s|\[\d)")
_OPENERS = "\"'“‘(["


def _abbreviation_before(text: str, end: int, after: int) -> bool:
    """Does the text before `end` (the position of a ".") end with an abbreviation or an initial ("J. K.")?
    `after`: where the next sentence would start ("No. 81" is a number, "No. The" a sentence)."""
    start = max(text.rfind(" ", 0, end), text.rfind("\n", 0, end), text.rfind("\t", 0, end)) + 1
    word = text[start:end].lstrip(_OPENERS).lower()
    if word == "no" and after < len(text) and text[after].isdigit():
        return True
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha() and word != "i")


def _starts_sentence(text: str, pos: int) -> bool:
    """The next sentence may not start in lower case ("e.g. the", "3 p.m. on")."""
    while pos < len(text) and text[pos] in _OPENERS:
        pos += 1
    return pos < len(text) and not text[pos].islower()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace-trimmed, in order; empty pieces dropped."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group(2) is not None:  # after . ! ?: check it is not an abbreviation or a lower-case go-on
            if not _starts_sentence(text, match.end()):
                continue
            if text[match.start() - 1] == "." and _abbreviation_before(text, match.start() - 1, match.end()):
                continue
        end = match.start() + len(match.group(1) or "")
        spans.append((start, end))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        piece = text[s:e]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece) - len(piece.rstrip())
        if e - trail > s + lead:
            out.append((s + lead, e - trail))
    return out


def split_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


# -- words -------------------------------------------------------------------------------------------------------
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset("""a an and are as at be been but by can could did do does for from had has have he her his
how i if in into is it its may might not of on or our she so than that the their them there these they this those
to was we were what when where which who whom why will with would you your also about after before such very
only other some any more most then out over under up down per via""".split())
# How a question asks rather than what it asks about ("Can you briefly explain how…"): left out where a question's
# content is compared with a passage's (the "not found" gate, store/keyword.py `coverage`).
REQUEST_WORDS = frozenset("""tell explain describe please briefly summarize summarise summary list give show know
want need help find say says said mean means meant exactly""".split())
_stemmer = snowballstemmer.stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits; punctuation and underscores split)."""
    return _WORD.findall(text.lower())


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer.stemWord(word)


def content_words(text: str) -> list[str]:
    """Stemmed words that carry meaning: stopwords and one-letter words dropped, numbers kept."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


_NEGATION = re.compile(r"\b(?:not|no|never|cannot|none|nothing|neither|nor)\b|n['’]t\b", re.IGNORECASE)


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


# -- facts -------------------------------------------------------------------------------------------------------
# What a sentence states that word overlap cannot check: numbers (with their unit) and capitalised names.
_SMALL = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
         "seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = {**{w: i for i, w in enumerate(_SMALL)}, **{w: 20 + 10 * i for i, w in enumerate(_TENS)},
                "dozen": 12}
_SCALES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
UNITS = {}  # surface form (lower case) → canonical unit
for canonical, forms in {
    "year": "year years yr yrs", "month": "month months", "week": "week weeks", "day": "day days",
    "hour": "hour hours hr hrs h", "minute": "minute minutes min mins", "second": "second seconds sec secs s",
    "percent": "percent per-cent % pc", "g": "g gram grams gramme grammes", "kg": "kg kilogram kilograms kilo kilos",
    "mg": "mg milligram milligrams", "lb": "lb lbs pound pounds", "t": "tonne tonnes ton tons",
    "m": "m metre metres meter meters", "km": "km kilometre kilometres kilometer kilometers",
    "cm": "cm centimetre centimetres centimeter centimeters", "mm": "mm millimetre millimetres millimeter millimeters",
    "mile": "mile miles mi", "ft": "ft foot feet", "inch": "inch inches", "l": "l litre litres liter liters",
    "ml": "ml millilitre millilitres milliliter milliliters", "degree": "° degree degrees", "c": "°c celsius",
    "f": "°f fahrenheit", "w": "w watt watts", "kw": "kw kilowatt kilowatts", "v": "v volt volts", "mph": "mph",
    "kmh": "km/h kph", "usd": "$ usd dollar dollars", "eur": "€ eur euro euros", "gbp": "£ gbp",
}.items():
    for form in forms.split():
        UNITS[form] = canonical
_MONTHS = {m[:3]: m for m in "january february march april may june july august september october november "
                             "december".split()}
_NUM_WORD = r"(?:(?:%s)(?:[-\s](?:%s))?|%s|dozen)" % ("|".join(_TENS), "|".join(_SMALL[1:10]), "|".join(_SMALL))
_UNIT_RE = "|".join(sorted((re.escape(u) for u in UNITS if u not in "$€£"), key=len, reverse=True))
_QUANTITY = re.compile(
    r"(?P<cur>[$€£])?\s?(?<![\w.])(?P<num>\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|(?i:%s))"
    r"(?:st|nd|rd|th|s)?(?![\w])(?:[\s-](?P<scale>(?i:hundred|thousand|million|billion|trillion))\b)?"
    r"(?:[\s-]?(?P<unit>(?i:%s))(?![\w]))?" % (_NUM_WORD, _UNIT_RE))
_CLAUSE_START = re.compile(r"[:;\n]\s*[\"'“‘(]?")  # "The answer is: Creating highways…" starts anew
_NEXT_WORD = re.compile(r"[ \t]+([^\W\d_]+)")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th|s)")  # "5th", "1990s": numbers, not names
_NAME_TOKEN = re.compile(r"(?<![\w'’])(?:[A-Z][\w'’]*|[a-z]+\d\w*|\d+[A-Za-z]\w*)")


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str | None
    surface: str  # as written, for messages ("1 year")
    # Stems of the content words around it (`width` each side, numbers skipped): what the number counts. "9" in
    # "6 sacks in 9 starts" is about starts, so "Ealy had 9 sacks" is not supported by that source.
    context: frozenset = frozenset()
    phrase: str = ""  # the surface with the word it counts, for messages ("9 sacks")


@dataclass(frozen=True)
class Name:
    stems: tuple[str, ...]
    surface: str


def _number(token: str) -> float:
    token = token.lower().replace(",", "")
    if token in NUMBER_WORDS:
        return float(NUMBER_WORDS[token])
    if re.fullmatch(r"[\d.]+", token):
        return float(token)
    tens, _, unit = token.replace(" ", "-").partition("-")
    return float(NUMBER_WORDS[tens] + NUMBER_WORDS.get(unit, 0))


def name_stems(text: str) -> set[str]:
    """Every word of `text` as names() stems it (month abbreviations also as the month), to look names up in."""
    out = set()
    for w in words(text):
        out.add(stem(w))
        if w in _MONTHS:
            out.add(stem(_MONTHS[w]))
    return out


def quantities(text: str, width: int = 1) -> list[Quantity]:
    """Numbers in digits or words ("2,000", "two", "twenty-four", "2.5 million"), each with its unit if one
    follows ("two-year" → 2 year, "250 grams" → 250 g, "$5" → 5 usd) and its context (`width` content words
    each side). A bare "one" is left out: it is more often a pronoun ("one of the largest") than a number."""
    tokens = [(m.start(), m.end(), stem(w)) for m in _WORD.finditer(text)
              if (w := m.group(0).lower()) not in STOPWORDS and not w.isdigit() and w not in NUMBER_WORDS
              and w not in _SCALES and len(w) > 1]
    out = []
    for m in _QUANTITY.finditer(text):
        num, unit = m.group("num"), m.group("unit")
        if num.lower() == "one" and not unit:
            continue
        value = _number(num) * _SCALES.get((m.group("scale") or "").lower(), 1.0)
        canonical = UNITS.get(unit.lower()) if unit else UNITS.get(m.group("cur") or "")
        before = [t for s, _, t in tokens if s < m.start("num")][-width:]
        after = [t for s, _, t in tokens if s >= m.end("num")][:width]
        surface = m.group(0).strip()
        counted = _NEXT_WORD.match(text, m.end()) if not canonical else None
        phrase = f"{surface} {counted.group(1)}" if counted and counted.group(1).lower() not in STOPWORDS else surface
        out.append(Quantity(value, canonical, surface, frozenset(before + after), phrase))
    return out


def names(text: str) -> list[Name]:
    """Capitalised words and alphanumeric codes ("K3"), runs of them joined ("Carolina Panthers"). A sentence's
    first word counts only when it is part of a run or a code: otherwise it is capitalised because it comes first."""
    out: list[Name] = []
    run: list[tuple[int, str]] = []
    starts = {s for s, _ in sentence_spans(text)} | {0} | {m.end() for m in _CLAUSE_START.finditer(text)}

    def flush():
        tokens = [t for _, t in run]
        first_only = len(tokens) == 1 and run[0][0] in starts and tokens[0][:1].isupper() and \
            not any(c.isdigit() for c in tokens[0]) and not tokens[0][1:2].isupper()
        if tokens and not first_only:
            stems = tuple(stem(_MONTHS.get(w, w)) for t in tokens for w in words(t) if len(w) > 1 or w.isdigit())
            out.append(Name(stems, " ".join(tokens)))
        run.clear()

    last_end = -2
    for m in _NAME_TOKEN.finditer(text):
        token = m.group(0)
        if token.lower() in STOPWORDS or token.lower() in NUMBER_WORDS or _ORDINAL.fullmatch(token):
            flush()
            continue
        if run and text[last_end:m.start()].strip():
            flush()
        run.append((m.start(), token))
        last_end = m.end()
    flush()
    return out
