"""Tests for hf_wav2vec2.audio: decoding, mixing, PCM scaling, resampling, errors, and pipeline input preparation."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from hf_wav2vec2 import HfWav2Vec2Config
from hf_wav2vec2.audio import (
    AudioError,
    check_min_samples,
    load_audio,
    read_audio,
    resample,
    to_float32_mono,
)
from hf_wav2vec2.chunking import receptive_field
from hf_wav2vec2.pipeline_hf_wav2vec2 import prepare_pipeline_input

SR = 16000


def sine(freq: float = 440.0, sr: int = SR, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


def write_mp3(path, data: np.ndarray, sr: int) -> None:
    """Write an MP3 with soundfile (libsndfile >= 1.1) or, failing that, ffmpeg; skip the test if neither can."""
    try:
        sf.write(path, data, sr, format="MP3", subtype="MPEG_LAYER_III")
        return
    except (sf.LibsndfileError, ValueError, TypeError):
        pass
    if shutil.which("ffmpeg") is None:
        pytest.skip("cannot write MP3: this libsndfile has no MP3 encoder and ffmpeg is not installed")
    wav = str(path) + ".wav"
    sf.write(wav, data, sr)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", wav, str(path)], check=True)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------------ files

FORMATS = {
    "wav": dict(format="WAV", subtype="PCM_16"),
    "flac": dict(format="FLAC", subtype="PCM_16"),
    "ogg": dict(format="OGG", subtype="VORBIS"),
}


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_reads_each_file_format(tmp_path, ext):
    path = tmp_path / f"tone.{ext}"
    data = sine(440.0)
    if ext == "mp3":
        write_mp3(path, data, SR)
    else:
        sf.write(path, data, SR, **FORMATS[ext])
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    # lossy codecs may pad a little (MP3 encoder delay); lossless must match exactly
    assert abs(len(out) - len(data)) <= (0 if ext in ("wav", "flac") else 1152)
    assert abs(peak_hz(out) - 440.0) < 2.0
    assert float(np.max(np.abs(out))) == pytest.approx(0.5, abs=0.05)
    assert load_audio(str(path)).shape == out.shape  # str and PathLike alike


def test_pcm16_wav_is_scaled_to_unit_range(tmp_path):
    path = tmp_path / "pcm.wav"
    sf.write(path, np.array([-32768, 0, 16384, 32767], dtype=np.int16), SR, subtype="PCM_16")
    samples, rate = read_audio(path)
    assert rate == SR
    np.testing.assert_allclose(samples, [-1.0, 0.0, 0.5, 32767 / 32768], atol=1e-6)


def test_stereo_file_is_mixed_to_mono_and_resampled(tmp_path):
    left, right = sine(440.0, sr=44100), sine(440.0, sr=44100, amp=0.1)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_24")
    out = load_audio(path)
    assert abs(len(out) - SR) <= 1
    assert float(np.max(np.abs(out[100:-100]))) == pytest.approx(0.3, abs=0.01)  # mean of 0.5 and 0.1
    assert abs(peak_hz(out) - 440.0) < 2.0


def test_one_frame_stereo_file_is_one_sample(tmp_path):
    path = tmp_path / "tiny.wav"
    sf.write(path, np.array([[0.5, -0.25]], np.float32), SR, subtype="FLOAT")
    samples, _ = read_audio(path)
    np.testing.assert_allclose(samples, [0.125])


def test_bytes_file_objects_and_memoryview(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, sine(), SR)
    raw = path.read_bytes()
    expected = load_audio(path)
    for source in (raw, bytearray(raw), memoryview(raw), io.BytesIO(raw)):
        np.testing.assert_array_equal(load_audio(source), expected)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(load_audio(f), expected)


# ------------------------------------------------------------------------------------- arrays & dicts


def test_arrays_are_taken_at_target_rate_unless_told():
    x = sine(1000.0)
    np.testing.assert_array_equal(load_audio(x), x)
    assert len(load_audio(x, sampling_rate=8000)) == 2 * len(x)
    assert len(load_audio(x, target_sr=8000)) == len(x)  # assumed at target_sr: no resampling


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_preserves_length_and_frequency(rate):
    x = sine(1000.0, sr=rate, seconds=1.3)
    expected = len(x) * SR / rate
    for out in (
        resample(x, rate, SR),
        load_audio(x, sampling_rate=rate),
        load_audio({"raw": x, "sampling_rate": rate}),
        load_audio({"array": x.astype(np.float64), "sampling_rate": rate, "path": "ignored.wav"}),
        load_audio((x, rate)),
    ):
        assert out.dtype == np.float32 and out.ndim == 1
        assert abs(len(out) - expected) <= 1
        assert abs(peak_hz(out) - 1000.0) < 2.0


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_from_files(tmp_path, rate):
    path = tmp_path / f"tone{rate}.wav"
    sf.write(path, sine(3000.0, sr=rate), rate, subtype="PCM_16")
    out = load_audio(path)
    assert abs(len(out) - SR) <= 1
    assert abs(peak_hz(out) - 3000.0) < 2.0


def test_multichannel_arrays_and_tensors_are_averaged():
    import torch

    left, right = np.full(1000, 0.5, np.float32), np.full(1000, -0.1, np.float32)
    expected = np.full(1000, 0.2, np.float32)
    np.testing.assert_allclose(load_audio(np.stack([left, right])), expected, atol=1e-7)  # (channels, samples)
    np.testing.assert_allclose(load_audio(np.stack([left, right], axis=1)), expected, atol=1e-7)  # (samples, ch)
    np.testing.assert_allclose(load_audio(torch.from_numpy(np.stack([left, right]))), expected, atol=1e-7)
    six = np.tile(left, (6, 1))
    np.testing.assert_allclose(load_audio(six), left)
    assert load_audio(np.zeros((1, 500), np.float32)).shape == (500,)


def test_integer_pcm_and_float_dtypes():
    np.testing.assert_allclose(to_float32_mono(np.array([-32768, 0, 16384], np.int16)), [-1.0, 0.0, 0.5])
    np.testing.assert_allclose(to_float32_mono(np.array([-(2**31), 2**30], np.int32)), [-1.0, 0.5])
    np.testing.assert_allclose(to_float32_mono(np.array([0, 128, 192], np.uint8)), [-1.0, 0.0, 0.5])
    np.testing.assert_allclose(to_float32_mono(np.array([-128, 64], np.int8)), [-1.0, 0.5])
    for dtype in (np.float16, np.float32, np.float64):
        out = to_float32_mono(np.array([0.25, -0.5], dtype))
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [0.25, -0.5])
    pcm = (sine() * 32767).astype(np.int16)
    assert np.max(np.abs(load_audio(pcm))) == pytest.approx(0.5, abs=1e-3)


def test_torch_tensors():
    import torch

    x = sine()
    np.testing.assert_array_equal(load_audio(torch.from_numpy(x)), x)
    np.testing.assert_allclose(load_audio(torch.from_numpy(x).to(torch.bfloat16)), x, atol=1e-2)
    np.testing.assert_allclose(load_audio(torch.tensor([-32768, 16384], dtype=torch.int16)), [-1.0, 0.5])
    assert len(load_audio(torch.from_numpy(x), sampling_rate=8000)) == 2 * len(x)


# ------------------------------------------------------------------------------------------- bad input


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError) as err:
        load_audio(tmp_path / "nope.wav")
    assert one_line(err) == f"{tmp_path / 'nope.wav'}: no such file"
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)
    with pytest.raises(AudioError, match="URLs are not supported"):
        load_audio("https://example.com/a.wav")


def test_not_audio(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no ffmpeg fallback on this path
    text = tmp_path / "notes.txt"
    text.write_text("hello world\n" * 20)
    with pytest.raises(AudioError) as err:
        load_audio(text)
    message = one_line(err)
    assert message.startswith(str(text)) and "not a readable audio file" in message and "ffmpeg" in message
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="0 bytes"):
        load_audio(empty)
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(b"definitely not audio" * 10)


def test_truncated_files(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(), SR, subtype="PCM_16")
    data = path.read_bytes()
    # A WAV cut in half: libsndfile would silently return the first half; we refuse.
    half = tmp_path / "half.wav"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as err:
        load_audio(half)
    assert one_line(err).startswith(f"{half}: audio file is truncated")
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(data[:30])
    with pytest.raises(AudioError, match="corrupt or truncated"):
        load_audio(header_only)
    flac = tmp_path / "tone.flac"
    sf.write(flac, sine(), SR)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    with pytest.raises(AudioError) as err:
        load_audio(cut)
    assert "truncated" in one_line(err) and str(cut) in str(err.value)


def test_empty_and_too_short_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert one_line(err) == f"{path}: audio is empty (0 samples)"
    with pytest.raises(AudioError, match="empty"):
        load_audio(np.zeros(0, np.float32))
    with pytest.raises(AudioError) as err:
        load_audio(np.zeros(192, np.float32), min_samples=receptive_field(HfWav2Vec2Config()))
    assert one_line(err) == (
        "<audio array>: audio is 0.012 s (192 samples at 16 kHz); the model needs at least 400 samples (0.025 s)"
    )
    # the check applies after resampling: 96 samples at 8 kHz become 192 at 16 kHz
    with pytest.raises(AudioError, match=r"192 samples at 16 kHz"):
        load_audio({"raw": np.zeros(96, np.float32), "sampling_rate": 8000}, min_samples=400)
    assert len(load_audio(np.zeros(400, np.float32), min_samples=400)) == 400
    assert len(load_audio(np.zeros(5, np.float32))) == 5  # no check by default
    check_min_samples(10, SR, None)
    with pytest.raises(AudioError, match=r"^clip.wav: audio is 0.001 s \(10 samples at 8 kHz\)"):
        check_min_samples(10, 8000, 200, "clip.wav")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(bad):
    x = sine()
    x[123] = bad
    with pytest.raises(AudioError) as err:
        load_audio(x)
    assert "NaN/Inf" in one_line(err) and "sample 123" in str(err.value)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros(10, np.int64),
        np.zeros(10, np.uint16),
        np.zeros(10, np.complex64),
        np.zeros(10, bool),
        np.array(["a", "b"]),
        np.array([None, 1], dtype=object),
    ],
    ids=["int64", "uint16", "complex64", "bool", "str", "object"],
)
def test_unsupported_dtypes(array):
    with pytest.raises(AudioError, match="unsupported sample dtype"):
        load_audio(array)


def test_bad_shapes_and_types():
    with pytest.raises(AudioError, match="shape"):
        load_audio(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(AudioError, match="cannot tell channels from samples"):
        load_audio(np.zeros((300, 300), np.float32))
    with pytest.raises(AudioError, match="unsupported audio source"):
        load_audio(None)
    with pytest.raises(AudioError, match="unsupported audio source"):
        load_audio([0.1, 0.2])
    with pytest.raises(AudioError, match='"raw"'):
        load_audio({"samples": np.zeros(10), "sampling_rate": SR})
    with pytest.raises(AudioError, match='"sampling_rate"'):
        load_audio({"raw": np.zeros(10)})


@pytest.mark.parametrize("rate", [0, -16000, float("nan"), "16k", True, None])
def test_bad_sampling_rates(rate):
    with pytest.raises(AudioError, match="sampling_rate must be a positive number"):
        load_audio({"raw": sine(), "sampling_rate": rate})


def test_bad_target_and_conflicting_rates(tmp_path):
    with pytest.raises(AudioError, match="target_sr must be a positive number"):
        load_audio(sine(), target_sr=0)
    with pytest.raises(AudioError, match="sampling_rate must be a positive number"):
        load_audio(sine(), sampling_rate=-1)
    path = tmp_path / "tone.wav"
    sf.write(path, sine(sr=8000), 8000)
    with pytest.raises(AudioError, match="the file is at 8000 Hz but sampling_rate=16000 was given"):
        load_audio(path, sampling_rate=16000)
    assert len(load_audio(path, sampling_rate=8000)) == SR


# --------------------------------------------------------------------------------------- ffmpeg fallback


def _fake_ffmpeg(bin_dir, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "ffmpeg"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    script.chmod(0o755)


def test_ffmpeg_fallback_for_formats_libsndfile_lacks(tmp_path, monkeypatch):
    # A stand-in ffmpeg: checks it was asked for mono f32le at 16 kHz and emits a 440 Hz tone.
    _fake_ffmpeg(
        tmp_path / "bin",
        "import math, struct\n"
        "args = sys.argv[1:]\n"
        "assert args[args.index('-ac') + 1] == '1' and args[args.index('-f') + 1] == 'f32le', args\n"
        "rate = int(args[args.index('-ar') + 1])\n"
        "samples = [0.5 * math.sin(2 * math.pi * 440 * n / rate) for n in range(rate)]\n"
        "sys.stdout.buffer.write(struct.pack('<%df' % rate, *samples))",
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    m4a = tmp_path / "clip.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))  # not something libsndfile reads
    out = load_audio(m4a)
    assert len(out) == SR and abs(peak_hz(out) - 440.0) < 2.0
    assert len(load_audio(m4a.read_bytes(), target_sr=8000)) == 8000  # via stdin, decoded at the target rate


def test_ffmpeg_failure_is_a_clean_error(tmp_path, monkeypatch):
    _fake_ffmpeg(
        tmp_path / "bin", "sys.stderr.write('clip.m4a: Invalid data found when processing input\\n')\nsys.exit(1)"
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    bad = tmp_path / "clip.m4a"
    bad.write_bytes(b"garbage" * 50)
    with pytest.raises(AudioError) as err:
        load_audio(bad)
    assert (
        one_line(err)
        == f"{bad}: not a readable audio file (ffmpeg: clip.m4a: Invalid data found when processing input)"
    )


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (scripts/setup.sh installs it)")
def test_real_ffmpeg_decodes_m4a_and_rejects_text(tmp_path):
    wav, m4a = tmp_path / "tone.wav", tmp_path / "tone.m4a"
    sf.write(wav, sine(440.0, sr=22050), 22050)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), str(m4a)], check=True)
    out = load_audio(m4a)
    assert abs(len(out) - SR) <= 2048  # AAC adds priming/padding samples
    assert abs(peak_hz(out) - 440.0) < 2.0
    text = tmp_path / "notes.txt"
    text.write_text("hello world\n" * 20)
    with pytest.raises(AudioError) as err:
        load_audio(text)
    assert one_line(err).startswith(f"{text}: not a readable audio file (ffmpeg:")


# ------------------------------------------------------------------------------------ pipeline input


def _stock_preprocess(x):
    """Run transformers' own ASR pipeline preprocess on ``x`` with a stand-in pipeline object."""
    from transformers import Wav2Vec2FeatureExtractor
    from transformers.pipelines.automatic_speech_recognition import AutomaticSpeechRecognitionPipeline

    fake = types.SimpleNamespace(feature_extractor=Wav2Vec2FeatureExtractor(), type="ctc", dtype=None)
    return list(AutomaticSpeechRecognitionPipeline.preprocess(fake, x))


