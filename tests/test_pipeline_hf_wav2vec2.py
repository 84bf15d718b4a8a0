"""Tests for the speech recognition pipeline (hf_wav2vec2/pipeline_hf_wav2vec2.py).

Two hand-built models make the checks exact instead of "some text came out":

* a *local* model (layer-norm feature encoder, attention output zeroed, no input normalisation): every logit depends
  only on a short window of audio (conv receptive field + positional conv), so a chunked transcription must equal
  the unchunked one frame for frame whenever the strides cover that window. A stitching error (a frame dropped,
  doubled or shifted) changes the text of this random model, which switches tokens every few frames;
* a *tone* model (forward replaced): frame ``t`` sees samples ``[320 t, 320 t + 400)`` as the real conv stack
  does, emits the token whose tone dominates that window, blank when the window holds less than half a burst.
  Bursts aligned to frames then have known char/word times, which chunked and unchunked runs must reproduce.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from conftest import NO_DROPOUT, tiny_config
from transformers import AutomaticSpeechRecognitionPipeline, pipeline
from transformers.modeling_outputs import CausalLMOutput

from hf_wav2vec2 import (
    HfWav2Vec2AutomaticSpeechRecognitionPipeline,
    HfWav2Vec2CTCTokenizer,
    HfWav2Vec2FeatureExtractor,
    HfWav2Vec2ForCTC,
    HfWav2Vec2Processor,
    save_pipeline_code,
)
from hf_wav2vec2.audio import AudioError
from hf_wav2vec2.chunking import iter_chunks
from hf_wav2vec2.decoding import is_flashlight_available
from hf_wav2vec2.pipeline_hf_wav2vec2 import PIPELINE_TASK

SR = 16000
FRAME = 320  # samples per output frame of the 7-layer conv stack
VOCAB = {
    "<pad>": 0,
    "<s>": 1,
    "</s>": 2,
    "<unk>": 3,
    "|": 4,
    "E": 5,
    "T": 6,
    "A": 7,
    "O": 8,
    "N": 9,
    "I": 10,
    "H": 11,
    "C": 12,
    "K": 13,
}
SEVEN_CONVS = dict(conv_dim=(16,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
requires_flashlight = pytest.mark.skipif(not is_flashlight_available(), reason="flashlight-text is not installed")


# ----------------------------------------------------------------------------------------------- helpers


def small_config(**overrides):
    """Tiny transformer on the real 7-layer conv geometry (20 ms frames, 400-sample receptive field)."""
    return tiny_config(**{**SEVEN_CONVS, **NO_DROPOUT, "vocab_size": len(VOCAB), **overrides})


def make_processor(directory: Path, do_normalize: bool = True) -> HfWav2Vec2Processor:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = HfWav2Vec2CTCTokenizer(str(directory / "vocab.json"))
    return HfWav2Vec2Processor(HfWav2Vec2FeatureExtractor(do_normalize=do_normalize), tokenizer)


def save_model_dir(directory: Path, model=None, seed: int = 0, do_normalize: bool = True) -> Path:
    """Save a (random, tiny) CTC model and its processor; returns the directory."""
    torch.manual_seed(seed)
    model = model if model is not None else HfWav2Vec2ForCTC(small_config()).eval()
    model.save_pretrained(directory)
    make_processor(directory, do_normalize=do_normalize).save_pretrained(directory)
    return directory


def noise(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """Noise whose loudness and colour change every 50 ms, so a random model's tokens change often."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = rng.standard_normal(n)
    step = sr // 20
    for start in range(0, n, step):
        piece = x[start : start + step]
        x[start : start + step] = np.convolve(piece, np.ones(rng.integers(1, 6)), "same") * rng.uniform(0.02, 0.5)
    return x.astype(np.float32)


def local_model(seed: int = 0) -> HfWav2Vec2ForCTC:
    """A random model whose outputs depend on local audio only (see the module docstring)."""
    torch.manual_seed(seed)
    model = HfWav2Vec2ForCTC(small_config(feat_extract_norm="layer", conv_bias=True)).eval()
    with torch.no_grad():
        for layer in model.wav2vec2.encoder.layers:
            layer.attention.out_proj.weight.zero_()
            layer.attention.out_proj.bias.zero_()
    return model


