"""An Answer's citations as JSON: the extra fields each choice of a `rag:` completion carries.

The [n] markers stay in the text exactly as the model wrote them (what `edgerag ask` prints); `citations` says,
for each n the answer relies on, where the source is and whether it supports the sentence citing it. The
field names are documented in README.md ("Serve") and are a contract for clients.
"""

from __future__ import annotations


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
            "grounded": answer.grounded,
            "flagged": [sentence_json(s) for s in answer.sentences if s.unsupported],
            "interrupted": answer.interrupted,
            "query": answer.query,
            "sources": [{"number": s.number, "path": s.path, "page": s.page, "heading": s.heading,
                         "score": round(float(s.score), 4)} for s in answer.sources],
        },
    }
