"""Keep stray C-level stderr output off the screen while the app runs.

Textual draws on file descriptor 2. llama.cpp and onnxruntime also write to fd 2 (and the generator loader
briefly points fd 2 at /dev/null to hush llama.cpp), which would either scribble over the UI or swallow a
frame. So for the app's lifetime the UI gets its own duplicate of the terminal and fd 2 goes to a log file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


@contextlib.contextmanager
def stderr_to_file(log_path: Path):
    try:
        interactive = os.isatty(2)
    except (OSError, ValueError):
        interactive = False
    if not interactive:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    terminal = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")
    saved_fd, saved_stream = os.dup(2), sys.__stderr__
    log = open(log_path, "a", encoding="utf-8")
    os.dup2(log.fileno(), 2)
    sys.__stderr__ = terminal  # Textual's driver writes to sys.__stderr__
    try:
        yield
    finally:
        sys.__stderr__ = saved_stream
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        log.close()
        terminal.close()
