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
    """sources: objects with .text/.path/.page/.heading, numbered [1]..[k] in the given order."""
    return "\n\n".join(f"[{i}] ({source_label(s.path, s.page, s.heading)}) {s.text.strip()}"
                       for i, s in enumerate(sources, start=1))


def user_message(question: str, sources) -> str:
    return f"Sources:\n{format_sources(sources)}\n\nQuestion: {question.strip()}"


def messages_for(question: str, sources, history: list[dict] | None = None) -> list[dict]:
    """System, earlier turns (exactly as sent before, so llama.cpp can reuse their KV cache), then this turn."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, *(history or []),
            {"role": "user", "content": user_message(question, sources)}]
