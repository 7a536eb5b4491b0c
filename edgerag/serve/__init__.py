"""`edgerag serve`: an OpenAI-compatible HTTP server over the models store and the collections.

Needs the `serve` extra (FastAPI, uvicorn, sse-starlette); importing this package does not, so `edgerag --help`
works without it and the error names the extra only when a server is started.

  protocol.py   request/response/error shapes of the OpenAI API
  registry.py   model ids → loaded models; one worker thread (a queue) per llama.cpp model
  chat.py       a `rag:` turn (ChatSession) or a plain chat, as a job for that worker
  bridge.py     a job's tokens from its worker thread to the event loop; cancellation
  citations.py  an Answer's citations as JSON
  limits.py     body size / max_tokens / queue limits, the bind check
  app.py        the FastAPI app and its routes
  server.py     uvicorn in the foreground or on a thread
"""

from .limits import Limits, check_bind
from .server import serve, serve_in_thread

__all__ = ["Limits", "check_bind", "serve", "serve_in_thread"]
