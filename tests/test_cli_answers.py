"""`search`, `ask`, `chat` from the command line, including every bad input: one line, non-zero exit."""

import json
import shutil

import pytest

from conftest import REPO
from edgerag.cli import main
from edgerag.models.prepare import GENERATOR_NAME


@pytest.fixture()
def demo(home):
    assert main(["ingest", str(REPO / "docs" / "samples"), "-c", "demo", "--json"]) == 0
    return home


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgerag: error:"), err
    for w in words:
        assert w in err
    return err


def test_search_json(demo, capsys):
    capsys.readouterr()
    assert main(["search", "meal allowance", "-c", "demo", "--json", "--mode", "bm25"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and hits[0]["path"].endswith("travel-policy.html")
    assert hits[0]["heading"] and "Meals" in hits[0]["heading"]


@pytest.mark.slow
def test_ask_prints_answer_and_cited_sources(demo, capsys):
    capsys.readouterr()
    assert main(["ask", "How long does the Aurora K3 warranty last?", "-c", "demo", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["text"] and not answer["not_found"]
    assert answer["citations"], "at least one source is cited"
    assert any(c["source"]["path"].endswith("aurora-k3-manual.md") for c in answer["citations"])


@pytest.mark.slow
def test_chat_reads_questions_until_quit(demo, capsys, monkeypatch):
    lines = iter(["How much is the daily meal allowance in the EU?", "/new", "/quit"])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(lines))
    capsys.readouterr()
    assert main(["chat", "-c", "demo"]) == 0
    assert "Sources" in capsys.readouterr().out


def test_bad_inputs_are_one_line_errors(demo, tmp_path, capsys):
    capsys.readouterr()
    assert main(["ask", "   ", "-c", "demo"]) == 1
    _one_line_error(capsys, "empty question")
    assert main(["ask", "hello?", "-c", "nope"]) == 1
    _one_line_error(capsys, "no collection named 'nope'")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("  ")
    main(["ingest", str(empty), "-c", "hollow", "--json"])
    capsys.readouterr()
    assert main(["search", "anything", "-c", "hollow"]) == 1
    _one_line_error(capsys, "is empty")
    shutil.rmtree(demo / "models" / GENERATOR_NAME)
    assert main(["ask", "hello?", "-c", "demo"]) == 1
    _one_line_error(capsys, "generator")


def test_the_not_found_gate_refuses_questions_about_what_the_documents_do_not_name(demo):
    """The gate runs before the model (no generator here): questions the demo documents answer, worded as users
    word them, reach the model; questions about things they do not name, even on their topics, do not."""
    from edgerag.config import load_settings
    from edgerag.generate.answer import AnswerEngine
    from edgerag.retrieve import Retriever
    from edgerag.runtime import open_collection

    settings = load_settings()
    collection, embedder = open_collection(settings, "demo")
    with collection:
        engine = AnswerEngine(Retriever.from_settings(collection, embedder, settings), None, settings)

        def passes(question: str) -> bool:
            return engine.relevant(engine.retrieve(question))

        for question in ("How long does the Aurora K3 warranty last?", "How many grams does the hopper hold?",
                         "Can you briefly explain how to clean the burrs?", "Who designed the lighthouse?",
                         "How much is the daily meal allowance in the EU?"):
            assert passes(question), question
        for question in ("How long does the Zephyr X9 blender's warranty last?", "Who painted the Mona Lisa?",
                         "What is the best recipe for banana bread?"):
            assert not passes(question), question
        reason = engine.not_found_reason(engine.retrieve("How long does the Zephyr X9 blender's warranty last?"))
        assert "“Zephyr”" in reason and "“X9”" in reason and "min_coverage" in reason


def test_sources_reach_the_model_cut_to_what_the_question_asks(demo):
    """Each source is cut to its sentences around the one that covers the question best (focus_words); the cut is a
    piece of the stored chunk, and its offsets move with it."""
    from dataclasses import replace

    from edgerag.config import load_settings
    from edgerag.generate.answer import AnswerEngine
    from edgerag.retrieve import Retriever
    from edgerag.runtime import open_collection
    from edgerag.text import split_sentences

    settings = load_settings()
    collection, embedder = open_collection(settings, "demo")
    with collection:
        engine = AnswerEngine(Retriever.from_settings(collection, embedder, settings), None, settings)
        question = "How long does the Aurora K3 warranty last?"
        hits = engine.retrieve(question)
        cut = engine.focused(hits, question)
        assert [h.text_id for h in cut] == [h.text_id for h in hits]
        assert "two-year limited warranty" in cut[0].text
        for whole, part in zip(hits, cut):
            assert part.text in whole.text
            assert len(part.text.split()) <= settings.focus_words or len(split_sentences(part.text)) == 1
            offset = whole.text.index(part.text)
            assert (part.source.start, part.source.end) == (whole.source.start + offset,
                                                            whole.source.start + offset + len(part.text))
        assert any(len(p.text) < len(w.text) for p, w in zip(cut, hits))
        engine.settings = replace(settings, focus_words=0)
        assert engine.focused(hits, question) == hits


def test_ask_says_why_nothing_was_found(demo, capsys):
    """The gate answers before the model runs (it is loaded, not asked)."""
    capsys.readouterr()
    assert main(["ask", "Who painted the Mona Lisa?", "-c", "demo", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["not_found"] and answer["not_found_reason"] and not answer["sources"]