# Tone model: every token has a tone; silence is blank.
TONES = {token: 400.0 + 450.0 * i for i, token in enumerate(["|", "E", "T", "A", "O", "N", "I", "H", "C", "K"])}
TONE_AMP = 0.5
_TONE_IDS = torch.tensor([VOCAB[t] for t in TONES])
_TONE_HZ = torch.tensor(list(TONES.values()))


def tone_logits(values: torch.Tensor) -> torch.Tensor:
    """(B, L) samples -> (B, T, V) logits with the conv stack's framing: frame t reads samples [320 t, 320 t + 400)."""
    windows = values.float().unfold(-1, 400, FRAME)  # (B, T, 400)
    energy = windows.pow(2).mean(-1)
    spectrum = torch.fft.rfft(windows, dim=-1).abs()
    peak = torch.fft.rfftfreq(400, 1 / SR)[spectrum.argmax(-1)]  # (B, T) Hz
    token = _TONE_IDS[(peak[..., None] - _TONE_HZ).abs().argmin(-1)]
    voiced = energy > 0.5 * TONE_AMP**2 / 2  # more than half the window inside a burst
    token = torch.where(voiced, token, torch.full_like(token, VOCAB["<pad>"]))
    return torch.nn.functional.one_hot(token, len(VOCAB)).float() * 20.0 - 10.0


def tone_forward(input_values, attention_mask=None, **kwargs):
    return CausalLMOutput(logits=tone_logits(input_values))


def tone_track(text: str, seconds: float, start_frame: int = 7, length: int = 10, gap: int = 4):
    """Audio spelling ``text`` with one tone burst per character ("|" tone for spaces), bursts on frame boundaries.

    Returns (audio, [(char, start_s, end_s)]) with the true time span of every burst.
    """
    audio = np.zeros(int(seconds * SR), np.float32)
    spans = []
    frame = start_frame
    for char in text:
        token = "|" if char == " " else char
        begin, end = frame * FRAME, (frame + length) * FRAME
        t = np.arange(begin, end) / SR
        audio[begin:end] = TONE_AMP * np.sin(2 * np.pi * TONES[token] * t)
        spans.append((char, begin / SR, end / SR))
        frame += length + gap
    assert frame * FRAME < audio.shape[0], "track too short for the text"
    return audio, spans


def expected_words(spans):
    words, current = [], []
    for char, start, end in spans + [(" ", 0, 0)]:
        if char == " ":
            if current:
                words.append(("".join(c for c, _, _ in current), current[0][1], current[-1][2]))
            current = []
        else:
            current.append((char, start, end))
    return words


def chunk_spans(chunks):
    return [(c["text"], *c["timestamp"]) for c in chunks]


def assert_spans(actual, expected):
    assert [a[0] for a in actual] == [e[0] for e in expected]
    np.testing.assert_allclose([a[1:] for a in actual], [e[1:] for e in expected], atol=1e-9)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model_dir(tmp_path_factory.mktemp("asr") / "model")


@pytest.fixture(scope="module")
def asr(model_dir):
    return pipeline("automatic-speech-recognition", model=str(model_dir))


@pytest.fixture
def tone_asr(tmp_path):
    torch.manual_seed(0)
    model = HfWav2Vec2ForCTC(small_config()).eval()
    model.forward = tone_forward  # instance attribute: nn.Module.__call__ picks it up
    processor = make_processor(tmp_path / "tone", do_normalize=False)
    return pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )


# ----------------------------------------------------------------------------------------------- registration


def test_pipeline_by_name_builds_our_class_for_wav2vec2_models_only(asr, tmp_path):
    assert type(asr) is HfWav2Vec2AutomaticSpeechRecognitionPipeline
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2Config, Wav2Vec2ForCTC

    processor = make_processor(tmp_path)
    kwargs = dict(tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor)
    shape = dict(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )
    theirs = pipeline("automatic-speech-recognition", model=Wav2Vec2ForCTC(Wav2Vec2Config(**shape)).eval(), **kwargs)
    assert type(theirs) is HfWav2Vec2AutomaticSpeechRecognitionPipeline  # transformers' Wav2Vec2ForCTC object
    # another CTC model type keeps transformers' class (tests/test_interop.py: Whisper, and the soxr results)
    hubert = HubertForCTC(HubertConfig(**shape)).eval()
    assert type(pipeline("automatic-speech-recognition", model=hubert, **kwargs)) is AutomaticSpeechRecognitionPipeline
    forced = pipeline(PIPELINE_TASK, model=hubert, **kwargs)
    assert type(forced) is HfWav2Vec2AutomaticSpeechRecognitionPipeline
    # our input handling on another model type: a 44.1 kHz stereo dict, which the stock class cannot resample
    stereo = np.stack([noise(1.0, sr=44100), noise(1.0, seed=1, sr=44100)])
    assert isinstance(forced({"raw": stereo, "sampling_rate": 44100})["text"], str)


