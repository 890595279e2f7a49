"""Loading a model folder never runs code that came with it (foleykit.pipelines.trust): names are checked as
strings before any import, paths stay inside the folder, weights are safetensors unless pickles are trusted,
and the folders foleykit writes or knows (debug recipes, the shipped model, published AudioLDM) still load."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from foleykit.cli import main
from foleykit.pipelines import trust
from foleykit.pipelines.trust import UntrustedModelError


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from foleykit.product.debug import save_debug_model

    return save_debug_model(tmp_path_factory.mktemp("sec") / "model")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from foleykit.testing import make_moving_square_video

    d = tmp_path_factory.mktemp("clip")
    return make_moving_square_video(d / "clip.mp4", duration=1.0, size=(64, 48), move_frames=(5,))


def _copy(model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    return folder


def _edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _load(folder: Path, **kw):
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    return VideoToAudioPipeline.from_pretrained(folder, **kw)


def _marker_module(tmp_path: Path, monkeypatch, name: str) -> Path:
    """A module on sys.path that writes a marker file when it is imported."""
    mods, marker = tmp_path / "mods", tmp_path / f"{name}.imported"
    mods.mkdir(exist_ok=True)
    (mods / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Thing:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(mods))
    return marker


# --- code ---------------------------------------------------------------------------------------------------
def test_a_spec_naming_popen_runs_nothing_and_says_so_in_one_line(model, clip, tmp_path, capsys):
    folder = _copy(model, tmp_path)
    ran = tmp_path / "popen-ran"

    def popen(cfg):
        cfg["_foleykit_spec"] = {"class": "subprocess.Popen", "kwargs": {"args": ["touch", str(ran)]}}

    _edit_json(folder / "video_condition" / "config.json", popen)
    out = tmp_path / "out.wav"
    assert main(["generate", str(clip), "-o", str(out), "--model", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "subprocess.Popen" in err[0] and "does not load" in err[0], err
    assert str(tmp_path) not in err[0]  # names the folder, not the server's path
    assert not ran.exists() and not out.exists()


def test_a_lib_naming_any_module_is_refused_before_it_is_imported(model, tmp_path, monkeypatch):
    marker = _marker_module(tmp_path, monkeypatch, "fk_evil_lib")
    folder = _copy(model, tmp_path)
    _edit_json(folder / "model_index.json", lambda d: d.update(controlnet_rms=["fk_evil_lib", "Thing"]))
    with pytest.raises(UntrustedModelError, match=r"fk_evil_lib\.Thing"):
        _load(folder)
    assert not marker.exists() and "fk_evil_lib" not in sys.modules


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"class": "fk_evil_spec.Thing"}, r"fk_evil_spec\.Thing"),
        ({"class": "foleykit.pipelines.components.Path", "kwargs": {}}, "not a foleykit model class"),
        ({"class": "foleykit.utils.io.atomic_path"}, r"foleykit\.utils\.io\.atomic_path"),
        ({"class": "foleykit.__main__.X"}, r"foleykit\.__main__\.X"),
        ({"registry": ["embedder", "panns"], "kwargs": {"checkpoint": "x.pth"}}, "registry entry"),
        ({"registry": ["video_encoder", "debug"], "kwargs": {"folder": "/etc"}}, "may not set folder"),
        ({"registry": ["video_encoder", "debug"], "eval": "x"}, "unknown keys"),
    ],
)
def test_specs_outside_foleykit_s_model_classes_are_refused(model, tmp_path, monkeypatch, spec, match):
    marker = _marker_module(tmp_path, monkeypatch, "fk_evil_spec")
    folder = _copy(model, tmp_path)
    _edit_json(folder / "video_condition" / "config.json", lambda c: c.update(_foleykit_spec=spec))
    with pytest.raises(UntrustedModelError, match=match):
        _load(folder)
    assert not marker.exists() and "fk_evil_spec" not in sys.modules


def test_library_entries_are_checked_by_exact_name():
    assert trust.check_library_class("diffusers", "AutoencoderKL", where="w") == "diffusers"
    assert trust.check_library_class("stable_audio", "StableAudioProjectionModel", where="w") == "diffusers"
    assert trust.check_library_class("transformers", "SpeechT5HifiGan", where="w") == "transformers"
    assert trust.library_class(
        "foleykit.models.control_adapter", "DiTControlNetModel", where="w"
    ).__name__ == ("DiTControlNetModel")
    for lib, cls in [
        ("diffusers", "DiffusionPipeline"),  # a diffusers class, but not a known component
        ("transformers", "AutoModel"),  # would follow a config's auto_map
        ("diffusers.utils", "AutoencoderKL"),
        ("os", "system"),
        ("foleykit", "cli"),
        ("foleykit.cli.generate", "run"),
        ("foleykit.models..x", "Y"),
        ("foleykit.models.pooling", "not-an-identifier"),
        (["diffusers"], "AutoencoderKL"),
    ]:
        with pytest.raises(UntrustedModelError):
            trust.check_library_class(lib, cls, where="w")
    with pytest.raises(UntrustedModelError, match="plain data"):
        trust.check_plain({"a": [1, {"b": print}]}, where="w")
    trust.check_plain({"a": [1, 2.5, None, True, {"b": "c"}]}, where="w")


def test_a_tokenizer_entry_is_not_a_component(model, tmp_path):
    folder = _copy(model, tmp_path)
    _edit_json(folder / "model_index.json", lambda d: d.update(vae=["transformers", "RobertaTokenizer"]))
    with pytest.raises(UntrustedModelError, match="not a component class"):
        _load(folder)


# --- paths --------------------------------------------------------------------------------------------------
def test_paths_stay_inside_the_folder(model, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(model / "vae", outside)

    folder = _copy(model, tmp_path / "a")
    _edit_json(
        folder / "model_index.json",
        lambda d: d["_foleykit"]["adapters"][0].update(name="../../elsewhere"),
    )
    with pytest.raises(UntrustedModelError, match="not a component folder name"):
        _load(folder)

    folder = _copy(model, tmp_path / "b")
    shutil.rmtree(folder / "vae")
    os.symlink(outside, folder / "vae")
    with pytest.raises(UntrustedModelError, match="vae is a link to a place outside the model folder"):
        _load(folder)

    folder = _copy(model, tmp_path / "c")
    w = folder / "vae" / "diffusion_pytorch_model.safetensors"
    w.unlink()
    os.symlink(outside / w.name, w)
    with pytest.raises(UntrustedModelError, match="outside the model folder"):
        _load(folder)

    folder = _copy(model, tmp_path / "d")
    (folder / "vae" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"x": "../../elsewhere/diffusion_pytorch_model.safetensors"}})
    )
    with pytest.raises(UntrustedModelError, match="not a file of its folder"):
        _load(folder)

    folder = _copy(model, tmp_path / "e")
    _edit_json(folder / "vae" / "config.json", lambda c: c.update(auto_map={"AutoModel": "m.Evil"}))
    with pytest.raises(UntrustedModelError, match="custom code"):
        _load(folder)

    folder = _copy(model, tmp_path / "f")  # links that stay inside are fine
    (folder / "vae").rename(folder / "vae-files")
    os.symlink("vae-files", folder / "vae")
    assert _load(folder).codec is not None


# --- pickles ------------------------------------------------------------------------------------------------
def test_pickle_weights_need_trust_pickle(model, clip, tmp_path, capsys):
    from safetensors.torch import load_file

    folder = _copy(model, tmp_path)
    w = folder / "vae" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(w)), folder / "vae" / "diffusion_pytorch_model.bin")
    w.unlink()
    with pytest.raises(
        UntrustedModelError, match=r"diffusion_pytorch_model\.bin is a pickle.*--trust-pickle"
    ):
        _load(folder)
    out = tmp_path / "out.wav"
    assert main(["generate", str(clip), "-o", str(out), "--model", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trust-pickle" in err[0] and not out.exists()
    with trust.trusting_pickle():
        assert _load(folder).codec is not None
    assert _load(folder, trust_pickle=True).codec is not None
    assert main(["generate", str(clip), "-o", str(out), "--model", str(folder), "--trust-pickle"]) == 0
    assert out.is_file()


@pytest.mark.parametrize(
    ("component", "file"),
    [
        ("transformer", "diffusion_pytorch_model.safetensors"),  # diffusers layout
        ("vocoder", "model.safetensors"),  # transformers layout
        ("predictor_rms", "model.safetensors"),  # foleykit spec
    ],
)
def test_a_damaged_weights_file_is_one_typed_error_that_names_the_component(
    model, clip, tmp_path, capsys, component, file
):
    from foleykit.errors import ModelError
    from foleykit.product.debug import save_debug_model

    # the HiFi-GAN vocoder (transformers layout) is in the debug model saved with audible=False
    folder = (
        _copy(model, tmp_path) if component != "vocoder" else save_debug_model(tmp_path / "m", audible=False)
    )
    w = folder / component / file
    assert w.is_file()
    w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])  # truncated, as by a failed copy
    with pytest.raises(ModelError, match=rf"component '{component}' .*cannot be loaded"):
        _load(folder)
    out = tmp_path / "out.wav"
    assert main(["generate", str(clip), "-o", str(out), "--model", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and component in err[0] and "Traceback" not in err[0] and not out.exists()


# --- what still loads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "recipe", ["foleykit_demo", "rewas", "sta_v2a", "vta_ldm", "stable_v2a", "rhythmic_foley"]
)
def test_every_recipe_s_debug_folder_passes_the_checks(recipe, tmp_path):
    """Every class a saved recipe names is allowed (checked and resolved, as loading does)."""
    from foleykit.pipelines.components import SPEC_LIBRARY, check_index
    from foleykit.product.debug import save_debug_model

    folder = trust.check_folder(save_debug_model(tmp_path / recipe, recipe=recipe, audible=False))
    index = json.loads((folder / "model_index.json").read_text())
    check_index(folder, index)
    for name, entry in index.items():
        if name.startswith("_"):
            continue
        if entry[0] == SPEC_LIBRARY:
            spec = json.loads((folder / name / "config.json").read_text())["_foleykit_spec"]
            if "class" in spec:
                trust.spec_class(spec["class"], where=name)
        else:
            trust.library_class(entry[0], entry[1], where=name)


def test_a_saved_debug_model_and_the_shipped_model_load(model):
    from foleykit.paths import SHIPPED_WEIGHTS_DIR

    assert _load(model).codec is not None
    pipe = _load(SHIPPED_WEIGHTS_DIR / "foleykit-demo")
    assert pipe.adapters and pipe.predictors


def test_published_audioldm_folders_go_through_the_same_rules(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from test_published_backbones import write_tiny_audioldm

    from foleykit.pipelines.published import load_published

    folder = write_tiny_audioldm(tmp_path / "audioldm")
    assert load_published(folder).model_info["backbone"]["family"] == "audioldm"

    # a hub-cache snapshot whose files link into the repository's blobs/ loads
    repo = tmp_path / "hub" / "models--cvssp--audioldm-m-full"
    snap = repo / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snap)
    (repo / "blobs").mkdir()
    for i, f in enumerate(sorted(p for p in snap.rglob("*") if p.is_file())):
        blob = repo / "blobs" / f"b{i}"
        f.rename(blob)
        os.symlink(os.path.relpath(blob, f.parent), f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert load_published("cvssp/audioldm-m-full").model_info["backbone"]["hub_id"] == "cvssp/audioldm-m-full"

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    _edit_json(
        bad / "tokenizer" / "tokenizer_config.json",
        lambda c: c.update(auto_map={"AutoTokenizer": ["t.T", None]}),
    )
    with pytest.raises(UntrustedModelError, match="custom code"):
        load_published(bad)

    bad = tmp_path / "bad-unet"
    shutil.copytree(folder, bad)
    from safetensors.torch import load_file

    w = bad / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(w)), w.with_suffix(".bin"))
    w.unlink()
    with pytest.raises(UntrustedModelError, match="--trust-pickle"):
        load_published(bad)
    with trust.trusting_pickle():
        assert load_published(bad).denoiser is not None

    bad = tmp_path / "bad-text"
    shutil.copytree(folder, bad)
    w = bad / "text_encoder" / "model.safetensors"
    torch.save(load_file(str(w)), w.parent / "pytorch_model.bin")
    w.unlink()
    with pytest.raises(UntrustedModelError, match=r"pytorch_model\.bin is a pickle"):
        load_published(bad)
