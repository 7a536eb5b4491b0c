from pathlib import Path

import pytest

from edgerag.config import load_settings
from edgerag.errors import ConfigError


def test_defaults_then_toml_then_env_then_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    s = load_settings()
    assert s.models_dir == tmp_path / "models" and s.data_dir == tmp_path / "data"
    assert s.top_k == 4

    (tmp_path / "edgerag.toml").write_text('top_k = 7\nretrieve_mode = "dense"\n')
    assert load_settings().top_k == 7

    monkeypatch.setenv("EDGERAG_TOP_K", "9")
    s = load_settings()
    assert s.top_k == 9 and s.retrieve_mode == "dense"
    assert load_settings(top_k=3).top_k == 3


def test_bad_settings_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    (tmp_path / "edgerag.toml").write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings()
    (tmp_path / "edgerag.toml").write_text("top_k = [\n")
    with pytest.raises(ConfigError, match="edgerag.toml"):
        load_settings()
    (tmp_path / "edgerag.toml").unlink()
    monkeypatch.setenv("EDGERAG_TOP_K", "many")
    with pytest.raises(ConfigError, match="top_k"):
        load_settings()
    monkeypatch.setenv("EDGERAG_TOP_K", "0")
    with pytest.raises(ConfigError, match="positive"):
        load_settings()
    monkeypatch.delenv("EDGERAG_TOP_K")
    monkeypatch.setenv("EDGERAG_FOCUS_WORDS", "-1")
    with pytest.raises(ConfigError, match="focus_words must be 0"):
        load_settings()
    monkeypatch.setenv("EDGERAG_FOCUS_WORDS", "0")  # whole chunks
    assert load_settings().focus_words == 0
    monkeypatch.setenv("EDGERAG_REPEAT_PENALTY", "-1")
    with pytest.raises(ConfigError, match="repeat_penalty must be 0"):
        load_settings()
    monkeypatch.setenv("EDGERAG_REPEAT_PENALTY", "1.0")  # none
    assert load_settings().repeat_penalty == 1.0


def test_config_show_cli(tmp_path, monkeypatch, capsys):
    import json

    from edgerag.cli import main

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    assert main(["config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["models_dir"] == str(tmp_path / "models")


def test_installed_edgerag_keeps_data_in_the_user_data_folder(tmp_path, monkeypatch):
    """Outside a source checkout (a normal pip/pipx install) nothing defaults to the package's own folder."""
    import edgerag.config as config

    monkeypatch.delenv("EDGERAG_HOME", raising=False)
    monkeypatch.delenv("EDGERAG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(config, "source_checkout", lambda: None)
    s = load_settings()
    assert s.models_dir == tmp_path / "share" / "edgerag" / "models"
    assert s.data_dir == tmp_path / "share" / "edgerag" / "data"
    assert config.config_path() == tmp_path / "config" / "edgerag" / "edgerag.toml"
    package = Path(config.__file__).resolve().parent.parent
    assert package not in s.models_dir.parents and package not in s.data_dir.parents
    # the config file there is read, and may move the folders
    (tmp_path / "config" / "edgerag").mkdir(parents=True)
    (tmp_path / "config" / "edgerag" / "edgerag.toml").write_text(f'data_dir = "{tmp_path / "mine"}"\n')
    assert load_settings().data_dir == tmp_path / "mine"


def test_source_checkout_keeps_its_local_default(monkeypatch):
    import edgerag.config as config

    monkeypatch.delenv("EDGERAG_HOME", raising=False)
    repo = Path(config.__file__).resolve().parent.parent
    assert config.source_checkout() == repo  # the tests run from the checkout
    s = load_settings()
    assert s.models_dir == repo / "models" and s.data_dir == repo / ".edgerag"


def test_settings_load_without_tomllib_as_on_python_3_10(tmp_path):
    """requires-python allows 3.10, which has no tomllib: the declared tomli fallback must do the same job."""
    import subprocess
    import sys
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.10"
    assert any(d.startswith("tomli>=") and "python_version < '3.11'" in d for d in pyproject["project"]["dependencies"])
    pytest.importorskip("tomli")
    (tmp_path / "edgerag.toml").write_text("top_k = 6\n")
    code = ("import sys; sys.modules['tomllib'] = None; sys.version_info = (3, 10, 13, 'final', 0)\n"
            "from edgerag.config import load_settings; print(load_settings().top_k)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "EDGERAG_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6"
