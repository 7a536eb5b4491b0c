"""The prompt format shared by `ask`/`chat` at run time and by finetuning data synthesis.

Keeping one definition means a finetuned model is trained on exactly the prompts it will see.
"""

from __future__ import annotations

from pathlib import Path

NOT_FOUND = "Not found in your documents."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources below. "
    "Answer in one or two sentences, copying the words of the source that answer the question, "
    "and cite the source number in brackets like [1]. "
    f"If the sources do not answer the question, reply exactly: {NOT_FOUND}"
)


def source_label(path: str, page: int | None, heading: str | None) -> str:
    label = Path(path).name
    if page:
        label += f", p. {page}"
    if heading:
        label += f", {heading}"
    return label


def format_sources(sources) -> str:
    """sources: objects with .text/.path/.page/.heading, numbered by their .number (a chat's numbering) when they
    have one, else [1]..[k] in the given order."""
    return "\n\n".join(f"[{getattr(s, 'number', None) or i}] ({source_label(s.path, s.page, s.heading)}) "
                       f"{s.text.strip()}" for i, s in enumerate(sources, start=1))


def user_message(question: str, sources, earlier=()) -> str:
    """One turn: the sources shown with it, then the question. `earlier`: numbers of sources an earlier turn of
    the same chat already shows and this question retrieved again; they are named, not resent, so the prompt
    of a chat's next turn extends the previous one (llama.cpp reuses the KV cache of the shared prefix).
    With neither, a single-turn prompt is exactly what finetuning trains on."""
    parts = [f"Sources:\n{format_sources(sources)}"] if sources else []
    if earlier:
        parts.append("Also relevant, shown above: " + ", ".join(f"[{n}]" for n in earlier))
    return "\n\n".join([*parts, f"Question: {question.strip()}"]) if parts else f"Question: {question.strip()}"


def messages_for(question: str, sources, history: list[dict] | None = None, earlier=()) -> list[dict]:
    """System, earlier turns (exactly as sent before, so llama.cpp can reuse their KV cache), then this turn."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, *(history or []),
            {"role": "user", "content": user_message(question, sources, earlier)}]
