"""An Answer's citations as JSON: the extra fields each choice of a `rag:` completion carries.

The text keeps the model's own [n] markers; a sentence the model left unmarked but the checker matched to a
source (`attributed`) gets its [n] added, so every citation is visible in the text: after that sentence in a
whole response, at the end of a streamed one (text already sent cannot be edited). `citations` says, for each
n, where the source is and whether it supports the sentence citing it. The field names are documented in
README.md ("Serve") and are a contract for clients.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?]+[\"')\]]*$")


def attributed_markers(answer) -> list[tuple[str, str]]:
    """(sentence, "[n]") for each sentence without a marker that the checker matched to source n."""
    return [(s.text, "".join(f"[{n}]" for n in s.supported_by)) for s in answer.sentences
            if s.attributed and s.supported_by]


def marked_text(answer) -> str:
    """The answer with each attributed sentence's [n] placed before its final punctuation."""
    text, out, pos = answer.text, [], 0
    for sentence, mark in attributed_markers(answer):
        start = text.find(sentence, pos)
        if start < 0:
            continue
        end = start + len(sentence)
        punct = _END.search(sentence)
        cut = end - (len(punct.group()) if punct else 0)
        out.append(f"{text[pos:cut]} {mark}")
        pos = cut
    return "".join(out) + text[pos:]


def streamed_tail(answer) -> str:
    """What a stream appends at its end: the attributed sentences' markers."""
    marks = list(dict.fromkeys(mark for _, mark in attributed_markers(answer)))
    return " " + " ".join(marks) if marks else ""


def citation_json(citation) -> dict:
    source = citation.source
    return {"number": citation.number, "path": source.path, "page": source.page, "heading": source.heading,
            "label": source.label, "passage": citation.passage, "supported": bool(citation.supported),
            "attributed": bool(citation.attributed),
            # why it does not support a sentence citing it ("1 year not in [1]"); empty when it does
            "reasons": list(getattr(citation, "reasons", None) or [])}


def sentence_json(sentence) -> dict:
    status = getattr(sentence, "status", None) or ("supported" if sentence.supported_by else "unsupported")
    return {"text": sentence.text, "status": status, "cited": list(sentence.cited),
            "supported_by": list(sentence.supported_by), "reasons": list(getattr(sentence, "reasons", None) or [])}


def answer_extras(answer) -> dict:
    """`citations` plus an `edgerag` block with the verdicts `ask` prints under an answer: `flagged` lists the
    sentences no source supports (status contradicted or unsupported, with reasons)."""
    return {
        "citations": [citation_json(c) for c in answer.citations],
        "edgerag": {
            "not_found": answer.not_found,
            "not_found_reason": answer.not_found_reason,
            "grounded": answer.grounded,
            "flagged": [sentence_json(s) for s in answer.sentences if s.unsupported],
            "interrupted": answer.interrupted,
            "query": answer.query,
            "sources": [{"number": s.number, "path": s.path, "page": s.page, "heading": s.heading,
                         "score": round(float(s.score), 4)} for s in answer.sources],
        },
    }
