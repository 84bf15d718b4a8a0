"""hf-wav2vec2 demo page: transcribe a file or the microphone, see every word's time, download subtitles.

A Gradio app in the layout of a Hugging Face Space (this ``app.py`` and ``requirements.txt`` at the root of the
Space). Locally, from a clone of this repository::

    pip install -e ".[demo]"
    python examples/app.py --model my-model            # a model folder or a Hub id; opens on 127.0.0.1:7860

On a Space, copy ``app.py`` and ``requirements.txt`` into it and set the variable ``MODEL`` (Settings >
Variables) to the Hub id of a CTC model; the page lets visitors type another one.

What it does with a clip: the pipeline transcribes it greedily (or, when a transcript is typed in, that text is
used instead), :func:`hf_wav2vec2.align` finds where each word is spoken (forced alignment), and the page shows
the transcript, a table of words with start/end seconds and alignment scores, the waveform with the word spans
drawn over it, and an SRT file to download.
"""

from __future__ import annotations

import os

# No usage statistics or version checks from this page: it must work on a machine without internet.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import numpy as np

try:
    import hf_wav2vec2  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_wav2vec2.alignment import align
from hf_wav2vec2.alignment_formats import to_srt
from hf_wav2vec2.audio import AudioError, load_audio
from hf_wav2vec2.transcribe import asr_pipeline

DEFAULT_MODEL = os.environ.get("MODEL", "facebook/wav2vec2-base-960h")
# Longer clips are transcribed in chunks, as the pipeline does for long audio.
CHUNK_S, STRIDE_S = 20.0, 4.0
HEADERS = ["word", "start (s)", "end (s)", "score"]


@functools.lru_cache(maxsize=2)
def load_model(model: str):
    """The pipeline for a model folder or Hub id, kept for the next clip."""
    return asr_pipeline(model)


def transcribe(audio_path: str | None, model: str, transcript: str = "", words_per_cue: int = 3):
    """(transcript, word rows, waveform picture path, SRT path) for one clip; a problem is one line for the page."""
    import gradio as gr

    if not audio_path:
        raise gr.Error("Upload a file or record from the microphone first.")
    model = (model or "").strip() or DEFAULT_MODEL
    try:
        pipe = load_model(model)
        rate = pipe.feature_extractor.sampling_rate
        samples = load_audio(audio_path, rate)
        text = " ".join(transcript.split())
        if not text:
            long = samples.shape[0] > CHUNK_S * rate
            chunking = {"chunk_length_s": CHUNK_S, "stride_length_s": STRIDE_S} if long else {}
            text = pipe({"raw": samples, "sampling_rate": rate}, **chunking)["text"]
        alignment = align(pipe, samples, text)
    except (AudioError, ValueError, OSError) as error:
        raise gr.Error(str(error).splitlines()[0]) from None
    rows = [
        [w.text, round(w.start, 2), round(w.end, 2), None if w.score is None else round(w.score, 2)]
        for w in alignment.words
    ]
    out = Path(tempfile.mkdtemp(prefix="hf-wav2vec2-demo-"))
    picture = waveform_picture(samples, rate, alignment, out / "alignment.png")
    srt = out / f"{Path(audio_path).stem or 'transcript'}.srt"
    srt.write_text(to_srt(alignment, words_per_cue=int(words_per_cue)), encoding="utf-8")
    return text, rows, str(picture), str(srt)


def waveform_picture(samples: np.ndarray, rate: int, alignment, path: Path) -> Path:
    """The waveform (min/max per pixel column) with each word's span shaded and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1200
    seconds = samples.shape[0] / rate
    per = max(1, samples.shape[0] // columns)
    usable = samples[: per * (samples.shape[0] // per)].reshape(-1, per)
    times = np.arange(usable.shape[0]) * per / rate
    fig, ax = plt.subplots(figsize=(12, 3.2), dpi=100)
    ax.fill_between(times, usable.min(axis=1), usable.max(axis=1), color="#4a6fa5", linewidth=0)
    peak = float(np.abs(samples).max()) or 1.0
    for i, word in enumerate(w for w in alignment.words if w.end > w.start):
        ax.axvspan(word.start, word.end, color=("#f4a261" if i % 2 else "#2a9d8f"), alpha=0.3, linewidth=0)
        ax.text(
            (word.start + word.end) / 2,
            peak * (1.02 if i % 2 else 1.12),
            word.text,
            ha="center",
            va="bottom",
            fontsize=8,
            clip_on=False,
        )
    ax.set_xlim(0, seconds)
    ax.set_ylim(-peak * 1.05, peak * 1.45)  # room for the labels above the waveform
    ax.set_yticks([])
    ax.set_xlabel("seconds")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def build_demo(model: str = DEFAULT_MODEL):
    import gradio as gr

    with gr.Blocks(title="hf-wav2vec2: transcription with word timestamps") as demo:
        gr.Markdown(
            "# hf-wav2vec2\nTranscribe speech with a wav2vec 2.0 CTC model, see where each word is "
            "spoken (forced alignment), and download subtitles."
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio")
                model_box = gr.Textbox(value=model, label="Model (folder or Hub id)")
                known = gr.Textbox(label="Transcript to align (optional: leave empty to transcribe)", lines=2)
                per_cue = gr.Slider(1, 12, value=3, step=1, label="Words per subtitle")
                run = gr.Button("Transcribe", variant="primary")
            with gr.Column():
                text = gr.Textbox(label="Transcript", lines=3, elem_id="transcript")
                words = gr.Dataframe(headers=HEADERS, label="Words", interactive=False)
                picture = gr.Image(type="filepath", label="Alignment", interactive=False)
                srt = gr.File(label="Subtitles (SRT)")
        run.click(transcribe, inputs=[audio, model_box, known, per_cue], outputs=[text, words, picture, srt])
    return demo


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"model folder or Hub id (default: $MODEL or {DEFAULT_MODEL})"
    )
    # a Space sets GRADIO_SERVER_NAME=0.0.0.0; locally the page is only reachable from this machine
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to serve on (0.0.0.0 for the network)",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    build_demo(args.model).launch(server_name=args.host, server_port=args.port, ssr_mode=False)


if __name__ == "__main__":
    main()
