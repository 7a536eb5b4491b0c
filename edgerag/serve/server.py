"""Run the app under uvicorn: in the foreground (`edgerag serve`) or on a background thread (tests, the bench).

`on_started(url)` is called once the socket is bound, with the real port (port 0 picks a free one), so callers
print or record the URL without racing the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from ..errors import BadInputError
from .limits import Limits, check_bind


def _server(settings: Settings, host: str, port: int, api_key: str | None, limits: Limits | None,
            load_generator, quiet: bool, on_started: Callable[[str], None]):
    check_bind(host, api_key)
    require_serve_extra()
    import uvicorn

    from .app import create_app

    app = create_app(settings, api_key=api_key, limits=limits, load_generator=load_generator)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()
                shown = f"[{host}]" if ":" in host else host
                on_started(f"http://{shown}:{bound[1]}/v1")

    config = uvicorn.Config(app, host=host, port=port, log_level="warning" if quiet else "info",
                            access_log=not quiet, timeout_graceful_shutdown=5)
    return Server(config)


def require_serve_extra() -> None:
    from ..errors import require

    for module in ("fastapi", "uvicorn", "sse_starlette"):
        require(module, "serve")


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          limits: Limits | None = None, quiet: bool = False,
          on_started: Callable[[str], None] = lambda _url: None) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM stop it gracefully)."""
    server = _server(settings, host, port, api_key, limits, None, quiet, on_started)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn logs why it cannot bind (port taken, address not here), then exits
        raise BadInputError(f"cannot listen on {host}:{port} (is another server using it?)") from exc


@dataclass
class Background:
    url: str
    server: object
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(settings: Settings, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None,
                    limits: Limits | None = None, load_generator=None, timeout: float = 30.0) -> Background:
    """Start the server on a daemon thread and return once it listens (or raise why it could not)."""
    ready = threading.Event()
    found: dict = {}

    def started(url: str) -> None:
        found["url"] = url
        ready.set()

    server = _server(settings, host, port, api_key, limits, load_generator, True, started)
    # uvicorn installs signal handlers only on the main thread; here the caller owns shutdown.
    thread = threading.Thread(target=server.run, name="edgerag-serve", daemon=True)
    thread.start()
    while not ready.wait(0.05):
        if not thread.is_alive() or timeout <= 0:
            server.should_exit = True
            raise BadInputError(f"the server did not start on {host}:{port}")
        timeout -= 0.05
    return Background(found["url"], server, thread)
