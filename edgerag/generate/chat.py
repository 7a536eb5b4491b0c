"""A multi-turn chat over a collection.

Earlier turns are resent exactly as they were (sources included) so llama.cpp reuses their KV cache and only
processes the new turn; when the conversation outgrows the context, the oldest turns are dropped (one full
re-evaluation, then reuse resumes). An interrupted answer stays in the history, marked as cut off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .answer import Answer, AnswerEngine, resolve_followup
from .prompts import user_message

MIN_SOURCE_BUDGET = 384  # tokens kept free for the new turn's sources before old turns are dropped


@dataclass
class ChatSession:
    engine: AnswerEngine
    history: list[dict] = field(default_factory=list)  # user/assistant messages exactly as sent
    answers: list[Answer] = field(default_factory=list)
    reuse_cache: bool = True

    def ask(self, question: str, on_token: Callable[[str], None] = lambda _t: None) -> Answer:
        query = resolve_followup(question, [a.question for a in self.answers])
        while self.history and self.engine.budget(question, self.history) < MIN_SOURCE_BUDGET:
            self.history = self.history[2:]  # drop the oldest user+assistant pair
        answer = self.engine.ask(question, on_token, history=self.history, query=query, reuse_cache=self.reuse_cache)
        reply = answer.text + (" [answer cut off]" if answer.interrupted else "")
        self.history += [{"role": "user", "content": user_message(question, answer.sources)},
                         {"role": "assistant", "content": reply}]
        self.answers.append(answer)
        return answer

    def reset(self) -> None:
        self.history.clear()
        self.answers.clear()
