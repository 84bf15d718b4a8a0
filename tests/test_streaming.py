"""Tests for live transcription (hf_wav2vec2/streaming.py).

The model is a random tiny CTC model with full attention over each chunk, fed noise whose loudness changes every
50 ms: its tokens change every few frames and depend on the whole chunk, so a chunk cut one frame off, a stride
cut wrongly or a token lost between two pushes changes the text.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from test_pipeline_hf_wav2vec2 import (
    SR,
    TINY_ARPA,
    noise,
    requires_flashlight,
    save_model_dir,
)
from transformers import pipeline

from hf_wav2vec2.streaming import StreamingTranscriber, print_stream, read_pcm_stream


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model_dir(tmp_path_factory.mktemp("stream") / "model")


@pytest.fixture(scope="module")
def asr(model_dir):
    return pipeline("automatic-speech-recognition", model=str(model_dir))


def stream_through(transcriber, audio, block):
    updates = [transcriber.push(audio[i : i + block]) for i in range(0, audio.shape[0], block)]
    return updates, transcriber.finish()


GEOMETRIES = [
    (2.0, 0.5),
    (1.5, (0.2, 0.4)),
    (1.0, (0.3, 0.0)),  # no right context: chunks lacking their last frame must not shift later ones
    (2.0, (0.0, 0.5)),
]


@pytest.mark.parametrize("chunk_s,context_s", GEOMETRIES)
@pytest.mark.parametrize("seconds", [0.7, 3.5, 5.04])
def test_finish_gives_the_chunked_pipelines_transcript(asr, chunk_s, context_s, seconds):
    audio = noise(seconds, seed=int(seconds * 1000))
    expected = asr(audio, chunk_length_s=chunk_s, stride_length_s=context_s)["text"]
    assert expected  # the random model writes something
    for block in (1601, 16000 * 4):
        transcriber = StreamingTranscriber(asr, chunk_s=chunk_s, context_s=context_s, partial_s=None)
        _, final = stream_through(transcriber, audio, block)
        assert final.final and final.committed == expected == final.partial
        assert final.received_s == final.committed_s == audio.shape[0] / SR


def test_a_too_short_last_chunk_borrows_context_like_the_pipeline(asr):
    # chunk 1 s, context 0.2 s: a step of 0.6 s; 1.0 + 0.6 * 3 + 0.01 s leaves a 160-sample last chunk
    audio = noise(2.81, seed=3)
    expected = asr(audio, chunk_length_s=1.0, stride_length_s=0.2)["text"]
    transcriber = StreamingTranscriber(asr, chunk_s=1.0, context_s=0.2)
    assert stream_through(transcriber, audio, 800)[1].committed == expected


def test_committed_text_only_grows_and_partials_start_with_it(asr):
    audio = noise(6.0, seed=5)
    transcriber = StreamingTranscriber(asr, chunk_s=1.5, context_s=0.3, partial_s=0.2)
    updates, final = stream_through(transcriber, audio, 320)  # 20 ms pushes
    assert final.committed == asr(audio, chunk_length_s=1.5, stride_length_s=0.3)["text"]
    committed = ""
    partial_changes = 0
    for update in [*updates, final]:
        assert update.committed.startswith(committed)
        assert update.new_committed == update.committed[len(committed) :]
        assert update.partial.startswith(update.committed)
        partial_changes += update.tentative != ""
        committed = update.committed
    assert partial_changes > 3  # partial text did show up between chunks
    assert len({u.committed for u in updates}) > 3  # committed text grew during the stream, not only at the end


def test_look_ahead_and_memory_are_bounded(asr):
    audio = noise(8.0, seed=7)
    chunk_s, context_s, block = 2.0, 0.5, 800
    transcriber = StreamingTranscriber(asr, chunk_s=chunk_s, context_s=context_s, partial_s=0.5)
    for i in range(0, audio.shape[0], block):
        update = transcriber.push(audio[i : i + block])
        if update.received_s > chunk_s:
            # a sample is final once its chunk is complete: never more than chunk - left context behind
            assert update.received_s - update.committed_s <= chunk_s - context_s + 1e-9
        assert transcriber._buffer.shape[0] <= chunk_s * SR
        assert len(transcriber._text.tail) <= chunk_s / 0.02  # tokens before the last letter are dropped
    assert transcriber.finish().committed == asr(audio, chunk_length_s=chunk_s, stride_length_s=context_s)["text"]


def test_other_input_rates_and_integer_pcm(asr, tmp_path):
    audio8 = noise(4.0, seed=9, sr=8000)
    pcm = np.round(audio8 * 32767).astype(np.int16)
    sf.write(tmp_path / "a8k.wav", pcm, 8000, subtype="PCM_16")
    expected = asr(str(tmp_path / "a8k.wav"), chunk_length_s=1.5, stride_length_s=0.3)["text"]
    transcriber = StreamingTranscriber(asr, chunk_s=1.5, context_s=0.3, sampling_rate=8000)
    _, final = stream_through(transcriber, pcm, 333)
    assert final.committed == expected
    assert final.received_s == pytest.approx(4.0, abs=1e-3)


def test_transformers_checkpoints_and_their_tokenizer(tmp_path):
    """transformers' Wav2Vec2CTCTokenizer decodes a little differently (special tokens are text there)."""
    from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2Processor
    from hf_wav2vec2.interop import save_as_transformers

    ours = save_model_dir(tmp_path / "ours", seed=4)
    save_as_transformers(
        HfWav2Vec2ForCTC.from_pretrained(ours), tmp_path / "theirs", HfWav2Vec2Processor.from_pretrained(ours)
    )
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path / "theirs"))
    assert asr.model.config.model_type == "wav2vec2"
    audio = noise(5.0, seed=11)
    transcriber = StreamingTranscriber(str(tmp_path / "theirs"), chunk_s=1.6, context_s=0.4)
    assert (
        stream_through(transcriber, audio, 1000)[1].committed
        == asr(audio, chunk_length_s=1.6, stride_length_s=0.4)["text"]
    )


