"""No machine paths in what foleykit writes or ships: saved model folders (diffusers would record the folder a
model was loaded from as ``_name_or_path``), the shipped model, docs, docstrings and benchmark defaults."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Absolute paths of a particular machine (home folders, the build machine's work tree).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|Users)/[\w.-]+")


def test_saved_model_folders_record_no_origin_path(tmp_path):
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.product.debug import save_debug_model

    first = save_debug_model(tmp_path / "first", audible=False)
    VideoToAudioPipeline.from_pretrained(first).save_pretrained(tmp_path / "again")
    configs = sorted((tmp_path / "again").rglob("*config.json"))
    assert len(configs) >= 5
    for f in configs:
        assert "_name_or_path" not in json.loads(f.read_text()), f
        assert str(tmp_path) not in f.read_text(), f


def _tracked(*parts: str) -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--", *parts], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.splitlines() if p]


def test_no_machine_paths_in_sources_docs_benchmarks_or_the_shipped_model():
    files = _tracked("src", "docs", "benchmarks", "scripts", "README.md", "pyproject.toml", ".ci")
    assert files
    found = []
    for f in files:
        if f.suffix in (".safetensors", ".png", ".jpg", ".wav", ".mp4", ".npy") or not f.is_file():
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{f.relative_to(ROOT)}:{m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert not found, found
