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


def test_atomic_dir_with_a_marker_never_replaces_a_folder_of_another_kind(tmp_path):
    """A folder named by mistake (a user's project, a file) is refused before anything is written; an empty
    folder or one of the kind being written (it holds the marker) is replaced."""
    mine = tmp_path / "project"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "notes.txt").write_text("keep")
    afile = tmp_path / "file.txt"
    afile.write_text("keep")
    for target in (mine, afile):
        with (
            pytest.raises(ConfigError, match="not a model folder"),
            atomic_dir(target, marker="model_index.json", what="a model folder"),
        ):
            raise AssertionError("the body must not run")
    assert (mine / "sub" / "notes.txt").read_text() == "keep" and afile.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "project"]  # no temp folder left
    link = tmp_path / "link"
    link.symlink_to(mine, target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"), atomic_dir(link, marker="model_index.json"):
        raise AssertionError("the body must not run")
    assert link.is_symlink() and (mine / "sub" / "notes.txt").read_text() == "keep"
    link.unlink()
    for target in (tmp_path / "empty", tmp_path / "model"):
        target.mkdir()
        if target.name == "model":
            (target / "model_index.json").write_text("{}")
            (target / "old.bin").write_text("stale")
        with atomic_dir(target, marker="model_index.json") as tmp:
            (tmp / "model_index.json").write_text('{"new": 1}')
        assert sorted(p.name for p in target.iterdir()) == ["model_index.json"]


def test_ship_refuses_an_output_that_is_not_a_model_folder(tmp_path, capsys):
    """`foleykit train ship` / `merge` name their output folder; a folder with other content is refused with
    one line and exit 2, before the model is loaded, and keeps its content."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("keep")
    capsys.readouterr()
    assert main(["train", "ship", "--model", str(tmp_path / "no-such-model"), "--output", str(mine)]) == 2
    assert "is not a model folder" in capsys.readouterr().err  # refused before the (missing) model is read
    assert main(["train", "merge", "--run", str(tmp_path / "no-run"), "--output", str(mine)]) == 2
    assert "is not a model folder" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["chapter1.tex"]


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