def test_prepare_pipeline_input_forms(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([sine(sr=44100), sine(sr=44100)], axis=1), 44100)
    for source in (path, str(path), path.read_bytes(), {"raw": sine(sr=44100), "sampling_rate": 44100}):
        out = prepare_pipeline_input(source)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.ndim == 1
        assert abs(len(out) - SR) <= 1
    assert len(prepare_pipeline_input(sine(), sampling_rate=8000)) == SR  # arrays are at the pipeline's rate
    with pytest.raises(AudioError, match="list"):
        prepare_pipeline_input([sine(), sine()])


def test_prepare_pipeline_input_rescales_stride_and_keeps_extras():
    x = {"raw": sine(sr=8000), "sampling_rate": 8000, "stride": (800, 400), "id": "utt-1", "path": "a.wav"}
    out = prepare_pipeline_input(x)
    assert out["sampling_rate"] == SR and len(out["raw"]) == SR
    assert out["stride"] == (1600, 800) and out["id"] == "utt-1" and "path" not in out
    assert x["stride"] == (800, 400) and "raw" in x  # the caller's dict is left alone
    # 44.1 kHz -> 16 kHz rounds like the pipeline does
    out = prepare_pipeline_input({"array": sine(sr=44100), "sampling_rate": 44100, "stride": [4410, 441]})
    assert out["stride"] == (1600, 160)
    with pytest.raises(AudioError, match="longer than the audio"):
        prepare_pipeline_input({"raw": sine(sr=8000), "sampling_rate": 8000, "stride": (5000, 5000)})
    with pytest.raises(AudioError, match="pair of sample counts"):
        prepare_pipeline_input({"raw": sine(), "sampling_rate": SR, "stride": 5})


