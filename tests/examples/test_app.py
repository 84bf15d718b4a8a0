"""Tests for the demo page (examples/app.py): its transcribe function, and the page itself in a real browser.

The browser test starts ``python examples/app.py`` on 127.0.0.1, drives headless Chromium (Debian's ``chromium``
package, through Playwright, which is never allowed to download a browser), uploads a generated WAV file and waits
for the transcript that the pipeline gives for the same file. Both need the ``demo`` extra (``pip install -e
".[demo]"``) and the browser test needs Chromium too; ``scripts/setup.sh`` installs both, so under CI they must not
skip. ``DEMO_SCREENSHOT=path`` saves the browser's view there (the README's picture is
``benchmarks/results/demo_app.png``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf
from test_pipeline_hf_wav2vec2 import SR, noise, save_model_dir
from transformers import pipeline

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

gradio = pytest.importorskip("gradio", reason="the demo extra is not installed (pip install -e '.[demo]')")


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("demo_app", REPO / "examples" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model_dir(tmp_path_factory.mktemp("demo") / "model")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, noise(2.0, seed=21), SR, subtype="PCM_16")
    return path


def test_transcribe_gives_text_word_times_picture_and_subtitles(app, model_dir, clip):
    from hf_wav2vec2.alignment import align
    from hf_wav2vec2.alignment_formats import to_srt

    asr = pipeline("automatic-speech-recognition", model=str(model_dir))
    expected = asr(str(clip))["text"]
    text, rows, picture, srt = app.transcribe(str(clip), str(model_dir), "", 2)
    assert text == expected and len(rows) == len(expected.split())
    alignment = align(str(model_dir), str(clip), expected)
    assert rows[0][:3] == [
        alignment.words[0].text,
        round(alignment.words[0].start, 2),
        round(alignment.words[0].end, 2),
    ]
    assert Path(picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(srt).read_text(encoding="utf-8") == to_srt(alignment, words_per_cue=2)
    # a typed transcript is aligned instead of transcribing
    text, rows, _, _ = app.transcribe(str(clip), str(model_dir), "  hat  on   ice ", 1)
    assert text == "hat on ice" and [r[0] for r in rows] == ["hat", "on", "ice"]


def test_problems_are_one_line_on_the_page(app, model_dir, tmp_path):
    with pytest.raises(gradio.Error, match="Upload a file"):
        app.transcribe(None, str(model_dir))
    (tmp_path / "bad.wav").write_text("not audio")
    with pytest.raises(gradio.Error) as error:
        app.transcribe(str(tmp_path / "bad.wav"), str(model_dir))
    assert "bad.wav" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(gradio.Error, match="no such model directory"):
        app.transcribe(str(tmp_path / "bad.wav"), str(tmp_path / "missing"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the app did not answer on {url} within {seconds} s")


def test_the_page_in_a_real_browser(model_dir, clip, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="the demo extra is not installed (playwright)")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (apt-get install chromium; scripts/setup.sh does it)")
    expected = pipeline("automatic-speech-recognition", model=str(model_dir))(str(clip))["text"]
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "app.py"), "--model", str(model_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, process, 240)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.locator("input[type=file]").first.set_input_files(str(clip))
            page.get_by_role("button", name="Transcribe").click()
            transcript = page.locator("#transcript textarea")
            deadline = time.monotonic() + 180
            while transcript.input_value() != expected and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            assert transcript.input_value() == expected
            page.get_by_text(expected.split()[0], exact=True).first.wait_for(timeout=30_000)  # the words table
            page.locator("img").last.wait_for(timeout=30_000)  # the alignment picture
            screenshot = Path(os.environ.get("DEMO_SCREENSHOT") or tmp_path / "demo.png")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
            browser.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
