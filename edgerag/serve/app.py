"""The ASGI app: OpenAI-compatible /v1/models, /v1/chat/completions (SSE streaming or not), /v1/embeddings.

Errors leave here in OpenAI's shape ({"error": {"message", "type", "param", "code"}}), so OpenAI clients show
their message: a bad request is 4xx, an edgerag problem the user can fix keeps its one-line message.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..errors import BadInputError, CollectionError, EdgeragError, ModelNotFound
from ..filters import parse_where
from .bridge import Run
from .chat import Conversations, Params, Reply, plain_job, rag_job
from .limits import BodyLimit, Limits
from .protocol import (ApiError, ChatRequest, EmbeddingRequest, chat_chunk, chat_completion, new_id, usage)
from .registry import Registry


class _Stream(EventSourceResponse):
    """An SSE response that, however it ends (done, client gone, error), stops the generation behind it."""

    def __init__(self, content, run: Run, **kwargs):
        super().__init__(content, **kwargs)
        self._run = run

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.cancel.set()


def _status(exc: EdgeragError) -> int:
    if isinstance(exc, ModelNotFound):
        return 404
    if isinstance(exc, (BadInputError, CollectionError)):
        return 400
    return 500


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    where = ".".join(str(p) for p in first.get("loc", ())[1:])
    return (f"{where}: {first.get('msg', 'invalid value')}" if where else first.get("msg", "invalid request")), \
        where or None


def create_app(settings: Settings, *, api_key: str | None = None, limits: Limits | None = None,
               load_generator=None) -> FastAPI:
    """`load_generator(name)` replaces llama.cpp loading (tests use a fast deterministic generator)."""
    limits = limits or Limits()
    registry = Registry(settings, load_generator=load_generator, max_queue=limits.max_queue)
    conversations = Conversations()

    async def authorize(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            raise ApiError(401, "missing or wrong API key (send Authorization: Bearer <key>)",
                           code="invalid_api_key")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        registry.close()

    # No /docs: its page loads scripts from a CDN, and nothing edgerag serves may reach the network.
    app = FastAPI(title="edgerag", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  dependencies=[Depends(authorize)])
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(EdgeragError)
    async def edgerag_error(_request, exc: EdgeragError):
        status = _status(exc)
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse(ApiError(status, str(exc), type=kind).body(), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return JSONResponse(ApiError(400, message, param=param).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        return JSONResponse(ApiError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code)

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": await run_in_threadpool(registry.list_models)}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str):
        for entry in await run_in_threadpool(registry.list_models):
            if entry["id"] == model_id:
                return entry
        raise ApiError(404, f"the model {model_id!r} does not exist", param="model", code="model_not_found")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request):
        if not body.messages:
            raise ApiError(400, "messages is empty: send at least one user message", param="messages")
        if body.n != 1:
            raise ApiError(400, "only n=1 is supported", param="n")
        wanted = body.max_completion_tokens or body.max_tokens or settings.max_tokens
        if wanted > limits.max_tokens:
            raise ApiError(400, f"max_tokens {wanted} is above this server's limit of {limits.max_tokens} "
                                "(edgerag serve --max-tokens-limit)", param="max_tokens")
        stop = [body.stop] if isinstance(body.stop, str) else body.stop
        params = Params(wanted, settings.temperature if body.temperature is None else body.temperature, stop)
        collection, generator_name = await run_in_threadpool(registry.resolve_chat, body.model)
        where = parse_where(body.where)  # a bad filter is a 400 naming the accepted forms
        if where is not None and collection is None:
            raise ApiError(400, "where filters the documents of a rag: model; this model reads none", param="where")
        if collection is not None:
            job = rag_job(registry, conversations, body.model, collection, generator_name, body.messages, params,
                          body.stream, where)
        else:
            job = plain_job(registry, generator_name, body.messages, params)
        run = Run(registry.worker(generator_name), job, stream=body.stream)
        completion_id = new_id("chatcmpl")
        if not body.stream:
            reply: Reply = await run.result(request.is_disconnected)
            return chat_completion(completion_id, body.model, reply.text, reply.finish_reason,
                                   usage(reply.prompt_tokens, reply.completion_tokens), reply.extras)
        events = run.events()
        first = await anext(events)  # errors before the first token still get a proper 4xx response
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _Stream(_sse(completion_id, body.model, first, events, include_usage), run)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest):
        name = await run_in_threadpool(registry.resolve_embedder, body.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or len(texts) > limits.max_inputs:
            raise ApiError(400, f"input must hold 1 to {limits.max_inputs} texts", param="input")
        if any(not t.strip() for t in texts):
            raise ApiError(400, "input contains an empty text", param="input")
        embedder = await run_in_threadpool(registry.embedder, name)
        if body.dimensions is not None and body.dimensions != embedder.dim:
            raise ApiError(400, f"{name} makes {embedder.dim}-dimensional vectors", param="dimensions")
        vectors = await run_in_threadpool(embedder.embed, texts)
        tokens = sum(await run_in_threadpool(embedder.count_tokens_batch, texts))

        def encode(v: np.ndarray):
            if body.encoding_format == "base64":
                return base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
            return v.astype(float).tolist()

        return {"object": "list", "model": name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)]}

    return app


async def _sse(completion_id: str, model: str, first, events, include_usage: bool):
    """OpenAI's chunk sequence: the role, content deltas (for rag:, then the markers the checker added), a last
    chunk with finish_reason (and, for rag:, the citations, known only once the answer is checked), an optional
    usage chunk, then [DONE]."""
    yield json.dumps(chat_chunk(completion_id, model, {"role": "assistant", "content": ""}))
    item = first
    try:
        while not isinstance(item, Reply):
            yield json.dumps(chat_chunk(completion_id, model, {"content": item}))
            item = await anext(events)
    except ApiError as exc:
        yield json.dumps(exc.body())
        return
    except EdgeragError as exc:
        yield json.dumps(ApiError(_status(exc), str(exc)).body())
        return
    finally:
        await events.aclose()
    if item.tail:
        yield json.dumps(chat_chunk(completion_id, model, {"content": item.tail}))
    yield json.dumps(chat_chunk(completion_id, model, {}, item.finish_reason, item.extras))
    if include_usage:
        yield json.dumps(chat_chunk(completion_id, model, None, usage=usage(item.prompt_tokens,
                                                                            item.completion_tokens)))
    yield "[DONE]"
