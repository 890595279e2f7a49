"""Fast-inference paths of the pipeline (docs/speed.md): precision / autocast, torch.compile wiring, SDPA
processors, precomputed video features, the timed decode split, the lazy mel transform, sampler aliases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foleykit.errors import ConfigError
from foleykit.pipelines.fast import PRECISIONS, FastInferenceMixin, attention_processors
from foleykit.recipes import build_pipeline


@pytest.fixture(scope="module")
def pipe():
    p = build_pipeline("foleykit_demo", size="debug")
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # make the zero-initialised adapter act, as after training
        for a in p.adapters.values():
            for name, prm in a.net.named_parameters():
                if name.startswith("control_"):
                    prm.add_(torch.randn(prm.shape, generator=g) * 0.2)
    yield p
    p.set_inference_options(precision="fp32")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    from foleykit.testing import make_moving_square_frames

    return make_moving_square_frames(25, size=(32, 32), move_frames=(6, 18))


def _call(pipe, frames, **kw):
    return pipe(frames=frames, prompt="glass breaking", seed=0, **kw)


def test_precision_choices_and_errors(pipe):
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp16")
    assert pipe.precision == "fp32"
    assert pipe.set_inference_options(precision="auto") is pipe and pipe.precision == "fp32"  # CPU -> fp32
    with pytest.raises(ConfigError, match="precision must be one of"):
        pipe.set_inference_options(precision="int8")
    assert pipe.precision == "fp32"

    class OnMPS(FastInferenceMixin):
        device = torch.device("mps")
        denoiser = torch.nn.Linear(1, 1)

    with pytest.raises(ConfigError, match="MPS"):
        OnMPS().set_inference_options(precision="fp16")
    assert OnMPS().set_inference_options(precision="auto").precision == "fp32"


def test_autocast_context(pipe):
    pipe.set_inference_options(precision="fp32")
    with pipe.autocast():
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    pipe.set_inference_options(precision="bf16")
    with pipe.autocast():
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
    pipe.set_inference_options(precision="fp32")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_is_close_to_fp32_and_returns_float32(pipe, frames, precision):
    pipe.set_inference_options(precision="fp32")
    ref = _call(pipe, frames)
    pipe.set_inference_options(precision=precision)
    out = _call(pipe, frames)
    pipe.set_inference_options(precision="fp32")
    assert out.audio.dtype == np.float32 and out.latents.dtype == torch.float32
    assert np.isfinite(out.audio).all()
    diff = (out.latents - ref.latents).abs().max().item()
    scale = ref.latents.abs().max().item()
    # bf16 keeps 8 mantissa bits (relative step 2^-8 = 0.4%), fp16 11 bits: over 2 steps of a tiny DiT the
    # latents stay within a few percent of the float32 ones, and differ (the autocast really ran)
    assert 0.0 < diff < 0.05 * scale


def test_compile_wiring_gives_the_same_audio(pipe, frames):
    pipe.set_inference_options(precision="fp32")
    ref = _call(pipe, frames)
    pipe.set_inference_options(precision="fp32", compile=True, compile_backend="eager")
    try:
        assert pipe._compiled is not None
        out = _call(pipe, frames)
    finally:
        pipe.set_inference_options(precision="fp32")
    assert pipe._compiled is None
    np.testing.assert_array_equal(out.audio, ref.audio)


def test_attention_goes_through_sdpa_processors(pipe):
    procs = attention_processors(pipe.denoiser)
    # the debug DiT: 2 blocks x (self + cross attention), + the ControlNet's copied block
    assert sum(procs.values()) == 4
    assert all(name.endswith("2_0") for name in procs), (
        procs
    )  # *AttnProcessor2_0 == scaled_dot_product_attention
    assert attention_processors(torch.nn.Linear(2, 2)) == {}


def test_precomputed_video_features_skip_decoding(pipe, frames, tmp_path, monkeypatch):
    from foleykit.media import read_video
    from foleykit.testing import make_moving_square_video

    video = make_moving_square_video(tmp_path / "v.mp4", duration=1.0, size=(32, 32), move_frames=(6, 18))
    fr = read_video(video, fps=pipe.seq.video_fps, size=pipe.video_encoder.input_size).frames
    ref = pipe(video, prompt="x", seed=1, duration=1.0)
    feats = pipe.video_encoder.encode(fr)

    def no_decoding(*a, **k):
        raise AssertionError("read_video must not run when video_features are given")

    monkeypatch.setattr("foleykit.media.read_video", no_decoding)
    out = pipe(video, video_features=feats, prompt="x", seed=1, duration=1.0)
    np.testing.assert_array_equal(out.audio, ref.audio)
    np.testing.assert_array_equal(out.controls["rms"].values, ref.controls["rms"].values)
    with pytest.raises(ConfigError, match=r"video_features must be Tensor\[1 x T_v x D\]"):
        pipe(video, video_features=feats[0], seed=1, duration=1.0)


def test_decode_is_timed_in_two_halves_and_unchanged(pipe, frames):
    out = _call(pipe, frames)
    t = out.timings
    assert {"decode", "decode_vae", "decode_vocoder"} <= set(t)
    assert t["decode_vae"] >= 0 and t["decode_vocoder"] == pytest.approx(t["decode"] - t["decode_vae"])
    timings: dict[str, float] = {}
    wav = pipe._decode_timed(out.latents, timings)
    assert set(timings) == {"decode_vae"}
    np.testing.assert_array_equal(wav.numpy(), pipe.decode_latents(out.latents).numpy())
    np.testing.assert_array_equal(out.audio, wav[0, : len(out.audio)].clamp(-1, 1).numpy())


def test_loaded_pipelines_build_the_mel_transform_on_first_use(pipe, tmp_path):
    from foleykit.audio import MelSpectrogram
    from foleykit.pipelines import VideoToAudioPipeline
    from foleykit.pipelines.components import LazyMelSpectrogram

    pipe.save_pretrained(tmp_path / "m")
    loaded = VideoToAudioPipeline.from_pretrained(tmp_path / "m")
    lazy = loaded.codec.mel
    assert isinstance(lazy, LazyMelSpectrogram) and lazy.inner is None
    wav = torch.sin(torch.linspace(0, 800, 16000))[None] * 0.5
    np.testing.assert_array_equal(lazy(wav).numpy(), MelSpectrogram.from_sequence(loaded.seq)(wav).numpy())
    assert lazy.inner is not None
    np.testing.assert_array_equal(
        loaded.encode_audio(wav[0].numpy(), 16000).numpy(), pipe.encode_audio(wav[0].numpy(), 16000).numpy()
    )


@pytest.mark.parametrize(
    ("alias", "cls", "order"),
    [("unipc", "UniPCMultistepScheduler", 2), ("dpmsolver++3m", "DPMSolverMultistepScheduler", 3)],
)
def test_sampler_aliases(pipe, alias, cls, order):
    from foleykit.pipelines.sampling import swap_scheduler

    s = swap_scheduler(pipe.scheduler, alias)
    assert type(s).__name__ == cls and s.config.solver_order == order
    assert s.config.prediction_type == pipe.scheduler.config.prediction_type
    s.set_timesteps(4)
    assert len(s.timesteps) == 4


def test_guidance_pair_is_one_batched_forward_per_step(pipe, frames, monkeypatch):
    calls = []
    real = type(pipe.denoiser).forward

    def spy(self, sample, timestep, conditions, controls=None):
        calls.append((sample.shape[0], conditions.batch_size, len(controls or [])))
        return real(self, sample, timestep, conditions, controls)

    monkeypatch.setattr(type(pipe.denoiser), "forward", spy)
    _call(pipe, frames, num_inference_steps=3)
    assert (
        calls == [(2, 2, 1)] * 3
    )  # one forward per step: [uncond; cond] with the ControlNet in the same call
    calls.clear()
    _call(pipe, frames, num_inference_steps=2, guidance_scale=1.0)
    assert calls == [(1, 1, 1)] * 2  # no guidance: no unconditional half
