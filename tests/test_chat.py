"""Multi-turn chat: one source numbering per conversation, so turn N+1's prompt extends turn N's (llama.cpp KV
reuse), and citations of an earlier turn's source are checked against that source.

Real pipeline: the bundled MiniLM embedder over docs/samples, retrieval, context budget, citation checker. The
generator is either a tiny llama GGUF made in the test (SmolLM2's real tokenizer and chat template, random
weights: token-level prefix checks through llama.cpp itself) or a scripted one that writes the answer a test
needs (citation checks; what the model says is not what they test).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from edgerag.generate.answer import AnswerEngine
from edgerag.generate.chat import MIN_SOURCE_BUDGET, ChatSession
from edgerag.generate.llm import GenerationStats, Generator
from edgerag.generate.prompts import NOT_FOUND
from edgerag.retrieve import Retriever

SAMPLES = Path(__file__).resolve().parents[1] / "docs" / "samples"
WARRANTY_Q = "How long does the Aurora K3 warranty last?"


@pytest.fixture(scope="module")
def demo(prepared_home, tmp_path_factory):
    """Settings, collection and embedder: the prepared models (read only) and docs/samples ingested once."""
    from edgerag.config import Settings
    from edgerag.ingest.sync import sync
    from edgerag.runtime import open_collection

    settings = Settings(models_dir=prepared_home / "models", data_dir=tmp_path_factory.mktemp("chat-data"))
    collection, embedder = open_collection(settings, "demo", create=True)
    sync(collection, embedder, [SAMPLES], settings.chunk_tokens, settings.chunk_overlap)
    yield settings, collection, embedder
    collection.close()


def engine_with(demo, generator, **changes) -> AnswerEngine:
    settings, collection, embedder = demo
    settings = dataclasses.replace(settings, **{"temperature": 0.0, **changes})
    return AnswerEngine(Retriever.from_settings(collection, embedder, settings), generator, settings)


# -- token level, through llama.cpp ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Generator:
    from tinyllama import make_tiny_gguf

    path = make_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")
    generator = Generator(path, n_ctx=2048, threads=2)
    prompts: list[list[int]] = []
    original = generator._generate

    def spy(tokens, *args, **kwargs):  # the prompt token ids llama.cpp is given
        prompts.append(list(tokens))
        return original(tokens, *args, **kwargs)

    generator._generate, generator.prompts = spy, prompts
    return generator


def test_second_turn_prompt_extends_the_first_turn_and_its_answer(demo, tiny):
    session = ChatSession(engine_with(demo, tiny, max_tokens=12))
    first = session.ask(WARRANTY_Q)
    prompt1 = tiny.prompts[-1]
    second = session.ask("What does it not cover?")  # a follow-up: retrieval finds turn 1's sources again
    prompt2 = tiny.prompts[-1]
    assert first.sources and second.sources and first.generated

    # the whole first prompt, then the first answer exactly as generated, then the new turn
    assert prompt2[:len(prompt1)] == prompt1
    reply = tiny.llm.tokenize(first.generated.encode("utf-8"), add_bos=False, special=False)
    assert prompt2[len(prompt1):len(prompt1) + len(reply)] == reply
    # llama.cpp kept all of it: only the new turn was evaluated
    assert second.timings["prompt_tokens"] == len(prompt2)
    assert len(prompt2) - second.timings["prompt_tokens_evaluated"] >= len(prompt1) + len(reply) - 1

    # one numbering: a source found again keeps its number and is named, not resent
    numbers = {s.text: s.number for s in first.sources}
    again = [s for s in second.sources if s.text in numbers]
    assert again, "the follow-up should retrieve some of the first turn's sources"
    assert all(s.number == numbers[s.text] for s in again)
    turn2 = session.turns[-1].messages()[0]["content"]
    for s in again:
        assert s.text.strip() not in turn2 and f"[{s.number}]" in turn2
    fresh = [s for s in second.sources if s.text not in numbers]
    assert [s.number for s in fresh] == list(range(len(numbers) + 1, len(numbers) + 1 + len(fresh)))
    prompt_text = "\n".join(m["content"] for m in session.history)
    for s in [*first.sources, *second.sources]:
        assert prompt_text.count(s.text.strip()) == 1


def test_without_reuse_the_whole_prompt_is_evaluated(demo, tiny):
    session = ChatSession(engine_with(demo, tiny, max_tokens=8), reuse_cache=False)
    session.ask(WARRANTY_Q)
    second = session.ask("What does it not cover?")
    assert second.timings["prompt_tokens_evaluated"] == second.timings["prompt_tokens"] == len(tiny.prompts[-1])


# -- citations and the context budget, with a scripted model --------------------------------------------------------
class Scripted:
    """Writes `script(messages)` as its answer, word by word; counts tokens as words."""

    def __init__(self, script, n_ctx: int = 2048):
        self.script, self.n_ctx, self.prompts = script, n_ctx, []
        self.stats = GenerationStats()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream_chat(self, messages, max_tokens=256, temperature=0.1, reuse_cache=True, stop=None):
        self.prompts.append(messages)
        self.stats = GenerationStats(completion_tokens=1)
        yield self.script(messages)


def shown_sources(messages) -> dict[int, str]:
    """[n] -> source text, over every message the model was sent."""
    text = "\n\n".join(m["content"] for m in messages)
    return {int(n): body.strip() for n, body in
            re.findall(r"^\[(\d+)\] \([^)]*\) (.*?)(?=\n\n\[\d+\] \(|\n\nQuestion:|\n\nAlso relevant|\Z)",
                       text, re.S | re.M)}


def sentence_of(text: str, word: str) -> str:
    return next(s for s in re.split(r"(?<=\.)\s+", text) if word in s).rstrip(".")


def test_turn_two_citation_of_a_turn_one_source_is_checked_against_that_source(demo):
    state = {}

    def script(messages):
        if len(messages) == 2:  # turn 1: cite the warranty source
            n, text = next((n, t) for n, t in shown_sources(messages).items() if "two-year" in t)
            state["n"] = n
            return f"{sentence_of(text, 'two-year')} [{n}]."
        return state["next"](messages)

    session = ChatSession(engine_with(demo, Scripted(script), top_k=1))
    first = session.ask(WARRANTY_Q)
    n = state["n"]
    assert first.citations[0].number == n and first.citations[0].supported
    warranty = first.citations[0].source.text

    # turn 2 retrieves another document; its answer cites turn 1's source by its turn-1 number
    state["next"] = lambda messages: f"{sentence_of(warranty, 'two-year')} [{n}]."
    second = session.ask("Who designed the Old Harbour Lighthouse?")
    assert n not in {s.number for s in second.sources} and n in {s.number for s in second.in_context}
    cited = {c.number: c for c in second.citations}
    assert cited[n].source.text == warranty and cited[n].supported

    # the same number with a claim the turn-1 source does not state: flagged against that source
    state["next"] = lambda messages: f"The Aurora K3 warranty lasts five years [{n}]."
    third = session.ask("When was the lighthouse electrified?")
    citation = next(c for c in third.citations if c.number == n)
    assert citation.source.text == warranty and not citation.supported
    assert any(f"[{n}]" in r for r in third.flagged[0].reasons)

    # a number no source in the context has is invalid, not matched to some other passage
    state["next"] = lambda messages: "The grinder hopper holds 250 grams of beans [99]."
    fourth = session.ask("How much does the hopper hold?")
    assert fourth.sentences[0].invalid == [99] and not fourth.sentences[0].supported_by


def test_dropping_the_oldest_turn_keeps_the_sources_a_kept_turn_relies_on(demo):
    state = {"answer": "See the sources."}
    generator = Scripted(lambda messages: state["answer"])
    engine = engine_with(demo, generator, max_tokens=64)
    session = ChatSession(engine)
    first = session.ask(WARRANTY_Q)
    second = session.ask("What does it not cover?")
    warranty = next(s for s in first.sources if "two-year" in s.text)
    assert warranty.number in session.turns[1].earlier  # found again, named, not resent

    # shrink the window so the third turn needs the first one's room
    question = "Does the warranty cover burr wear?"
    generator.n_ctx -= engine.budget(question, session.history) - MIN_SOURCE_BUDGET + 1
    state["answer"] = f"The warranty does not cover burr wear [{warranty.number}]."
    third = session.ask(question)
    assert third.dropped_turns == 1 and session.dropped_turns == 1
    assert [t.question for t in session.turns] == ["What does it not cover?", question]
    kept = session.turns[0]
    assert warranty.number in [s.number for s in kept.shown] and warranty.number not in kept.earlier
    shown = shown_sources(generator.prompts[-1])
    assert shown[warranty.number] == warranty.text.strip()  # same number, same passage
    assert sum(m["content"].count(warranty.text.strip()) for m in generator.prompts[-1]) == 1
    # what nothing kept relies on left the context with its turn; found again, it comes back under its number
    left = {s.number for s in first.sources} - {s.number for s in second.sources}
    again = {s.number: s.text.strip() for s in third.sources if s.number in left}
    assert left and {n for n in left if n in shown} == set(again)
    assert all(text in generator.prompts[-1][-1]["content"] and shown[n] == text for n, text in again.items())
    citation = next(c for c in third.citations if c.number == warranty.number)
    assert citation.source.text == warranty.text and citation.supported


def test_a_long_chat_stays_within_the_window_with_one_meaning_per_number(demo):
    questions = [WARRANTY_Q, "How do I clean the burrs?", "What is the meal allowance in the EU?",
                 "Who designed the Old Harbour Lighthouse?", "When was the lighthouse electrified?",
                 "What does the warranty not cover?", "How many grind settings are there?"]
    generator = Scripted(lambda messages: "See the sources.", n_ctx=900)
    session = ChatSession(engine_with(demo, generator, max_tokens=64))
    meaning: dict[int, str] = {}
    for question in questions:
        answer = session.ask(question)
        sent = generator.prompts[-1]
        assert sum(generator.count_tokens(m["content"]) for m in sent) + 64 <= generator.n_ctx
        shown = shown_sources(sent)
        assert len(set(shown.values())) == len(shown)  # no passage twice
        for number, text in shown.items():
            assert meaning.setdefault(number, text) == text
        for turn in session.turns:  # everything a turn names is in the prompt
            assert set(turn.earlier) | {s.number for s in turn.shown} <= set(shown)
        for source in answer.sources:
            assert shown[source.number] == source.text.strip()
    assert session.dropped_turns >= 2 and len(session.turns) < len(questions)


def test_not_found_turn_keeps_the_conversation_going(demo):
    generator = Scripted(lambda messages: NOT_FOUND)
    session = ChatSession(engine_with(demo, generator))
    session.ask("What is the best recipe for banana bread?")
    session.ask(WARRANTY_Q)
    assert session.history[0]["content"] == "Question: What is the best recipe for banana bread?"
    assert session.history[1]["content"] == NOT_FOUND
