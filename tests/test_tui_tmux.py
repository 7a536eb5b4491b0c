"""The real-terminal check: `python -m tui` in an 80×24 tmux pane, driven with send-keys, read with capture-pane.

Each test runs its own tmux server (-L) so it never touches a user's sessions. The app's exit status and every
byte it wrote to the terminal after quitting are checked too: quitting is clean and nothing is a traceback.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from test_tui_support import REPO, SAMPLES

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    def __init__(self, tmp_path, home):
        self.server = f"edgerag-test-{os.getpid()}-{time.monotonic_ns()}"
        self.status = tmp_path / "exit-status"
        env = {"EDGERAG_HOME": str(home), "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command += f" {shlex.quote(sys.executable)} -m tui; echo $? > {shlex.quote(str(self.status))}; sleep 30"
        self.tmux("new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", "-c", str(REPO), command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.server, "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "tui", *(["-l"] if literal else []), *keys)

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui", *(["-e"] if escapes else []))

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on the screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def wait_gone(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text in self.screen():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} still on the screen after {timeout}s")
            time.sleep(0.2)

    def quit(self) -> int:
        self.keys("C-q")
        deadline = time.monotonic() + 30
        while not self.status.exists() or not self.status.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError("the app did not exit:\n" + self.screen())
            time.sleep(0.2)
        return int(self.status.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture()
def pane(settings, tmp_path):
    from edgerag.ingest import ingest

    ingest(settings, [SAMPLES], "demo")
    pane = Pane(tmp_path, settings.data_dir.parent)
    yield pane
    pane.close()


def test_tmux_navigation_help_theme_and_clean_quit(pane):
    screen = pane.wait_for("F2 Chat", "demo", "ready · demo", timeout=60)
    assert "Ask about your documents" in screen and "^n New chat" in screen

    pane.keys("F3")
    screen = pane.wait_for("Collections", "aurora-k3-manual.md", "3 documents")
    assert "a Add folder" in screen

    pane.keys("F4")
    screen = pane.wait_for("smollm2-135m-instruct-q4_1", "✓ generator")

    pane.keys("F1")
    pane.wait_for("edgerag — keys", "Ctrl+T")
    pane.keys("Escape")
    pane.wait_gone("edgerag — keys")  # and an Escape followed at once by a key would read as Alt+key

    before = pane.screen(escapes=True)
    pane.keys("C-t")
    deadline = time.monotonic() + 10
    while pane.screen(escapes=True) == before:  # same text, other colours
        assert time.monotonic() < deadline, "Ctrl+T did not change the theme"
        time.sleep(0.2)

    assert pane.quit() == 0
    assert "Traceback" not in pane.screen()


@pytest.mark.slow
def test_tmux_chat_answers_with_the_real_models(pane):
    pane.wait_for("ready · demo", timeout=60)
    pane.keys("How long is the Aurora K3 warranty?", literal=True)
    pane.keys("Enter")
    screen = pane.wait_for("Sources", "ready · demo", "›", timeout=120)
    assert "aurora-k3-manual.md" in screen or "Not found" in screen
    assert pane.quit() == 0
