"""Parsing in a child process, so the file time limit holds even where a parser is stuck inside C code.

A pathological file can keep a parser busy for minutes without ever returning to Python (lexbor matching a CSS
selector over 200,000 nested tags, pdfium on a crafted PDF); no signal or thread can interrupt that. So ingest
hands each file to a long-lived child (`python -m edgerag.ingest.isolate`): the child answers with the loaded
document, or is killed at the limit and replaced for the next file. A child that dies (a parser segfault) is a
failed file too, never a failed run.

One child serves the whole process (`shared()`): watch mode and the TUI sync again and again, and a fresh
interpreter per sync would cost more than most syncs. Protocol on the child's stdin/stdout: length-prefixed pickles, one request (a path) and one answer per file.
Pickle is safe here: both ends are this module, in processes we start.
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
from pathlib import Path

from .loaders import LoadedDocument, UnreadableFile, load_document


class TooSlow(Exception):
    """The file outlived the time limit; its parser was killed."""


class IsolatedParser:
    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.answers: queue.Queue = queue.Queue()
        self.lock = threading.Lock()  # one file at a time (the TUI may sync from more than one thread)

    def _start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "edgerag.ingest.isolate"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=os.environ.copy())
        self.answers = queue.Queue()
        threading.Thread(target=_read_answers, args=(self.proc.stdout, self.answers), daemon=True).start()

    def load(self, path: Path, limit: float) -> LoadedDocument:
        """load_document(path) in the child; UnreadableFile as load_document raises it, TooSlow past `limit`."""
        with self.lock:
            return self._load(path, limit)

    def _load(self, path: Path, limit: float) -> LoadedDocument:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            _send(self.proc.stdin, str(path))
            answer = self.answers.get(timeout=limit)
        except (queue.Empty, OSError):
            self.close()
            raise TooSlow() from None
        if answer is None:  # the child died on this file
            code = self.proc.wait()
            self.proc = None
            raise UnreadableFile(f"the parser crashed on this file (exit {code})")
        kind, value = answer
        if kind == "ok":
            return value
        raise UnreadableFile(value)

    def close(self) -> None:
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
        answers.put(answer)
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
