"""kill -9 during `edgerag finetune train` and `edgerag finetune export` (part of the fault suite, bench/faults.py).

Each seed runs the real command in a child process on a tiny llama the tests build (tests/tinyarch.py) and
kills it at one point:
- "time": a random moment of an uninterrupted run's duration;
- a write point: the child wraps every call that changes files (Path.write_text, os.replace/os.rename,
  shutil.rmtree/copyfile, torch.save, safetensors save_file, the Trainer's state JSON, a GGUF writer's close,
  llama.cpp's quantizer) and dies at the N-th such call, N drawn from the count of an uninterrupted run, either
  just before it, just after it, or "torn": after it, with the file it wrote cut to half (what a kill in the middle
  of the write leaves on disk; rmtree: half the files removed).

Afterwards, before anything else runs, the models store must list only complete models (each passing `verify`,
no staging folder shown as a model). Then the user's next step must finish: `--resume RUN` for training once the
run said where it lives (its first event), else the same command again; the same `finetune export` command for
export. The final state must equal an uninterrupted run's: the same models in the store, for export byte-identical
files, for training the same loss history (every step, to 1e-3) and adapter weights; no staging folder, temp
file or F16 intermediate left behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# training only (the export stage is the export scenario's); Q8_0 only: one quantization is enough to kill in
TRAIN_ARGS = ["--base", "tiny", "--bits", "32", "--rank", "4", "--steps", "6", "--save-steps", "2",
              "--batch-size", "4", "--lr", "1e-2", "--no-eval", "--no-export", "--events-jsonl", "-"]
EXPORT_QUANTS = ["--quant", "Q8_0"]


# -- the child: the real CLI with every file-changing call counted ---------------------------------------------
def _install_points(kill_at: int | None, mode: str):
    """Wrap the calls that change files; die at the kill_at-th one (mode: before | after | torn). Returns a
    function giving the number of calls so far."""
    import pathlib

    import gguf
    import llama_cpp
    import peft.peft_model
    import safetensors.torch
    import torch
    import transformers.modeling_utils
    import transformers.trainer_callback

    state = {"n": 0}

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def tear(path) -> None:
        path = Path(path)
        if path.is_file():
            size = path.stat().st_size
            with open(path, "r+b") as fh:
                fh.truncate(size // 2)

    def half_rmtree(path, *args, **kwargs) -> None:  # what a kill in the middle of an rmtree leaves
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        for p in files[: len(files) // 2 + 1]:
            p.unlink()

    def point(call, target_of=None, tearable=True, torn_instead=None):
        def wrapped(*args, **kwargs):
            state["n"] += 1
            hit = kill_at is not None and state["n"] == kill_at
            if hit and (mode == "before" or (mode == "torn" and not tearable)):
                die()
            if hit and mode == "torn" and torn_instead is not None:
                torn_instead(*args, **kwargs)
                die()
            result = call(*args, **kwargs)
            if hit:
                if mode == "torn" and target_of is not None:
                    tear(target_of(*args, **kwargs))
                die()
            return result
        return wrapped

    first = lambda *a, **k: a[0]  # noqa: E731
    second = lambda *a, **k: a[1] if len(a) > 1 else k.get("filename") or k.get("f")  # noqa: E731
    pathlib.Path.write_text = point(pathlib.Path.write_text, first)
    pathlib.Path.write_bytes = point(pathlib.Path.write_bytes, first)
    os.replace = point(os.replace, tearable=False)
    os.rename = point(os.rename, tearable=False)
    shutil.rmtree = point(shutil.rmtree, torn_instead=half_rmtree)
    shutil.copyfile = point(shutil.copyfile, lambda src, dst, *a, **k: dst)
    torch.save = point(torch.save, lambda obj, f, *a, **k: f if isinstance(f, (str, os.PathLike)) else None)
    saver = point(safetensors.torch.save_file, second)
    for module in (safetensors.torch, transformers.modeling_utils, peft.peft_model):
        for name in ("save_file", "safe_save_file"):
            if hasattr(module, name):
                setattr(module, name, saver)
    state_cls = transformers.trainer_callback.TrainerState
    state_cls.save_to_json = point(state_cls.save_to_json, lambda self, path: path)
    gguf.GGUFWriter.close = point(gguf.GGUFWriter.close, lambda self: getattr(self, "path", None))
    llama_cpp.llama_model_quantize = point(llama_cpp.llama_model_quantize,
                                           lambda src, dst, params: dst.decode())
    return lambda: state["n"]


PRELOAD = ("torch", "transformers", "transformers.trainer", "transformers.modeling_utils", "peft", "peft.peft_model",
           "safetensors.torch", "gguf", "llama_cpp", "matplotlib.pyplot", "edgerag.cli", "edgerag.cli.finetune_cmd",
           "edgerag.finetune.train", "edgerag.finetune.export", "edgerag.finetune.pipeline", "edgerag.finetune.base")


def zygote() -> int:
    """Import the training stack once, then fork one child per request (a JSON line on stdin): the child is a
    fresh process running `edgerag.cli.main(args)` that the harness can SIGKILL like any other, without paying
    half a minute of imports on a busy 2-core machine each time. Nothing here runs torch before forking, so the
    children start with untouched thread pools. Replies on stdout: {"pid": N} at the start, {"pid": N,
    "status": exit code or -signal} at the end."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for name in PRELOAD:
        importlib.import_module(name)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                err = os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(out, 1), os.dup2(err, 2)
                os.environ.update(EDGERAG_HOME=job["home"], EDGERAG_THREADS="2")
                count = _install_points(job["kill_at"], job["mode"])
                from edgerag.cli import main

                code = main(job["args"])
                if job.get("count_file"):
                    with open(job["count_file"], "w") as fh:  # not Path.write_text: that would count itself
                        fh.write(str(count()))
            except BaseException:  # noqa: BLE001  (the child must never return into the zygote's loop)
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "status": os.waitstatus_to_exitcode(status)}), flush=True)
    return 0


