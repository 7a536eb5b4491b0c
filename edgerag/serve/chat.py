"""Chat completions: a `rag:<collection>` model runs one `ChatSession` turn (the pipeline of `ask`/`chat`:
retrieval, context budget, verified citations, abstention); a generator name is a plain chat, no retrieval.

Both are jobs for the generator's worker thread (see registry.py): `job(on_token, cancel)` streams pieces through
on_token and stops at the next token once `cancel` is set (the client went away).

Multi-turn: the client resends the whole conversation each time, but without the sources edgerag put in each
earlier user turn. Sessions are therefore remembered by the conversation the client sees; a follow-up whose
earlier turns match a remembered one continues that session (its turns exactly as the model saw them, sources
and source numbers included, so llama.cpp reuses their KV cache, as in `edgerag chat`). An unknown conversation
is rebuilt from the plain messages.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ..filters import Where
from ..generate.answer import Answer, AnswerEngine
from ..generate.chat import ChatSession, Turn
from ..generate.prompts import SYSTEM_PROMPT
from .citations import answer_extras, marked_text, streamed_tail
from .protocol import ApiError, ChatMessage, text_of

PROMPT_OVERHEAD_TOKENS = 48  # chat-template tokens around the messages (as in generate/answer.py)


class ClientGone(Exception):
    """The client disconnected before its queued request started."""


@dataclass
class Params:
    max_tokens: int
    temperature: float
    stop: list[str] | None = None


@dataclass
class Reply:
    text: str
    finish_reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int
    extras: dict = field(default_factory=dict)  # extra per-choice fields (citations for rag:)
    tail: str = ""  # text a stream sends after the generated pieces (markers the checker added)


def conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (last user message) and the earlier (question, reply) pairs. System messages are not
    used: a `rag:` answer is made with edgerag's own grounded-answer prompt."""
    turns = [(m.role, text_of(m).strip()) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1]:
        raise ApiError(400, "the last message must be a user message with a question", param="messages")
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in turns[:-1]:
        if role == "user":
            if pending is not None:
                pairs.append((pending, ""))
            pending = text
        else:
            pairs.append((pending or "", text))
            pending = None
    if pending is not None:
        pairs.append((pending, ""))
    return turns[-1][1], pairs


class Conversations:
    """Chat sessions (turns exactly as sent to the model, source numbering), keyed by (model, the conversation
    as the client sees it). Stored as copies: two requests continuing one conversation do not share state."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict[str, ChatSession] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(model: str, pairs: list[tuple[str, str]]) -> str:
        return hashlib.sha256(json.dumps([model, pairs]).encode("utf-8")).hexdigest()

    def session(self, engine: AnswerEngine, model: str, pairs: list[tuple[str, str]]) -> ChatSession:
        with self._lock:
            found = self._items.get(self._key(model, pairs))
            if found:
                self._items.move_to_end(self._key(model, pairs))
        if found:
            return _copy(found, engine)
        turns = [Turn(q, [], [], a) for q, a in pairs]
        answers = [Answer(q, q, "", []) for q, _ in pairs]  # the session reads their questions (follow-ups)
        return ChatSession(engine, turns=turns, answers=answers)

    def remember(self, model: str, pairs: list[tuple[str, str]], session: ChatSession) -> None:
        with self._lock:
            self._items[self._key(model, pairs)] = _copy(session, None)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _copy(session: ChatSession, engine) -> ChatSession:
    turns = [dataclasses.replace(t, shown=list(t.shown), earlier=list(t.earlier)) for t in session.turns]
    answers = [Answer(a.question, a.query, "", []) for a in session.answers]  # questions only: follow-ups
    return ChatSession(engine, turns=turns, answers=answers, numbering=session.numbering.copy(),
                       dropped_turns=session.dropped_turns)


def rag_job(registry, conversations: Conversations, model: str, collection: str, generator_name: str,
            messages: list[ChatMessage], params: Params, stream: bool, where: Where | None = None):
    question, pairs = conversation(messages)

    def job(on_token, cancel: threading.Event) -> Reply:
        if cancel.is_set():
            raise ClientGone
        base = registry.engine(collection, generator_name)
        # A per-request engine over the shared retriever and generator: only the generation settings differ.
        settings = dataclasses.replace(base.settings, max_tokens=params.max_tokens, temperature=params.temperature)
        retriever = base.retriever
        if where is not None:  # the request's `where` filter, on a per-request view of the shared retriever
            retriever = copy.copy(base.retriever)
            retriever.where = where
        engine = AnswerEngine(retriever, base.generator, settings, mode=base.mode, top_k=base.top_k,
                              order=base.order)
        session = conversations.session(engine, model, pairs)

        def token(piece: str) -> None:
            if cancel.is_set():
                raise KeyboardInterrupt  # the engine's own stop signal (Ctrl-C in `edgerag ask`)
            on_token(piece)

        answer = session.ask(question, on_token=token)
        # what the client will hold as this reply (and send back with its next question)
        text, tail = (answer.text, streamed_tail(answer)) if stream else (marked_text(answer), "")
        if not answer.interrupted:
            conversations.remember(model, pairs + [(question, (text + tail).strip())], session)
        count = engine.generator.count_tokens
        prompt = count(SYSTEM_PROMPT) + sum(count(m["content"]) for m in session.history[:-1]) \
            + PROMPT_OVERHEAD_TOKENS
        completion = int(answer.timings.get("completion_tokens", 0))
        finish = "length" if completion >= params.max_tokens else "stop"
        return Reply(text, finish, prompt, completion, answer_extras(answer), tail)

    return job


def plain_job(registry, generator_name: str, messages: list[ChatMessage], params: Params):
    chat = []
    for m in messages:
        if m.role == "tool":
            raise ApiError(400, "tool messages are not supported by edgerag's local models", param="messages")
        chat.append({"role": "system" if m.role == "developer" else m.role, "content": text_of(m)})
    if not any(m["role"] == "user" and m["content"].strip() for m in chat):
        raise ApiError(400, "the messages contain no user message with text", param="messages")

    def job(on_token, cancel: threading.Event) -> Reply:
        if cancel.is_set():
            raise ClientGone
        generator = registry.generator(generator_name)
        prompt = sum(generator.count_tokens(m["content"]) + 8 for m in chat) + PROMPT_OVERHEAD_TOKENS
        if prompt + params.max_tokens > generator.n_ctx:
            raise ApiError(400, f"the messages (~{prompt} tokens) plus max_tokens ({params.max_tokens}) do not fit "
                                f"the model's {generator.n_ctx}-token context", param="messages",
                           code="context_length_exceeded")
        pieces: list[str] = []
        stream = generator.stream_chat(chat, max_tokens=params.max_tokens, temperature=params.temperature,
                                       stop=params.stop)
        try:
            for piece in stream:
                if cancel.is_set():
                    break
                on_token(piece)
                pieces.append(piece)
        finally:
            stream.close()  # stops llama.cpp mid-generation when we broke out early
        completion = generator.stats.completion_tokens
        return Reply("".join(pieces), "length" if completion >= params.max_tokens else "stop", prompt, completion)

    return job
