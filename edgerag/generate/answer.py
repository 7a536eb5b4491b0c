"""The ask pipeline: question → retrieve → assemble context → stream the answer → check citations.

`AnswerEngine.ask` is what `edgerag ask`, each `chat` turn, the evaluation harness and the TUI call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from ..errors import BadInputError
from ..retrieve import Hit, Retriever
from ..retrieve.context import assemble, focus
from ..store.keyword import Coverage, indexed_words
from ..text import split_sentences
from .citations import CheckedSentence, as_answered, best_passage, check_answer, strip_markers
from .prompts import NOT_FOUND, SYSTEM_PROMPT, messages_for, source_label, user_message

PROMPT_OVERHEAD_TOKENS = 48  # chat-template tokens around the messages


@dataclass
class Source:
    number: int  # [n] in the prompt
    path: str
    page: int | None
    heading: str | None
    text: str
    score: float
    dense: float | None
    text_id: int

    @property
    def label(self) -> str:
        return source_label(self.path, self.page, self.heading)


@dataclass
class Citation:
    number: int
    source: Source
    passage: str  # the sentence of the source that best matches the citing sentence
    supported: bool
    attributed: bool  # matched by the checker, not written by the model
    reasons: list[str] = field(default_factory=list)  # why it does not support a sentence citing it


@dataclass
class Answer:
    question: str
    query: str  # what was searched (a follow-up is resolved against the conversation)
    text: str
    sources: list[Source]  # what retrieval chose for this question, numbered (in a chat: the chat's numbers)
    sentences: list[CheckedSentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)  # only the sources the answer cites
    not_found: bool = False  # retrieval found nothing relevant, or the model said the documents lack it
    not_found_reason: str = ""  # why the not-found gate answered without asking the model ("" when it did not)
    interrupted: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    # every source in the model's context, by number: a chat's earlier turns' too; empty = `sources`
    context: list[Source] = field(default_factory=list)
    dropped_turns: int = 0  # a chat's oldest turns taken out of the model's context to make room for this one
    generated: str | None = None  # the model's output exactly as streamed (`text` is it stripped); None: not asked

    @property
    def in_context(self) -> list[Source]:
        return self.context or self.sources

    @property
    def grounded(self) -> bool:
        """At least one sentence is supported by a source."""
        return any(s.supported_by for s in self.sentences)

    @property
    def unsupported_sentences(self) -> list[str]:
        """Claims no source supports: contradicted (a source on the topic states other facts) or unsupported."""
        return [s.text for s in self.sentences if s.unsupported]

    @property
    def flagged(self) -> list[CheckedSentence]:
        """The unsupported sentences with their status and reasons ("1 year not in [1]")."""
        return [s for s in self.sentences if s.unsupported]


@dataclass
class Numbering:
    """One source numbering per chat: a source keeps its [n] for the whole conversation, and one already in the
    prompt (shown by an earlier turn still in the context) is named by its number instead of being resent.
    A number is never given to another text, so an earlier answer's [n] still means the same passage."""
    numbers: dict[str, int] = field(default_factory=dict)  # source text -> its number in this chat
    in_prompt: dict[int, Source] = field(default_factory=dict)  # sources the conversation's prompt shows now

    def copy(self) -> "Numbering":
        return Numbering(dict(self.numbers), dict(self.in_prompt))

    def number(self, hit: Hit) -> Source:
        n = self.numbers.setdefault(hit.text, len(self.numbers) + 1)
        return Source(n, hit.source.path, hit.source.page, hit.source.heading, hit.text, hit.score, hit.dense,
                      hit.text_id)


# A reply longer than this that merely contains the refusal sentence is an answer, not a refusal: a base model
# that continues the prompt echoes the system prompt's "reply exactly: Not found in your documents." (Gemma 3 270M
# base did so in 97% of its replies, which were counted as refusals and made its "correct refusals" look perfect).
REFUSAL_MAX_WORDS = 20


def is_not_found(text: str) -> bool:
    """Did the model refuse? An empty reply, a reply that starts with the refusal sentence, or a short reply
    (at most REFUSAL_MAX_WORDS words, e.g. "The sources do not say. Not found in your documents.") containing it."""
    reply = strip_markers(text).strip().lower()
    if not reply:
        return True
    phrase = NOT_FOUND.lower().rstrip(".")
    return reply.startswith(phrase) or (phrase in reply and len(reply.split()) <= REFUSAL_MAX_WORDS)


