"""One path through the code: the product layer runs the pipeline's public stages (``encode_video``,
``predict_controls``, conditions with a ``ConditionCache``) and never swaps its encoders; one effective
guidance scale for the API, the product and the sidecar."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch

from foleykit.errors import ConfigError
from foleykit.recipes import build_pipeline, load_recipe

SR = 16000


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return build_pipeline("foleykit_demo", size="debug")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from foleykit.media import write_audio
    from foleykit.testing import make_moving_square_video

    d = tmp_path_factory.mktemp("one_path")
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    return {
        "clip": make_moving_square_video(d / "clip.mp4", duration=1.0, size=(32, 32), move_frames=(6, 18)),
        "long": make_moving_square_video(d / "long.mp4", duration=2.2, size=(32, 32), move_frames=(6, 40)),
        "ref": write_audio(d / "tone.wav", tone, SR),
    }


# --- the pipeline's public stages ----------------------------------------------------------------------
def test_encode_video_is_the_one_caller_of_the_video_encoder(pipe, media, monkeypatch):
    """Timing prediction and generation (long video, several windows) go through ``pipe.encode_video``."""
    from foleykit.product import GenerateOptions, generate_audio
    from foleykit.product.generate import predict_timing

    callers = []
    real = pipe.video_encoder.encode

    def spy(frames, **kw):
        callers.append(inspect.stack()[1].function)
        return real(frames, **kw)

    monkeypatch.setattr(pipe.video_encoder, "encode", spy)
    result = generate_audio(pipe, media["long"], GenerateOptions(seed=0, overlap=0.2, steps=1))
    assert len(result.windows) >= 3
    assert callers and set(callers) == {"encode_video"}
    assert len(callers) == len(result.windows)  # once per window: shared by the prediction and generation
    callers.clear()
    predict_timing(pipe, media["long"])
    pipe(frames=np.zeros((25, 32, 32, 3), np.uint8), num_inference_steps=1)
    assert callers and set(callers) == {"encode_video"}


def test_encode_video_passes_keypoints_and_reads_at_the_encoder_size(pipe, media, monkeypatch):
    import foleykit.media

    seen, reads = [], []
    real_read = foleykit.media.read_video
    monkeypatch.setattr(foleykit.media, "read_video", lambda *a, **k: reads.append(k) or real_read(*a, **k))
    monkeypatch.setattr(
        pipe.video_encoder, "encode", lambda frames, **kw: seen.append(kw) or torch.zeros(1, len(frames), 4)
    )
    feats = pipe.encode_video(media["clip"], start=0.2, duration=0.6)
    assert feats.shape == (1, 15, 4) and seen == [{}]  # no keypoints: the encoder's old signature works
    assert reads[-1]["size"] == pipe.video_encoder.input_size and reads[-1]["start"] == 0.2
    marks = np.zeros((15, 17, 2), np.float32)
    pipe.encode_video(frames=np.zeros((15, 32, 32, 3), np.uint8), keypoints=marks)
    assert seen[-1]["keypoints"] is marks
    with pytest.raises(ConfigError, match="either a video file or frames"):
        pipe.encode_video()


def test_predict_controls_is_what_generation_follows(pipe):
    from foleykit.testing import make_moving_square_frames

    frames = make_moving_square_frames(25, size=(32, 32), move_frames=(6, 18))
    feats = pipe.encode_video(frames=frames)
    controls = pipe.predict_controls(feats, start=2.0)
    assert list(controls) == ["rms"] and controls["rms"].kind == "rms" and controls["rms"].start == 2.0
    assert controls["rms"].duration == pytest.approx(1.0)
    short = pipe(video_features=feats[:, :15], seed=1, num_inference_steps=1)  # 15 frames: a 0.6 s clip
    assert short.audio.shape == (round(0.6 * SR),)
    auto = pipe(frames=frames, prompt="steps", seed=1, num_inference_steps=2)
    given = pipe(video_features=feats, controls=controls, prompt="steps", seed=1, num_inference_steps=2)
    np.testing.assert_array_equal(auto.audio, given.audio)
    no_predictor = build_pipeline("foleykit_demo", size="debug")
    no_predictor.predictors.clear()
    with pytest.raises(ConfigError, match="no timing predictor for rms"):
        no_predictor.predict_controls(feats)


def test_condition_cache_encodes_each_prompt_and_sound_once(pipe):
    from foleykit.pipelines.cache import ConditionCache
    from foleykit.testing import make_moving_square_frames

    frames = make_moving_square_frames(25, size=(32, 32), move_frames=(6, 18))
    ref = (0.2 * np.sin(np.arange(SR) / 5)).astype(np.float32)
    kw = {
        "frames": frames,
        "prompt": "rain",
        "negative_prompt": "music",
        "reference_audio": ref,
        "reference_sample_rate": SR,
    }
    plain = pipe(**kw, seed=2, num_inference_steps=2).audio
    cache = ConditionCache()
    first = pipe(**kw, seed=2, num_inference_steps=2, condition_cache=cache).audio
    again = pipe(
        **{**kw, "reference_audio": ref.copy()}, seed=2, num_inference_steps=2, condition_cache=cache
    )
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again.audio, plain)
    assert cache.encoded == {"text": 2, "audio": 1} and len(cache) == 3  # rain, music, the sound
    tok1 = pipe.encode_prompt("rain", cache=cache)
    assert tok1 is pipe.encode_prompt("rain", cache=cache) and cache.encoded["text"] == 2


def test_generation_never_swaps_the_pipeline_encoders(pipe, media, monkeypatch):
    """The prompt and the reference sound are encoded once for all windows, by the pipeline's own encoders
    (nothing wraps or replaces them while a long video is generated)."""
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.product import GenerateOptions, generate_audio

    text, audio = pipe.text_encoder, pipe.audio_encoder
    counts = {"text": 0, "audio": 0}
    real_text, real_audio = text.encode, audio.encode
    monkeypatch.setattr(
        text, "encode", lambda *a: counts.__setitem__("text", counts["text"] + 1) or real_text(*a)
    )
    monkeypatch.setattr(
        audio, "encode", lambda *a: counts.__setitem__("audio", counts["audio"] + 1) or real_audio(*a)
    )
    seen = []
    real_call = VideoToAudioPipeline.__call__

    def call_spy(self, *a, **kw):
        seen.append((self.text_encoder is text, self.audio_encoder is audio, kw.get("condition_cache")))
        return real_call(self, *a, **kw)

    monkeypatch.setattr(VideoToAudioPipeline, "__call__", call_spy)
    opts = GenerateOptions(prompt="rain", negative_prompt="music", audio_prompt=str(media["ref"]), seed=0)
    opts.overlap, opts.steps = 0.2, 1
    result = generate_audio(pipe, media["long"], opts)
    assert len(seen) == len(result.windows) >= 3
    assert all(t and a for t, a, _ in seen)
    caches = {id(c) for _, _, c in seen}
    assert len(caches) == 1 and seen[0][2] is not None  # one cache for the whole run
    assert counts == {"text": 2, "audio": 1}


# --- guidance: one effective scale ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_plus_w():
    """A recipe whose stored guidance is in ReWaS's (1 + w) form: w = 3 is the standard scale 4."""
    r = load_recipe("foleykit_demo", size="debug")
    r.setdefault("sampling", {}).update(guidance_scale=3.0, guidance_form="one_plus_w")
    return build_pipeline(r)


