"""The OpenAI wire format `edgerag serve` speaks: request bodies (validated by pydantic), response objects and the
error object every 4xx/5xx carries.

Requests allow unknown fields: OpenAI clients send options we do not use (`user`, `seed`, `top_p`, ...), and
refusing them would break those clients for no gain. Options that would change the answer in a way we cannot
honour (`n > 1`, token-id input) are refused with a message instead of being silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiError(Exception):
    """An error the client caused (4xx) or must be told about, in OpenAI's shape."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)  # the newer name of max_tokens
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1)
    where: str | list[str] | None = None  # edgerag's metadata filter for rag: models (`--where` expressions)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)


def text_of(message: ChatMessage) -> str:
    """A message's text: a string, or the text parts of a content list (images cannot be read by our models)."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ApiError(400, f"content part of type {part.get('type')!r} is not supported: send text",
                           param="messages")
        texts.append(part["text"])
    return "".join(texts)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def chat_completion(completion_id: str, model: str, text: str, finish_reason: str, usage: dict,
                    extras: dict) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason,
              "logprobs": None, **extras}
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [choice], "usage": usage}


def chat_chunk(completion_id: str, model: str, delta: dict | None, finish_reason: str | None = None,
               extras: dict | None = None, usage: dict | None = None) -> dict:
    """One SSE chunk; `delta=None` with `usage` is the final usage-only chunk (choices empty, as OpenAI sends)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                         "logprobs": None, **(extras or {})}]
    chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
             "model": model, "choices": choices}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def model_entry(model_id: str, owned_by: str = "edgerag", **extra) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owned_by, **extra}