class Zygote:
    """The harness side: start the zygote once, run commands in forked children."""

    def __init__(self):
        env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "zygote"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
        if json.loads(self.proc.stdout.readline() or "{}").get("ready") is not True:
            raise RuntimeError("the fault-suite zygote did not start")

    def start(self, home: Path, args: list[str], kill_at: int | None = None, mode: str = "-",
              count_file: Path | None = None) -> int:
        self._out, self._err = home.parent / f"{home.name}.out", home.parent / f"{home.name}.err"
        job = {"home": str(home), "args": args, "kill_at": kill_at, "mode": mode, "out": str(self._out),
               "err": str(self._err), "count_file": str(count_file) if count_file else None}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["pid"]

    def wait(self) -> tuple[int, list[dict], str]:
        status = json.loads(self.proc.stdout.readline())["status"]
        out, err = self._out.read_text(errors="replace"), self._err.read_text(errors="replace")
        self._out.unlink(), self._err.unlink()
        return status, [json.loads(x) for x in out.splitlines() if x.startswith("{")], err

    def run(self, home: Path, args: list[str], **kw) -> tuple[int, list[dict], str]:
        self.start(home, args, **kw)
        return self.wait()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# -- the tiny world ------------------------------------------------------------------------------------------------
def tiny_home(folder: Path) -> Path:
    """A home with a tiny llama as model `tiny` (its HF conversion cached) and 16 chats in chats/. Its vocabulary
    is a 600-token BPE trained on the chats (tests/tinyarch.py), not SmolLM2's 49k: converting and loading that
    tokenizer, its 49k-row embedding and LM head, and gguf-py's parse of the vocabulary at every export were most
    of each kill's time, and none of them is what a kill tests."""
    sys.path.insert(0, str(REPO / "tests"))
    from tinyarch import make_arch_gguf
    from tinyllama import chat_examples

    from edgerag.config import load_settings
    from edgerag.finetune.base import prepare_base
    from edgerag.models import ModelStore
    from edgerag.models.importing import import_model

    home = folder / "tiny-home"
    ready = "tinyarch llama"  # a home kept in the work folder from an older suite (SmolLM2's vocabulary) is rebuilt
    if (home / "ready").is_file() and (home / "ready").read_text() == ready:
        return home
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(folder / "trained-home", ignore_errors=True)  # the export scenario's run, trained on the old one
    home.mkdir(parents=True)
    examples = chat_examples(16)
    texts = [m["content"] for e in examples for m in e["messages"]]
    import_model(ModelStore(home / "models"), make_arch_gguf("llama", home / "tiny.gguf", texts), name="tiny")
    (home / "tiny.gguf").unlink()
    chats = home / "chats"
    chats.mkdir()
    (chats / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples[:12]))
    (chats / "val.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples[12:]))
    old = os.environ.get("EDGERAG_HOME")
    os.environ["EDGERAG_HOME"] = str(home)
    try:
        prepare_base(load_settings(), "tiny")  # the GGUF → HF conversion, cached in the home
    finally:
        os.environ.pop("EDGERAG_HOME") if old is None else os.environ.__setitem__("EDGERAG_HOME", old)
    (home / "ready").write_text(ready)
    return home


def _copy_home(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)
    return target


def _train_args(home: Path, run: Path) -> list[str]:
    return ["finetune", "train", "--data", str(home / "chats" / "train.jsonl"), *TRAIN_ARGS, "--run-dir", str(run)]


def _export_args(run: Path) -> list[str]:
    return ["finetune", "export", str(run), *EXPORT_QUANTS]


# -- what is observed ------------------------------------------------------------------------------------------------
def store_problems(home: Path) -> list[str]:
    """The store as `models list` / `models verify` see it: every listed model complete, nothing half-made."""
    from edgerag.errors import EdgeragError
    from edgerag.models import ModelStore
    from edgerag.models.inspect import read_gguf

    store = ModelStore(home / "models")
    try:
        manifests = store.list()
        problems = [str(p) for p in store.verify()]
    except EdgeragError as exc:
        return [f"store unreadable: {exc}"]
    for m in manifests:
        if m.format.startswith("gguf"):
            try:
                read_gguf(store.main_path(m.name))
            except EdgeragError as exc:
                problems.append(f"{m.name}: {exc}")
    return problems


def final_state(home: Path, run: Path) -> dict:
    from edgerag.models import ModelStore

    store = ModelStore(home / "models")
    models = {m.name.replace(run.name, "RUN"): {f.path: f.sha256 for f in m.files} for m in store.list()}
    leftovers = [str(p.relative_to(home)) for p in home.rglob("*")
                 if p.name.startswith(".staging-") or p.suffix in (".tmp", ".partial")
                 or p.name == "merged-f16.gguf"]
    train = run / "train"
    history = json.loads((train / "loss_history.json").read_text()) if (train / "loss_history.json").is_file() else None
    adapter = None
    if (train / "adapter" / "adapter_model.safetensors").is_file():
        from safetensors.numpy import load_file

        adapter = load_file(str(train / "adapter" / "adapter_model.safetensors"))
    return {"models": models, "leftovers": leftovers, "history": history, "adapter": adapter,
            "export": json.loads((run / "export.json").read_text()) if (run / "export.json").is_file() else None}


def compare(got: dict, want: dict, exact_files: bool) -> list[str]:
    import numpy as np

    out = []
    if set(got["models"]) != set(want["models"]):
        out.append(f"models {sorted(got['models'])} != {sorted(want['models'])}")
    elif exact_files:
        out += [f"{name}: files differ" for name in got["models"] if got["models"][name] != want["models"][name]]
    if got["leftovers"]:
        out.append(f"left behind: {got['leftovers'][:5]}")
    if (got["history"] is None) != (want["history"] is None):
        out.append("loss history missing")
    elif want["history"]:
        steps = lambda h: [s for s, _ in h["losses"]]  # noqa: E731
        if steps(got["history"]) != steps(want["history"]):
            out.append(f"loss history steps {steps(got['history'])} != {steps(want['history'])}")
        elif not np.allclose([x for _, x in got["history"]["losses"]], [x for _, x in want["history"]["losses"]],
                             rtol=1e-3):
            out.append("loss history values differ")
    if (got["adapter"] is None) != (want["adapter"] is None):
        out.append("adapter missing")
    elif want["adapter"] is not None:
        if set(got["adapter"]) != set(want["adapter"]) or not all(
                np.allclose(got["adapter"][k], want["adapter"][k], rtol=1e-3, atol=1e-4) for k in want["adapter"]):
            out.append("adapter weights differ")
    if (got["export"] is None) != (want["export"] is None):
        out.append("export.json missing")
    return out


# -- one seed ------------------------------------------------------------------------------------------------------
class Finetune:
    """The kill scenarios for one work folder: a reference (uninterrupted) run per scenario, counted points."""

    def __init__(self, work: Path):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.home = tiny_home(work)
        self.reference: dict[str, dict] = {}
        self.points: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self._trained: Path | None = None
        self.zygote = Zygote()

    def trained_home(self) -> Path:
        """A home with one finished training run at run/ (the start state of the export scenario)."""
        done = self.work / "trained-home" / "run" / "train" / "loss_curve.png"
        if self._trained is None and done.is_file():  # kept from an earlier run of the suite in this folder
            self._trained = done.parents[2]
        if self._trained is None:
            home = _copy_home(self.home, self.work / "trained-home")
            code, _, err = self.zygote.run(home, _train_args(home, home / "run") + ["--no-export"])
            if code != 0:
                raise RuntimeError(f"training the export scenario's run failed: {err[-2000:]}")
            self._trained = home
        return self._trained

    def _fresh(self, scenario: str, tag: str) -> tuple[Path, Path, list[str]]:
        if scenario == "train":
            home = _copy_home(self.home, self.work / tag)
            run = home / "run"
            return home, run, _train_args(home, run)
        home = _copy_home(self.trained_home(), self.work / tag)
        return home, home / "run", _export_args(home / "run")

    def _reference(self, scenario: str) -> None:
        if scenario in self.reference:
            return
        home, run, args = self._fresh(scenario, f"{scenario}-reference")
        count = self.work / f"{scenario}.points"
        started = time.perf_counter()
        code, _, err = self.zygote.run(home, args, count_file=count)
        self.seconds[scenario] = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"uninterrupted {scenario} failed: {err[-2000:]}")
        self.points[scenario] = int(count.read_text())
        self.reference[scenario] = final_state(home, run)
        shutil.rmtree(home, ignore_errors=True)

    def kill_once(self, scenario: str, seed: int) -> dict:
        self._reference(scenario)
        rng = random.Random(f"{scenario}-{seed}")
        home, run, args = self._fresh(scenario, f"{scenario}-{seed}")
        mode = "time" if seed % 4 == 3 else ("before", "torn", "after")[seed % 4]
        if mode == "time":
            pid = self.zygote.start(home, args)
            time.sleep(rng.uniform(0.05, 1.0) * self.seconds[scenario])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it finished first
            status, events, err = self.zygote.wait()
            where = "time"
        else:
            at = rng.randint(1, self.points[scenario])
            status, events, err = self.zygote.run(home, args, kill_at=at, mode=mode)
            where = f"{mode}:{at}/{self.points[scenario]}"
        killed = status == -signal.SIGKILL
        after_kill = store_problems(home)
        # the user's next step: --resume once the run told its folder (first event), else the same command
        again = args + ["--resume", str(run)] if scenario == "train" and events else args
        code, _, err2 = self.zygote.run(home, again)
        failed = [] if code == 0 else [f"next run failed ({code}): {err2.strip()[-400:]}"]
        differs = [] if failed else store_problems(home) + compare(final_state(home, run), self.reference[scenario],
                                                                   exact_files=scenario == "export")
        shutil.rmtree(home, ignore_errors=True)
        return {"scenario": f"finetune {scenario}", "seed": seed, "where": where, "killed": killed,
                "store_after_kill": after_kill, "next_run_failed": failed, "differs": differs,
                "problems": after_kill + failed + differs}