def test_guidance_default_is_resolved_once(one_plus_w, pipe):
    assert one_plus_w.guidance() == (4.0, "model default (w = 3 in the 1 + w form)")
    assert one_plus_w.guidance(2.5) == (2.5, "given")  # an explicit scale is in the standard form
    assert pipe.guidance() == (3.0, "model default")
    with pytest.raises(ConfigError, match="guidance"):
        pipe.guidance(-1.0)


def test_product_and_api_give_the_same_audio_with_the_model_default(one_plus_w, media, tmp_path):
    from foleykit.product import GenerateOptions, generate_audio, write_outputs

    opts = GenerateOptions(prompt="rain", seed=7, steps=2)
    result = generate_audio(one_plus_w, media["clip"], opts)
    api = one_plus_w(media["clip"], prompt="rain", seed=7, num_inference_steps=2)
    np.testing.assert_array_equal(result.audio, api.audio)
    explicit = one_plus_w(media["clip"], prompt="rain", seed=7, num_inference_steps=2, guidance_scale=4.0)
    np.testing.assert_array_equal(explicit.audio, api.audio)
    assert result.guidance == 4.0
    written = write_outputs(result, media["clip"], tmp_path / "take.wav", opts)
    side = json.loads(written["sidecar"].read_text())
    params = side["parameters"]
    assert params["guidance"] == 4.0 and params["guidance_form"] == "standard"
    assert params["guidance_origin"] == "model default (w = 3 in the 1 + w form)"
    assert "--guidance 4 " in side["reproduce"]
