"""Generating a soundtrack for one video: any length (windows + crossfades), user / recorded / predicted
timing, text + reference sound, and regeneration of one region of a previous result.

:func:`generate_audio` computes the audio (nothing is written); :func:`foleykit.product.outputs.write_outputs`
writes the result, its sidecar and the timing files all at once.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import ConfigError, MediaError, NoVideoStreamError, ZeroDurationError, ZeroFramesError
from foleykit.media import headroom_gain
from foleykit.product.inputs import (
    assign_controls,
    controls_from_audio,
    fit_control,
    load_control_file,
    predict_over_windows,
    rate_note,
    read_reference_sound,
    window_features,
)
from foleykit.product.windows import Timeline, Window, crossfade_into, detect_scene_cuts, plan_windows

#: Longest crossfade at the edges of a regenerated region, seconds.
REGION_FADE = 0.1


@dataclass
class GenerateOptions:
    """Everything a generation depends on besides the model and the video (the sidecar records it).

    Attributes:
        prompt, negative_prompt: Text condition and the text of the unconditional branch.
        audio_prompt: Reference sound file (timbre).
        control: Timing-control file (``.csv`` / ``.json``) or a ``TemporalControl``.
        control_from_audio: Recording whose measured timing drives the adapters.
        control_scale: Weight of the timing-control adapters (None: the model's).
        init_audio: Recording to start from instead of noise (laid along each window's RMS curve, a copy at
            every hit, then denoised from ``init_strength``; ``VideoToAudioPipeline.__call__(init_audio=)``).
        init_strength: Share in (0, 1] of the sampling re-run from ``init_audio`` (None: the pipeline's).
        follow_envelope: Strength in [0, 1] of the gain stage that makes the loudness follow the RMS curve
            (None: the model's, 0 for the demonstrator).
        expansion: Valley expansion in [1, 10] of the predicted RMS curve (the RMS-Mapper's decoding; None:
            the model's, 3 for the demonstrator; 1: none). Lower keeps quieter events (distant steps) and a
            softer bed between events; higher leaves deeper quiet between them. Only for a predicted curve.
        steps, guidance: Sampling steps and classifier-free guidance scale (None: the model's defaults).
        seed: Random seed (None: drawn at random and recorded).
        start, duration: Segment of the video to generate (seconds; duration None: to the end).
        keep_original_audio: Video outputs also carry the source's audio as a second track.
        save_controls: Also write the timing curve used (CSV) and a PNG of it over the spectrogram.
        window: Longest window in seconds (None: the model's clip duration).
        overlap: Overlap of consecutive windows in seconds (None: a fifth of the window, at most 1 s).
        scene_cuts: Put window edges at detected scene cuts.
        regenerate: ``(start, end)`` region to regenerate (with ``previous``).
        previous: The previous result (video or audio file) whose audio is kept outside the region.
    """

    prompt: str | None = None
    negative_prompt: str | None = None
    audio_prompt: str | None = None
    control: Any = None
    control_from_audio: str | None = None
    control_scale: float | None = None
    init_audio: str | None = None
    init_strength: float | None = None
    follow_envelope: float | None = None
    expansion: float | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    start: float = 0.0
    duration: float | None = None
    keep_original_audio: bool = False
    save_controls: bool = False
    window: float | None = None
    overlap: float | None = None
    scene_cuts: bool = True
    regenerate: tuple[float, float] | None = None
    previous: str | None = None

    def check(self) -> None:
        """Raise ConfigError on inconsistent options (before any heavy work)."""
        if self.control is not None and self.control_from_audio is not None:
            raise ConfigError("give either --control or --control-from-audio, not both")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")
        if self.guidance is not None and not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise ConfigError(f"--guidance must be a number >= 0, got {self.guidance}")
        if self.control_scale is not None and not (
            math.isfinite(self.control_scale) and self.control_scale >= 0
        ):
            raise ConfigError(f"--control-scale must be a number >= 0, got {self.control_scale}")
        if self.follow_envelope is not None and not (
            math.isfinite(self.follow_envelope) and 0 <= self.follow_envelope <= 1
        ):
            raise ConfigError(f"--follow-envelope must be a number from 0 to 1, got {self.follow_envelope}")
        if self.expansion is not None:
            if not (isinstance(self.expansion, (int, float)) and 1 <= self.expansion <= 10):
                raise ConfigError(f"--expansion must be a number from 1 to 10, got {self.expansion}")
            if self.control is not None or self.control_from_audio is not None:
                raise ConfigError(
                    "--expansion shapes the predicted timing curve; with --control / --control-from-audio "
                    "the curve is given, so leave it out"
                )
        if self.init_strength is not None and not (
            math.isfinite(self.init_strength) and 0 < self.init_strength <= 1
        ):
            raise ConfigError(f"--init-strength must be a number in (0, 1], got {self.init_strength}")
        if self.init_strength is not None and self.init_audio is None:
            raise ConfigError("--init-strength needs --init-audio (the recording to start from)")
        if not (math.isfinite(self.start) and self.start >= 0):
            raise ConfigError(f"--start must be >= 0 seconds, got {self.start}")
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0):
            raise ConfigError(f"--duration must be > 0 seconds, got {self.duration}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed must be a whole number >= 0, got {self.seed}")
        if (self.regenerate is None) != (self.previous is None):
            raise ConfigError("--regenerate START-END and --from PREVIOUS go together")
        if self.regenerate is not None:
            r0, r1 = self.regenerate
            if not (math.isfinite(r0) and math.isfinite(r1) and 0 <= r0 < r1):
                raise ConfigError(f"--regenerate needs START-END with 0 <= START < END, got {r0}-{r1}")


@dataclass
class GenerationResult:
    """The generated soundtrack of a segment and everything needed to describe it.

    Attributes:
        audio: ``float32 (T,)`` mono audio of the segment, ``T = round((end - start) * sample_rate)``.
        sample_rate: Hz.
        start, end: The segment in seconds from the start of the video.
        video_duration: Duration of the video stream.
        controls: Timing controls used, by adapter name (covering the generated span).
        control_sources: ``predicted`` / ``file`` / ``audio`` by adapter name.
        windows, cuts: The window plan and the scene cuts found.
        seed, steps, guidance, control_scale: The effective sampling settings (``guidance`` in the standard
            form ``eps_u + s (eps_c - eps_u)``, converted once from the model's default when none was given).
        guidance_origin: ``given`` or ``model default`` (with the stored value and form when not standard).
        notes: Adjustments made to the inputs (control resampled / padded...).
        timings: Seconds per stage (summed over windows) and ``total``.
        regenerated: ``{"from", "region", "fade"}`` for a regeneration, else None.
        precision: The arithmetic of the denoiser and decoders (``fp32``, ``bf16``, ``fp16``).
        gain: The headroom gain applied to the generated audio (< 1 when its peak passed -1 dBFS,
            :func:`foleykit.media.headroom_gain`; 1.0 otherwise).
    """

    audio: np.ndarray
    sample_rate: int
    start: float
    end: float
    video_duration: float
    controls: dict[str, Any] = field(default_factory=dict)
    control_sources: dict[str, str] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)
    seed: int = 0
    steps: int = 0
    guidance: float = 0.0
    guidance_origin: str = "given"
    control_scale: float | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    regenerated: dict[str, Any] | None = None
    precision: str = "fp32"
    gain: float = 1.0


def check_video(video: str | os.PathLike) -> Any:
    """Probe a video and reject audio-only, frameless and zero-length files with a clear typed error."""
    from foleykit.media import probe

    info = probe(video)
    if not info.has_video:
        raise NoVideoStreamError(f"{video}: has no video stream (an audio-only file?). Pass a video file.")
    if info.num_frames == 0:
        raise ZeroFramesError(f"{video}: the video stream holds no frames. Re-export the video.")
    if not (info.video_duration or info.duration):
        raise ZeroDurationError(f"{video}: the video has zero duration.")
    return info


def _segment(info: Any, opts: GenerateOptions, video: Any) -> tuple[float, float, float]:
    vdur = float(info.video_duration or info.duration)
    if opts.start >= vdur:
        raise ZeroDurationError(
            f"{video}: --start {opts.start:g} s is at or past the end of the video ({vdur:.2f} s)"
        )
    end = vdur if opts.duration is None else min(vdur, opts.start + opts.duration)
    return float(opts.start), float(end), vdur


def segment_notes(opts: GenerateOptions, start: float, end: float, vdur: float) -> list[str]:
    """A note when ``--duration`` runs past the end of the video (the segment is clipped to the video)."""
    if opts.duration is not None and opts.start + opts.duration > vdur + 1e-6:
        note = (
            f"--duration {opts.duration:g} s from {opts.start:g} s runs past the end of the video "
            f"({vdur:.2f} s); the sound covers {start:g}-{end:.2f} s ({end - start:.2f} s)"
        )
        return [note]
    return []


def _window_settings(pipe: Any, opts: GenerateOptions) -> tuple[float, float, float]:
    grid = 1.0 / pipe.seq.latent_rate
    window = float(opts.window or pipe.seq.duration)
    if window > pipe.seq.duration + 1e-9:
        raise ConfigError(f"--window {window:g} s is longer than the model's {pipe.seq.duration:g} s clips")
    overlap = float(opts.overlap if opts.overlap is not None else min(1.0, window / 5))
    overlap = max(grid, round(overlap / grid) * grid)
    return window, overlap, grid


def _window_control(c: Any, w: Window) -> Any:
    """The frames of a full-segment control under one window (no error at the rounding edges)."""
    i0 = max(0, round((w.start - c.start) * c.rate))
    n = max(1, round(w.duration * c.rate))
    values = c.values[i0 : i0 + n]
    if len(values) == 0:
        values = c.values[-1:]
    return c.replace(values=values.copy(), start=w.start).fit(n)


def _resolve_controls(
    pipe: Any,
    video: Any,
    opts: GenerateOptions,
    seg: tuple[float, float],
    plan: list[Window],
    features: Callable[[Window], Any] | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    start, end = seg
    notes: list[str] = []
    controls: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if opts.control is not None:
        from foleykit.controls import TemporalControl

        c = opts.control if isinstance(opts.control, TemporalControl) else load_control_file(opts.control)
        label = (
            "control"
            if isinstance(opts.control, TemporalControl)
            else f"control file {Path(opts.control).name}"
        )
        from foleykit.controls.files import clamp_to_range, keyframe_note

        notes += keyframe_note(c, label)
        c, clamped = clamp_to_range(c, label)  # an impossible loudness would only clip
        notes += clamped
        for name, ctl in assign_controls(pipe, [c]).items():
            controls[name], n = fit_control(ctl, start=start, duration=end - start, what=label)
            notes += n
            sources[name] = "given" if isinstance(opts.control, TemporalControl) else "file"
    elif opts.control_from_audio is not None:
        controls, notes = controls_from_audio(
            pipe, opts.control_from_audio, start=start, duration=end - start
        )
        sources = {n: "audio" for n in controls}
    for name in controls:
        notes += rate_note(pipe, name, controls[name])
    missing = [n for n in pipe.adapters if n not in controls]
    if missing:
        predicted = predict_over_windows(
            pipe, video, plan, features=features, timings=timings, expansion=opts.expansion
        )
        for n in missing:
            controls[n], sources[n] = predicted[n], "predicted"
    return controls, sources, notes


def plan_for(
    pipe: Any, video: str | os.PathLike, opts: GenerateOptions | None = None
) -> tuple[list[Window], list[float], Any]:
    """The window plan (and scene cuts, video info) that :func:`generate_audio` uses for a whole segment."""
    opts = opts or GenerateOptions()
    info = check_video(video)
    start, end, _ = _segment(info, opts, video)
    window, overlap, grid = _window_settings(pipe, opts)
    cuts = detect_scene_cuts(video, start=start, end=end) if opts.scene_cuts and end - start > window else []
    return plan_windows(start, end, window=window, overlap=overlap, grid=grid, cuts=cuts), cuts, info


def predict_timing(
    pipe: Any, video: str | os.PathLike, opts: GenerateOptions | None = None, *, early: Any = None
) -> dict[str, Any]:
    """The timing controls the model predicts for a video segment (``opts.start`` / ``opts.duration``), by
    adapter name, over the same windows as :func:`generate_audio`: the curve a sound designer edits and feeds
    back with ``--control``. ``early``: as in :func:`generate_audio`.

    Raises:
        ConfigError: the model has no timing predictor (or no adapter). MediaError subclasses for bad videos.
    """
    if not pipe.adapters:
        raise ConfigError("this model has no timing-control adapter, so there is no timing curve to predict")
    opts = opts or GenerateOptions()
    plan, _, _ = plan_for(pipe, video, opts)
    features = window_features(pipe, video, early=early) if early is not None else None
    return predict_over_windows(pipe, video, plan, features=features, expansion=opts.expansion)


def read_previous(
    path: str | os.PathLike, *, sample_rate: int, start: float, num_samples: int, origin: float = 0.0
) -> np.ndarray:
    """The audio of a previous result over the segment, ``float32 (num_samples,)``.

    Args:
        path: Previous output: a video (its first audio track, time 0 = the video's start) or an audio file
            (its time 0 is ``origin``, the segment start it was generated for).
        sample_rate: Rate to read at.
        start: Segment start in seconds (video time).
        num_samples: Segment length.
        origin: Video time of the audio file's first sample.
    """
    from foleykit.media import probe, read_audio

    info = probe(path)
    if not info.has_audio:
        raise MediaError(f"{path}: the previous result has no audio track to keep")
    wav = read_audio(path, sample_rate=sample_rate)
    offset = 0.0 if info.has_video else origin
    out = np.zeros(num_samples, np.float32)
    i0 = round((start - offset) * sample_rate)  # index in wav of the segment's first sample
    src0, dst0 = max(0, i0), max(0, -i0)
    n = max(0, min(len(wav) - src0, num_samples - dst0))
    out[dst0 : dst0 + n] = wav[src0 : src0 + n]
    return out


def generate_audio(
    pipe: Any,
    video: str | os.PathLike,
    opts: GenerateOptions | None = None,
    *,
    previous_origin: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    early: Any = None,
) -> GenerationResult:
    """Generate the soundtrack of a video (or of ``[opts.start, opts.start + opts.duration)``).

    Long segments are generated window by window (:func:`foleykit.product.windows.plan_windows`): each window
    decodes only its own frames, the text and reference sound are encoded once, every window uses the same
    seed, a window continues the previous one over their overlap (latent inpainting: the overlap latents are
    those of the previous window's audio) and the two are joined by an equal-power crossfade; at scene cuts
    windows join with a short crossfade instead. Only the float32 output audio is held for the whole segment.

    Args:
        pipe: A ``VideoToAudioPipeline``.
        video: Video file.
        opts: See :class:`GenerateOptions`.
        previous_origin: For a regeneration from an audio file: the video time of its first sample.
        progress: ``progress(done, total)`` after each window.
        early: The first window's video features, already being computed in a second process
            (:class:`foleykit.product.early.EarlyFeatures`, the command's start-up); used when they match.

    Returns:
        A :class:`GenerationResult` (nothing is written).
    """
    opts = opts or GenerateOptions()
    opts.check()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    info = check_video(video)
    start, end, vdur = _segment(info, opts, video)
    sr = pipe.seq.sample_rate
    window, overlap, grid = _window_settings(pipe, opts)
    n_total = round((end - start) * sr)
    base = region = None
    if opts.regenerate is not None:
        r0, r1 = opts.regenerate
        if r0 < start - 1e-6 or r1 > end + 1e-6:
            raise ConfigError(
                f"--regenerate {r0:g}-{r1:g} lies outside the generated segment {start:g}-{end:g} s"
            )
        region = (max(r0, start), min(r1, end))
        base = read_previous(
            opts.previous, sample_rate=sr, start=start, num_samples=n_total, origin=previous_origin
        )
        context = min(window / 4, 2.0)
        span = (max(start, region[0] - context), min(end, region[1] + context))
        span = (start + math.floor((span[0] - start) / grid) * grid, span[1])
    else:
        span = (start, end)
    from foleykit.pipelines.cache import ConditionCache

    conditions = ConditionCache()  # the prompt and the reference sound are encoded once for all windows
    ref = read_reference_sound(opts.audio_prompt, sr) if opts.audio_prompt else None
    if ref is not None:  # before the timing prediction: a missing encoder package fails early
        clock = time.perf_counter()
        pipe.encode_reference(ref, sr, cache=conditions)
        timings["conditions"] = time.perf_counter() - clock
    clock = time.perf_counter()
    cuts = []
    if opts.scene_cuts and span[1] - span[0] > window and base is None:
        cuts = detect_scene_cuts(video, start=span[0], end=span[1])
    plan = plan_windows(span[0], span[1], window=window, overlap=overlap, grid=grid, cuts=cuts)
    timings["scene_cuts"] = time.perf_counter() - clock
    clock = time.perf_counter()
    video_timings: dict[str, float] = {"read_video": 0.0, "video_features": 0.0}
    features = (
        window_features(pipe, video, video_timings, early=early) if pipe.video_encoder is not None else None
    )
    controls, sources, notes = _resolve_controls(pipe, video, opts, (start, end), plan, features, timings)
    notes = segment_notes(opts, start, end, vdur) + notes
    # the rest of resolving the controls (files, recordings, stitching); decoding, features and the
    # predictors have their own entries
    timings["controls"] = (
        time.perf_counter() - clock - timings.get("timing_prediction", 0.0) - sum(video_timings.values())
    )
    seed = int(opts.seed) if opts.seed is not None else secrets.randbelow(2**31)
    steps = int(opts.steps or pipe.defaults["num_inference_steps"])
    guidance, guidance_origin = pipe.guidance(opts.guidance)  # the effective scale, standard form
    weights = (
        {n: float(opts.control_scale) for n in pipe.adapters} if opts.control_scale is not None else None
    )

    timeline = Timeline(start=span[0], num_samples=round((span[1] - span[0]) * sr), sample_rate=sr)
    # every window lays the recording along its own timing curve (VideoToAudioPipeline.init_latents_from_audio)
    init_wav = read_reference_sound(opts.init_audio, sr, what="init recording") if opts.init_audio else None
    for k, w in enumerate(plan):
        init, mask = _known_latents(pipe, w, plan[k - 1] if k else None, timeline, base, start, region, grid)
        out = pipe(
            video,
            video_features=features(w) if features is not None else None,
            prompt=opts.prompt or None,
            negative_prompt=opts.negative_prompt or None,
            reference_audio=ref,
            reference_sample_rate=sr if ref is not None else None,
            controls={n: _window_control(c, w) for n, c in controls.items()},
            start=w.start,
            duration=w.duration,
            num_inference_steps=steps,
            guidance_scale=guidance,
            adapter_weights=weights,
            seed=seed,
            init_latents=init,
            inpaint_mask=mask,
            init_audio=init_wav,
            init_sample_rate=sr,
            init_strength=opts.init_strength,
            follow_envelope=opts.follow_envelope,
            condition_cache=conditions,
            peak_ceiling=None,  # one headroom gain for the assembled soundtrack, below
        )
        timeline.place(w, out.audio if out.audio.ndim == 1 else out.audio.mean(axis=0))
        for key, v in out.timings.items():
            if key != "total":
                timings[key] = timings.get(key, 0.0) + v
        if progress is not None:
            progress(k + 1, len(plan))
    for key, v in video_timings.items():
        timings[key] = timings.get(key, 0.0) + v
    # one gain for the new audio, so windows keep their relative levels and no peak is clamped; measured on
    # what is written (a regeneration keeps only the region: its context windows do not count)
    gain = headroom_gain(timeline.audio if region is None else timeline.span(*region))
    timeline.audio *= np.float32(gain)
    regenerated = None
    if base is not None:
        audio, fade = _splice(base, timeline, start, region, sr)
        regenerated = {
            "from": str(opts.previous),
            "region": [round(region[0], 6), round(region[1], 6)],
            "fade": fade,
        }
    else:
        audio = timeline.audio
    timings["total"] = time.perf_counter() - t0
    return GenerationResult(
        audio=audio,
        sample_rate=sr,
        start=start,
        end=end,
        video_duration=vdur,
        controls=controls,
        control_sources=sources,
        windows=plan,
        cuts=cuts,
        seed=seed,
        steps=steps,
        guidance=guidance,
        guidance_origin=guidance_origin,
        control_scale=opts.control_scale,
        notes=notes,
        timings=timings,
        regenerated=regenerated,
        precision=str(getattr(pipe, "precision", "fp32")),
        gain=gain,
    )


def _known_latents(
    pipe: Any,
    w: Window,
    prev: Window | None,
    timeline: Timeline,
    base: np.ndarray | None,
    seg_start: float,
    region: tuple[float, float] | None,
    grid: float,
):
    """``(init_latents, inpaint_mask)`` of a window, or ``(None, None)`` when everything is generated.

    Kept latent frames: the overlap with the previous window (continuation) and, in a regeneration, every
    frame outside the region. Their audio (previous window / previous result) is encoded by the model's VAE.
    """
    import torch

    seq = pipe.seq.with_duration(w.duration)
    n_lat = seq.num_latent_frames
    keep = np.zeros(n_lat, bool)
    t = w.start + np.arange(n_lat) * grid  # left edge of each latent frame
    if prev is not None and w.join_in == "overlap":
        keep |= t + grid <= prev.end + 1e-9
    if region is not None:
        keep |= (t + grid <= region[0] + 1e-9) | (t >= region[1] - 1e-9)
    if not keep.any():
        return None, None
    sr = pipe.seq.sample_rate
    src = np.zeros(seq.padded_num_samples, np.float32)
    if base is not None:
        i0 = round((w.start - seg_start) * sr)
        part = base[i0 : i0 + len(src)]
        src[: len(part)] = part
    if prev is not None and w.join_in == "overlap":
        done = timeline.span(w.start, prev.end)
        src[: len(done)] = done
    init = pipe.encode_audio(src, sr)
    if init.shape[2] != n_lat:  # the codec padded differently: align on the latent grid
        init = (
            init[:, :, :n_lat]
            if init.shape[2] > n_lat
            else torch.nn.functional.pad(init, (0, 0) * (init.ndim - 3) + (0, n_lat - init.shape[2]))
        )
    return init, torch.from_numpy((~keep).astype(np.float32))


def _splice(
    base: np.ndarray, timeline: Timeline, seg_start: float, region: tuple[float, float], sr: int
) -> tuple[np.ndarray, float]:
    """The previous audio with ``region`` replaced by the new one, crossfaded inside the region's edges."""
    out = base.copy()
    i0, i1 = round((region[0] - seg_start) * sr), round((region[1] - seg_start) * sr)
    i1 = min(i1, len(out))
    new = timeline.span(region[0], region[1])[: i1 - i0]
    fade = min(REGION_FADE, (region[1] - region[0]) / 4)
    nf = min(round(fade * sr), len(new) // 2)
    out[i0 + (nf if i0 > 0 else 0) : i0 + len(new)] = new[(nf if i0 > 0 else 0) :]
    if i0 > 0 and nf:
        crossfade_into(out, new[:nf], i0)
    if i1 < len(out) and nf:
        crossfade_into(out, base[i1 - nf : i1].copy(), i1 - nf)
    return out, round(nf / sr, 6)
