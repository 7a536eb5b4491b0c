"""Retrieval on real data: the gold XQuAD paragraph is in the top 5 for most questions, in every mode."""

import pytest

from edgerag.errors import BadInputError, CollectionError
from edgerag.retrieve import Retriever
from edgerag.retrieve.context import assemble, focus
from edgerag.runtime import open_collection
from xquad import build_collection


@pytest.fixture(scope="module")
def xquad(session_settings):
    questions = build_collection(session_settings)
    collection, embedder = open_collection(session_settings, "xquad")
    yield Retriever.from_settings(collection, embedder, session_settings), questions
    collection.close()


@pytest.mark.parametrize("mode,minimum", [("dense", 0.75), ("bm25", 0.75), ("hybrid", 0.8)])
def test_gold_paragraph_in_top5(xquad, mode, minimum):
    retriever, questions = xquad
    sample = questions[::3]
    found = sum(any(h.source.path == f"record://{q.key}" for h in retriever.search(q.question, 5, mode))
                for q in sample)
    assert found / len(sample) >= minimum, f"{mode}: {found}/{len(sample)}"


def test_hybrid_scores_and_fields(xquad):
    retriever, questions = xquad
    hits = retriever.search(questions[0].question, 5, "hybrid")
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.dense is not None or h.bm25 is not None for h in hits)
    assert all(h.source.path.startswith("record://") and h.text for h in hits)


def test_bad_queries(xquad, session_settings):
    retriever, _ = xquad
    with pytest.raises(BadInputError, match="empty"):
        retriever.search("   ", 5)
    with pytest.raises(BadInputError, match="mode"):
        retriever.search("x", 5, "fuzzy")
    with pytest.raises(CollectionError, match="no collection"):
        open_collection(session_settings, "does-not-exist")


def test_context_assembly_budget_dedup_and_order(xquad):
    retriever, questions = xquad
    hits = retriever.search(questions[5].question, 5, "hybrid")
    count = lambda text: len(text.split())  # noqa: E731
    dup = type(hits[0])(**{**hits[0].__dict__, "text_id": -1})
    chosen = assemble([hits[0], dup, *hits[1:]], count, budget_tokens=10_000)
    assert [h.text_id for h in chosen] == [h.text_id for h in hits]  # the duplicate is dropped
    small = assemble(hits, count, budget_tokens=count(hits[0].text) + 30)
    assert [h.text_id for h in small] == [hits[0].text_id]
    edges = assemble(hits, count, 10_000, order="edges")
    assert edges[0].text_id == hits[0].text_id and edges[-1].text_id == hits[1].text_id


def test_focus_keeps_the_best_sentence_and_its_neighbours_whole():
    text = "Alpha one two three. Beta is the answer here.\n- Gamma item four five\n- Delta item six. Epsilon last one."
    sentences = ["Alpha one two three.", "Beta is the answer here.", "- Gamma item four five", "- Delta item six.",
                 "Epsilon last one."]
    seen = []

    def score(pieces):
        seen.append(pieces)
        return [1.0 if p.startswith("Beta") else 0.0 for p in pieces]

    def cut(words):
        a, b = focus(text, score, words)
        return text[a:b]

    assert cut(5) == "Beta is the answer here."  # the best sentence alone, though longer than the width
    assert seen[0] == sentences  # scored sentence by sentence, list items apart
    assert cut(10) == "Beta is the answer here.\n- Gamma item four five"  # the next one first, layout kept
    assert cut(14) == "Alpha one two three. Beta is the answer here.\n- Gamma item four five"
    assert cut(0) == cut(100) == text  # off, or the text fits: whole
    one = "One long sentence without a break in it at all"
    assert focus(one, score, 3) == (0, len(one))
    assert text[slice(*focus(text, lambda p: [0.5] * len(p), 4))] == "Alpha one two three."  # ties: the first


def test_empty_collection_is_named(tmp_path, embedder, session_settings):
    from edgerag.runtime import embedder_id
    from edgerag.store.collection import Collection

    col = Collection.open(tmp_path, "empty", embedder_id(session_settings, embedder), create=True)
    for mode in ("dense", "bm25", "hybrid"):  # both legs come back empty, then the count names the cause
        with pytest.raises(CollectionError, match="is empty"):
            Retriever(col, embedder).search("warranty", 5, mode)
    col.close()
