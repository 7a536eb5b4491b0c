"""`edgerag serve`: the OpenAI-compatible local server (parsing and printing only; see edgerag/serve/)."""

from __future__ import annotations

import os

from .common import console, settings_from

DEFAULT_PORT = 8000


def register(sub) -> None:
    p = sub.add_parser("serve", help="OpenAI-compatible HTTP server: rag:<collection> answers with citations")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; any other needs --api-key)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--api-key", dest="api_key", default=None,
                   help="require 'Authorization: Bearer KEY' (default: $EDGERAG_SERVE_API_KEY, else none)")
    p.add_argument("--max-tokens-limit", dest="max_tokens_limit", type=int, default=1024,
                   help="largest max_tokens a request may ask for (default 1024)")
    p.add_argument("--max-body-bytes", dest="max_body_bytes", type=int, default=1_000_000,
                   help="largest request body (default 1000000)")
    p.add_argument("--max-queue", dest="max_queue", type=int, default=8,
                   help="requests per model, running or waiting, before new ones get 429 (default 8)")
    p.add_argument("--quiet", action="store_true", help="no access log")
    p.set_defaults(func=serve_cmd)


def serve_cmd(args) -> int:
    from ..errors import BadInputError
    from ..serve import Limits, serve

    for name in ("max_tokens_limit", "max_body_bytes", "max_queue"):
        if getattr(args, name) <= 0:
            raise BadInputError(f"--{name.replace('_', '-')} must be positive")
    settings = settings_from(args)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_tokens=args.max_tokens_limit, max_queue=args.max_queue)
    api_key = args.api_key or os.environ.get("EDGERAG_SERVE_API_KEY") or None

    def started(url: str) -> None:
        # One plain line on stdout first: the TUI's Models screen reads it to learn the URL.
        print(f"edgerag serve: listening on {url}", flush=True)
        if not args.quiet:
            console.print(f"[dim]models: GET {url}/models · chat: POST {url}/chat/completions "
                          f"(model rag:<collection>) · Ctrl-C stops[/]")

    serve(settings, args.host, args.port, api_key=api_key, limits=limits, quiet=args.quiet, on_started=started)
    return 0
