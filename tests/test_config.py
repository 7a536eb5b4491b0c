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


def test_config_show_cli(tmp_path, monkeypatch, capsys):
    import json

    from edgerag.cli import main

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path))
    assert main(["config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["models_dir"] == str(tmp_path / "models")
