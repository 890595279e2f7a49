"""The web app in a real headless Chromium (Debian `chromium` driven by Playwright; no browser download).

Run alone: .venv/bin/python -m pytest -q -m browser tests/integration/test_app_browser.py
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
pytest.importorskip("gradio", reason="gradio is not installed (pip install 'foleykit[app]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from foleykit.app import AppConfig, launch_app
    from foleykit.product.debug import save_debug_model
    from foleykit.testing import make_moving_square_video

    d = tmp_path_factory.mktemp("browser")
    model = save_debug_model(d / "model")
    clip = make_moving_square_video(d / "clip.mp4", duration=1.2, size=(64, 48), move_frames=(10,))
    port = _free_port()
    config = AppConfig(model=str(model), workdir=d / "wd", port=port, max_duration=10.0, max_upload_mb=5)
    with pytest.MonkeyPatch.context() as mp:  # the app points GRADIO_TEMP_DIR at its working folder
        mp.setenv("GRADIO_TEMP_DIR", str(config.upload_dir))
        demo = launch_app(config, block=False)
        try:
            yield {"url": f"http://127.0.0.1:{port}/", "clip": clip, "dir": d, "config": config}
        finally:
            demo.close()


@pytest.fixture(scope="module")
def browser(server):
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, server):
    page = browser.new_page()
    page.goto(server["url"])
    page.wait_for_selector("#generate_btn", timeout=30000)
    return page


def _upload(page, video: Path) -> None:
    page.locator("#video_in input[type=file]").set_input_files(str(video))
    page.wait_for_selector("#video_in video", timeout=30000)


def test_upload_predict_generate_and_download(browser, server, tmp_path):
    from foleykit.controls import TemporalControl
    from foleykit.media import probe

    page = _open(browser, server)
    _upload(page, server["clip"])
    page.click("#predict_btn")
    page.wait_for_selector("#timing_plot img", timeout=60000)
    page.wait_for_selector("#timing_csv a", timeout=30000)
    page.fill("#prompt textarea", "footsteps on gravel")
    page.click("#generate_btn")
    page.wait_for_selector("#result_video video[src]", timeout=120000)
    video = page.locator("#result_video video")
    # the browser itself can play it: metadata loads and the duration is the clip's
    duration = video.evaluate(
        "v => new Promise((ok, fail) => { if (v.readyState >= 1) ok(v.duration);"
        " v.onloadedmetadata = () => ok(v.duration); v.onerror = () => fail('error');"
        " setTimeout(() => fail('timeout'), 20000); })"
    )
    assert duration == pytest.approx(1.2, abs=0.05)
    got = tmp_path / "result.mp4"
    got.write_bytes(page.request.get(video.get_attribute("src")).body())
    info = probe(got)
    assert info.has_video and info.has_audio and info.audio_codec == "aac"
    assert info.video_duration == pytest.approx(1.2, abs=1e-3)
    assert info.audio_duration == pytest.approx(1.2, abs=1e-3)
    links = [a.get_attribute("href") for a in page.locator("#downloads a").all()]
    assert [h.rsplit(".", 1)[-1] for h in links] == ["mp4", "wav", "csv"]
    csv = tmp_path / "timing.csv"
    csv.write_bytes(page.request.get(links[2]).body())
    assert TemporalControl.load(csv).duration == pytest.approx(1.2)
    assert "seed" in page.locator("#status").inner_text()
    # everything the server wrote is inside its working folder
    wd = server["config"].workdir.resolve()
    assert all(href.split("file=", 1)[1].startswith(str(wd)) for href in links)
    page.close()


def test_two_users_generate_at_once(browser, server, tmp_path):
    pages = [_open(browser, server) for _ in range(2)]
    clips = []
    for i, page in enumerate(pages):
        clip = tmp_path / f"user{i}.mp4"
        shutil.copy(server["clip"], clip)
        clips.append(clip)
        _upload(page, clip)
        page.fill("#prompt textarea", f"user {i}")
    for page in pages:  # both click before either result is back: the queue serves them in turn
        page.click("#generate_btn")
    srcs = []
    for page in pages:
        page.wait_for_selector("#result_video video[src]", timeout=120000)
        srcs.append(page.locator("#result_video video").get_attribute("src"))
        assert "seed" in page.locator("#status").inner_text()
    assert srcs[0] != srcs[1]
    for page in pages:
        page.close()


def test_errors_are_shown_in_the_page(browser, server):
    page = _open(browser, server)
    page.click("#generate_btn")  # no video uploaded
    page.get_by_text("upload a video first").first.wait_for(timeout=30000)
    assert page.locator("#generate_btn").is_visible()  # the app is still there
    page.close()


def test_uploads_are_limited_and_stay_in_the_working_folder(browser, server):
    page = _open(browser, server)
    url = server["url"] + "gradio_api/upload"
    big = {"files": {"name": "big.mp4", "mimeType": "video/mp4", "buffer": b"\0" * (6 * 1024 * 1024)}}
    r = page.request.post(url, multipart=big)
    assert r.status == 413 and "exceeded maximum allowed size" in r.text()
    small = {"files": {"name": "small.mp4", "mimeType": "video/mp4", "buffer": b"\0" * 1000}}
    r = page.request.post(url, multipart=small)
    assert r.status == 200
    (stored,) = r.json()
    assert Path(stored).resolve().is_relative_to(server["config"].workdir.resolve())
    page.close()


def test_a_fake_video_is_refused_by_content_without_server_paths(browser, server, tmp_path):
    """A text file named .mp4 is judged by its content; the page names the file, not where the server keeps
    it; the guidance slider starts at the model's effective scale."""
    from foleykit.app import FoleyApp

    page = _open(browser, server)
    expected = FoleyApp(server["config"]).guidance_default()
    page.get_by_text("Settings", exact=True).first.click()  # the accordion is closed at first
    slider = page.locator("#guidance input[type=number]")
    slider.wait_for(timeout=30000)
    assert float(slider.input_value()) == pytest.approx(expected)
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is text, not a video\n" * 50)
    _upload(page, fake)
    page.click("#predict_btn")
    page.get_by_text("not a media file").first.wait_for(timeout=30000)
    text = page.locator("body").inner_text()
    assert "fake.mp4" in text
    assert str(server["config"].workdir.resolve()) not in text and str(tmp_path) not in text
    page.close()
