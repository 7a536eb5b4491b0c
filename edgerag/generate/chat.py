"""A multi-turn chat over a collection.

The prompt of turn N+1 extends the prompt of turn N (plus its answer, exactly as generated), so llama.cpp reuses
the KV cache of everything before the new turn and evaluates only that. Two rules make this hold:
- one source numbering per chat (`Numbering`): a source keeps its [n] for the whole conversation, and a source
  an earlier turn already shows is named ("Also relevant, shown above: [2]"), not resent under a new number;
  only sources new to the conversation are sent, with new numbers;
- earlier turns are never rewritten while they fit.
When the conversation outgrows the context, the oldest turns are dropped (explicitly: `Answer.dropped_turns`);
a source a dropped turn showed that a kept turn relies on (retrieved again for it, or cited by its answer) moves
into the first kept turn's message under its same number, so every [n] in the context still means one passage and
the checker judges citations against that passage. Then one full re-evaluation, and reuse resumes.
An interrupted answer stays in the history, marked as cut off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .answer import Answer, AnswerEngine, Numbering, Source, resolve_followup
from .prompts import user_message

MIN_SOURCE_BUDGET = 384  # tokens kept free for the new turn's sources before old turns are dropped
CUT_OFF = " [answer cut off]"


@dataclass
class Turn:
    """One exchange as the model saw it."""
    question: str
    shown: list[Source]  # sources whose text this turn's message carries (new to the context then)
    earlier: list[int]  # numbers of sources already in the context that this question retrieved again
    reply: str  # the answer exactly as generated (the KV cache holds these tokens)
    cited: list[int] = field(default_factory=list)  # numbers the answer cites (or the checker attributed)

    def messages(self) -> list[dict]:
        return [{"role": "user", "content": user_message(self.question, self.shown, self.earlier)},
                {"role": "assistant", "content": self.reply}]


@dataclass
class ChatSession:
    engine: AnswerEngine
    turns: list[Turn] = field(default_factory=list)  # the turns still in the model's context
    answers: list[Answer] = field(default_factory=list)  # every answer of the conversation
    numbering: Numbering = field(default_factory=Numbering)
    reuse_cache: bool = True
    dropped_turns: int = 0  # turns taken out of the context so far

    @property
    def history(self) -> list[dict]:
        """The earlier turns' user/assistant messages exactly as sent (and as the next turn resends them)."""
        return [m for turn in self.turns for m in turn.messages()]

    def ask(self, question: str, on_token: Callable[[str], None] = lambda _t: None) -> Answer:
        query = resolve_followup(question, [a.question for a in self.answers])
        dropped = 0
        while self.turns and self.engine.budget(question, self.history) < MIN_SOURCE_BUDGET:
            self._drop_oldest()
            dropped += 1
        answer = self.engine.ask(question, on_token, history=self.history, query=query,
                                 reuse_cache=self.reuse_cache, numbering=self.numbering)
        answer.dropped_turns = dropped
        new = [s for s in answer.sources if s.number not in self.numbering.in_prompt]
        earlier = [s.number for s in answer.sources if s.number in self.numbering.in_prompt]
        # The reply as generated: the next prompt then matches the cached tokens (a stripped reply would not).
        reply = answer.generated if answer.generated is not None else answer.text
        self.turns.append(Turn(question, new, earlier, reply + (CUT_OFF if answer.interrupted else ""),
                               [c.number for c in answer.citations]))
        self.numbering.in_prompt.update((s.number, s) for s in new)
        self.answers.append(answer)
        return answer

    def _drop_oldest(self) -> None:
        """Take the oldest turn out of the context. Its sources that a kept turn relies on move into the next
        turn's message (same numbers); the rest leave the context (and are resent, same number, if needed again)."""
        gone = self.turns.pop(0)
        self.dropped_turns += 1
        relied = {n for t in self.turns for n in (*t.earlier, *t.cited)}
        carried = [s for s in gone.shown if s.number in relied]
        if self.turns and carried:
            first = self.turns[0]
            first.shown = carried + first.shown
            first.earlier = [n for n in first.earlier if n not in {s.number for s in carried}]
        kept = {s.number for t in self.turns for s in t.shown}
        self.numbering.in_prompt = {n: s for n, s in self.numbering.in_prompt.items() if n in kept}

    def continue_from(self, other: "ChatSession") -> None:
        """Carry on `other`'s conversation with this session's engine (e.g. rebuilt after the data changed)."""
        self.turns, self.answers, self.numbering = other.turns, other.answers, other.numbering
        self.dropped_turns = other.dropped_turns

    def reset(self) -> None:
        self.turns.clear()
        self.answers.clear()
        self.numbering = Numbering()
        self.dropped_turns = 0
