"""F1: every key, per section, and what each section does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# edgerag — keys

Everything works from the keyboard; the mouse works too. **Tab** / **Shift+Tab** move between panes,
**Enter** activates, **Esc** stops or closes.

| Anywhere | |
|---|---|
| F1 | this help |
| F2 … F6 | Chat · Library · Models · Evaluate · Finetune |
| Ctrl+T | dark / light theme |
| Ctrl+P | command palette |
| Ctrl+Q | quit (running jobs stop at a safe point first) |

| Chat | |
|---|---|
| Enter | ask the question typed below |
| Esc | stop the answer being written |
| Ctrl+N | new chat (forget the conversation) |
| Ctrl+Y | copy the selected (or last) answer |
| Ctrl+O | jump to the cited sources; Enter opens a whole passage |
| Ctrl+L | choose the collection |
| ↑ / ↓ in the question box | earlier questions |

| Library | |
|---|---|
| a | add a folder or file to a collection (new or existing) |
| s | re-sync the collection with its folders |
| d | remove the selected document |
| x | remove the whole collection |
| Esc | stop a running ingestion (after the current file) |

| Models | |
|---|---|
| Enter / u | make the selected model the active generator or embedder |
| v | verify checksums |
| i | import a .gguf file or a model folder |

| Evaluate | |
|---|---|
| Ctrl+R | run the evaluation in the form |
| Esc | stop it (done questions are kept; resume from the run folder) |

| Finetune | |
|---|---|
| Ctrl+R | start training with the form's settings |
| Esc | cancel training |
| Ctrl+E | resume the last run |

Answers cite their sources as [n]; a source flagged **unsupported** is cited by a sentence the checker could
not match to that passage. Press Esc or F1 to close this help.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(HELP)
