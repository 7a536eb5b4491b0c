"""Run a command where native code cannot hide from us: in a network namespace with no network (`unshare -rn`), under
`strace -f`, and read back every network send and every file write the kernel saw from any thread or child.

Python-level socket patches (pytest-socket) only see Python's `socket` module; onnxruntime's telemetry uploader,
llama.cpp, torch and curl inside native libraries call the kernel directly. strace records the attempt even though
nothing can leave the namespace, so a failing demonstration is safe to run here and only here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# connect/sendto/sendmsg to anything but a Unix socket is an attempt to reach a network (DNS included).
NETWORK_CALL = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(\d+.*?sa_family=(AF_\w+)")
LOCAL_FAMILIES = {"AF_UNIX", "AF_LOCAL"}
# With `strace -y`, directory fds print their path (`AT_FDCWD</cwd>`, `3</dir>`) and open's result its file.
FILE_CALL = re.compile(r"\b(open|openat|creat|mkdir|mkdirat|rename|renameat2?|link|linkat|symlink|symlinkat|truncate)"
                       r"\((.*)\)\s+=\s+(-?\d+)(?:<([^>]*)>)?")
PATH_ARG = re.compile(r'(?:(?:AT_FDCWD|-?\d+)<([^>]*)>, )?"([^"]*)"')
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
# Device and process files are not "files written": terminals, /dev/null, shared-memory semaphores, /proc knobs;
# nor is libuuid's clock sequence (onnx names external tensor files with uuid1()).
SYSTEM_PREFIXES = ("/dev/", "/proc/", "/sys/", "/var/lib/libuuid/")
TRACED = "%network,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,truncate"


def unavailable() -> str | None:
    """Why the proof cannot run on this machine, or None."""
    for tool in ("unshare", "strace"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    try:
        probe = subprocess.run(["unshare", "-rn", "strace", "-f", "-qq", "--seccomp-bpf", "-o", os.devnull, "true"],
                               capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -rn / strace cannot run here: {exc}"
    if probe.returncode:
        return "unshare -rn strace true failed: " + probe.stderr.decode(errors="replace").strip()[-200:]
    return None


@dataclass
class Trace:
    command: str
    returncode: int
    output: str
    network: list[str] = field(default_factory=list)  # offending strace lines
    writes: set[str] = field(default_factory=set)      # absolute paths written, created or renamed to

    def writes_outside(self, *allowed: Path) -> list[str]:
        roots = [os.path.realpath(a) for a in allowed]
        return sorted(p for p in self.writes
                      if not p.startswith(SYSTEM_PREFIXES) and not any(p == r or p.startswith(r + "/") for r in roots))


def parse(trace_text: str, cwd: Path) -> tuple[list[str], set[str]]:
    """Offending network calls, and every path a write, create, mkdir, rename or link targeted (even if it failed:
    an attempt to write into the user's home is the finding, whether or not it worked)."""
    network, writes = [], set()
    for line in trace_text.splitlines():
        if m := NETWORK_CALL.search(line):
            if m.group(2) not in LOCAL_FAMILIES:
                network.append(line.strip())
            continue
        m = FILE_CALL.search(line)
        if not m:
            continue
        call, args, opened = m.group(1), m.group(2), m.group(4)
        if call in ("open", "openat") and not any(flag in args for flag in WRITE_FLAGS):
            continue
        if call in ("open", "openat", "creat") and opened:
            writes.add(os.path.normpath(opened))
            continue
        paths = PATH_ARG.findall(args)
        if paths:
            # rename/link: the destination is what gets written; the others have one path.
            base, path = paths[-1]
            writes.add(os.path.normpath(path if path.startswith("/") else os.path.join(base or cwd, path)))
    return network, writes


def traced_run(argv: list[str], *, env: dict, cwd: Path, timeout: float = 600,
               feed: list[tuple[float, str]] | None = None) -> Trace:
    """Run argv inside `unshare -rn` under strace. `feed`: (seconds to wait first, text) pairs written to stdin,
    then stdin is closed (a conversation with pauses, e.g. a chat kept alive past onnxruntime's upload delay)."""
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "strace.log"
        cmd = ["unshare", "-rn", "strace", "-f", "-qq", "-y", "--seccomp-bpf", "-s", "512", "-e", f"trace={TRACED}",
               "-e", "signal=none", "-o", str(log), *argv]
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            for wait, text in feed or []:
                time.sleep(wait)
                try:
                    proc.stdin.write(text)
                    proc.stdin.flush()
                except BrokenPipeError:
                    break  # it exited early: its output says why, the caller checks the return code
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        network, writes = parse(log.read_text(errors="replace") if log.exists() else "", cwd)
    return Trace(" ".join(argv), proc.returncode, output, network, writes)