def test_misuse_is_refused_in_one_line(asr, model_dir):
    transcriber = StreamingTranscriber(str(model_dir), chunk_s=1.0, context_s=0.2)
    transcriber.push(noise(0.5))
    transcriber.finish()
    with pytest.raises(RuntimeError, match="the stream is finished; call reset"):
        transcriber.push(noise(0.1))
    transcriber.reset()
    assert transcriber.push(np.zeros(0, np.float32)).committed == ""
    assert transcriber.finish().committed == ""  # nothing heard, nothing written
    with pytest.raises(ValueError, match="must be longer than the two strides"):
        StreamingTranscriber(asr, chunk_s=1.0, context_s=0.5)
    with pytest.raises(ValueError, match="pass a model directory / Hub id, a pipeline, or a model with processor="):
        StreamingTranscriber(asr.model)


@requires_flashlight
def test_an_lm_pipeline_is_refused(model_dir, tmp_path):
    (tmp_path / "tiny.arpa").write_text(TINY_ARPA)
    with_lm = pipeline("automatic-speech-recognition", model=str(model_dir), lm=str(tmp_path / "tiny.arpa"))
    with pytest.raises(ValueError, match="decodes greedily .* not 'ctc_with_lm'"):
        StreamingTranscriber(with_lm)


# ----------------------------------------------------------------------------------------------- stdin


def wav_bytes(samples: np.ndarray, rate: int, subtype: str, data_size: int | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype=subtype, format="WAV")
    data = bytearray(buffer.getvalue())
    if data_size is not None:  # what a recorder writing to a pipe puts in the header
        at = data.index(b"data")
        data[at + 4 : at + 8] = struct.pack("<I", data_size)
        data[4:8] = struct.pack("<I", data_size)
    return bytes(data)


class Trickle(io.RawIOBase):
    """A pipe: read() returns at most ``n`` bytes at a time."""

    def __init__(self, data: bytes, n: int = 777):
        self.data, self.n, self.pos = data, n, 0

    def readable(self):
        return True

    def read(self, size=-1):
        size = self.n if size < 0 else min(size, self.n)
        out = self.data[self.pos : self.pos + size]
        self.pos += len(out)
        return out


def test_raw_and_wav_streams_from_stdin():
    audio = noise(1.0, seed=2)
    pcm = np.round(audio * 32767).astype(np.int16)
    rate, blocks = read_pcm_stream(Trickle(pcm.tobytes()), 16000, block_s=0.1)
    got = np.concatenate(list(blocks))
    assert rate == 16000 and np.array_equal(got, pcm / 32768.0)
    stereo = np.stack([audio, -audio * 0.5], axis=1)
    for subtype, size in [("PCM_16", None), ("FLOAT", 0xFFFFFFFF), ("PCM_U8", 0)]:
        rate, blocks = read_pcm_stream(Trickle(wav_bytes(stereo, 8000, subtype, size)), None)
        got = np.concatenate(list(blocks))
        expected = sf.read(io.BytesIO(wav_bytes(stereo, 8000, subtype)), dtype="float32")[0].mean(axis=1)
        assert rate == 8000 and got.shape == (16000,)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"<stdin>: raw PCM needs its sampling rate \(--rate\)"):
        read_pcm_stream(io.BytesIO(pcm.tobytes()), None)
    with pytest.raises(ValueError, match="24-bit samples .* not supported"):
        read_pcm_stream(io.BytesIO(wav_bytes(audio, 16000, "PCM_24")), None)


