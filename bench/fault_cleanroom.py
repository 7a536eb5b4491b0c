"""Fault suite, part 4: the clean-room install (see faults.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from faults import REPO


# -- 4. clean-room install -------------------------------------------------------------------------------------------
def cleanroom(work: Path, network_namespace: bool = True) -> dict:
    """`pip install .` (not editable) into a fresh venv, then `models prepare`, `ingest`, `ask` as a user would:
    no EDGERAG_HOME, a fresh HOME, run from an unrelated folder, inside `unshare -rn` (no network) if allowed.

    The venv gets its dependencies without downloading or rebuilding them: a .pth file puts the development
    venv's site-packages *after* its own (so `import edgerag` finds only the freshly installed copy; the
    development venv's editable-install hook is a .pth there, which Python does not process from a .pth-added
    path). pip installs edgerag itself with --no-deps --no-build-isolation. Afterwards nothing may have been
    written under either site-packages, and the data must be in the XDG user data folder."""
    import sysconfig

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    venv, home, cwd = work / "venv", work / "home", work / "elsewhere"
    home.mkdir()
    cwd.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site_new = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    site_dev = Path(sysconfig.get_paths()["purelib"])
    (site_new / "zz-edgerag-dev-deps.pth").write_text(str(site_dev) + "\n")
    build = work / "src"
    skip = shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache")

    def ignore(folder, names):  # the checkout's own data (venv, models, collections), not the edgerag/models package
        top = {".venv", ".git", ".edgerag", "models", "build", "dist"} if Path(folder) == REPO else set()
        return set(skip(folder, names)) | (top & set(names))

    shutil.copytree(REPO, build, ignore=ignore)
    install = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--no-index", str(build)], capture_output=True, text=True, cwd=cwd)
    if install.returncode:
        return {"held": False, "step": "pip install", "error": install.stderr[-800:]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGERAG_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    samples = work / "docs"
    shutil.copytree(REPO / "docs" / "samples", samples)
    wrap = ["unshare", "-rn"] if network_namespace and shutil.which("unshare") and subprocess.run(
        ["unshare", "-rn", "true"], capture_output=True).returncode == 0 else []

    def snapshot(folder: Path) -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}

    before_new, before_dev = snapshot(site_new), snapshot(site_dev)
    steps = {}
    where = subprocess.run(wrap + [str(py), "-c", "import edgerag; print(edgerag.__file__)"], env=env, cwd=cwd,
                           capture_output=True, text=True)
    steps["import"] = where.stdout.strip()
    for name, cmd in (("models prepare", ["models", "prepare"]),
                      ("ingest", ["ingest", str(samples), "-c", "demo"]),
                      ("ask", ["ask", "-c", "demo", "How long does the Aurora K3 warranty last?"])):
        started = time.perf_counter()
        run = subprocess.run(wrap + [str(venv / "bin" / "edgerag")] + cmd, env=env, cwd=cwd, capture_output=True,
                             text=True, timeout=900)
        steps[name] = {"exit": run.returncode, "seconds": round(time.perf_counter() - started, 1),
                       "tail": (run.stdout + run.stderr).strip()[-300:]}
    data_root = home / ".local" / "share" / "edgerag"
    written_new = sorted(set(snapshot(site_new).items()) - set(before_new.items()))
    written_dev = sorted(set(snapshot(site_dev).items()) - set(before_dev.items()))
    ok = (str(site_new) in steps["import"] and all(isinstance(v, dict) and v["exit"] == 0 for v in steps.values()
                                                   if isinstance(v, dict))
          and (data_root / "models").is_dir() and (data_root / "data" / "collections" / "demo").is_dir()
          and not written_new and not written_dev)
    return {"held": ok, "network_namespace": bool(wrap), "steps": steps, "data_root": str(data_root),
            "written_under_site_packages": [p for p, _ in written_new + written_dev][:10]}
