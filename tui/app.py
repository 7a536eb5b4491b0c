"""The one App: modes (one per screen), app-wide bindings, the single place errors are shown.

`create_app` is the factory the CLI (`edgerag tui`), `python -m tui` and the tests all use; tests pass fakes
for the two things that are slow or heavy (the answer engine and the training subprocess).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from edgerag.config import Settings, load_settings
from edgerag.errors import EdgeragError

from .screens.chat import ChatScreen
from .screens.evaluate import EvaluateScreen
from .screens.finetune import FinetuneScreen
from .screens.help import HelpScreen
from .screens.library import LibraryScreen
from .screens.models import ModelsScreen
from .widgets.nav_bar import SECTIONS


def default_engine_factory(settings: Settings, collection: str):
    """The real answer engine: embedder + collection + retriever + llama.cpp generator (~0.5 s to load)."""
    from edgerag.runtime import build_engine

    return build_engine(settings, collection)


def default_trainer_command(args: list[str]) -> list[str]:
    """How the Finetune screen starts a job (`finetune train ...`, `embedder run ...`): the edgerag CLI in a child
    process, so torch stays out of the UI."""
    return [sys.executable, "-m", "edgerag.cli", *args]


class EdgeragApp(App):
    CSS_PATH = "edgerag.tcss"
    TITLE = "edgerag"
    MODES = {"chat": ChatScreen, "library": LibraryScreen, "models": ModelsScreen, "evaluate": EvaluateScreen,
             "finetune": FinetuneScreen}
    DEFAULT_MODE = "chat"
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit"),
        *[Binding(key, f"switch_mode('{mode}')", label, show=False) for mode, key, label in SECTIONS],
        Binding("ctrl+t", "toggle_dark", "Theme", show=False),
    ]

    def __init__(self, settings: Settings, engine_factory: Callable | None = None,
                 trainer_command: Callable[[list[str]], list[str]] | None = None):
        super().__init__()
        self.settings = settings
        self.engine_factory = engine_factory or default_engine_factory
        self.trainer_command = trainer_command or default_trainer_command
        # Bumped whenever collections or active models change, so screens holding loaded engines or lists
        # know to rebuild them when they are shown again.
        self.data_version = 0
        # Set when the user quits: thread workers check it at their next safe point and wind down.
        self.stopping = threading.Event()

    @property
    def log_path(self) -> Path:
        return self.settings.data_dir / "tui.log"

    def data_changed(self) -> None:
        self.data_version += 1

    # -- the single display point for errors ---------------------------------------------------------------
    def show_error(self, error: BaseException, doing: str = "") -> None:
        prefix = f"{doing}: " if doing else ""
        if isinstance(error, EdgeragError):
            self.notify(f"{prefix}{error}", title="error", severity="error", timeout=12)
            return
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(f"--- {datetime.now().isoformat(timespec='seconds')} {doing}\n")
                fh.write("".join(traceback.format_exception(error)))
            where = f"details in {self.log_path}"
        except OSError:
            where = "no log could be written"
        self.notify(f"{prefix}{type(error).__name__}: {error} (a bug; {where})", title="unexpected error",
                    severity="error", timeout=20)

    # -- actions -------------------------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Ask running jobs to stop at their next safe point (a file boundary, a token) and wait for them, so
        quitting mid-ingest leaves every collection consistent."""
        self.stopping.set()
        if any(w.is_running for w in self.workers):
            self.notify("stopping running jobs…", timeout=3)
            # Not worker.cancel(): that abandons a thread worker's task while its thread still writes.
            for _ in range(600):
                if not any(w.is_running for w in self.workers):
                    break
                await asyncio.sleep(0.05)
        self.exit(0)


def create_app(settings: Settings | None = None, *, engine_factory: Callable | None = None,
               trainer_command: Callable[[list[str]], list[str]] | None = None) -> EdgeragApp:
    return EdgeragApp(settings or load_settings(), engine_factory=engine_factory, trainer_command=trainer_command)


def run() -> int:
    """Entry point of `edgerag tui` and `python -m tui`: the exit status."""
    from .terminal import stderr_to_file

    try:
        settings = load_settings()
    except EdgeragError as exc:
        print(f"edgerag: error: {exc}", file=sys.stderr)
        return exc.exit_code
    app = create_app(settings)
    with stderr_to_file(app.log_path):
        app.run()
    return app.return_code or 0
