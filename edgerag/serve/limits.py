"""The server's safety limits, and the ASGI middleware that enforces the request body size.

The body limit is checked on the raw ASGI stream, before anything parses JSON: a declared Content-Length over
the limit is refused at once, and a chunked body is counted as it arrives and refused when it passes the limit.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from ..errors import BadInputError


@dataclass
class Limits:
    # Largest request body accepted (bytes); chat messages and embedding inputs are text, so 1 MB is generous.
    max_body_bytes: int = 1_000_000
    # Ceiling on a request's max_tokens (a request without one gets the settings' max_tokens).
    max_tokens: int = 1024
    # Requests per model, running or waiting, before new ones get 429.
    max_queue: int = 8
    # Texts per embeddings request.
    max_inputs: int = 256


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to expose the documents beyond this machine without a key."""
    if not is_loopback(host) and not api_key:
        raise BadInputError(f"binding to {host} makes your documents reachable from other machines: "
                            "give --api-key (or EDGERAG_SERVE_API_KEY), or bind to 127.0.0.1")


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen, refused, started = 0, False, False

        async def counting_receive():
            # Past the limit: answer 413 at once, and tell the app the client left, so it stops reading (an
            # exception would be turned into a 400 by the framework's body parsing).
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:
                return  # the 413 is the answer; whatever the app says after it is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": {
            "message": f"the request body is larger than this server's limit of {self.max_bytes} bytes",
            "type": "invalid_request_error", "param": None, "code": "request_too_large"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
