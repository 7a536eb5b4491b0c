"""Regenerate the README screenshots in docs/screenshots/ from the real app on the bundled models:

    EDGERAG_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_tui_screenshots.py -m slow

Skipped otherwise (it writes into the repository). The finetune screenshot uses the stand-in trainer of the
tests until `edgerag finetune train` exists.
"""

from __future__ import annotations

import os

import pytest
from test_tui_support import REPO, SAMPLES, fake_trainer, idle, pilot, wait_for  # noqa: F401

from tui.app import create_app

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("EDGERAG_SCREENSHOTS"), reason="set EDGERAG_SCREENSHOTS=1")]

OUT = REPO / "docs" / "screenshots"
SIZE = (100, 30)


@pilot
async def test_readme_screenshots(settings, fake_trainer, monkeypatch):
    from edgerag.ingest import ingest

    monkeypatch.setenv("HOME", str(REPO.parent))  # paths show as ~/main/docs/samples
    monkeypatch.setenv("FAKE_TRAINER_MODEL", "smollm2-135m-instruct-q4_1")
    ingest(settings, [SAMPLES], "demo")
    OUT.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, trainer_command=fake_trainer)
    async with app.run_test(size=SIZE) as p:
        await idle(p)
        for question in ("When was the lighthouse built?", "How many days do I have to submit travel receipts?"):
            await p.press(*question, "enter")
            await wait_for(p, lambda: app.screen.streaming is None, timeout=180, what="the answer")
            await idle(p)
        app.save_screenshot("chat.svg", str(OUT))
        await p.press("ctrl+o", "enter")
        await idle(p)
        app.save_screenshot("chat-source.svg", str(OUT))
        await p.press("escape", "f3")
        await idle(p)
        app.save_screenshot("library.svg", str(OUT))
        await p.press("f4")
        await idle(p)
        app.save_screenshot("models.svg", str(OUT))
        await p.press("f6")
        await idle(p)
        app.screen.query_one("#ft-steps").value = "60"
        await p.press("ctrl+r")
        await wait_for(p, lambda: app.screen.process is None and app.screen.last_args, what="training")
        await idle(p)
        app.save_screenshot("finetune.svg", str(OUT))
        await p.press("ctrl+t", "f2")
        await idle(p)
        app.save_screenshot("chat-light.svg", str(OUT))
        await p.press("f1")
        await idle(p)
        app.save_screenshot("help.svg", str(OUT))
    assert len(list(OUT.glob("*.svg"))) >= 7
