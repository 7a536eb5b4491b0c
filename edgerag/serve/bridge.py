"""From a worker thread to the event loop: one job's text pieces as they are generated, then its result.

Generation blocks (llama.cpp), so it runs on the model's worker thread; the event loop only awaits. Whatever
ends the request on the loop side — the last piece sent, the client disconnecting, an error — sets `cancel`,
and the job stops at its next token, so a closed connection never keeps the model busy.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

_DONE = object()


class Run:
    def __init__(self, worker, job: Callable, stream: bool):
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancel = threading.Event()
        on_token = self._put if stream else (lambda _piece: None)
        self.future = worker.submit(lambda: job(on_token, self.cancel))
        self.future.add_done_callback(lambda _f: self._put(_DONE))

    def _put(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is shutting down
            self.cancel.set()

    async def events(self) -> AsyncIterator:
        """Text pieces, then the job's result (its exception is raised here)."""
        try:
            while (item := await self.queue.get()) is not _DONE:
                yield item
            yield self.future.result()
        finally:
            self.cancel.set()

    async def result(self, is_disconnected: Callable[[], Awaitable[bool]], poll_s: float = 0.25):
        """The job's result, watching the connection meanwhile: a client that left cancels the job."""
        waiter = asyncio.wrap_future(self.future)
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=poll_s)
                if done:
                    return waiter.result()
                if await is_disconnected():
                    self.cancel.set()
        finally:
            self.cancel.set()