def test_printing_in_place_on_a_terminal_and_lines_in_a_pipe(asr):
    audio = noise(4.0, seed=13)
    expected = asr(audio, chunk_length_s=1.5, stride_length_s=0.3)["text"]
    blocks = [audio[i : i + 1600] for i in range(0, audio.shape[0], 1600)]
    piped = io.StringIO()
    final = print_stream(
        StreamingTranscriber(asr, chunk_s=1.5, context_s=0.3, partial_s=None), iter(blocks), piped, tty=False
    )
    lines = piped.getvalue().splitlines()
    assert final.committed == expected and " ".join(lines) == expected and len(lines) > 1
    assert "\r" not in piped.getvalue()
    terminal = io.StringIO()
    print_stream(StreamingTranscriber(asr, chunk_s=1.5, context_s=0.3), iter(blocks), terminal, tty=True)
    shown = terminal.getvalue()
    assert shown.count("\r\033[K") > len(blocks) // 2 and shown.endswith("\n")
    finished_lines = [part.split("\r\033[K")[-1] for part in shown.split("\n") if part]
    assert " ".join(finished_lines) == expected


def test_torch_input(asr):
    audio = noise(2.5, seed=17)
    transcriber = StreamingTranscriber(asr, chunk_s=1.0, context_s=0.25)
    for i in range(0, audio.shape[0], 4000):
        transcriber.push(torch.from_numpy(audio[i : i + 4000]))
    assert transcriber.finish().committed == asr(audio, chunk_length_s=1.0, stride_length_s=0.25)["text"]


# ----------------------------------------------------------------------------------------------- command line


class FakeStdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def test_transcribe_stream_from_stdin_in_process(asr, model_dir, tmp_path, monkeypatch, capsys):
    from hf_wav2vec2 import cli

    audio = noise(4.0, seed=19)
    pcm = np.round(0.9 * audio / np.abs(audio).max() * 32767).astype(np.int16)
    expected = asr(pcm / 32768.0, chunk_length_s=1.5, stride_length_s=0.3)["text"]
    monkeypatch.setattr("sys.stdin", FakeStdin(pcm.tobytes()))
    argv = ["transcribe", "-", "--stream", "-m", str(model_dir), "--chunk_length", "1.5", "--stride_length", "0.3"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert " ".join(out.splitlines()) == expected and "\r" not in out  # captured output is no terminal
    wav = tmp_path / "clip.wav"
    sf.write(wav, pcm, SR, subtype="PCM_16")
    assert (
        cli.main(
            [
                "transcribe",
                str(wav),
                "--stream",
                "-m",
                str(model_dir),
                "--chunk_length",
                "1.5",
                "--stride_length",
                "0.3",
            ]
        )
        == 0
    )
    assert " ".join(capsys.readouterr().out.splitlines()) == expected
    for files, extra, message in [
        ([], ["--format", "json"], "does not take --format"),
        ([str(wav)], [], "reads one stream"),
        ([], ["--chunk_length", "0"], "needs a --chunk_length above 0"),
    ]:
        assert cli.main(["transcribe", "-", *files, "--stream", "-m", str(model_dir), *extra]) == 2
        assert message in capsys.readouterr().err


def test_transcribe_stream_through_a_real_pipe(asr, model_dir):
    """``ffmpeg ... -f wav - | hf-wav2vec2 transcribe - --stream``: a WAV stream whose header cannot know its size."""
    audio = noise(3.0, seed=23)
    audio = 0.9 * audio / np.abs(audio).max()  # 16-bit PCM clips what is louder
    data = wav_bytes(audio, SR, "PCM_16", data_size=0xFFFFFFFF)
    expected = asr(
        sf.read(io.BytesIO(wav_bytes(audio, SR, "PCM_16")), dtype="float32")[0], chunk_length_s=1.0, stride_length_s=0.2
    )["text"]
    script = shutil.which("hf-wav2vec2")
    command = [script] if script else [sys.executable, "-m", "hf_wav2vec2.cli"]
    done = subprocess.run(
        [
            *command,
            "transcribe",
            "-",
            "--stream",
            "-m",
            str(model_dir),
            "--chunk_length",
            "1",
            "--stride_length",
            "0.2",
        ],
        input=data,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert " ".join(done.stdout.decode().splitlines()) == expected
