"""Video features computed in a second process while ``foleykit generate`` starts up.

A command spends its first seconds on one core importing torch, diffusers and transformers and loading the
model; decoding the video and running the scene encoder (pose, detector, optical flow) needs none of that.
:meth:`EarlyFeatures.start` forks a child process before torch is imported, reads the model folder's
configuration (JSON only), and has the child decode the first window of the segment and compute its
:class:`~foleykit.vision.scene.SceneFeatures` while the parent loads the model. The parent takes them
(:meth:`EarlyFeatures.take`) only when the loaded pipeline would have computed exactly the same thing: the
same video, window, frame rate, decode size and encoder settings (the thread count does not change the
features). Anything else (another encoder, a window that scene cuts or ``--from`` moved, a child that
failed) falls back to computing the features in the parent, where any error is raised as usual.

``FOLEYKIT_EARLY_FEATURES=0`` turns it off. Linux only (the child is forked, so it starts in milliseconds).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ENV = "FOLEYKIT_EARLY_FEATURES"
SCENE = ["video_encoder", "scene"]


def _key(video: str | os.PathLike, start: float, duration: float) -> tuple[str, float, float]:
    return (os.path.realpath(video), round(float(start), 6), round(float(duration), 6))


class EarlyFeatures:
    """The child process computing one window's scene features (see the module docstring).

    Use :meth:`start`; then :meth:`take` once the model is loaded, and :meth:`close` in a ``finally``.
    """

    def __init__(self, process: Any, conn: Any, key: tuple, fps: float, settings: dict) -> None:
        self._process, self._conn = process, conn
        self.key, self.fps, self.settings = key, fps, settings
        self._done = False
        self.timings: dict[str, float] = {}
        self.waited = 0.0

    @classmethod
    def start(
        cls,
        model: str | os.PathLike | None,
        video: str | os.PathLike,
        opts: Any,
        *,
        threads: int | None = None,
    ) -> EarlyFeatures | None:
        """Start computing the features of the first window of ``opts``' segment of ``video`` for ``model``
        (``threads``: the vision models' threads in the child; default the CPUs it may run on).

        Returns None (and starts nothing) when it is turned off, cannot fork, when the model's video encoder is
        not the scene encoder, or when the video or the model folder cannot be read (the normal path then
        reports the problem).
        """
        if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        if not sys.platform.startswith("linux") or opts.regenerate is not None:
            return None
        try:
            plan = _first_window(model, video, opts)
        except Exception as err:  # noqa: BLE001 - whatever it is, the normal path says it properly
            log.debug("early video features not started: %s: %s", type(err).__name__, err)
            return None
        if plan is None:
            return None
        window, seq, kwargs, settings = plan
        if threads:
            kwargs["threads"] = int(threads)
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe(duplex=False)
        job = (str(video), window.start, window.duration, seq.video_fps, settings["input_size"], kwargs)
        for stream in (sys.stdout, sys.stderr):  # the child must not write a second copy of buffered text
            stream.flush()
        process = ctx.Process(target=_child, args=(child, job), daemon=True, name="foleykit-early-video")
        # The forked child starts with this process's signal handlers (the command's SIGTERM handler raises
        # KeyboardInterrupt) until _child resets them. A stop (close()) or Ctrl-C in that window would raise in
        # the child before multiprocessing catches anything, and the child would go on running the caller's
        # code as a second copy of it. So both signals stay blocked across the fork; the child unblocks them
        # once its own (default) handlers are in place, and this process right after the fork.
        stops = {signal.SIGINT, signal.SIGTERM}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            process.start()
        except (AssertionError, OSError) as err:  # a daemonic caller may not have children; no resources
            log.debug("early video features not started: %s: %s", type(err).__name__, err)
            parent.close()
            child.close()
            return None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child.close()
        key = _key(video, window.start, window.duration)
        return cls(process, parent, key, float(seq.video_fps), settings)

    def take(self, pipe: Any, video: str | os.PathLike, start: float, duration: float) -> np.ndarray | None:
        """The child's ``(T, dim)`` float32 features when they are what ``pipe.encode_video(video,
        start=start, duration=duration)`` computes, else None. Waits for the child; once only (later calls
        return None). Afterwards ``timings`` holds the child's ``read_video`` / ``video_features`` seconds
        and ``waited`` the seconds this call waited for them."""
        if self._done:
            return None
        enc = getattr(pipe, "video_encoder", None)
        same = (
            callable(getattr(enc, "settings", None))
            and enc.settings() == self.settings
            and float(pipe.seq.video_fps) == self.fps
            and _key(video, start, duration) == self.key
        )
        if not same:
            self.close()
            return None
        self._done = True
        t0 = time.perf_counter()
        try:
            status, value, timings = self._conn.recv()
        except (EOFError, OSError):
            status, value, timings = "error", "the process ended without a result", {}
        self.waited = time.perf_counter() - t0
        self._process.join(timeout=5.0)  # it has sent everything and is exiting
        self.close()
        if status != "ok":
            log.debug("early video features failed (computing them again): %s", value)
            return None
        self.timings = dict(timings)
        return value

    def close(self) -> None:
        """Stop the child (if it still runs) and release the pipe."""
        self._done = True
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._conn.close()


def _first_window(model: Any, video: Any, opts: Any) -> tuple[Any, Any, dict, dict] | None:
    """(first window, SequenceConfig, encoder kwargs, encoder settings) from the model folder's JSON, or None
    when its video encoder is not the weight-free scene encoder."""
    from foleykit.config import SequenceConfig
    from foleykit.paths import resolve_model
    from foleykit.product.generate import _segment, _window_settings, check_video
    from foleykit.product.windows import plan_windows
    from foleykit.vision.scene import SceneFeatures

    folder = resolve_model(model)
    index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    cfg = json.loads((Path(folder) / "video_encoder" / "config.json").read_text(encoding="utf-8"))
    spec = cfg.get("_foleykit_spec") or {}
    if list(spec.get("registry") or []) != SCENE or spec.get("pass_seq") or spec.get("pass_folder"):
        return None
    kwargs = dict(spec.get("kwargs") or {})
    settings = SceneFeatures(**kwargs).settings()  # checks the values; loads nothing
    seq = SequenceConfig.from_dict(index["_foleykit"]["sequence"])
    start, end, _ = _segment(check_video(video), opts, video)
    window, overlap, grid = _window_settings(SimpleNamespace(seq=seq), opts)
    first = plan_windows(start, end, window=window, overlap=overlap, grid=grid, cuts=[])[0]
    return first, seq, kwargs, settings


def _child(conn: Any, job: tuple) -> None:
    """The child process: decode the window, compute its features, send them (or the error) back."""
    video, start, duration, fps, size, kwargs = job
    # not the parent's handlers: Ctrl-C / a stop (close()) ends this process quietly; both were blocked
    # across the fork (EarlyFeatures.start), so one sent before this point takes effect now
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        from foleykit.media import read_video
        from foleykit.vision.scene import SceneFeatures

        t0 = time.perf_counter()
        frames = read_video(video, fps=fps, size=size, start=start, duration=duration).frames
        t1 = time.perf_counter()
        features = SceneFeatures(**kwargs).encode_clip(frames)
        timings = {"read_video": t1 - t0, "video_features": time.perf_counter() - t1}
        conn.send(("ok", features, timings))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which computes them itself
        try:
            conn.send(("error", f"{type(err).__name__}: {err}", {}))
        except OSError:
            pass
    finally:
        conn.close()