def test_prepared_inputs_go_through_the_stock_pipeline_preprocess():
    dict_8k = {"raw": sine(sr=8000), "sampling_rate": 8000, "stride": (800, 400)}
    (item,) = _stock_preprocess(prepare_pipeline_input(dict(dict_8k)))
    assert item["input_values"].shape == (1, SR)
    assert item["stride"] == (SR, 1600, 800)
    (item,) = _stock_preprocess(prepare_pipeline_input(np.stack([sine(), sine()], axis=1)))
    assert item["input_values"].shape == (1, SR)
    try:
        import torchaudio  # noqa: F401
    except Exception:  # without torchaudio the stock path cannot resample, which is why this module exists
        with pytest.raises(ImportError, match="torchaudio"):
            _stock_preprocess(dict(dict_8k))


@pytest.mark.skipif(os.name != "posix", reason="fake ffmpeg script needs a POSIX shebang")
def test_no_ffmpeg_needed_for_paths_in_the_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg anywhere
    path = tmp_path / "tone.ogg"
    sf.write(path, sine(), SR, format="OGG", subtype="VORBIS")
    (item,) = _stock_preprocess(prepare_pipeline_input(str(path)))
    assert item["input_values"].shape == (1, SR)


def test_probe_num_samples_and_resampled_length(tmp_path):
    from hf_wav2vec2.audio import probe_num_samples, resampled_length

    x = (0.1 * np.sin(np.linspace(0, 100 * np.pi, 8000))).astype(np.float32)
    path = tmp_path / "low.flac"
    sf.write(path, x, 8000)
    assert probe_num_samples(path) == resampled_length(8000, 8000, 16000) == 16000
    assert probe_num_samples(path.read_bytes(), 8000) == 8000
    wav = tmp_path / "cut.wav"
    sf.write(wav, x, 8000, subtype="PCM_16")
    data = wav.read_bytes()
    wav.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated") as err:
        probe_num_samples(wav)
    assert err.value.source == str(wav) and not err.value.reason.startswith(str(wav))
    with pytest.raises(AudioError, match="not a readable audio file"):
        probe_num_samples(b"\x01" * 4000, ffmpeg=False)