class AnswerEngine:
    def __init__(self, retriever: Retriever, generator, settings, mode: str | None = None,
                 top_k: int | None = None, order: str = "best-first"):
        self.retriever, self.generator, self.settings = retriever, generator, settings
        self.mode = mode or settings.retrieve_mode
        self.top_k = top_k or settings.top_k
        self.order = order
        self._query, self._qvec = None, None  # the last query retrieved, and its embedding

    # -- retrieval -----------------------------------------------------------------------------------------
    def relevant(self, hits: list[Hit], query: str | None = None) -> bool:
        """The "not found" gate, before the model runs (see not_found_reason)."""
        return self.not_found_reason(hits, query) is None

    def not_found_reason(self, hits: list[Hit], query: str | None = None) -> str | None:
        """Why the sources cannot answer, for the user; None when they may. They may when the hit closest to the
        query has an embedding cosine of at least `min_relevance` (BM25 mode has no similarity: that test passes)
        and the best of their sentences mentions at least `min_coverage` of what the query asks about (coverage:
        a question about a name or thing no source mentions is not answered from whatever shares its topic).
        `query` defaults to the last one retrieved. The evaluation's unanswerable condition asks this too, about
        passages it chose itself."""
        if not hits:
            return "no passage matches the question"
        query = self._query if query is None else query
        if self.mode != "bm25" and (similarity := self.similarity(hits, query)) < self.settings.min_relevance:
            return f"the closest passage is about something else (similarity {similarity:.2f}, below " \
                   f"min_relevance {self.settings.min_relevance:.2f})"
        if self.settings.min_coverage > 0 and (found := self.coverage(hits, query)).share < self.settings.min_coverage:
            lacks = ", ".join(f"“{w}”" for w in found.missing[:4])
            return f"the passages found mention too little of the question (the closest sentence lacks {lacks}; " \
                   f"coverage {found.share:.2f}, below min_coverage {self.settings.min_coverage:.2f})"
        return None

    def similarity(self, hits: list[Hit], query: str) -> float:
        """The best embedding cosine between the query and the hits."""
        reuse = query == self._query and self._qvec is not None  # the retrieval just embedded it
        return self._best_similarity(hits, self._qvec if reuse else self.retriever.embedder.embed_one(query))

    def coverage(self, hits: list[Hit], query: str) -> Coverage:
        """The share of what the query asks about that the best sentence of the hits mentions (with its heading).
        A sentence, not a whole passage: passages on the question's topic share its words spread over several
        sentences, the one that answers usually holds most of them in one. At 0.30 on XQuAD-en the sentence test
        refused 62.1% of unanswerable questions, the same test on whole passages 51.9% (docs/results/answerability)."""
        shown = [indexed_words(h.source.heading, sentence) for h in hits for sentence in split_sentences(h.text)]
        return self.retriever.collection.keywords.coverage(query, shown)

    def focused(self, hits: list[Hit], query: str) -> list[Hit]:
        """Each hit cut to its sentences around the one that covers the query best, `focus_words` words at most
        (retrieve/context.py focus). The model, the citation check and the user all see the cut text."""
        words = self.settings.focus_words
        if not words:
            return hits
        shares = partial(self.retriever.collection.keywords.shares, query)
        out = []
        for hit in hits:
            a, b = focus(hit.text, shares, words)
            out.append(replace(hit, source=replace(hit.source, text=hit.text[a:b], start=hit.source.start + a,
                                                   end=hit.source.start + b)))
        return out

    def _best_similarity(self, hits: list[Hit], qvec) -> float:
        scores = [h.dense for h in hits if h.dense is not None]
        unseen = [h for h in hits if h.dense is None]  # found by bm25 only, or given (oracle / evaluation)
        stored = [h.text_id for h in unseen if h.text_id > 0]
        if stored:
            scores += (self.retriever.collection.embeddings(stored) @ qvec).tolist()
        fresh = [h.text for h in unseen if h.text_id <= 0]
        if fresh:
            scores += (np.asarray(self.retriever.embedder.embed(fresh)) @ qvec).tolist()
        return float(max(scores))

    def retrieve(self, query: str) -> list[Hit]:
        self._query, self._qvec = query, self.retriever.embedder.embed_one(query)
        return self.retriever.search(query, k=self.top_k, mode=self.mode)

    # -- answering -----------------------------------------------------------------------------------------
    def budget(self, question: str, history: list[dict]) -> int:
        fixed = (self.generator.count_tokens(SYSTEM_PROMPT) + self.generator.count_tokens(user_message(question, []))
                 + sum(self.generator.count_tokens(m["content"]) + 8 for m in history) + PROMPT_OVERHEAD_TOKENS)
        return self.generator.n_ctx - self.settings.max_tokens - fixed

    def ask(self, question: str, on_token: Callable[[str], None] = lambda _t: None,
            history: list[dict] | None = None, query: str | None = None, reuse_cache: bool = True,
            sources_override: list[Hit] | None = None, numbering: Numbering | None = None) -> Answer:
        """Answer one question. `sources_override` skips retrieval (oracle evaluation, finetuning checks).
        `numbering`: a chat's (see Numbering; the caller records what this turn showed), else [1]..[k]."""
        question = (question or "").strip()
        if not question:
            raise BadInputError("empty question")
        history = history or []
        query = query or question
        t0 = time.perf_counter()
        room = self.budget(question, history)
        if room < 64:
            n = self.generator.count_tokens(question)
            raise BadInputError(f"the question ({n} tokens) with the conversation does not fit the model's "
                                f"{self.generator.n_ctx}-token context; shorten it or start a new chat")
        hits = sources_override if sources_override is not None else self.retrieve(query)
        t_retrieve = time.perf_counter() - t0
        if sources_override is None and (reason := self.not_found_reason(hits)):
            answer = Answer(question, query, NOT_FOUND, [], not_found=True, not_found_reason=reason,
                            timings={"retrieve_s": t_retrieve, "total_s": time.perf_counter() - t0})
            on_token(NOT_FOUND)
            return answer
        hits = self.focused(hits, query)
        numbering = Numbering() if numbering is None else numbering
        earlier_shown = {s.text for s in numbering.in_prompt.values()}  # a chat's: in the history already
        chosen = assemble(hits, lambda t: 0 if t in earlier_shown else self.generator.count_tokens(t), room, self.order)
        sources = [numbering.number(h) for h in chosen]
        new = [s for s in sources if s.number not in numbering.in_prompt]
        earlier = [s.number for s in sources if s.number in numbering.in_prompt]
        context = sorted([*numbering.in_prompt.values(), *new], key=lambda s: s.number) if earlier_shown else []
        messages = messages_for(question, new, history, earlier)
        pieces: list[str] = []
        interrupted = False
        try:
            for piece in self.generator.stream_chat(messages, max_tokens=self.settings.max_tokens,
                                                    temperature=self.settings.temperature, reuse_cache=reuse_cache):
                pieces.append(piece)
                on_token(piece)
        except KeyboardInterrupt:
            interrupted = True
        generated = "".join(pieces)
        text = generated.strip()
        stats = self.generator.stats
        answer = Answer(question, query, text, sources, interrupted=interrupted, context=context, generated=generated,
                        timings={"retrieve_s": t_retrieve, "first_token_s": t_retrieve + stats.first_token_s,
                                 "generate_s": stats.total_s, "completion_tokens": stats.completion_tokens,
                                 "tokens_per_s": stats.tokens_per_s, "prompt_tokens": stats.prompt_tokens,
                                 "prompt_tokens_evaluated": stats.prompt_tokens - stats.reused_tokens})
        self._check(answer)
        answer.timings["total_s"] = time.perf_counter() - t0
        return answer

    def _check(self, answer: Answer) -> None:
        if is_not_found(answer.text):
            answer.not_found = True
            return
        # checked against every source the model saw, by the number it saw it under
        by_number = {s.number: s for s in answer.in_context}
        answer.sentences = check_answer(answer.text, [s.text for s in by_number.values()],
                                        embed=self.retriever.embedder.embed, numbers=list(by_number),
                                        question=answer.query)
        seen: dict[int, Citation] = {}
        for sentence in answer.sentences:
            for n in (sentence.cited or sentence.supported_by or sentence.against):
                if n in by_number and n not in seen:
                    src = by_number[n]
                    quoted = best_passage(as_answered(strip_markers(sentence.text), answer.query), src.text)
                    seen[n] = Citation(n, src, quoted,
                                       n in sentence.supported_by, sentence.attributed or n in sentence.against)
                elif n in seen and n in sentence.supported_by:
                    seen[n].supported = True
                if n in seen and n not in sentence.supported_by:
                    seen[n].reasons += [r for r in sentence.reasons if f"[{n}]" in r]
        for citation in seen.values():
            if citation.supported:  # supports some sentence citing it; the others' reasons stay on those sentences
                citation.reasons = []
        answer.citations = [seen[n] for n in sorted(seen)]


_FOLLOWUP = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|then|one|ones)\b",
                       re.IGNORECASE)


def resolve_followup(question: str, previous_questions: list[str]) -> str:
    """The retrieval query for a chat turn: a short or pronoun-led follow-up borrows the previous question's
    words ("what about its population?" after "Where is Warsaw?" searches both), so retrieval sees the topic."""
    if not previous_questions:
        return question
    words = question.split()
    looks_dependent = len(words) <= 4 or bool(_FOLLOWUP.search(question)) or \
        question.lower().startswith(("and ", "what about", "how about", "why", "also"))
    return f"{previous_questions[-1]} {question}" if looks_dependent else question
