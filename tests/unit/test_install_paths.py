"""What a plain `pip install .` and `scripts/setup.sh` give: the aisfx reference-sound encoder is loaded only
when a reference sound is given (one message says how to install it), and set-up installs a CPU build of
torch on machines without an NVIDIA GPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foleykit.errors import WeightsNotFoundError

ROOT = Path(__file__).resolve().parents[2]
SR = 16000


@pytest.fixture
def no_aisfx(monkeypatch):
    """Make `import aisfx` fail as it does after `pip install .` alone."""
    for name in ("aisfx", "aisfx.inference", "aisfx.models", "aisfx.models.cnn2d"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(scope="module")
def aisfx_model(tmp_path_factory):
    """A debug model folder whose reference-sound encoder is aisfx (as in foleykit-demo)."""
    from foleykit.product.debug import save_debug_model

    d = tmp_path_factory.mktemp("aisfx_model")
    folder = save_debug_model(d / "model")
    spec = {"registry": ["audio_encoder", "aisfx"], "kwargs": {}, "weights": False}
    cfg = {"_class_name": "AisfxAudioEncoder", "_foleykit_spec": spec}
    (folder / "audio_encoder" / "config.json").write_text(json.dumps(cfg))
    index = json.loads((folder / "model_index.json").read_text())
    index["_foleykit"]["specs"]["audio_encoder"] = spec
    (folder / "model_index.json").write_text(json.dumps(index))
    from foleykit.testing import make_moving_square_video

    video = make_moving_square_video(d / "clip.mp4", duration=1.0, size=(32, 32), move_frames=(6, 18))
    from foleykit.media import write_audio

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    return {"model": folder, "video": video, "ref": write_audio(d / "tone.wav", tone, SR)}


def test_aisfx_encoder_is_built_without_the_package(no_aisfx):
    from foleykit import registry

    enc = registry.build("audio_encoder", "aisfx")
    assert enc.dim == 512 and enc.model is None
    with pytest.raises(WeightsNotFoundError, match=r"pip install --no-deps aisfx") as err:
        enc.encode([np.ones(SR, np.float32)], SR)
    assert "\n" not in str(err.value) and "reference sound" in str(err.value)


def test_a_model_with_aisfx_runs_without_it_until_a_reference_sound_is_given(
    no_aisfx, aisfx_model, tmp_path, capsys
):
    from foleykit.cli import main
    from foleykit.product.runtime import clear_model_cache

    clear_model_cache()
    try:
        out = tmp_path / "take.wav"
        args = ["generate", str(aisfx_model["video"]), "--model", str(aisfx_model["model"]), "--steps", "1"]
        assert main([*args, "-o", str(out), "--seed", "1"]) == 0
        assert out.is_file()
        capsys.readouterr()
        bad = tmp_path / "ref.wav"
        assert main([*args, "-o", str(bad), "--audio-prompt", str(aisfx_model["ref"])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            len(err) == 1
            and "pip install --no-deps aisfx" in err[0]
            and err[0].startswith("foleykit: error:")
        )
        assert not bad.exists() and not bad.with_suffix(".json").exists()
    finally:
        clear_model_cache()


def test_reference_encoder_fails_before_the_timing_prediction(no_aisfx, aisfx_model, monkeypatch):
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.product import GenerateOptions, generate_audio
    from foleykit.product.runtime import clear_model_cache, load_model

    predicted = []
    real = VideoToAudioPipeline.predict_controls
    monkeypatch.setattr(
        VideoToAudioPipeline, "predict_controls", lambda *a, **k: predicted.append(1) or real(*a, **k)
    )
    clear_model_cache()
    try:
        pipe = load_model(aisfx_model["model"])
        with pytest.raises(WeightsNotFoundError, match="aisfx"):
            generate_audio(pipe, aisfx_model["video"], GenerateOptions(audio_prompt=str(aisfx_model["ref"])))
    finally:
        clear_model_cache()
    assert predicted == []


# --- scripts/setup.sh: which torch -------------------------------------------------------------------------
FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for .venv/bin/python: logs every call; torch is missing; the local CPU wheel is there or not.
echo "$*" >> "$SETUP_LOG"
case "$*" in
  "-c import torch") exit 1 ;;
  "-c import aisfx") exit 0 ;;
  *"pip install"*"--no-index"*) [ -n "$LOCAL_WHEEL" ] && exit 0 || exit 1 ;;
  *) exit 0 ;;
esac
"""


def _run_setup(
    tmp_path: Path, *, gpu: bool, local_wheel: bool, env: dict[str, str] | None = None
) -> list[str]:
    """Run a copy of scripts/setup.sh against a fake venv python; returns the python calls it made."""
    work = tmp_path / ("gpu" if gpu else "cpu") / ("local" if local_wheel else "remote")
    (work / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", work / "scripts" / "setup.sh")
    venv = work / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(FAKE_PYTHON)
    (venv / "python").chmod(0o755)
    tools = work / "tools"
    tools.mkdir()
    for net in (
        "curl",
        "wget",
        "apt-get",
        "git",
        "pip",
        "pip3",
    ):  # nothing in set-up reaches the network here
        (tools / net).write_text(f'#!/usr/bin/env bash\necho "{net} $*" >> "$SETUP_LOG"\n')
        (tools / net).chmod(0o755)
    if gpu:
        (tools / "nvidia-smi").write_text("#!/usr/bin/env bash\necho 'GPU 0: fake'\n")
        (tools / "nvidia-smi").chmod(0o755)
    log = work / "calls.log"
    path = os.pathsep.join([str(tools), "/usr/bin", "/bin"])
    run_env = {
        "PATH": path,
        "SETUP_LOG": str(log),
        "LOCAL_WHEEL": "1" if local_wheel else "",
        "FOLEYKIT_SKIP_BROWSER": "1",
        "HOME": str(work),
        **(env or {}),
    }
    done = subprocess.run(
        ["bash", str(work / "scripts" / "setup.sh")],
        check=False,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in log.read_text().splitlines() if "pip install" in line and "torch" in line]


def test_setup_installs_the_local_cpu_wheel_when_it_is_there(tmp_path):
    calls = _run_setup(tmp_path, gpu=False, local_wheel=True)
    assert calls[0].endswith("--no-index --no-deps torch==2.13.0")
    assert not any("download.pytorch.org" in c for c in calls)


def test_setup_falls_back_to_the_pytorch_cpu_index_without_a_local_wheel(tmp_path):
    calls = _run_setup(tmp_path, gpu=False, local_wheel=False)
    assert "--no-index" in calls[0]
    assert calls[-1].endswith("torch>=2.4 --index-url https://download.pytorch.org/whl/cpu")
    # never a bare `torch` from the default index on a CPU machine (that is the multi-GB CUDA build)
    assert all("--no-index" in c or "--index-url" in c for c in calls)


def test_setup_torch_overrides_and_gpu_machines(tmp_path):
    calls = _run_setup(
        tmp_path,
        gpu=False,
        local_wheel=False,
        env={"FOLEYKIT_TORCH_SPEC": "torch==2.5.1", "FOLEYKIT_TORCH_INDEX": "https://mirror.example/cpu"},
    )
    assert calls[-1].endswith("torch==2.5.1 --index-url https://mirror.example/cpu")
    gpu = _run_setup(tmp_path, gpu=True, local_wheel=False)
    assert len(gpu) == 1 and gpu[0].endswith("install -q torch>=2.4")
