"""What the web app's buttons do, without the UI: predict the timing curve, edit it (scale / shift / smooth or
an uploaded CSV), generate, and hand back the files.

Every input is checked (:mod:`foleykit.app.uploads`): files must lie inside the app's working folder, be no
larger than the upload limit and be what they claim by their content (a video FFmpeg can read, a sound, a
text timing file); each accepted upload is linked into the session folder under a name the app chooses, so
names from the client never become paths. A user error becomes one message in the page (without server paths)
and one line in the log; only unexpected errors log a traceback, and the page then says only that something
went wrong.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foleykit.app.uploads import UserError, accept_upload, public_message
from foleykit.errors import FoleykitError

log = logging.getLogger("foleykit.app")


@dataclass(frozen=True)
class AppConfig:
    """Settings of one app server.

    Attributes:
        model: Model name or folder (None: the shipped default).
        workdir: The only folder the app reads and writes (uploads, results).
        max_duration: Longest video accepted, in seconds.
        max_upload_mb: Largest upload, in megabytes.
        device: ``auto`` / ``cpu`` / ``cuda`` / ``mps``.
        host, port: Where the server listens (127.0.0.1: this machine only).
        max_queue: Requests waiting at most (more are refused with a message).
        trust_pickle: Allow a model folder whose weights are pickles (``--trust-pickle``).
    """

    model: str | None = None
    workdir: Path = Path("foleykit-app")
    max_duration: float = 60.0
    max_upload_mb: int = 100
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    max_queue: int = 16
    trust_pickle: bool = False

    @property
    def upload_dir(self) -> Path:
        return Path(self.workdir).resolve() / "uploads"

    @property
    def results_dir(self) -> Path:
        return Path(self.workdir).resolve() / "results"


UNEXPECTED = "Something went wrong on the server (its log has the details). Try again, or reload the page."


def _page_error(message: str) -> Exception:
    """A ``gr.Error`` shown in the page; Gradio prints no traceback for it (the handler logged what matters)."""
    import gradio as gr

    return gr.Error(message, duration=None, print_exception=False)


def _handler(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A button handler: user errors -> one log line + the message in the page (server paths removed);
    anything else -> the traceback in the log and a generic message in the page."""

    @functools.wraps(fn)
    def wrapper(self: FoleyApp, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except FoleykitError as err:
            message = public_message(str(err))
            log.warning("%s: %s", fn.__name__, message)
            raise _page_error(message) from None
        except Exception as err:
            import gradio as gr

            if isinstance(err, gr.Error):
                raise
            log.exception("%s failed unexpectedly", fn.__name__)
            raise _page_error(UNEXPECTED) from None

    return wrapper


class FoleyApp:
    """The app's state shared by all users: the configuration, the model (loaded on first use) and a lock so
    that one generation runs at a time even outside the Gradio queue."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.workdir = Path(config.workdir).resolve()
        for d in (config.upload_dir, config.results_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._pipe = None

    # --- model and checks -------------------------------------------------------------------------------
    @property
    def pipe(self) -> Any:
        if self._pipe is None:
            from foleykit.pipelines.trust import trusting_pickle
            from foleykit.product.runtime import load_model, resolve_device

            with trusting_pickle(self.config.trust_pickle):
                self._pipe = load_model(self.config.model, device=resolve_device(self.config.device))
        return self._pipe

    def guidance_default(self) -> float:
        """The guidance scale the model uses when none is given (standard form): the CLI's and API's default."""
        return float(self.pipe.guidance()[0])

    def inside(self, path: str | os.PathLike | None, what: str) -> Path:
        """``path`` resolved, if it is an existing file inside the working folder (else a UserError)."""
        if not path:
            raise UserError(f"no {what} was given")
        p = Path(path).resolve()
        if not p.is_relative_to(self.workdir):
            raise UserError(f"the {what} is outside the app's working folder; upload it instead")
        if not p.is_file():
            raise UserError(f"the {what} was not found (upload it again)")
        return p

    def accept(self, path: str | os.PathLike | None, kind: str, state: dict[str, Any]) -> tuple[Path, Any]:
        """Check an upload (inside the working folder, size, content) and link it into the session folder
        under the app's own name; returns ``(path, media info or None)``. ``kind``: video | audio | timing."""
        what = {"video": "video", "audio": "reference sound", "timing": "timing file"}[kind]
        src = self.inside(path, what)
        return accept_upload(
            src,
            kind,
            Path(state["dir"]) / "inputs",
            max_bytes=int(self.config.max_upload_mb) << 20,
            what=what,
        )

    def _video_key(self, video: str | None, state: dict[str, Any]) -> str | None:
        """The session path of ``video`` when it is a usable upload (the curve then belongs to it), else None."""
        try:
            return str(self.accept(video, "video", state)[0]) if video else None
        except FoleykitError:
            return None

    def check_video(self, video: str | os.PathLike | None, state: dict[str, Any]) -> Path:
        if not video:
            raise UserError("upload a video first")
        p, info = self.accept(video, "video", state)
        seconds = float(info.video_duration or info.duration)
        if seconds > self.config.max_duration:
            raise UserError(
                f"the video lasts {seconds:.1f} s; this app accepts videos up to "
                f"{self.config.max_duration:g} s (trim it, or use `foleykit generate` for long videos)"
            )
        return p

    def new_session(self) -> dict[str, Any]:
        d = self.config.results_dir / uuid.uuid4().hex[:12]
        d.mkdir(parents=True, exist_ok=True)
        return {"dir": str(d), "base": None, "video": None, "count": 0}

    def _session(self, state: dict[str, Any] | None) -> dict[str, Any]:
        """The session of ``state``, when its folder is one of this app's session folders (else a new one)."""
        if not isinstance(state, dict) or not isinstance(state.get("dir"), str):
            return self.new_session()
        d = Path(state["dir"]).resolve()
        if d.parent != self.config.results_dir or not d.is_dir():
            return self.new_session()
        state = dict(state, dir=str(d))
        base = state.get("base")
        if base is not None and not (isinstance(base, str) and Path(base).resolve().parent == d):
            state.update(base=None, video=None)
        return state

    # --- timing -----------------------------------------------------------------------------------------
    def _edited(self, base: Any, scale: float, shift: float, smooth: float) -> Any:
        for v, name in ((scale, "scale"), (shift, "shift"), (smooth, "smooth")):
            if v is None or not math.isfinite(float(v)):
                raise UserError(f"the timing {name} must be a number")
        c = base
        if c.is_class:
            from foleykit.controls import classes_to_rms

            c = classes_to_rms(c)
        if float(scale) < 0:
            raise UserError("the timing scale must be >= 0")
        if float(scale) != 1.0:
            c = c.scale(float(scale))
        if float(shift):
            c = c.shift(float(shift))
        if float(smooth) > 0:
            c = c.smooth(float(smooth))
        return c

    def _show(self, state: dict[str, Any], control: Any, tag: str) -> tuple[str, str]:
        d = Path(state["dir"])
        state["count"] += 1
        png = d / f"timing-{state['count']}.png"
        csv = d / f"timing-{state['count']}.csv"
        control.plot(png, title=f"timing curve ({tag})")
        control.save(csv)
        return str(png), str(csv)

    @_handler
    def predict(
        self,
        video: str | None,
        state: dict[str, Any] | None,
        scale: float = 1.0,
        shift: float = 0.0,
        smooth: float = 0.0,
        expansion: float | None = None,
    ) -> tuple[str, str, dict[str, Any]]:
        """Predict the timing curve of the uploaded video; returns ``(plot.png, timing.csv, state)``.
        ``expansion``: the RMS-Mapper's valley expansion (:meth:`expansion_default` or None: the model's)."""
        state = self._session(state)
        v = self.check_video(video, state)
        base = self._predict_base(v, state, self._expansion(expansion))
        png, csv = self._show(state, self._edited(base, scale, shift, smooth), "predicted")
        return png, csv, state

    def _predict_base(self, video: Path, state: dict[str, Any], expansion: float | None = None) -> Any:
        """Predict the curve of ``video`` into ``state`` (``base``: its JSON file; ``expansion``: the valley
        expansion it was decoded with, None for the model's) and return it."""
        from foleykit.product.generate import GenerateOptions, predict_timing

        with self.lock:
            controls = predict_timing(self.pipe, video, GenerateOptions(expansion=expansion))
        base = next(iter(controls.values()))
        base_path = Path(state["dir"]) / "base.json"
        base.save(base_path)
        state.update(base=str(base_path), video=str(video), predicted=True, expansion=expansion)
        return base

    def expansion_default(self) -> float:
        """The valley expansion the model's RMS-Mapper decodes with (1: none, or no RMS-Mapper)."""
        predictors = getattr(self.pipe, "predictors", None) or {}
        if "rms" not in predictors:  # a torch ModuleDict: no .get
            return 1.0
        return float(getattr(predictors["rms"], "expansion", 1.0))

    def _expansion(self, value: float | None) -> float | None:
        """The page's slider value as an option: None when it is the model's own (recorded as the default)."""
        if value is None or math.isclose(float(value), self.expansion_default(), abs_tol=1e-9):
            return None
        return float(value)

    @_handler
    def upload_timing(
        self,
        file: str | None,
        video: str | None,
        state: dict[str, Any] | None,
        scale: float = 1.0,
        shift: float = 0.0,
        smooth: float = 0.0,
    ) -> tuple[str, str, dict[str, Any]]:
        """Use an edited CSV / JSON timing file as the curve; returns ``(plot.png, timing.csv, state)``."""
        state = self._session(state)
        p, _ = self.accept(file, "timing", state)
        from foleykit.product.inputs import assign_controls, load_control_file

        control = load_control_file(p)
        assign_controls(self.pipe, [control])  # the model must follow this kind
        base_path = Path(state["dir"]) / "base.json"
        control.save(base_path)
        state.update(base=str(base_path), video=self._video_key(video, state), predicted=False)

        png, csv = self._show(state, self._edited(control, scale, shift, smooth), "uploaded")
        return png, csv, state

    @_handler
    def edit(
        self, state: dict[str, Any] | None, scale: float, shift: float, smooth: float
    ) -> tuple[str, str, dict[str, Any]]:
        """Apply scale / shift / smooth to the current curve; returns ``(plot.png, timing.csv, state)``."""
        state = self._session(state) if state else None
        if not state or not state.get("base"):
            raise UserError("predict the timing curve (or upload one) before editing it")
        from foleykit.controls import TemporalControl

        base = TemporalControl.load(state["base"])
        png, csv = self._show(state, self._edited(base, scale, shift, smooth), "edited")
        return png, csv, state

    # --- generation -------------------------------------------------------------------------------------
    @_handler
    def generate(
        self,
        video: str | None,
        prompt: str | None,
        negative_prompt: str | None,
        reference: str | None,
        state: dict[str, Any] | None,
        scale: float = 1.0,
        shift: float = 0.0,
        smooth: float = 0.0,
        control_weight: float = 1.0,
        steps: float | None = None,
        guidance: float | None = None,
        seed: float | None = -1,
        follow_envelope: float | None = None,
        init_audio: str | None = None,
        init_strength: float | None = None,
        expansion: float | None = None,
    ) -> tuple[str, list[str], str, str | None, str | None, dict[str, Any]]:
        """Generate the sound of the uploaded video.

        Returns:
            ``(result.mp4, [result.mp4, result.wav, timing.csv], status text, timing plot, timing.csv, state)``.
        """
        state = self._session(state)
        v = self.check_video(video, state)
        ref = self.accept(reference, "audio", state)[0] if reference else None
        start_from = self.accept(init_audio, "audio", state)[0] if init_audio else None
        seed_value = None if seed is None or float(seed) < 0 else int(seed)
        if guidance is not None and math.isclose(float(guidance), self.guidance_default(), abs_tol=1e-9):
            guidance = None  # the model's default, recorded as such in the sidecar (as the CLI does)
        from foleykit.controls import TemporalControl
        from foleykit.product.generate import GenerateOptions, generate_audio
        from foleykit.product.outputs import write_outputs

        with self.lock:
            pipe = self.pipe
            control = None
            if pipe.adapters:
                expand = self._expansion(expansion)
                stale = state.get("predicted") and state.get("expansion") != expand  # a predicted curve
                if not state.get("base") or state.get("video") not in (None, str(v)) or stale:
                    self._predict_base(v, state, expand)
                state["video"] = str(v)
                control = self._edited(TemporalControl.load(state["base"]), scale, shift, smooth)
            opts = GenerateOptions(
                prompt=prompt or None,
                negative_prompt=negative_prompt or None,
                audio_prompt=str(ref) if ref else None,
                control=control,
                control_scale=None if control_weight is None else float(control_weight),
                steps=int(steps) if steps else None,
                guidance=None if guidance is None else float(guidance),
                seed=seed_value,
                save_controls=control is not None,
                follow_envelope=None if follow_envelope is None else float(follow_envelope),
                init_audio=str(start_from) if start_from else None,
                init_strength=float(init_strength) if start_from and init_strength is not None else None,
            )
            result = generate_audio(pipe, v, opts)
            state["count"] += 1
            out_dir = Path(state["dir"]) / f"take-{state['count']}"
            written = write_outputs(
                result,
                v,
                out_dir / "result.mp4",
                opts,
                model_info=getattr(pipe, "model_info", {}),
                write_audio_copy=out_dir / "result.wav",
            )
        files = [str(written["output"]), str(written["audio"])]
        csvs = [p for k, p in written.items() if k.startswith("csv:")]
        files += [str(p) for p in csvs]
        pngs = [p for k, p in written.items() if k.startswith("png:")]
        plot = str(pngs[0]) if pngs else None
        status = (
            f"Generated {result.end - result.start:.2f} s of sound with seed {result.seed} "
            f"({result.steps} steps, guidance {result.guidance:g}) in {result.timings['total']:.1f} s."
        )
        if result.notes:
            status += " Notes: " + public_message("; ".join(result.notes))
        return str(written["output"]), files, status, plot, (str(csvs[0]) if csvs else None), state