# ----------------------------------------------------------------------------------------------- input kinds


def test_every_input_kind_gives_the_transcript_of_the_same_samples(asr, tmp_path):
    pcm = (noise(1.5) * 32767).astype(np.int16)
    audio = pcm.astype(np.float32) / 32768  # what every lossless route below decodes to
    expected = asr(audio)["text"]
    assert len(expected) > 10
    sf.write(tmp_path / "a.wav", pcm, SR)
    sf.write(tmp_path / "a.flac", pcm, SR)
    same = {
        "int16 PCM": pcm,
        "float64": audio.astype(np.float64),
        "torch tensor": torch.from_numpy(audio),
        "(2, n) stereo": np.stack([audio, audio]),
        "(n, 2) stereo": np.stack([audio, audio], axis=1),
        "dict raw": {"raw": audio, "sampling_rate": SR},
        "dict array": {"array": audio, "sampling_rate": SR, "path": "x.wav"},
        "(samples, rate)": (audio, SR),
        "wav path": str(tmp_path / "a.wav"),
        "flac Path": tmp_path / "a.flac",
        "wav bytes": (tmp_path / "a.wav").read_bytes(),
    }
    for kind, item in same.items():
        assert asr(item)["text"] == expected, kind
    # stereo is the mean of the channels
    left, right = noise(1.0, seed=1), noise(1.0, seed=2)
    assert asr(np.stack([left, right]))["text"] == asr((left + right) / 2)["text"]


def test_lossy_files_are_decoded(asr, tmp_path):
    audio = noise(1.0)
    sf.write(tmp_path / "a.ogg", audio, SR, format="OGG", subtype="VORBIS")
    from test_audio import write_mp3

    write_mp3(tmp_path / "a.mp3", audio, 22050)
    for name in ("a.ogg", "a.mp3"):
        text = asr(str(tmp_path / name))["text"]
        assert isinstance(text, str) and text


def test_batched_list_equals_one_by_one(asr, tmp_path):
    clips = [noise(1.0, seed=s) for s in range(3)]
    single = [asr(c)["text"] for c in clips]
    assert [o["text"] for o in asr(clips)] == single
    assert [o["text"] for o in asr(clips, batch_size=3)] == single  # equal lengths: no padding
    # different lengths: the frames computed from padding must not reach the text (transformers decodes them).
    # The local model is used because padding changes the group-norm statistics of the random BASE-like one.
    processor = make_processor(tmp_path, do_normalize=False)
    local = pipeline(
        "automatic-speech-recognition",
        model=local_model(),
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )
    clips = [noise(1.0, seed=1), noise(0.31, seed=2), noise(0.6, seed=3)]
    single = [local(c, return_timestamps="char") for c in clips]
    assert local(clips, batch_size=3, return_timestamps="char") == single


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_through_soxr(asr, rate, tmp_path, monkeypatch):
    seconds = 1.0
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    seen = []
    original = asr.model.forward
    monkeypatch.setattr(
        asr.model, "forward", lambda input_values, **kw: seen.append(input_values) or original(input_values, **kw)
    )
    text = asr({"raw": tone, "sampling_rate": rate})["text"]
    values = seen[-1][0].numpy()
    assert values.shape[0] == int(seconds * SR)
    spectrum = np.abs(np.fft.rfft(values))
    assert np.fft.rfftfreq(values.shape[0], 1 / SR)[spectrum.argmax()] == pytest.approx(440.0, abs=2.0)
    assert text == asr(soxr.resample(tone, rate, SR, quality="HQ"))["text"]
    # a stereo file at that rate decodes, mixes and resamples the same way
    sf.write(tmp_path / "tone.wav", np.stack([tone, tone], axis=1), rate, subtype="FLOAT")
    assert asr(str(tmp_path / "tone.wav"))["text"] == text


