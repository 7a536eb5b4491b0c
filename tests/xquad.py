"""A small real collection for retrieval and answer tests: XQuAD-en paragraphs (SQuAD v1.1 dev) as records."""

from __future__ import annotations

import json
from dataclasses import dataclass

from conftest import shared


@dataclass
class Question:
    question: str
    answers: list[str]
    key: str  # record key of the gold paragraph


def load_xquad(n_articles: int = 12) -> tuple[list, list[Question]]:
    from edgerag.ingest.sync import Record

    data = json.loads(shared("qa", "xquad_en", "xquad.en.json").read_text(encoding="utf-8"))
    records, questions = [], []
    for a, article in enumerate(data["data"][:n_articles]):
        for p, paragraph in enumerate(article["paragraphs"]):
            key = f"{article['title']}/{p}"
            records.append(Record(key, paragraph["context"]))
            for qa in paragraph["qas"]:
                questions.append(Question(qa["question"], [x["text"] for x in qa["answers"]], key))
    return records, questions


def build_collection(settings, name: str = "xquad", n_articles: int = 12):
    from edgerag.ingest.sync import sync_records
    from edgerag.runtime import open_collection

    records, questions = load_xquad(n_articles)
    collection, embedder = open_collection(settings, name, create=True)
    with collection:
        sync_records(collection, embedder, records, settings.chunk_tokens, settings.chunk_overlap)
    return questions
