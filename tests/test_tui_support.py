"""Fakes and fixtures shared by the TUI tests (no tests here).

The app under test is always built by `tui.app.create_app`, the factory `edgerag tui` uses; only the answer
engine (where a model's quality is not the point) and the training subprocess are replaced.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from pathlib import Path

import pytest

from edgerag.generate.answer import Answer, Citation, Source
from edgerag.generate.citations import CheckedSentence

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "docs" / "samples"

WARRANTY = ("The Aurora K3 carries a two-year limited warranty from the date of purchase, covering defects in "
            "materials and workmanship. It does not cover burr wear or damage from grinding anything but coffee.")
KEEPER = "Keeper Elsa Marsh lived in the Northwind lighthouse from 1889 to 1921 and kept its log."
PIECES = ["The Aurora", " K3 has a", " two-year", " limited warranty [1].", " Lighthouse keepers",
          " sold it [2]."]


class FakeEngine:
    """Stands in for AnswerEngine: streams fixed pieces through on_token and returns a checked Answer with one
    supported and one unsupported citation. `step` (a threading.Event per piece) lets a test hold the stream."""

    def __init__(self, delay: float = 0.0, hold: threading.Event | None = None):
        self.delay, self.hold = delay, hold
        self.questions: list[str] = []

    def budget(self, question, history) -> int:
        return 10_000

    def ask(self, question, on_token=lambda _t: None, history=None, query=None, reuse_cache=True, **_kw):
        self.questions.append(question)
        sources = [Source(1, "/docs/aurora-k3-manual.md", None, "Warranty", WARRANTY, 0.9, 0.71, 1),
                   Source(2, "/docs/lighthouse-history.txt", 2, None, KEEPER, 0.4, 0.33, 2)]
        pieces, interrupted = [], False
        try:
            for i, piece in enumerate(PIECES):
                if self.hold is not None and i == 2:
                    self.hold.wait(10)
                time.sleep(self.delay)
                on_token(piece)
                pieces.append(piece)
        except KeyboardInterrupt:
            interrupted = True
        text = "".join(pieces).strip()
        first, second = "The Aurora K3 has a two-year limited warranty [1].", "Lighthouse keepers sold it [2]."
        sentences = [CheckedSentence(first, [1], [1])]
        citations = [Citation(1, sources[0], WARRANTY.split(", covering")[0], True, False)]
        if not interrupted:
            sentences.append(CheckedSentence(second, [2], [], reasons=["[2] is about something else"]))
            citations.append(Citation(2, sources[1], KEEPER, False, False, ["[2] is about something else"]))
        return Answer(question, query or question, text, sources, sentences, citations, interrupted=interrupted,
                      timings={"tokens_per_s": 42.0})


FAKE_TRAINER = r'''
import json, os, signal, sys, time
args = sys.argv[1:]
embedder = args[:2] == ["embedder", "run"]  # else `finetune train`
steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 30
resume = "--resume" in args
def out(**kw):
    print(json.dumps(kw), flush=True)
def stop(*_):
    out(event="status", message="checkpoint saved")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
with open(os.environ["FAKE_TRAINER_LOG"], "a") as log:
    log.write(" ".join(args) + "\n")
print("a line that is not JSON", flush=True)
start = steps // 2 + 1 if resume else 1
if embedder:  # `edgerag embedder run`'s events: run, stages, pseudo-query progress, training, outcome
    out(event="run", run_dir="/runs/fake-embedder")
    out(event="stage", stage="data")
    for done in (250, 500, 1000):
        out(event="query", done=done, total=1000)
    out(event="stage", stage="train")
    out(event="start", total=steps, resumed_from=start - 1, examples=900, device="cpu", loss="distill", candidates=8)
else:
    out(event="start", run_dir="/runs/fake")
for s in range(start, steps + 1):
    time.sleep(float(os.environ.get("FAKE_TRAINER_DELAY", "0.01")))
    loss = round(0.9 + 2.0 * 0.93 ** s + 0.04 * (s * 7 % 5), 4)  # falls, with a little noise
    if embedder:
        out(event="step", step=s, total=steps, loss=loss, seconds=s * 0.5)
    else:
        out(event="step", step=s, max_steps=steps, loss=loss, tokens_per_s=400.0, eta_s=(steps - s) * 0.5)
    if s % 10 == 0:
        out(event="checkpoint", step=s)
model = os.environ["FAKE_TRAINER_MODEL"]
if embedder:
    out(event="done", student="/runs/fake-embedder/train/student", final_loss=loss)
    out(event="stage", stage="export")
    out(event="stage", stage="gate")
    check = lambda base, cand, lo, hi, verdict: {"base": {"mean": base}, "candidate": {"mean": cand},
                                                 "diff": {"mean": cand - base, "lo": lo, "hi": hi}, "n": 120,
                                                 "verdict": verdict}
    out(event="outcome", run_dir="/runs/fake-embedder", candidate=model, promoted=False,
        checks={"heldout:dense": check(0.52, 0.61, 0.05, 0.13, "better"),
                "heldout:hybrid": check(0.63, 0.64, -0.01, 0.03, "same")})
else:
    out(event="done", adapter="/runs/fake/adapter.gguf", model=model)
    out(event="gate", verdict="better", metric="f1", base=0.30, candidate=0.36, difference=[0.01, 0.09], n=40,
        model=model)
'''


@pytest.fixture()
def fake_trainer(tmp_path, monkeypatch):
    """A trainer command (list of argv) that speaks the event contract of `finetune train` or of `embedder run`
    (by its first arguments) without training anything; its argv log is `.log`."""
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER, encoding="utf-8")
    log = tmp_path / "trainer-args.log"
    monkeypatch.setenv("FAKE_TRAINER_LOG", str(log))
    monkeypatch.setenv("FAKE_TRAINER_MODEL", "all-minilm-l6-v2-onnx-fp32")

    def command(args: list[str]) -> list[str]:
        return [sys.executable, str(script), *args]

    command.log = log
    return command


def fake_collection(settings, name: str = "demo") -> None:
    """A collection entry the Chat screen lists; the fake engine never opens it."""
    folder = settings.collections_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "collection.sqlite").touch()


def pilot(test):
    """Run an async pilot test on a fresh event loop (no pytest-asyncio needed); fixtures still resolve."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))
    return run


async def wait_for(pilot, predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def idle(pilot, timeout: float = 30.0) -> None:
    """Let workers, the messages they post and the workers those start settle: quiet for several checks."""
    app, quiet = pilot.app, 0
    deadline = time.monotonic() + timeout
    while quiet < 4:
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app to settle")
        await pilot.pause(0.05)
        quiet = 0 if any(w.is_running or w.state.name == "PENDING" for w in app.workers) else quiet + 1


async def tables_measured(pilot, timeout: float = 20.0) -> None:
    """A DataTable measures new rows and sizes its columns on its next Idle message, which a busy machine can delay
    past any fixed pause (a snapshot then catches the narrow first layout): wait until every table on the screen has
    done it (DataTable keeps no public flag for this), then for the refresh that draws it."""
    from textual.widgets import DataTable

    def measured() -> bool:
        return not any(t._require_update_dimensions or t._updated_cells for t in pilot.app.screen.query(DataTable))

    await wait_for(pilot, measured, timeout, what="the tables to size their columns")
    for table in pilot.app.screen.query(DataTable):
        table.refresh(layout=True)  # the lines drawn before the measurement may still be cached
    await pilot.pause()


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]
