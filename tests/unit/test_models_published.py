"""Published backbones: shipped configs build on the meta device with the published sizes; tiny models in the
published folder layouts reload bit-identically; a missing backbone says which files are expected. (Whole
folders written by diffusers' own pipelines: test_published_backbones.py.)"""

from __future__ import annotations

import json

import pytest
import torch

from foleykit.errors import ModelError, WeightsNotFoundError
from foleykit.models import PUBLISHED_BACKBONES, published_components, published_config
from foleykit.models import autoencoder as ae
from foleykit.models import dit as dt
from foleykit.models import unet as un
from foleykit.models import vocoder as voc
from foleykit.models.layers import count_parameters
from foleykit.pipelines.components import load_component, save_component

#: Parameter counts of the published configs (exact, from the shipped config.json files).
EXPECTED = {
    ("audioldm-m-full", "unet"): 415_954_568,  # "AudioLDM-M ~416M"
    ("audioldm-m-full", "vae"): 55_376_873,
    ("audioldm-m-full", "vocoder"): 55_264_897,
    ("stable-audio-open-1.0", "transformer"): 1_056_939_136,  # "Stable Audio Open DiT ~1057M"
    ("stable-audio-open-1.0", "vae"): 156_112_514,
}
BUILDERS = {"unet": un.build_unet, "transformer": dt.build_dit, "vocoder": voc.build_hifigan}


def _build(backbone: str, component: str, **kw):
    cfg = published_config(backbone, component)
    if component == "vae":
        fn = ae.build_waveform_vae if cfg["_class_name"] == "AutoencoderOobleck" else ae.build_mel_vae
    else:
        fn = BUILDERS[component]
    return fn(cfg, **kw)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_published_configs_match_the_published_sizes_without_allocating(key):
    model = _build(*key, meta=True)
    assert all(p.is_meta for p in model.parameters())
    assert count_parameters(model) == EXPECTED[key]
    if key[1] in ("unet", "transformer"):
        published = {"unet": 416e6, "transformer": 1057e6}[key[1]]
        assert abs(count_parameters(model) - published) / published < 0.005


def test_published_config_files_are_diffusers_or_transformers_configs():
    assert set(PUBLISHED_BACKBONES) == {"audioldm-m-full", "stable-audio-open-1.0"}
    assert published_components("audioldm-m-full") == ["scheduler", "unet", "vae", "vocoder"]
    for backbone in PUBLISHED_BACKBONES:
        for comp in published_components(backbone):
            cfg = published_config(backbone, comp)
            assert cfg.get("_class_name") or cfg.get("architectures") == ["SpeechT5HifiGan"]
    assert published_config("audioldm-m-full", "vae")["scaling_factor"] == pytest.approx(0.9138, abs=1e-4)
    assert published_config("stable-audio-open-1.0", "projection_model")["max_value"] == 512
    with pytest.raises(Exception, match="no published config"):
        published_config("audioldm-m-full", "nope")


def _tiny_models():
    torch.manual_seed(0)
    return {
        "vae": (ae.build_mel_vae(ae.DEBUG_MEL_VAE), "diffusers", "diffusion_pytorch_model.safetensors"),
        "unet": (un.build_unet(un.DEBUG_AUDIOLDM_UNET), "diffusers", "diffusion_pytorch_model.safetensors"),
        "vocoder": (voc.build_hifigan(voc.DEBUG_HIFIGAN), "transformers", "model.safetensors"),
        "transformer": (dt.build_dit(dt.DEBUG_DIT), "diffusers", "diffusion_pytorch_model.safetensors"),
        "projection_model": (
            dt.build_projection(dt.DEBUG_PROJECTION),
            "diffusers",
            "diffusion_pytorch_model.safetensors",
        ),
        "oobleck": (
            ae.build_waveform_vae(ae.DEBUG_OOBLECK),
            "diffusers",
            "diffusion_pytorch_model.safetensors",
        ),
    }


def test_tiny_models_in_published_layouts_reload_bit_identically(tmp_path):
    for name, (model, lib, wfile) in _tiny_models().items():
        entry = save_component(model, tmp_path / name)
        assert entry == (lib, type(model).__name__)
        assert (tmp_path / name / wfile).is_file() and (tmp_path / name / "config.json").is_file()
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        assert cfg.get("_class_name", cfg.get("architectures", [None])[0]) == type(model).__name__
        back = load_component(name, entry, tmp_path / name)
        a, b = model.state_dict(), back.state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
        # the same classes load the folder directly, like a downloaded checkpoint
        direct = type(model).from_pretrained(str(tmp_path / name))
        assert all(torch.equal(a[k], direct.state_dict()[k]) for k in a)