def test_streamed_file_equals_the_array_when_chunked(asr, tmp_path):
    # 44.1 kHz stereo: the streamed path decodes, mixes and resamples block by block
    stereo = np.stack([noise(9.0, seed=1, sr=44100), noise(9.0, seed=2, sr=44100)], axis=1)
    sf.write(tmp_path / "long.wav", stereo, 44100, subtype="FLOAT")
    as_dict = {"raw": stereo.T.copy(), "sampling_rate": 44100}
    kwargs = dict(chunk_length_s=2.0, stride_length_s=0.5, return_timestamps="char")
    streamed, whole = asr(str(tmp_path / "long.wav"), **kwargs), asr(as_dict, **kwargs)
    assert streamed["text"] == whole["text"] and streamed["chunks"] == whole["chunks"]


# ----------------------------------------------------------------------------------------------- chunking


def test_chunks_are_cut_exactly_as_transformers_cuts_them(asr):
    """Same geometry as transformers' chunk_iter: the stock class on the same model gives the same text."""
    stock = AutomaticSpeechRecognitionPipeline(
        model=asr.model, tokenizer=asr.tokenizer, feature_extractor=asr.feature_extractor
    )
    audio = noise(7.3)
    for chunk, stride in [(2.0, 0.5), (1.5, (0.2, 0.4)), (3.0, None)]:
        kwargs = dict(chunk_length_s=chunk, stride_length_s=stride)
        assert asr(audio, **kwargs)["text"] == stock(audio, **kwargs)["text"]


def test_chunked_transcript_equals_unchunked_on_a_local_model(tmp_path):
    processor = make_processor(tmp_path, do_normalize=False)
    asr = pipeline(
        "automatic-speech-recognition",
        model=local_model(),
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )
    audio = noise(8.0, seed=3)
    whole = asr(audio, return_timestamps="char")
    assert len(whole["text"]) > 60  # the comparison is not between two empty strings
    for chunk, stride, batch in [(2.0, 0.5, 1), (1.7, (0.4, 0.6), 4), (3.0, 0.3, 2)]:
        chunked = asr(audio, chunk_length_s=chunk, stride_length_s=stride, batch_size=batch, return_timestamps="char")
        assert chunked["text"] == whole["text"], (chunk, stride, batch)
        assert chunked["chunks"] == whole["chunks"]


def test_chunker_extends_a_too_short_last_chunk_and_flags_the_last():
    audio = np.arange(1000, dtype=np.float32)
    chunks = list(iter_chunks(iter_reader(audio), chunk_len=400, left=0, right=0, min_len=400, align=20))
    assert [c[3] for c in chunks] == [False, False, True]
    last, left, right, _ = chunks[-1]
    assert last.shape[0] == 400 and last[-1] == 999 and (left, right) == (200, 0)
    # every sample is transcribed exactly once: the parts outside the strides tile the input
    np.testing.assert_array_equal(np.concatenate([c[lo : len(c) - hi] for c, lo, hi, _ in chunks]), audio)


def iter_reader(array):
    position = 0

    def read(n):
        nonlocal position
        out = array[position : position + n]
        position += out.shape[0]
        return out

    return read


def test_bad_chunk_geometry_is_refused(asr):
    with pytest.raises(ValueError, match="longer than the two strides"):
        asr(noise(3.0), chunk_length_s=1.0, stride_length_s=0.5)


# ----------------------------------------------------------------------------------------------- timestamps


TEXT = "THE CAT ATE THE HAT"


@pytest.mark.parametrize(
    "chunking",
    [
        None,
        dict(chunk_length_s=2.0, stride_length_s=0.5),
        dict(chunk_length_s=2.0, stride_length_s=(0.3, 0.6), batch_size=3),
        dict(chunk_length_s=1.2, stride_length_s=0.2, batch_size=2),
        # no right stride: each chunk lacks its last frame (frames 99, 174, 249 fall inside bursts or gaps, not on
        # their edges), which must not shift the chunks after it
        dict(chunk_length_s=2.0, stride_length_s=(0.5, 0.0)),
    ],
    ids=["whole", "chunk2-stride0.5", "chunk2-stride0.3,0.6-batch3", "chunk1.2-batch2", "no-right-stride"],
)
def test_char_and_word_timestamps_are_the_true_burst_times(tone_asr, chunking):
    audio, spans = tone_track(TEXT, seconds=6.0)
    kwargs = chunking or {}
    chars = tone_asr(audio, return_timestamps="char", **kwargs)
    assert chars["text"] == TEXT
    assert_spans(chunk_spans(chars["chunks"]), spans)
    words = tone_asr(audio, return_timestamps="word", **kwargs)
    assert_spans(chunk_spans(words["chunks"]), expected_words(spans))


