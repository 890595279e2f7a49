"""What the web app's buttons do, without the UI: predict the timing curve, edit it (scale / shift / smooth or
an uploaded CSV), generate, and hand back the files. Every input is checked: files must lie inside the app's
working folder, videos must be short enough, and every user error becomes a message in the page.
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foleykit.errors import FoleykitError


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
    """

    model: str | None = None
    workdir: Path = Path("foleykit-app")
    max_duration: float = 60.0
    max_upload_mb: int = 100
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    max_queue: int = 16

    @property
    def upload_dir(self) -> Path:
        return Path(self.workdir).resolve() / "uploads"

    @property
    def results_dir(self) -> Path:
        return Path(self.workdir).resolve() / "results"


class UserError(FoleykitError):
    """A problem with what the user gave the app (shown in the page)."""


def _page_error(err: Exception) -> Exception:
    """A ``gr.Error`` (shown in the page) for a user error."""
    import gradio as gr

    return gr.Error(str(err), duration=None)


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
            from foleykit.product.runtime import load_model, resolve_device

            self._pipe = load_model(self.config.model, device=resolve_device(self.config.device))
        return self._pipe

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

    def check_video(self, video: str | os.PathLike | None) -> Path:
        from foleykit.product.generate import check_video

        if not video:
            raise UserError("upload a video first")
        p = self.inside(video, "video")
        info = check_video(p)
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
        if not state or not state.get("dir") or not Path(state["dir"]).is_dir():
            return self.new_session()
        return dict(state)

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

    def predict(
        self,
        video: str | None,
        state: dict[str, Any] | None,
        scale: float = 1.0,
        shift: float = 0.0,
        smooth: float = 0.0,
    ) -> tuple[str, str, dict[str, Any]]:
        """Predict the timing curve of the uploaded video; returns ``(plot.png, timing.csv, state)``."""
        try:
            state = self._session(state)
            v = self.check_video(video)
            base = self._predict_base(v, state)
            png, csv = self._show(state, self._edited(base, scale, shift, smooth), "predicted")
            return png, csv, state
        except FoleykitError as e:
            raise _page_error(e) from None

    def _predict_base(self, video: Path, state: dict[str, Any]) -> Any:
        """Predict the curve of ``video`` into ``state`` (``base``: its JSON file) and return it."""
        from foleykit.product.generate import predict_timing

        with self.lock:
            controls = predict_timing(self.pipe, video)
        base = next(iter(controls.values()))
        base_path = Path(state["dir"]) / "base.json"
        base.save(base_path)
        state.update(base=str(base_path), video=str(video))
        return base

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
        try:
            state = self._session(state)
            p = self.inside(file, "timing file")
            if p.suffix.lower() not in (".csv", ".json"):
                raise UserError("a timing file is a .csv (time,<kind>) or .json control file")
            from foleykit.product.inputs import assign_controls, load_control_file

            control = load_control_file(p)
            assign_controls(self.pipe, [control])  # the model must follow this kind
            base_path = Path(state["dir"]) / "base.json"
            control.save(base_path)
            state.update(base=str(base_path), video=str(video) if video else None)
            png, csv = self._show(state, self._edited(control, scale, shift, smooth), "uploaded")
            return png, csv, state
        except FoleykitError as e:
            raise _page_error(e) from None

    def edit(
        self, state: dict[str, Any] | None, scale: float, shift: float, smooth: float
    ) -> tuple[str, str, dict[str, Any]]:
        """Apply scale / shift / smooth to the current curve; returns ``(plot.png, timing.csv, state)``."""
        try:
            if not state or not state.get("base"):
                raise UserError("predict the timing curve (or upload one) before editing it")
            from foleykit.controls import TemporalControl

            state = dict(state)
            base = TemporalControl.load(state["base"])
            png, csv = self._show(state, self._edited(base, scale, shift, smooth), "edited")
            return png, csv, state
        except FoleykitError as e:
            raise _page_error(e) from None

    # --- generation -------------------------------------------------------------------------------------
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
    ) -> tuple[str, list[str], str, str | None, str | None, dict[str, Any]]:
        """Generate the sound of the uploaded video.

        Returns:
            ``(result.mp4, [result.mp4, result.wav, timing.csv], status text, timing plot, timing.csv, state)``.
        """
        try:
            state = self._session(state)
            v = self.check_video(video)
            ref = self.inside(reference, "reference sound") if reference else None
            seed_value = None if seed is None or float(seed) < 0 else int(seed)
            from foleykit.controls import TemporalControl
            from foleykit.product.generate import GenerateOptions, generate_audio
            from foleykit.product.outputs import write_outputs

            with self.lock:
                pipe = self.pipe
                control = None
                if pipe.adapters:
                    if not state.get("base") or state.get("video") not in (None, str(v)):
                        self._predict_base(v, state)
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
                status += " Notes: " + "; ".join(result.notes)
            return str(written["output"]), files, status, plot, (str(csvs[0]) if csvs else None), state
        except FoleykitError as e:
            raise _page_error(e) from None
