"""Check any text against a collection, sentence by sentence: the library call behind `edgerag verify`.

The same check as an answer's citations (generate/citations.py), but nothing is cited: each sentence is searched
in the collection (hybrid retrieval by default) and judged against the passages found. A sentence is
- supported: a passage is on the same topic and states every number, date and name in it;
- contradicted: a passage is on the same topic but states other facts, or the opposite (the reason says which);
- unsupported: no passage found is about it;
- unchecked: too short to carry a claim ("Yes.").
Markers in the text ("[2]") refer to someone else's sources and are ignored.

    from edgerag.generate.verify import verify_text
    report = verify_text("The warranty lasts 1 year.", retriever)
    report.sentences[0].status, report.sentences[0].reasons
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInputError
from .citations import Source, best_passage, best_support, is_claim, split_answer, strip_markers
from .prompts import source_label

STATUSES = ("supported", "contradicted", "unsupported", "unchecked")


@dataclass
class Evidence:
    """The passage a sentence was judged against: the one that supports it, or the closest one."""
    label: str  # "manual.md, Warranty"
    path: str
    page: int | None
    heading: str | None
    passage: str  # the sentence of the chunk closest to the checked sentence
    text: str  # the whole chunk
    text_id: int
    similarity: float | None  # embedder cosine of sentence and chunk


@dataclass
class VerifiedSentence:
    text: str
    status: str  # supported | contradicted | unsupported | unchecked
    reasons: list[str] = field(default_factory=list)
    evidence: Evidence | None = None


@dataclass
class Verification:
    sentences: list[VerifiedSentence]

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(s.status for s in self.sentences)
        return {status: found.get(status, 0) for status in STATUSES}

    @property
    def all_supported(self) -> bool:
        return all(s.status in ("supported", "unchecked") for s in self.sentences)


def verify_text(text: str, retriever, k: int = 5, mode: str = "hybrid") -> Verification:
    """Judge every sentence of `text` against the `k` passages retrieval finds for it in `retriever`'s collection."""
    if not (text or "").strip():
        raise BadInputError("nothing to verify: the text is empty")
    parts = [(strip_markers(s), claim) for s, claim in split_answer(text)]
    claims = [i for i, (plain, claim) in enumerate(parts) if claim and plain and is_claim(plain)]
    vectors = np.asarray(retriever.embedder.embed([parts[i][0] for i in claims])) if claims else None
    out = [VerifiedSentence(plain, "unchecked") for plain, _ in parts]
    for row, i in enumerate(claims):
        out[i] = _verify_one(parts[i][0], vectors[row], retriever, k, mode)
    return Verification(out)


def _ref(source) -> str:
    """A short name for a passage in a reason: the file and its innermost heading ("manual.md › Warranty")."""
    ref = Path(source.path).name + (f" p. {source.page}" if source.page else "")
    return f"{ref} › {source.heading.split(' > ')[-1]}" if source.heading else ref


def _verify_one(claim: str, vector, retriever, k: int, mode: str) -> VerifiedSentence:
    hits = retriever.search(claim, k=k, mode=mode)
    if not hits:
        return VerifiedSentence(claim, "unsupported", ["no passage in the collection is about it"])
    similarities = retriever.collection.embeddings([h.text_id for h in hits]) @ vector
    status, j, result = best_support(claim, [Source.of(h.text) for h in hits], similarities)
    hit = hits[j]
    label = source_label(hit.source.path, hit.source.page, hit.source.heading)
    evidence = Evidence(label, hit.source.path, hit.source.page, hit.source.heading,
                        best_passage(claim, hit.text), hit.text, hit.text_id, float(similarities[j]))
    if status == "supported":
        return VerifiedSentence(claim, status, [], evidence)
    if status == "contradicted":
        return VerifiedSentence(claim, status, result.reasons(_ref(hit.source)), evidence)
    return VerifiedSentence(claim, status, ["no passage in the collection is about it"], evidence)