def test_timestamps_of_a_streamed_file(tone_asr, tmp_path):
    audio, spans = tone_track(TEXT, seconds=6.0)
    sf.write(tmp_path / "tones.wav", audio, SR, subtype="FLOAT")
    words = tone_asr(str(tmp_path / "tones.wav"), chunk_length_s=1.5, stride_length_s=0.3, return_timestamps="word")
    assert_spans(chunk_spans(words["chunks"]), expected_words(spans))
    # at 48 kHz the bursts keep their times through the (streamed) resampling
    sf.write(tmp_path / "tones48.wav", soxr.resample(audio, SR, 48000), 48000, subtype="FLOAT")
    words = tone_asr(str(tmp_path / "tones48.wav"), chunk_length_s=1.5, stride_length_s=0.3, return_timestamps="word")
    assert_spans(chunk_spans(words["chunks"]), expected_words(spans))


def test_progress_callback_adds_up_to_the_duration(tone_asr):
    covered = []
    tone_asr.progress_callback = covered.append
    tone_asr(noise(5.0), chunk_length_s=1.0, stride_length_s=0.2, batch_size=2)
    assert sum(covered) == pytest.approx(5.0)


# ----------------------------------------------------------------------------------------------- LM decoding

# "THE CAT" where the first letter of the second word acoustically favours K (as in tests/decoding/test_decoding.py).
NEAR_TIE = ["T", "H", "E", "|", {"K": 0.5, "C": 0.45}, "A", "<pad>", "T"]
TINY_ARPA = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.6\tTHE\t-0.3
-0.8\tCAT\t-0.3

\\2-grams:
-0.1\t<s> THE
-0.1\tTHE CAT
-0.1\tCAT </s>

