"""The collection write lock: one writer at a time per collection, across processes and within one process.

Two writers (two `edgerag ingest` runs, the TUI's Library ingest beside a CLI one, `rm` or `reindex` during an
ingest) would otherwise interleave SQLite transactions that are each fine but together wrong (a text resolved by
one and deleted by the other) and race to replace the vector file. Readers (`ask`, `search`, `chat`) never take
it: SQLite's WAL gives them a consistent snapshot and the vector file is only ever replaced whole.

An OS advisory lock (flock on POSIX, msvcrt on Windows) on `<collection>/write.lock`: the OS releases it when the
holder dies, so a killed ingest never leaves a stale lock behind. The holder's pid is written into the file so a
refusal can say who holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_FILE = "write.lock"


class LockBusy(Exception):
    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


class WriteLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now or raise LockBusy (never waits: a user is better served by a clear refusal than by a
        command that hangs behind an hour-long ingest)."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise LockBusy(holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def try_acquire(self) -> bool:
        try:
            self.acquire()
            return True
        except LockBusy:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)


def _read(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        pid = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid else "another process"
