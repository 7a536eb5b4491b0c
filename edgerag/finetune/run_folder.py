"""A resumable job's run folder, shared by the generator loop (finetune/pipeline.py) and the embedder loop
(embedtune/pipeline.py): `<root>/<time>/options.json` records the options a run was started with, and `--resume`
continues a run only with the same ones (stage outputs made under other options would be mixed in silently).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from ..errors import BadInputError
from ..fileio import write_text_atomic


def options_record(opts, volatile: tuple[str, ...]) -> dict:
    """The options dataclass as options.json holds it (paths as text, tuples as lists), without the `volatile`
    fields that may differ between a run and its resume (the run folder itself, whether to promote)."""
    return {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
            for k, v in asdict(opts).items() if k not in volatile}


def save_options(run_dir: Path, record: dict) -> None:
    write_text_atomic(run_dir / "options.json", json.dumps(record, indent=2) + "\n")


def latest_run(root: Path, none_message: str) -> Path:
    """The newest run folder under `root` (names are start times); BadInputError(none_message) if there is none."""
    runs = sorted(p for p in root.glob("*") if (p / "options.json").is_file())
    if not runs:
        raise BadInputError(none_message)
    return runs[-1]


def open_run(root: Path, run_dir: Path | None, record: dict, resume: bool, what: str) -> Path:
    """resume: `run_dir` (default: the latest under root), whose saved options must equal `record`; otherwise a new
    run folder (default: root/<time>) with `record` saved. `what` names the job in errors ("finetuning run")."""
    run_dir = Path(run_dir) if run_dir else None
    if resume:
        run_dir = run_dir or latest_run(root, f"no {what} to resume in {root}")
        path = run_dir / "options.json"
        if not path.is_file():
            raise BadInputError(f"{run_dir}: not a {what} (no options.json)")
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved != record:
            changed = sorted(k for k in saved.keys() | record.keys() if saved.get(k) != record.get(k))
            added = sorted(record.keys() - saved.keys())
            if added == changed:
                # Options added since the run started: its old behaviour may match no value of the new flags, so
                # no flag can make the resume equal.
                raise BadInputError(f"{run_dir}: started by an older edgerag without the option(s) "
                                    f"{', '.join(added)}; it cannot be resumed: start a new run")
            raise BadInputError(f"{run_dir}: --resume needs the same options as the interrupted run "
                                f"(different: {', '.join(changed)})")
        return run_dir
    run_dir = run_dir or root / time.strftime("%Y%m%d-%H%M%S")
    if (run_dir / "options.json").exists():
        raise BadInputError(f"{run_dir} already holds a run: pass --resume to continue it")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_options(run_dir, record)
    return run_dir