\\end\\
"""


def near_tie_logits(frames: int) -> torch.Tensor:
    """(frames, V) log-probs: NEAR_TIE on the first frames, blank after."""
    out = np.full((frames, len(VOCAB)), 1e-4)
    for t in range(frames):
        spec = NEAR_TIE[t] if t < len(NEAR_TIE) else "<pad>"
        for token, p in ({spec: 0.95} if isinstance(spec, str) else spec).items():
            out[t, VOCAB[token]] = p
    out /= out.sum(axis=1, keepdims=True)
    return torch.from_numpy(np.log(out).astype(np.float32))


def near_tie_forward(input_values, attention_mask=None, **kwargs):
    frames = (input_values.shape[-1] - 400) // FRAME + 1
    return CausalLMOutput(logits=near_tie_logits(frames).expand(input_values.shape[0], -1, -1))


@pytest.fixture
def arpa(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(TINY_ARPA)
    return path


@requires_flashlight
def test_lm_in_the_pipeline_changes_the_transcript_the_way_the_lm_says(tmp_path, arpa):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    torch.manual_seed(0)
    model = HfWav2Vec2ForCTC(small_config()).eval()
    model.forward = near_tie_forward
    processor = make_processor(tmp_path)
    parts = dict(model=model, tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor)
    audio = noise(0.3)
    assert pipeline("automatic-speech-recognition", **parts)(audio)["text"] == "THE KAT"
    with_lm = pipeline("automatic-speech-recognition", lm=str(arpa), alpha=1.0, beta=0.0, **parts)
    result = with_lm(audio, return_timestamps="word")
    assert result["text"] == "THE CAT"
    assert_spans(chunk_spans(result["chunks"]), [("THE", 0.0, 0.06), ("CAT", 0.08, 0.16)])
    decoder = CTCBeamSearchDecoder(VOCAB, str(arpa), alpha=1.0, beta=0.0)
    assert pipeline("automatic-speech-recognition", decoder=decoder, **parts)(audio)["text"] == "THE CAT"
    with pytest.raises(ValueError, match="word"):
        with_lm(audio, return_timestamps="char")
    with pytest.raises(ValueError, match="either decoder= or lm="):
        pipeline("automatic-speech-recognition", lm=str(arpa), decoder=decoder, **parts)


@requires_flashlight
def test_beam_search_decoder_keeps_timestamps_under_chunking(tone_asr):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    beam = HfWav2Vec2AutomaticSpeechRecognitionPipeline(
        model=tone_asr.model,
        tokenizer=tone_asr.tokenizer,
        feature_extractor=tone_asr.feature_extractor,
        decoder=CTCBeamSearchDecoder(VOCAB, beam_size=8),
    )
    audio, spans = tone_track(TEXT, seconds=6.0)
    for kwargs in ({}, dict(chunk_length_s=2.0, stride_length_s=0.5, batch_size=2)):
        result = beam(audio, return_timestamps="word", **kwargs)
        assert result["text"] == TEXT
        assert_spans(chunk_spans(result["chunks"]), expected_words(spans))


# ----------------------------------------------------------------------------------------------- bad input


def _truncated_wav(path):
    sf.write(path, noise(1.0), SR, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan_wav(path):
    audio = noise(2.0)
    audio[20000] = np.nan
    sf.write(path, audio, SR, subtype="FLOAT")


BAD_FILES = {
    "missing": (lambda p: None, "no such file"),
    "not audio": (lambda p: p.write_text("this is not audio\n" * 20), "not a readable audio file"),
    "truncated": (_truncated_wav, "truncated"),
    "zero bytes": (lambda p: p.write_bytes(b""), "empty"),
    "no samples": (lambda p: sf.write(p, np.zeros(0, np.float32), SR), "empty"),
    "too short": (lambda p: sf.write(p, noise(1.0)[:399], SR), "at least 400 samples"),
    "nan": (_nan_wav, "NaN"),
}


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_files_give_one_line_naming_the_file(asr, tmp_path, kind, chunked):
    make, expected = BAD_FILES[kind]
    path = tmp_path / f"bad {kind}.wav"
    make(path)
    kwargs = dict(chunk_length_s=0.5, stride_length_s=0.1) if chunked else {}
    with pytest.raises(AudioError) as error:
        asr(str(path), **kwargs)
    message = one_line(error)
    assert message.startswith(str(path)) and expected in message


@pytest.mark.parametrize(
    "item, expected",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.array([0.1, np.inf] * 500, np.float32), "NaN/Inf"),
        (np.zeros((100, 100), np.float32), "cannot tell channels"),
        ({"raw": noise(1.0)}, "sampling_rate"),
        ({"raw": noise(1.0), "sampling_rate": -5}, "positive"),
        (12, "unsupported audio source"),
    ],
    ids=["empty", "inf", "ambiguous 2-D", "dict without rate", "negative rate", "int"],
)
def test_bad_arrays_and_dicts(asr, item, expected):
    with pytest.raises(AudioError) as error:
        asr(item)
    assert expected in one_line(error)


def test_empty_batch_is_an_error(asr):
    with pytest.raises(AudioError, match="empty"):
        asr([])


def test_minimum_length_is_the_models_receptive_field(tmp_path):
    config = tiny_config(**NO_DROPOUT, vocab_size=len(VOCAB))  # convs (10,3,3)/(5,2,2): receptive field 40
    assert config.receptive_field == 40
    processor = make_processor(tmp_path)
    asr = pipeline(
        "automatic-speech-recognition",
        model=HfWav2Vec2ForCTC(config).eval(),
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )
    assert isinstance(asr(noise(1.0)[:40])["text"], str)
    with pytest.raises(AudioError, match="at least 40 samples"):
        asr(noise(1.0)[:39])
    with pytest.raises(AudioError, match="at least 40 samples"):  # counted after resampling to 16 kHz
        asr({"raw": noise(1.0)[:19], "sampling_rate": 8000})


# ----------------------------------------------------------------------------------------------- saved checkpoints

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    sys.modules["hf_wav2vec2"] = None  # the package is installed: make sure only the saved code is used
    import numpy as np
    from transformers import pipeline

    model_dir, audio_file, out_file = sys.argv[1:]
    audio = np.load(audio_file)
    ours = pipeline(model=model_dir, trust_remote_code=True)
    stock = pipeline("automatic-speech-recognition", model=model_dir, trust_remote_code=True)
    result = {"modules": [type(ours).__module__, type(ours.model).__module__, type(stock).__module__],
              "hf_wav2vec2_loaded": any(m.split(".")[0] == "hf_wav2vec2" for m in sys.modules if sys.modules[m])}
    for name, pipe in (("ours", ours), ("stock", stock)):
        result[name] = {
            "plain": pipe(audio)["text"],
            "batched": [o["text"] for o in pipe([audio, audio[:16000]], batch_size=2)],
            "chunked": pipe(audio, chunk_length_s=1.0, stride_length_s=0.25)["text"],
            "char": pipe(audio, return_timestamps="char")["chunks"],
            "word": pipe(audio, chunk_length_s=1.0, stride_length_s=0.25, return_timestamps="word")["chunks"],
        }
    result["ours"]["8 kHz dict"] = ours({"raw": audio[::2], "sampling_rate": 8000})["text"]
    with open(out_file, "w") as f:
        json.dump(result, f)
    """
)


