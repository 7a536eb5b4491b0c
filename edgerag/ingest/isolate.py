"""Parsing in a child process, so the file time limit holds even where a parser is stuck inside C code.

A pathological file can keep a parser busy for minutes without ever returning to Python (lexbor matching a CSS
selector over 200,000 nested tags, pdfium on a crafted PDF); no signal or thread can interrupt that. So ingest
hands each file to a long-lived child (`python -m edgerag.ingest.isolate`): the child answers with the loaded
document, or is killed at the limit and replaced for the next file. A child that dies (a parser segfault) is a
failed file too, never a failed run.

One child serves the whole process (`lease()` hands it to one sync at a time; a second concurrent sync gets a
private child): watch mode and the TUI sync again and again, and a fresh interpreter per sync would cost more than
most syncs. Protocol on the child's stdin/stdout: length-prefixed pickles, one request (a path) and one answer per
file, in order. Pickle is safe here: both ends are this module, in processes we start.

Ingest `submit()`s the next few files ahead of the one it works on, so the child parses them while the main
process chunks and embeds (a parser process feeding the embedder). The child works through its requests in order,
so each file's time limit runs from the moment the child finished the previous one (or from its request, if the
child was idle then): a slow file still fails on its own, and files queued behind it are not charged for it.
"""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .loaders import LoadedDocument, UnreadableFile, load_document


class TooSlow(Exception):
    """The file outlived the time limit; its parser was killed."""


class IsolatedParser:
    """One parser child. Not thread-safe: a sync holds it through lease() while it submits and loads."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.answers: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.in_flight: deque[tuple[str, float]] = deque()  # (path, sent at) not answered yet, in the child's order
        self.free_since = 0.0  # monotonic time the child answered the request before in_flight[0]

    def _start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "edgerag.ingest.isolate"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=os.environ.copy())
        self.answers = queue.Queue()
        self.in_flight.clear()
        threading.Thread(target=_read_answers, args=(self.proc.stdout, self.answers), daemon=True).start()

    def submit(self, path: Path) -> None:
        """Ask the child to parse `path` next, ahead of its load()."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            _send(self.proc.stdin, str(path))
        except OSError:  # the child died; load() starts a fresh one and asks again
            self.close()
            return
        self.in_flight.append((str(path), time.monotonic()))

    def load(self, path: Path, limit: float) -> LoadedDocument:
        """load_document(path) in the child; UnreadableFile as load_document raises it, TooSlow past `limit`.
        Answers to files submitted earlier and no longer wanted are dropped on the way."""
        key = str(path)
        while True:
            if all(p != key for p, _ in self.in_flight):  # not asked yet, or the child was replaced meanwhile
                self.submit(path)
                if not self.in_flight:
                    raise UnreadableFile("the parser process could not take the file (it exited at start)")
            head, sent = self.in_flight[0]
            started = max(sent, self.free_since)  # when the child got to it
            try:
                answer, arrived = self.answers.get(timeout=max(0.0, started + limit - time.monotonic()))
            except queue.Empty:
                self.close()
                if head == key:
                    raise TooSlow() from None
                continue
            self.in_flight.popleft()
            self.free_since = arrived
            if answer is None:  # the child died on `head`
                code = self.proc.wait() if self.proc else -1
                self.proc = None
                self.in_flight.clear()
                if head == key:
                    raise UnreadableFile(f"the parser crashed on this file (exit {code})")
                continue
            if head != key:
                continue
            kind, value = answer
            if kind == "ok":
                return value
            raise UnreadableFile(value)

    def pending(self, path: Path) -> bool:
        return any(p == str(path) for p, _ in self.in_flight)

    def discard(self) -> None:
        """Forget files submitted and never loaded (a sync that ended early): the child would parse them for
        nothing, so it is replaced on the next use."""
        if self.in_flight:
            self.close()

    def close(self) -> None:
        self.in_flight.clear()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


_SHARED: IsolatedParser | None = None


def shared() -> IsolatedParser:
    global _SHARED
    if _SHARED is None:
        _SHARED = IsolatedParser()
        atexit.register(_SHARED.close)
    return _SHARED


@contextmanager
def lease() -> Iterator[IsolatedParser]:
    """The shared parser for the length of one sync, or a private one if another sync (a TUI thread) has it."""
    parser = shared()
    if parser.lock.acquire(blocking=False):
        try:
            yield parser
        finally:
            parser.discard()
            parser.lock.release()
        return
    private = IsolatedParser()
    try:
        yield private
    finally:
        private.close()


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    return pickle.loads(data) if len(data) == size else None


def _read_answers(stream, answers: queue.Queue) -> None:
    while True:
        answer = _receive(stream)
        answers.put((answer, time.monotonic()))
        if answer is None:
            return


def _serve() -> None:
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a parser that prints must not corrupt the answer stream
    while (path := _receive(requests)) is not None:
        try:
            answer = ("ok", load_document(Path(path)))
        except UnreadableFile as exc:
            answer = ("err", str(exc))
        _send(replies, answer)


if __name__ == "__main__":
    _serve()
