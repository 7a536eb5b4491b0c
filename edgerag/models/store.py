"""The store on disk: `<models_dir>/<name>/manifest.json` + files, and `active.json` naming the active models.

Every addition is built in a staging folder and renamed into place in one step, so a killed process or a
failed import never leaves a half-written model that the store would list.

Names and manifest paths come from users and from files: every one is checked to stay inside the store
(`models rm ../x` must not delete a folder elsewhere; a manifest's main_file cannot point outside its model).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, ModelNotFound
from ..fileio import write_text_atomic
from .manifest import KINDS, MANIFEST, Manifest, sha256_file

ACTIVE = "active.json"
STAGING_PREFIX = ".staging-"
OLD = ".old-"  # `.staging-.old-NAME-PID`: a replaced model, for an instant (a model name never starts with ".")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ModelError(f"bad model name {name!r}: use letters, digits, '.', '_', '+' or '-' (no '/')")
    return name


def inside(folder: Path, relative: str, what: str) -> Path:
    """folder/relative, refused if it leaves folder (absolute path, '..', or a link pointing out)."""
    path = folder / relative
    base = folder.resolve()
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(base):
        raise ModelError(f"{folder / MANIFEST}: {what} {relative!r} is outside the model folder")
    return path


@dataclass
class VerifyProblem:
    model: str
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.model}: {self.file}: {self.problem}"


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill there terminates; staging folders of other processes are cleaned as before
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    # -- reading -------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        # a staging folder (".staging-...") may hold a manifest already: it is not a model until renamed
        return sorted(p.name for p in self.root.iterdir() if NAME_RE.match(p.name) and (p / MANIFEST).is_file())

    def list(self) -> list[Manifest]:
        return [self.get(n) for n in self.names()]

    def exists(self, name: str) -> bool:
        return bool(NAME_RE.match(name)) and (self.root / name / MANIFEST).is_file()

    def get(self, name: str) -> Manifest:
        check_name(name)
        if not self.exists(name):
            known = ", ".join(self.names()) or "none; run `edgerag models prepare`"
            raise ModelNotFound(f"no model named {name!r} in {self.root} (models: {known})")
        try:
            return Manifest.load(self.root / name)
        except (ValueError, TypeError, OSError) as exc:
            raise ModelError(f"{self.root / name / MANIFEST}: unreadable manifest ({exc})") from exc

    def folder(self, name: str) -> Path:
        self.get(name)
        return self.root / name

    def main_path(self, name: str) -> Path:
        """The file the runtime opens; a clear error if it vanished from disk."""
        manifest = self.get(name)
        path = inside(self.root / name, manifest.main_file, "main_file")
        if not path.is_file():
            raise ModelError(f"{path}: model file is missing (run `edgerag models verify`)")
        return path

    # -- active models -------------------------------------------------------------------------------------
    def _active_map(self) -> dict:
        path = self.root / ACTIVE
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelError(f"{path}: unreadable ({exc})") from exc

    def active_name(self, kind: str) -> str:
        name = self._active_map().get(kind)
        if not name:
            raise ModelNotFound(f"no active {kind}: run `edgerag models prepare` or `edgerag models use NAME`")
        if not self.exists(name):
            raise ModelNotFound(f"the active {kind} {name!r} is not in {self.root}: run `edgerag models use NAME`")
        return name

    def active(self, kind: str) -> Manifest:
        return self.get(self.active_name(kind))

    def use(self, name: str) -> Manifest:
        manifest = self.get(name)
        if manifest.kind not in KINDS:
            raise ModelError(f"{name}: unknown kind {manifest.kind!r}")
        if manifest.format == "gguf-lora":
            raise ModelError(f"{name} is a LoRA adapter; activate a generator GGUF (merged model) instead")
        if manifest.kind == "embedder" and manifest.format != "onnx":
            raise ModelError(f"{name} is a {manifest.format} embedder; the runtime needs an ONNX embedder")
        active = self._active_map()
        active[manifest.kind] = name
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.root / ACTIVE, json.dumps(active, indent=2) + "\n")
        return manifest

    # -- writing -------------------------------------------------------------------------------------------
    def add(self, manifest: Manifest, build: Callable[[Path], None], replace: bool = False) -> Manifest:
        """Create model `manifest.name` by letting build() fill a staging folder, then move it into place.

        build() may set manifest.details; files are checksummed after it returns. On any error the staging
        folder is removed and the store is exactly as before.
        """
        target = self.root / check_name(manifest.name)
        self.clean_staging()  # first: it may put back a model a killed replacement had moved aside
        if target.exists() and not replace:
            raise ModelError(f"a model named {manifest.name!r} already exists in {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f"{STAGING_PREFIX}{manifest.name}-{os.getpid()}"
        staging.mkdir()
        try:
            build(staging)
            manifest.record_files(staging)
            if not manifest.files:
                raise ModelError(f"{manifest.name}: nothing was written")
            manifest.save(staging)
            if target.exists():
                old = self.root / f"{STAGING_PREFIX}{OLD}{manifest.name}-{os.getpid()}"
                target.rename(old)
                staging.rename(target)
                shutil.rmtree(old)
            else:
                staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest

    def lineage_root(self, name: str) -> str:
        """The earliest ancestor of `name` that is in this store (`name` itself when its parent is not here, e.g. a
        bundled model whose parent is a Hugging Face id). A parent loop, which only a hand-edited manifest could
        make, stops where it closes."""
        seen = [name]
        while True:
            parent = self.get(seen[-1]).parent
            if not parent or parent in seen or not self.exists(parent):
                return seen[-1]
            seen.append(parent)

    def update_manifest(self, manifest: Manifest) -> None:
        """Rewrite a manifest's metadata (lineage, eval results); files are not touched."""
        self.get(manifest.name)
        manifest.save(self.root / manifest.name)

    def remove(self, name: str) -> None:
        folder = self.folder(name)
        active = self._active_map()
        if name in active.values():
            raise ModelError(f"{name} is active; `edgerag models use` another model first")
        gone = self.root / f"{STAGING_PREFIX}.rm-{name}-{os.getpid()}"
        folder.rename(gone)  # one step: a kill during the delete leaves no half-deleted model listed
        shutil.rmtree(gone)

    def clean_staging(self) -> None:
        """Drop what a killed process left half-built; such folders are never listed as models. A model being
        replaced is renamed to `.staging-.old-NAME-PID` for an instant before its successor takes its name: if the
        process died in that instant, the old model goes back under its name rather than being lost. Folders of
        a process still running (another import or export beside this one) are left alone."""
        if not self.root.is_dir():
            return
        for p in sorted(self.root.glob(STAGING_PREFIX + "*")):
            stem, _, pid = p.name.removeprefix(STAGING_PREFIX).rpartition("-")
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            old_name = stem.removeprefix(OLD)
            if stem.startswith(OLD) and NAME_RE.match(old_name) and (p / MANIFEST).is_file() \
                    and not (self.root / old_name).exists():
                p.rename(self.root / old_name)
            else:
                shutil.rmtree(p, ignore_errors=True)

    # -- integrity -----------------------------------------------------------------------------------------
    def verify(self, names: list[str] | None = None, progress: Callable[[str], None] | None = None) -> list[VerifyProblem]:
        problems: list[VerifyProblem] = []
        for name in names or self.names():
            manifest = self.get(name)
            folder = self.root / name
            for entry in manifest.files:
                if progress:
                    progress(f"{name}/{entry.path}")
                try:
                    path = inside(folder, entry.path, "file")
                except ModelError as exc:
                    problems.append(VerifyProblem(name, entry.path, str(exc)))
                    continue
                if not path.is_file():
                    problems.append(VerifyProblem(name, str(path), "missing"))
                elif path.stat().st_size != entry.size:
                    problems.append(VerifyProblem(name, str(path), f"size {path.stat().st_size} != {entry.size}"))
                elif sha256_file(path) != entry.sha256:
                    problems.append(VerifyProblem(name, str(path), "sha256 mismatch"))
        return problems
