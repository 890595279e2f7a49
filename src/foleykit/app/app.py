"""The Gradio page of ``foleykit app``: upload a video, describe the sound, optionally give a reference sound,
look at and edit the timing curve, generate, watch and download.

Safe by default: it listens on 127.0.0.1, refuses uploads over ``max_upload_mb``, files that are not what they
should be by their content, and videos over ``max_duration``, keeps every upload and result inside its working
folder (Gradio's upload folder is moved there; uploads are used under names the app chooses), queues requests
so one generation runs at a time while others wait their turn, and shows errors in the page without server
paths (see :mod:`foleykit.app.handlers`).
"""

from __future__ import annotations

import os
from typing import Any

from foleykit.app.handlers import AppConfig, FoleyApp

TITLE = "foleykit: give silent video its sound"


def build_app(config: AppConfig, *, app: FoleyApp | None = None) -> Any:
    """Build the ``gr.Blocks`` page (not launched).

    Sets ``GRADIO_TEMP_DIR`` to ``<workdir>/uploads`` for this process so that Gradio stores uploads inside the
    working folder.
    """
    app = app or FoleyApp(config)
    os.environ["GRADIO_TEMP_DIR"] = str(config.upload_dir)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    defaults = _defaults(app)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        state = gr.State(None)
        gr.Markdown(
            f"## {TITLE}\nUpload a video (up to {config.max_duration:g} s), describe the sound, and generate. "
            "The timing curve says how loud the sound is at each moment: predict it, edit it, or upload "
            "your own CSV."
        )
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], elem_id="video_in")
                prompt = gr.Textbox(label="Prompt", placeholder="e.g. footsteps on gravel", elem_id="prompt")
                negative = gr.Textbox(
                    label="Negative prompt",
                    placeholder="what it should not sound like",
                    elem_id="negative_prompt",
                )
                reference = gr.Audio(
                    label="Reference sound (optional: its timbre is followed)",
                    type="filepath",
                    sources=["upload"],
                    elem_id="reference",
                )
                init_audio = gr.Audio(
                    label="Start from a recording (optional: its sound, re-timed to the curve)",
                    type="filepath",
                    sources=["upload"],
                    elem_id="init_audio",
                )
                with gr.Accordion("Timing curve", open=True):
                    predict_btn = gr.Button("Predict timing", elem_id="predict_btn")
                    with gr.Row():
                        scale = gr.Slider(
                            0.0, 3.0, value=1.0, step=0.05, label="Scale", elem_id="timing_scale"
                        )
                        shift = gr.Slider(
                            -2.0, 2.0, value=0.0, step=0.01, label="Shift (s)", elem_id="timing_shift"
                        )
                        smooth = gr.Slider(
                            0.0, 1.0, value=0.0, step=0.01, label="Smooth (s)", elem_id="timing_smooth"
                        )
                    edit_btn = gr.Button("Apply edits", elem_id="edit_btn")
                    timing_upload = gr.File(
                        label="Upload an edited timing CSV",
                        file_types=[".csv", ".json"],
                        elem_id="timing_upload",
                    )
                with gr.Accordion("Settings", open=False):
                    weight = gr.Slider(
                        0.0,
                        2.0,
                        value=defaults["weight"],
                        step=0.05,
                        label="Control weight",
                        elem_id="control_weight",
                    )
                    steps = gr.Slider(1, 100, value=defaults["steps"], step=1, label="Steps", elem_id="steps")
                    guidance = gr.Slider(
                        0.0,
                        max(10.0, defaults["guidance"]),
                        value=defaults["guidance"],
                        step=0.1,
                        label="Guidance",
                        elem_id="guidance",
                    )
                    seed = gr.Number(value=-1, precision=0, label="Seed (-1: random)", elem_id="seed")
                    follow = gr.Slider(
                        0.0,
                        1.0,
                        value=defaults["follow"],
                        step=0.05,
                        label="Follow the curve exactly (loudness gain after generation)",
                        elem_id="follow_envelope",
                    )
                    expansion = gr.Slider(
                        1.0,
                        10.0,
                        value=defaults["expansion"],
                        step=0.5,
                        label="Quiet between events (valley expansion of the predicted curve; lower keeps "
                        "quieter events such as distant steps)",
                        elem_id="expansion",
                    )
                    init_strength = gr.Slider(
                        0.05,
                        1.0,
                        value=defaults["init_strength"],
                        step=0.05,
                        label="How much of the recording is regenerated (with a recording to start from)",
                        elem_id="init_strength",
                    )
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate_btn")
            with gr.Column():
                result = gr.Video(label="Result", interactive=False, elem_id="result_video")
                status = gr.Markdown(elem_id="status")
                plot = gr.Image(
                    label="Timing curve", type="filepath", interactive=False, elem_id="timing_plot"
                )
                timing_csv = gr.File(label="Timing CSV", interactive=False, elem_id="timing_csv")
                downloads = gr.File(
                    label="Downloads (mp4, wav, timing CSV)",
                    file_count="multiple",
                    interactive=False,
                    elem_id="downloads",
                )

        edits = [scale, shift, smooth]
        predict_btn.click(
            app.predict,
            [video, state, *edits, expansion],
            [plot, timing_csv, state],
            concurrency_id="model",
            concurrency_limit=1,
        )
        edit_btn.click(app.edit, [state, *edits], [plot, timing_csv, state])
        timing_upload.upload(
            app.upload_timing,
            [timing_upload, video, state, *edits],
            [plot, timing_csv, state],
            concurrency_id="model",
            concurrency_limit=1,
        )
        video.change(lambda s: (None, None, None), [state], [plot, timing_csv, state])
        generate_btn.click(
            app.generate,
            [
                video,
                prompt,
                negative,
                reference,
                state,
                *edits,
                weight,
                steps,
                guidance,
                seed,
                follow,
                init_audio,
                init_strength,
                expansion,
            ],
            [result, downloads, status, plot, timing_csv, state],
            concurrency_id="model",
            concurrency_limit=1,
        )
    demo.queue(default_concurrency_limit=1, max_size=config.max_queue)
    demo.foleykit_app = app
    return demo


def _defaults(app: FoleyApp) -> dict[str, float]:
    """Slider defaults from the model (loaded here, so that the first request does not wait for it).

    Guidance is the scale the model uses when none is given, in the standard form (``pipe.guidance()``; a
    ``1 + w`` recipe's stored w = 3 shows as 4), so the page's default gives the CLI's audio.
    """
    from foleykit.pipelines.video_to_audio import INIT_STRENGTH

    pipe = app.pipe
    weight = next((a.weight for a in pipe.adapters.values()), 1.0)
    return {
        "weight": float(weight),
        "steps": int(pipe.defaults["num_inference_steps"]),
        "guidance": app.guidance_default(),
        "follow": float(pipe.defaults.get("follow_envelope", 0.0)),
        "expansion": app.expansion_default(),
        "init_strength": INIT_STRENGTH,
    }


def launch_app(config: AppConfig, *, block: bool = True) -> Any:
    """Build and start the server on ``config.host:config.port``; returns the ``gr.Blocks`` (``block=False``:
    the server runs in a background thread; call ``.close()`` to stop it)."""
    demo = build_app(config)
    demo.launch(
        server_name=config.host,
        server_port=config.port,
        share=False,
        inbrowser=False,
        max_file_size=f"{int(config.max_upload_mb)}mb",
        allowed_paths=[str(config.results_dir)],
        show_error=True,
        prevent_thread_lock=not block,
        ssr_mode=False,
        quiet=not block,
    )
    return demo
