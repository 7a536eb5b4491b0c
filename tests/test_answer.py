"""Grounded answers with the bundled SmolLM2 generator on a real XQuAD collection (slow: real model)."""

import pytest

from edgerag.generate.answer import AnswerEngine, resolve_followup
from edgerag.generate.chat import ChatSession
from edgerag.generate.prompts import NOT_FOUND
from edgerag.retrieve import Retriever
from edgerag.runtime import open_collection
from xquad import build_collection

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(session_settings, generator):
    build_collection(session_settings)
    collection, embedder = open_collection(session_settings, "xquad")
    yield AnswerEngine(Retriever.from_settings(collection, embedder, session_settings), generator, session_settings)
    collection.close()


def test_answer_streams_and_cites_only_given_sources(engine):
    streamed = []
    answer = engine.ask("How many points did the Panthers defense surrender?", on_token=streamed.append)
    assert "".join(streamed).strip() == answer.text and answer.text
    assert 1 <= len(answer.sources) <= engine.top_k
    assert any("Panthers" in s.text for s in answer.sources)
    for sentence in answer.sentences:
        assert all(1 <= n <= len(answer.sources) for n in sentence.supported_by)
    for citation in answer.citations:
        assert citation.source is answer.sources[citation.number - 1]
        assert citation.passage and citation.passage in citation.source.text or citation.passage.endswith("…")
    assert answer.timings["completion_tokens"] > 0


def test_out_of_scope_question_gets_not_found(engine):
    answer = engine.ask("What is the best recipe for banana bread?")
    assert answer.not_found and answer.text == NOT_FOUND and not answer.citations


def test_oracle_sources_skip_retrieval(engine):
    hits = engine.retriever.search("Super Bowl 50 Denver Broncos champion", 1, "hybrid")
    answer = engine.ask("Which team won Super Bowl 50?", sources_override=hits)
    assert [s.text_id for s in answer.sources] == [hits[0].text_id]


def test_ctrl_c_stops_generation_and_chat_keeps_history(engine):
    session = ChatSession(engine)
    count = {"n": 0}

    def interrupt_after_three(_piece):
        count["n"] += 1
        if count["n"] == 3:
            raise KeyboardInterrupt

    first = session.ask("Who won Super Bowl 50?", on_token=interrupt_after_three)
    assert first.interrupted and first.text
    assert session.history[-1]["content"].endswith("[answer cut off]")
    second = session.ask("Where was the game played?")
    assert not second.interrupted and second.text
    assert len(session.history) == 4


def test_chat_follow_up_retrieves_the_right_context(engine):
    session = ChatSession(engine)
    session.ask("Which NFL team represented the AFC at Super Bowl 50?")
    turn1 = list(session.history)
    follow = session.ask("Who did they beat?")
    assert "Super Bowl 50" in follow.query
    assert any("Super Bowl" in s.text for s in follow.sources)
    assert session.history[:2] == turn1  # earlier turns resent verbatim: llama.cpp reuses their KV cache


def test_resolve_followup_rules():
    assert resolve_followup("Where is Warsaw?", []) == "Where is Warsaw?"
    assert resolve_followup("What about its population?", ["Where is Warsaw?"]).startswith("Where is Warsaw?")
    standalone = "Which river flows through the city of Warsaw in Poland?"
    assert resolve_followup(standalone, ["Who won Super Bowl 50?"]) == standalone


def test_question_longer_than_context_is_a_clear_error(engine):
    from edgerag.errors import BadInputError

    with pytest.raises(BadInputError, match="context"):
        engine.ask("why " * 3000)


def test_a_refusal_is_the_refusal_sentence_not_an_echo_of_the_prompt():
    from edgerag.generate.answer import is_not_found
    from edgerag.generate.prompts import SYSTEM_PROMPT

    assert is_not_found(NOT_FOUND) and is_not_found("  ") and is_not_found("Not found in your documents [1].")
    assert is_not_found("not found in your documents")  # case and the final full stop do not matter
    assert is_not_found("The sources do not say when it opened. Not found in your documents.")
    # A base model continuing the prompt repeats its instruction; that is an (unhelpful) answer, not a refusal.
    assert not is_not_found(SYSTEM_PROMPT + "\n\nSources:\n[1] (a.txt) The warranty lasts two years.")
    assert not is_not_found("The warranty lasts two years [1].")