def test_fp16_component_files_load_back_as_float32(tmp_path):
    model = _tiny_models()["unet"][0]
    entry = save_component(model, tmp_path / "unet", dtype=torch.float16)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118
    back = load_component("unet", entry, tmp_path / "unet")
    for k, v in model.state_dict().items():
        w = back.state_dict()[k]
        assert w.dtype == torch.float32
        assert torch.equal(w, v.half().float())


def test_missing_component_files_name_what_is_expected(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="diffusion_pytorch_model.safetensors"):
        load_component("unet", ("diffusers", "UNet2DConditionModel"), tmp_path / "unet")
    (tmp_path / "vocoder").mkdir()
    (tmp_path / "vocoder" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="model.safetensors"):
        load_component("vocoder", ("transformers", "SpeechT5HifiGan"), tmp_path / "vocoder")
    with pytest.raises(ModelError, match="no build spec"):
        save_component(torch.nn.Linear(2, 2), tmp_path / "lin")


def test_missing_backbone_gives_a_clear_error(tmp_path):
    from foleykit.recipes import build_pipeline, load_recipe

    recipe = load_recipe("rewas", size="debug")
    with pytest.raises(WeightsNotFoundError, match="model_index.json"):
        build_pipeline(recipe, backbone=tmp_path / "audioldm-m-full")
    folder = tmp_path / "audioldm-m-full"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "AudioLDMPipeline"}))
    with pytest.raises(WeightsNotFoundError, match=r"unet.*diffusion_pytorch_model\.safetensors"):
        build_pipeline(recipe, backbone=folder)


def test_backbone_weights_are_loaded_before_the_adapter_copies_them(tmp_path):
    from foleykit.recipes import build_pipeline, load_recipe

    recipe = load_recipe("rewas", size="debug")
    donor = build_pipeline(recipe, encoders=False)
    folder = tmp_path / "audioldm"
    torch.manual_seed(123)
    unet = un.build_unet(un.DEBUG_AUDIOLDM_UNET)
    save_component(unet, folder / "unet")
    save_component(donor.codec.vae, folder / "vae")
    save_component(donor.codec.vocoder, folder / "vocoder")
    save_component(donor.scheduler, folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "AudioLDMPipeline"}))
    pipe = build_pipeline(recipe, backbone=folder, encoders=False)
    assert torch.equal(pipe.denoiser.unet.conv_in.weight, unet.conv_in.weight)
    assert not torch.equal(pipe.denoiser.unet.conv_in.weight, donor.denoiser.unet.conv_in.weight)
    assert torch.equal(pipe.adapters["energy"].net.conv_in.weight, unet.conv_in.weight)


def test_a_published_pipeline_folder_is_not_a_foleykit_model(tmp_path):
    """from_pretrained loads foleykit folders; a published one is named with the command that runs it."""
    from foleykit.pipelines import VideoToAudioPipeline

    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "AudioLDMPipeline"}))
    with pytest.raises(ModelError, match=r"AudioLDM folder.*foleykit generate VIDEO --model .*recipe rewas"):
        VideoToAudioPipeline.from_pretrained(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "MusicLDMPipeline"}))
    with pytest.raises(ModelError, match="MusicLDMPipeline folder, neither a foleykit model nor a backbone"):
        VideoToAudioPipeline.from_pretrained(tmp_path)


def test_model_parts_are_registered_by_name():
    import foleykit.recipes  # noqa: F401  (registers the part builders)
    from foleykit import registry

    assert (
        count_parameters(registry.build("unet", "audioldm-m", meta=True))
        == EXPECTED[("audioldm-m-full", "unet")]
    )
    assert (
        count_parameters(registry.build("vae", "oobleck", meta=True))
        == EXPECTED[("stable-audio-open-1.0", "vae")]
    )
    assert type(registry.build("vocoder", "debug")).__name__ == "SpeechT5HifiGan"
    istft = registry.build("vocoder", "istft-debug", num_layers=3)
    assert type(istft).__name__ == "IstftVocoder" and len(istft.blocks) == 3
    small = registry.build("transformer", "stable-audio-open", meta=True, num_layers=2)
    assert len(small.transformer_blocks) == 2
