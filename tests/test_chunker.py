"""Chunking: token-sized, sentence boundaries, never inside a word, offsets that map back to the text."""

from types import SimpleNamespace as Section

import pytest

from edgerag.ingest.chunker import chunk_sections, document_text


@pytest.fixture(scope="module")
def count(embedder):
    return embedder.count_tokens_batch


def _text(shared_path):
    return shared_path.read_text(encoding="utf-8")


def test_chunks_respect_size_sentences_and_offsets(count, embedder):
    from conftest import shared

    text = _text(shared("documents", "unstructured_example_docs", "book-war-and-peace-1p.txt"))
    sections = [Section(text=text, page=None, heading=None)]
    chunks = chunk_sections(sections, count, max_tokens=120, overlap=20)
    full = document_text(sections)
    assert len(chunks) > 3
    for c in chunks:
        assert full[c.start:c.end] == c.text
        assert embedder.count_tokens(c.text) <= 120 * 1.1  # token sums of sentences ≈ whole-text count
        # never split inside a word: the characters around a chunk are not both word characters
        if c.start > 0:
            assert not (full[c.start - 1].isalnum() and full[c.start].isalnum())
        if c.end < len(full):
            assert not (full[c.end - 1].isalnum() and full[c.end].isalnum())
    # consecutive chunks overlap a little (a fact at a boundary stays whole in one of them)
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:]))
    assert chunks[-1].end == len(full.rstrip())


def test_overlong_sentence_is_cut_between_words(count):
    words = " ".join(f"word{i}" for i in range(600))  # one 'sentence' far over the limit
    chunks = chunk_sections([Section(text=words, page=1, heading="H")], count, max_tokens=100, overlap=0)
    assert len(chunks) > 3
    rebuilt = " ".join(c.text for c in chunks)
    assert rebuilt.split() == words.split()
    assert all(c.page == 1 and c.heading == "H" for c in chunks)


def test_chunks_do_not_cross_sections_and_keep_page_and_heading(count):
    sections = [Section(text="First page text. It is short.", page=1, heading="Intro"),
                Section(text="Second page. Also short.", page=2, heading="Intro > Details")]
    chunks = chunk_sections(sections, count, max_tokens=200, overlap=10)
    assert [(c.page, c.heading) for c in chunks] == [(1, "Intro"), (2, "Intro > Details")]
    full = document_text(sections)
    assert [full[c.start:c.end] for c in chunks] == [c.text for c in chunks]
