import json

import pytest

from foleykit import registry
from foleykit.cli import main
from foleykit.errors import ConfigError, WeightsNotFoundError
from foleykit.paths import resolve_model
from foleykit.utils.io import atomic_dir, atomic_path, atomic_write_json


def test_atomic_path_success_and_failure(tmp_path):
    target = tmp_path / "out" / "a.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".txt"
        tmp.write_text("hello")
    assert target.read_text() == "hello"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "hello"  # untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]  # no temp left


def test_atomic_json_and_dir(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    d = tmp_path / "model"
    with atomic_dir(d) as tmp:
        (tmp / "config.json").write_text("{}")
    assert (d / "config.json").exists()
    with pytest.raises(ValueError), atomic_dir(d) as tmp:
        (tmp / "other.json").write_text("{}")
        raise ValueError
    assert sorted(p.name for p in d.iterdir()) == ["config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "x.json"]


def test_registry_register_get_and_unknown():
    @registry.register("test-kind", "alpha")
    def build_alpha(x: int = 1):
        return ("alpha", x)

    assert registry.build("test-kind", "alpha", x=3) == ("alpha", 3)
    assert "alpha" in registry.names("test-kind")
    with pytest.raises(ConfigError, match="valid names: alpha"):
        registry.get("test-kind", "beta")


def test_resolve_model_missing_gives_actionable_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsNotFoundError, match="never downloads"):
        resolve_model("no-such-model-anywhere")
    folder = tmp_path / "home" / "models" / "mine"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    assert resolve_model("mine") == folder
    assert resolve_model(str(folder)) == folder


def test_cli_without_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: foleykit" in capsys.readouterr().out