def run_saved_checkpoint_calls(pipe, audio):
    """The calls of FRESH_PROCESS, in this process."""
    return {
        "plain": pipe(audio)["text"],
        "batched": [o["text"] for o in pipe([audio, audio[:16000]], batch_size=2)],
        "chunked": pipe(audio, chunk_length_s=1.0, stride_length_s=0.25)["text"],
        "char": pipe(audio, return_timestamps="char")["chunks"],
        "word": pipe(audio, chunk_length_s=1.0, stride_length_s=0.25, return_timestamps="word")["chunks"],
    }


def test_saved_checkpoint_in_this_process_and_in_a_fresh_one(model_dir, tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir()
    for item in model_dir.iterdir():
        (directory / item.name).write_bytes(item.read_bytes())
    copied = save_pipeline_code(directory)
    assert {p.name for p in copied} == {"pipeline_hf_wav2vec2.py", "audio.py", "chunking.py"}
    assert PIPELINE_TASK in json.loads((directory / "config.json").read_text())["custom_pipelines"]

    audio = noise(2.5, seed=7)
    # with the package imported, the plain task name still needs no trust_remote_code
    here = pipeline("automatic-speech-recognition", model=str(directory))
    assert type(here) is HfWav2Vec2AutomaticSpeechRecognitionPipeline
    expected = json.loads(json.dumps(run_saved_checkpoint_calls(here, audio)))  # tuples -> lists, as in JSON
    assert len(expected["char"]) > 10 and len(expected["word"]) >= 1 and expected["plain"]

    np.save(tmp_path / "audio.npy", audio)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "check.py").write_text(FRESH_PROCESS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    completed = subprocess.run(
        [sys.executable, "check.py", str(directory), str(tmp_path / "audio.npy"), str(tmp_path / "out.json")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    fresh = json.loads((tmp_path / "out.json").read_text())
    ours_module, model_module, stock_module = fresh["modules"]
    assert ours_module.startswith("transformers_modules") and ours_module.endswith("pipeline_hf_wav2vec2")
    assert model_module.startswith("transformers_modules")
    assert stock_module == "transformers.pipelines.automatic_speech_recognition"
    assert not fresh["hf_wav2vec2_loaded"]
    ours_8k = fresh["ours"].pop("8 kHz dict")
    assert fresh["ours"] == expected
    # transformers' class on the remote-code model agrees on single 16 kHz arrays (batches differ: it decodes the
    # frames computed from padding)
    fresh["stock"].pop("batched"), expected.pop("batched")
    assert fresh["stock"] == expected
    assert ours_8k == here({"raw": audio[::2], "sampling_rate": 8000})["text"]


def test_pipeline_save_pretrained_writes_the_code(asr, tmp_path):
    forced = pipeline(PIPELINE_TASK, model=asr.model, tokenizer=asr.tokenizer, feature_extractor=asr.feature_extractor)
    forced.save_pretrained(tmp_path / "saved")
    names = {p.name for p in (tmp_path / "saved").iterdir()}
    assert {"pipeline_hf_wav2vec2.py", "audio.py", "chunking.py", "modeling_hf_wav2vec2.py"} <= names
    custom = json.loads((tmp_path / "saved" / "config.json").read_text())["custom_pipelines"]
    assert custom[PIPELINE_TASK]["impl"] == "pipeline_hf_wav2vec2.HfWav2Vec2AutomaticSpeechRecognitionPipeline"
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        save_pipeline_code(tmp_path / "nothing-here")
