"""Tests for hf_wav2vec2/transcribe.py: many files with bad ones among them, WER/CER evaluation (with and without an
n-gram LM), model loading errors, and subtitle formatting."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from test_pipeline_hf_wav2vec2 import (
    SR,
    TINY_ARPA,
    make_processor,
    near_tie_forward,
    noise,
    requires_flashlight,
    save_model_dir,
    small_config,
    tone_forward,
    tone_track,
)

from hf_wav2vec2 import HfWav2Vec2ForCTC, asr_pipeline, evaluate_model
from hf_wav2vec2.audio import AudioError
from hf_wav2vec2.transcribe import (
    ModelLoadError,
    Transcription,
    format_srt,
    format_vtt,
    group_words,
    length_groups,
    normalize_transcript,
    transcribe_files,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model_dir(tmp_path_factory.mktemp("transcribe") / "model")


@pytest.fixture
def files(tmp_path):
    """Two good files (one 44.1 kHz stereo), a file that is not audio, and a missing one."""
    sf.write(tmp_path / "good.wav", noise(1.0), SR)
    sf.write(tmp_path / "stereo.flac", np.stack([noise(1.0, 1, 44100), noise(1.0, 2, 44100)], axis=1), 44100)
    (tmp_path / "bad.wav").write_text("not audio")
    return [str(tmp_path / n) for n in ("good.wav", "bad.wav", "stereo.flac", "missing.wav")]


@pytest.fixture
def tone_asr(tmp_path):
    torch.manual_seed(0)
    model = HfWav2Vec2ForCTC(small_config()).eval()
    model.forward = tone_forward
    processor = make_processor(tmp_path / "tone", do_normalize=False)
    return asr_pipeline(model, tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor)


# ----------------------------------------------------------------------------------------------- transcribe_files


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_bad_files_are_reported_and_the_others_transcribed(model_dir, files, batch_size):
    asr = asr_pipeline(model_dir)
    seen = []
    results = transcribe_files(asr, files, batch_size=batch_size, on_result=seen.append)
    # in the order of the files; the callback gets each result once, as its (length-sorted) group finishes
    assert [r.source for r in results] == files and sorted(seen, key=lambda r: files.index(r.source)) == results
    assert [r.ok for r in results] == [True, False, True, False]
    assert results[0].text == asr(files[0])["text"] and results[2].text == asr(files[2])["text"]
    assert results[1].error.startswith(files[1]) and "not a readable audio file" in results[1].error
    assert results[3].error == f"{files[3]}: no such file"
    assert all("\n" not in r.error for r in results if not r.ok)


def test_length_groups_put_similar_lengths_together():
    durations = [2.0, 30.0, None, 2.5, 29.0, 1.0, None]
    assert length_groups(durations, 2) == [[1, 4], [3, 0], [5, 2], [6]]  # longest first, unknown last
    assert length_groups(durations, 1) == [[i] for i in range(7)]  # one at a time: the files' order
    assert length_groups([], 4) == []


def test_batches_hold_files_of_similar_length_and_results_keep_the_files_order(tmp_path):
    lengths = [0.5, 3.0, 0.6, 2.9, 0.4, 3.1]
    files = []
    for index, seconds in enumerate(lengths):
        files.append(str(tmp_path / f"{index}.wav"))
        sf.write(files[-1], noise(seconds, seed=index), SR)
    batches = []

    def pipe(sources, batch_size, **kwargs):  # what transcribe_files asks of the pipeline
        batches.append([lengths[files.index(s)] for s in sources])
        return [{"text": f"file {files.index(s)}"} for s in sources]

    results = transcribe_files(pipe, files, batch_size=2)
    assert batches == [[3.1, 3.0], [2.9, 0.6], [0.5, 0.4]]  # in input order: [0.5, 3.0], [0.6, 2.9], [0.4, 3.1]
    assert [r.text for r in results] == [f"file {i}" for i in range(6)]


def test_transcribe_files_with_chunks_timestamps_and_progress(tone_asr, tmp_path, capsys):
    audio, _ = tone_track("THE CAT", seconds=3.0)
    sf.write(tmp_path / "tones.wav", audio, SR, subtype="FLOAT")
    paths = [str(tmp_path / "tones.wav")] * 2
    results = transcribe_files(
        tone_asr, paths, batch_size=2, chunk_length_s=1.0, stride_length_s=0.2, return_timestamps="word", progress=True
    )
    assert [r.text for r in results] == ["THE CAT"] * 2
    assert [c["text"] for c in results[0].chunks] == ["THE", "CAT"]
    err = capsys.readouterr().err
    assert "transcribing" in err and "100%" in err  # the bar reached the total duration
    assert tone_asr.progress_callback is None  # restored
    with pytest.raises(AudioError, match="no audio files"):
        transcribe_files(tone_asr, [])


def test_transcription_to_dict():
    result = Transcription("a.wav", "HI", [{"text": "HI", "timestamp": (0.123456, 0.5)}])
    assert result.to_dict() == {
        "file": "a.wav",
        "text": "HI",
        "chunks": [{"text": "HI", "start": 0.123, "end": 0.5}],
        "error": None,
    }


# ----------------------------------------------------------------------------------------------- loading errors


def test_model_loading_errors_are_one_line(tmp_path, model_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.bin").write_bytes(b"x")
    cases = {
        str(tmp_path / "nope"): "no such model directory",
        str(tmp_path / "empty"): "no config.json",
        str(tmp_path / "file.bin"): "is a file",
    }
    for source, expected in cases.items():
        with pytest.raises(ModelLoadError) as error:
            asr_pipeline(source)
        message = str(error.value)
        assert message.startswith(source) and expected in message and "\n" not in message
    with pytest.raises(ModelLoadError, match="no such language model file"):
        asr_pipeline(model_dir, lm=tmp_path / "missing.arpa")


# ----------------------------------------------------------------------------------------------- evaluation


def test_evaluate_model_scores_wer_and_cer(tone_asr, tmp_path):
    texts = ["THE CAT", "A HAT"]
    paths = []
    for i, text in enumerate(texts):
        audio, _ = tone_track(text, seconds=2.5)
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], audio, SR, subtype="FLOAT")
    perfect = evaluate_model(tone_asr, paths, ["the  cat", "a hat"])  # case and spacing are normalised
    assert (perfect.wer, perfect.cer, perfect.num_utterances) == (0.0, 0.0, 2)
    assert perfect.hypotheses == ["the cat", "a hat"]
    wrong = evaluate_model(tone_asr, paths, ["THE CAT", "A HOT"])
    assert wrong.wer == pytest.approx(1 / 4) and wrong.cer == pytest.approx(1 / 12)
    # a file that cannot be read counts as an empty hypothesis, and is listed
    (tmp_path / "bad.wav").write_text("not audio")
    failed = evaluate_model(tone_asr, [paths[0], tmp_path / "bad.wav"], ["THE CAT", "A HAT"])
    assert failed.wer == pytest.approx(2 / 4) and list(failed.failed) == [str(tmp_path / "bad.wav")]
    with pytest.raises(ValueError, match="2 audio files but 1 references"):
        evaluate_model(tone_asr, paths, ["x"])
    with pytest.raises(ValueError, match="empty"):
        evaluate_model(tone_asr, paths, ["THE CAT", " "])
    assert normalize_transcript("  The\tCAT  ") == "the cat"


def test_evaluate_model_applies_the_normalization_saved_with_the_model(tone_asr, tmp_path, monkeypatch):
    from hf_wav2vec2 import transcribe
    from hf_wav2vec2.training.vocab import TextNormalization

    paths = []
    for i, text in enumerate(["THE CAT", "A HAT"]):
        audio, _ = tone_track(text, seconds=2.5)
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], audio, SR, subtype="FLOAT")
    references = ["The cat!", "«A» hat?"]  # punctuation the model never outputs, fine-tuning stripped it
    folder = tmp_path / "fine-tuned"
    folder.mkdir()
    default = evaluate_model(tone_asr, paths, references)  # no saved normalization: case-fold only
    assert default.cer > 0 and default.references == ["the cat!", "«a» hat?"]

    TextNormalization(case="upper").save_pretrained(folder)
    tone_asr.model.config._name_or_path = str(folder)  # a pipeline loaded from that folder
    saved = evaluate_model(tone_asr, paths, references)
    assert (saved.wer, saved.cer) == (0.0, 0.0)
    assert saved.references == ["THE CAT", "A HAT"] and saved.hypotheses == ["THE CAT", "A HAT"]

    monkeypatch.setattr(transcribe, "asr_pipeline", lambda model, **kwargs: tone_asr)
    by_path = evaluate_model(str(folder), paths, references)  # the folder given by path, as the CLI does
    assert (by_path.wer, by_path.cer, by_path.references) == (0.0, 0.0, saved.references)
    explicit = evaluate_model(str(folder), paths, references, normalize=normalize_transcript)
    assert explicit.cer == default.cer  # a given function wins over the saved options
    with pytest.raises(ValueError, match="normalize must be a function"):
        evaluate_model(str(folder), paths, references, normalize="lower")
    (folder / "text_normalization.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(ValueError, match="text_normalization.json: not valid JSON"):
        evaluate_model(str(folder), paths, references)


@requires_flashlight
def test_evaluate_model_with_an_lm(model_dir, tmp_path, monkeypatch):
    # every HfWav2Vec2ForCTC loaded from now on emits "THE KAT" with K barely ahead of C (see test_pipeline_...)
    monkeypatch.setattr(HfWav2Vec2ForCTC, "forward", lambda self, input_values, **kw: near_tie_forward(input_values))
    (tmp_path / "lm.arpa").write_text(TINY_ARPA)
    sf.write(tmp_path / "a.wav", noise(0.3), SR)
    greedy = evaluate_model(model_dir, [tmp_path / "a.wav"], ["THE CAT"])
    assert greedy.hypotheses == ["the kat"] and greedy.wer == pytest.approx(0.5) and greedy.cer == pytest.approx(1 / 7)
    with_lm = evaluate_model(model_dir, [tmp_path / "a.wav"], ["THE CAT"], lm=tmp_path / "lm.arpa", alpha=1.0, beta=0.0)
    assert with_lm.hypotheses == ["the cat"] and with_lm.wer == 0.0


# ----------------------------------------------------------------------------------------------- subtitles


WORDS = [
    {"text": w, "timestamp": (s, e)}
    for w, s, e in [
        ("ONE", 0.0, 0.3),
        ("TWO", 0.4, 0.7),
        ("THREE", 0.8, 1.2),
        ("FOUR", 3.0, 3.3),
        ("FIVE", 3.4, 3.46),
        ("SIX", 3.5, 9.0),
    ]
]


def test_group_words_by_count_duration_and_pause():
    assert [(c.start, c.end, c.text) for c in group_words(WORDS)] == [
        (0.0, 1.2, "ONE TWO THREE"),  # the 1.8 s pause ends the cue
        (3.0, 3.46, "FOUR FIVE"),  # SIX would make it 6 s long
        (3.5, 9.0, "SIX"),  # a single long word still gets its cue
    ]
    pairs = group_words(WORDS, max_words=2, max_duration=60, max_gap=10)
    assert [c.text for c in pairs] == ["ONE TWO", "THREE FOUR", "FIVE SIX"]
    with pytest.raises(ValueError):
        group_words(WORDS, max_words=0)


def test_srt_and_vtt_text():
    cues = group_words(WORDS[:5] + [{"text": "<B>", "timestamp": (3661.5, 3661.5)}])
    srt = format_srt(cues)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,200\nONE TWO THREE\n\n2\n00:00:03,000 --> 00:00:03,460\n")
    assert "3\n01:01:01,500 --> 01:01:01,600\n<B>\n" in srt  # a zero-length word is shown for 0.1 s
    vtt = format_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.200\nONE TWO THREE\n")
    assert "01:01:01.500 --> 01:01:01.600\n&lt;B&gt;\n" in vtt
