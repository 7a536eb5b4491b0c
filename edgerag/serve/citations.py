"""An Answer's citations as JSON: the extra fields each choice of a `rag:` completion carries.

The [n] markers stay in the text exactly as the model wrote them (what `edgerag ask` prints); `citations` says,
for each n the answer relies on, where the source is and whether it supports the sentence citing it. The
field names are documented in README.md ("Serve") and are a contract for clients.
"""

from __future__ import annotations


def citation_json(citation) -> dict:
    source = citation.source
    item = {"number": citation.number, "path": source.path, "page": source.page, "heading": source.heading,
            "label": source.label, "passage": citation.passage, "supported": bool(citation.supported),
            "attributed": bool(citation.attributed)}
    reason = getattr(citation, "reason", None)  # why a citation is not supported, where the checker says
    if reason:
        item["reason"] = reason
    return item


def answer_extras(answer) -> dict:
    """`citations` plus an `edgerag` block with the verdicts `ask` prints under an answer."""
    return {
        "citations": [citation_json(c) for c in answer.citations],
        "edgerag": {
            "not_found": answer.not_found,
            "grounded": answer.grounded,
            "unsupported_sentences": answer.unsupported_sentences,
            "interrupted": answer.interrupted,
            "query": answer.query,
            "sources": [{"number": s.number, "path": s.path, "page": s.page, "heading": s.heading,
                         "score": round(float(s.score), 4)} for s in answer.sources],
        },
    }
