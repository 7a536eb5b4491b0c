"""Shared fixtures. Every test runs with Python sockets blocked (pytest-socket, see pyproject addopts); native code
can bypass that, which is what tests/test_offline_proof.py checks at the system-call level.

The bundled models are prepared once per session into a temporary EDGERAG_HOME; tests that need their own
store copy that folder (cheap) instead of preparing again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import edgerag  # noqa: F401  first: dependencies' telemetry/hub access off before any test imports them

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture(scope="session")
def prepared_home(tmp_path_factory) -> Path:
    """An EDGERAG_HOME with the default models prepared (offline, by the real `models prepare` command)."""
    home = tmp_path_factory.mktemp("edgerag-home")
    old = os.environ.get("EDGERAG_HOME")
    os.environ["EDGERAG_HOME"] = str(home)
    try:
        from edgerag.cli import main

        assert main(["models", "prepare"]) == 0
    finally:
        if old is None:
            os.environ.pop("EDGERAG_HOME", None)
        else:
            os.environ["EDGERAG_HOME"] = old
    return home


@pytest.fixture()
def home(prepared_home, tmp_path, monkeypatch) -> Path:
    """A private EDGERAG_HOME whose models folder is a copy of the prepared one (tests may corrupt it)."""
    target = tmp_path / "home"
    shutil.copytree(prepared_home / "models", target / "models")
    monkeypatch.setenv("EDGERAG_HOME", str(target))
    return target


@pytest.fixture()
def settings(home):
    from edgerag.config import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def session_settings(prepared_home):
    """Settings on the shared prepared home, for read-only model use (no per-test copy)."""
    from edgerag.config import Settings

    return Settings(models_dir=prepared_home / "models", data_dir=prepared_home / "data")


@pytest.fixture(scope="session")
def embedder(session_settings):
    from edgerag.embed import load_active_embedder

    return load_active_embedder(session_settings)


@pytest.fixture(scope="session")
def generator(session_settings):
    from edgerag.generate.llm import load_generator

    return load_generator(session_settings)