def kills(work: Path, seeds: int = 20, scenarios=("train", "export"), report=lambda run: None) -> dict:
    suite = Finetune(work)
    runs = []
    try:
        for seed in range(seeds):
            for scenario in scenarios:
                runs.append(suite.kill_once(scenario, seed))
                report(runs[-1])
    finally:
        suite.zygote.close()
    return {"runs": len(runs), "killed": sum(r["killed"] for r in runs), "points": dict(suite.points),
            "corrupt_stores": sum(bool(r["store_after_kill"]) for r in runs),
            "next_run_failed": sum(bool(r["next_run_failed"]) for r in runs),
            "differs_from_uninterrupted": sum(bool(r["differs"]) for r in runs),
            "bad": [r for r in runs if r["problems"]], "detail": runs}


if __name__ == "__main__":
    if sys.argv[1:2] == ["zygote"]:
        sys.path.insert(0, str(REPO))
        sys.exit(zygote())
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--scenario", action="append", choices=("train", "export"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgerag-faults/finetune"))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    result = kills(args.work, args.seeds, tuple(args.scenario or ("train", "export")), report=lambda r: print(
        r["scenario"], r["seed"], r["where"], "killed" if r["killed"] else "finished", "; ".join(r["problems"]) or "ok",
        flush=True))
    print(json.dumps({k: v for k, v in result.items() if k != "detail"}, indent=1, default=str))
