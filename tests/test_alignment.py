"""Tests for forced alignment (hf_wav2vec2/alignment.py) and its output formats (hf_wav2vec2/alignment_formats.py).

* The Viterbi is checked against a reference written here independently in NumPy (plain loops over frames and
  CTC states) on random emissions: same best score, same path.
* Boundaries are checked on a *soft tone model* (forward replaced): frame ``t`` reads the samples the conv stack
  reads, every character has a tone, and the logits fall off with the distance between the frame's dominant
  frequency and each character's tone, blank winning in silence. Bursts laid on frame boundaries have known
  times; greedy decoding is not what is tested, so a burst may even play a different letter than the transcript.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_config
from test_pipeline_hf_wav2vec2 import (
    VOCAB,
    expected_words,
    make_processor,
    noise,
    save_model_dir,
    small_config,
)
from transformers.modeling_outputs import CausalLMOutput

from hf_wav2vec2 import HfWav2Vec2ForCTC
from hf_wav2vec2.alignment import align, ctc_forced_align, frame_duration
from hf_wav2vec2.alignment_formats import (
    FORMATS,
    to_audacity,
    to_json,
    to_srt,
    to_textgrid,
    to_vtt,
    write_alignment,
)

LETTERS = ["|", "E", "T", "A", "O", "N", "I", "H", "C", "K"]
AMP = 0.5


# ----------------------------------------------------------------------------------------------- the tone model


class SoftTones:
    """Forward of a tone "model" on a conv geometry of ``hop`` samples per frame and a ``field``-sample window."""

    def __init__(self, rate: int, hop: int = 320, field: int = 400, spacing: float = 300.0):
        self.rate, self.hop, self.field = rate, hop, field
        self.hz = {c: 400.0 + spacing * i for i, c in enumerate(LETTERS)}

    def __call__(self, input_values, attention_mask=None, **kwargs):
        windows = input_values.float().unfold(-1, self.field, self.hop)
        energy = windows.pow(2).mean(-1)
        spectrum = torch.fft.rfft(windows, dim=-1).abs()
        peak = torch.fft.rfftfreq(self.field, 1 / self.rate)[spectrum.argmax(-1)]
        logits = torch.full((*peak.shape, len(VOCAB)), -30.0)
        for char, hz in self.hz.items():
            logits[..., VOCAB[char]] = -((peak - hz).abs() / 100.0)  # 0 on the tone, -3 one tone away
        voiced = energy > 0.5 * AMP**2 / 2  # more than half the window inside a burst
        logits[..., VOCAB["<pad>"]] = torch.where(voiced, torch.tensor(-6.0), torch.tensor(0.0))
        logits[..., :4][..., 1:] = -30.0  # <s> </s> <unk>
        logits[~voiced] = torch.where(torch.arange(len(VOCAB)) == 0, 0.0, -12.0)
        return CausalLMOutput(logits=logits)

    def track(self, text: str, seconds: float, start: int = 7, length: int = 10, gap: int = 4, play=None):
        """Audio with one burst per character of ``text`` ("|" for a space) on frame boundaries; ``play`` maps a
        character to the tone actually played. Returns (audio, [(char, start_s, end_s)])."""
        audio = np.zeros(int(seconds * self.rate), np.float32)
        spans, frame = [], start
        for char in text:
            token = "|" if char == " " else (play or {}).get(char, char)
            begin, end = frame * self.hop, (frame + length) * self.hop
            t = np.arange(begin, end) / self.rate
            audio[begin:end] = AMP * np.sin(2 * np.pi * self.hz[token] * t)
            spans.append((char, begin / self.rate, end / self.rate))
            frame += length + gap
        assert frame * self.hop < audio.shape[0]
        return audio, spans


@pytest.fixture
def tones(tmp_path):
    def build(rate: int = 16000):
        torch.manual_seed(0)
        model = HfWav2Vec2ForCTC(small_config()).eval()
        forward = SoftTones(rate)
        model.forward = forward
        processor = make_processor(tmp_path / f"tone{rate}", do_normalize=False)
        processor.feature_extractor.sampling_rate = rate
        return model, processor, forward

    return build


# ----------------------------------------------------------------------------------------------- NumPy reference


def reference_viterbi(log_probs: np.ndarray, target: list[int], blank: int, free_end: bool = False):
    """Textbook CTC Viterbi over the blank-extended target: (best log-probability, label per frame)."""
    ext = [blank]
    for token in target:
        ext += [token, blank]
    frames, states = log_probs.shape[0], len(ext)
    score = np.full((frames, states), -np.inf)
    came = np.zeros((frames, states), dtype=int)
    score[0, 0] = log_probs[0, blank]
    if states > 1:
        score[0, 1] = log_probs[0, ext[1]]
    for t in range(1, frames):
        for s in range(states):
            options = [(score[t - 1, s], s)]
            if s >= 1:
                options.append((score[t - 1, s - 1], s - 1))
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                options.append((score[t - 1, s - 2], s - 2))
            best, origin = max(options, key=lambda o: o[0])
            score[t, s] = best + log_probs[t, ext[s]]
            came[t, s] = origin
    ends = range(states) if free_end else [s for s in (states - 1, states - 2) if s >= 0]
    state = max(ends, key=lambda s: score[-1, s])
    best = score[-1, state]
    path = [state]
    for t in range(frames - 1, 0, -1):
        state = came[t, state]
        path.append(state)
    return best, [ext[s] for s in reversed(path)]


@pytest.mark.parametrize("free_end", [False, True])
def test_viterbi_equals_the_numpy_reference_on_random_emissions(free_end):
    rng = np.random.default_rng(1)
    frames, vocab, blank = [37, 25, 9, 30], 6, 0
    targets = [[1, 2, 2, 3, 1, 4], [5, 5, 5], [3], [2, 3, 4, 1, 1, 2, 5, 3]]
    log_probs = np.full((4, max(frames), vocab), -50.0, dtype=np.float32)
    for b, n in enumerate(frames):
        logits = rng.standard_normal((n, vocab)) * 2
        log_probs[b, :n] = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    padded = np.ones((4, max(map(len, targets))), dtype=np.int64)
    for b, target in enumerate(targets):
        padded[b, : len(target)] = target
    labels, scores = ctc_forced_align(
        torch.from_numpy(log_probs),
        torch.from_numpy(padded),
        torch.tensor(frames),
        torch.tensor([len(t) for t in targets]),
        blank=blank,
        free_end=free_end,
    )
    for b, (n, target) in enumerate(zip(frames, targets, strict=True)):
        best, path = reference_viterbi(log_probs[b, :n].astype(np.float64), target, blank, free_end)
        assert labels[b, :n].tolist() == path
        assert float(scores[b, :n].sum()) == pytest.approx(best, abs=1e-3)
        assert (labels[b, n:] == blank).all() and (scores[b, n:] == 0).all()
        if not free_end:  # the path spells the target under CTC's rules
            collapsed = [x for i, x in enumerate(path) if x != blank and (i == 0 or path[i - 1] != x)]
            assert collapsed == target


def test_viterbi_refuses_a_transcript_longer_than_the_audio():
    log_probs = torch.log_softmax(torch.randn(1, 4, 5), -1)
    with pytest.raises(ValueError, match=r"needs at least 5 frames \(4 tokens .*\) but the audio gives 4"):
        ctc_forced_align(log_probs, torch.tensor([[1, 2, 2, 3]]))
    with pytest.raises(ValueError, match="contains the blank id 0"):
        ctc_forced_align(log_probs, torch.tensor([[1, 0]]))


# ----------------------------------------------------------------------------------------------- boundaries


TEXT = "TEA CAT NOT ON ICE"


def assert_within_one_frame(actual, expected, frame):
    assert [a[0] for a in actual] == [e[0] for e in expected]
    np.testing.assert_array_less(np.abs(np.array([a[1:] for a in actual]) - [e[1:] for e in expected]), frame + 1e-9)


def test_word_and_char_boundaries_are_the_burst_times(tones):
    model, processor, forward = tones()
    audio, truth = forward.track(TEXT, seconds=6.0)
    result = align(model, audio, TEXT, processor=processor)
    assert result.frame_duration == 0.02
    assert_within_one_frame([(w.text, w.start, w.end) for w in result.words], expected_words(truth), 0.02)
    chars = [(c.text, c.start, c.end) for c in result.chars]
    assert_within_one_frame(chars, [s for s in truth if s[0] != " "], 0.02)
    assert [t.text for t in result.tokens] == list(TEXT.replace(" ", "|"))
    assert all(w.score > 0.8 for w in result.words)
    assert result.duration == 6.0


def test_a_wrong_letter_is_still_placed_and_scores_lower(tones):
    model, processor, forward = tones()
    # the burst for the I of ICE plays the H tone: greedy decoding would write HCE
    audio, truth = forward.track(TEXT, seconds=6.0, play={"I": "H"})
    result = align(model, audio, TEXT, processor=processor)
    assert_within_one_frame([(w.text, w.start, w.end) for w in result.words], expected_words(truth), 0.02)
    scores = {w.text: w.score for w in result.words}
    assert scores["ICE"] < 0.5 and min(s for word, s in scores.items() if word != "ICE") > 0.8


def test_the_frame_duration_comes_from_the_config_and_the_rate(tones):
    model, processor, forward = tones(rate=8000)  # same 320-sample stride: 40 ms frames
    assert frame_duration(model.config, 8000) == 0.04
    audio, truth = forward.track("NO TEA", seconds=4.0)
    result = align(model, audio, "NO TEA", processor=processor, sampling_rate=8000)
    assert result.frame_duration == 0.04
    assert_within_one_frame([(w.text, w.start, w.end) for w in result.words], expected_words(truth), 0.04)
    assert frame_duration(tiny_config(), 16000) == 20 / 16000  # conv_stride (5, 2, 2)


def test_long_audio_in_windows_loses_no_word_at_the_seams(tones):
    model, processor, forward = tones()
    text = " ".join(["TEA CAT NOT ON ICE", "HOT KEN", "ANT TOE NICE", "CHAT IN THE NET"] * 3)
    audio, truth = forward.track(text, seconds=66.0, gap=9)
    whole = align(model, audio, text, processor=processor, window_s=100.0, chunk_length_s=100.0)
    windowed = align(
        model, audio, text, processor=processor, window_s=6.0, margin_s=1.5, chunk_length_s=5.0, stride_length_s=1.0
    )
    expected = expected_words(truth)
    assert len(expected) == 42
    for result in (whole, windowed):
        assert_within_one_frame([(w.text, w.start, w.end) for w in result.words], expected, 0.02)
    assert [t.start_frame for t in windowed.tokens if t.text != "|"] == [
        t.start_frame for t in whole.tokens if t.text != "|"
    ]


def test_a_long_pause_longer_than_the_window(tones):
    model, processor, forward = tones()
    first, truth_a = forward.track("TEA CAT", seconds=3.0)
    second, truth_b = forward.track("NOT ON", seconds=3.0)
    audio = np.concatenate([first, np.zeros(16000 * 10, np.float32), second])
    result = align(model, audio, "TEA CAT NOT ON", processor=processor, window_s=4.0, margin_s=1.0)
    shift = 13.0
    expected = expected_words(truth_a) + [(w, s + shift, e + shift) for w, s, e in expected_words(truth_b)]
    assert_within_one_frame([(w.text, w.start, w.end) for w in result.words], expected, 0.02)


# ----------------------------------------------------------------------------------------------- transcripts


def test_characters_outside_the_vocabulary(tones):
    model, processor, forward = tones()
    # "É" is not in the vocabulary; its burst plays the E tone
    audio, truth = forward.track("CAFÉ TEA", seconds=4.0, play={"F": "H", "É": "E"})
    # F is not in this vocabulary either (its burst plays H): "CAFÉ" is C A <star> <star>
    starred = align(model, audio, "CAFÉ, TEA!", processor=processor)
    assert [w.text for w in starred.words] == ["CAFÉ,", "TEA!"]
    assert [t.text for t in starred.tokens] == ["C", "A", "F", "É", "|", "T", "E", "A"]
    cafe = starred.words[0]
    assert_within_one_frame([(c.text, c.start, c.end) for c in cafe.chars[:4]], truth[:4], 0.02)
    assert cafe.score > 0.8
    assert cafe.chars[4].text == "," and cafe.chars[4].score is None and cafe.chars[4].start == cafe.chars[4].end
    dropped = align(model, audio, "CAFÉ TEA", processor=processor, unknown="drop")
    assert [t.text for t in dropped.tokens] == ["C", "A", "|", "T", "E", "A"]
    assert dropped.words[1].start == pytest.approx(truth[5][1], abs=0.02)
    unk = align(model, audio, "CAFÉ TEA", processor=processor, unknown="unk")
    # the model gives <unk> almost no probability anywhere
    assert [t.text for t in unk.tokens][:4] == ["C", "A", "F", "É"]
    assert max(c.score for c in unk.words[0].chars[2:]) < 1e-3 and unk.words[0].score < 0.5 < cafe.score
    with pytest.raises(ValueError, match=r"character 'F' \(in the word 'CAFÉ'\) is not in the model's vocabulary"):
        align(model, audio, "CAFÉ TEA", processor=processor, unknown="error")
    with pytest.raises(ValueError, match="unknown='maybe': choose one of star, unk, drop, error"):
        align(model, audio, "TEA", processor=processor, unknown="maybe")


def test_lower_case_transcripts_and_empty_ones(tones):
    model, processor, forward = tones()
    audio, _ = forward.track(TEXT, seconds=6.0)
    lower = align(model, audio, TEXT.lower(), processor=processor)
    assert [w.text for w in lower.words] == TEXT.lower().split()
    assert [w.start for w in lower.words] == [w.start for w in align(model, audio, TEXT, processor=processor).words]
    empty = align(model, audio, "  ", processor=processor)
    assert empty.words == [] and empty.tokens == [] and empty.score < 0


def test_a_list_of_clips_is_batched_and_equals_one_by_one(tones):
    model, processor, forward = tones()
    texts = ["TEA CAT", "NOT ON ICE", "HE"]
    clips = [forward.track(text, seconds=s)[0] for text, s in zip(texts, [3.0, 4.5, 1.5], strict=True)]
    together = align(model, clips, texts, processor=processor)
    assert [r.to_dict() for r in together] == [
        align(model, c, t, processor=processor).to_dict() for c, t in zip(clips, texts, strict=True)
    ]
    with pytest.raises(ValueError, match="3 clips need as many transcripts"):
        align(model, clips, texts[:2], processor=processor)


def test_too_short_audio_for_the_transcript_is_a_clear_error(tones):
    model, processor, _ = tones()
    with pytest.raises(ValueError, match="too short for the rest of the transcript"):
        align(model, np.zeros(1600, np.float32), "A VERY LONG SENTENCE INDEED", processor=processor)


def test_a_saved_random_model_by_path_on_real_length_audio(tmp_path):
    """The whole path: directory -> pipeline components -> model emissions -> spans inside the clip."""
    directory = save_model_dir(tmp_path / "model")
    result = align(str(directory), noise(2.0), "NICE HAT")
    assert [w.text for w in result.words] == ["NICE", "HAT"]
    assert 0 <= result.words[0].start < result.words[0].end <= result.words[1].start < result.words[1].end <= 2.0
    assert all(0 < w.score <= 1 for w in result.words)
    with pytest.raises(ValueError, match="pass processor="):
        align(HfWav2Vec2ForCTC(small_config()), noise(1.0), "HAT")


# ----------------------------------------------------------------------------------------------- formats


@pytest.fixture
def alignment(tones):
    model, processor, forward = tones()
    audio, _ = forward.track(TEXT, seconds=6.0)
    return align(model, audio, TEXT, processor=processor)


def test_json_round_trips_the_spans(alignment):
    data = json.loads(to_json(alignment))
    assert [w["text"] for w in data["words"]] == TEXT.split()
    assert data["words"][1]["start"] == round(alignment.words[1].start, 3)
    assert [c["text"] for c in data["words"][0]["chars"]] == list("TEA")


def test_srt_and_vtt_per_word_and_per_n_words(alignment):
    words = alignment.words
    srt = to_srt(alignment)
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == 5 and blocks[1].split("\n")[2] == "CAT"
    start_ms = round(words[1].start * 1000)
    assert blocks[1].split("\n")[1].startswith(f"00:00:{start_ms // 1000:02d},{start_ms % 1000:03d} --> ")
    pairs = to_srt(alignment, words_per_cue=2).strip().split("\n\n")
    assert [b.split("\n")[2] for b in pairs] == ["TEA CAT", "NOT ON", "ICE"]
    vtt = to_vtt(alignment, words_per_cue=3)
    assert vtt.startswith("WEBVTT\n\n") and "TEA CAT NOT" in vtt and "." in vtt.split("\n")[2]


def test_textgrid_tiles_the_clip_with_word_and_char_tiers(alignment):
    grid = to_textgrid(alignment)
    assert grid.startswith('File type = "ooTextFile"\nObject class = "TextGrid"')
    assert 'name = "words"' in grid and 'name = "chars"' in grid
    tiers = grid.split("item [2]:")
    word_tier = tiers[0]
    xmins = [float(x) for x in _values(word_tier, "xmin")][2:]  # skip the grid's and the tier's own
    xmaxs = [float(x) for x in _values(word_tier, "xmax")][2:]
    assert xmins[0] == 0 and xmaxs[-1] == alignment.duration
    assert all(math.isclose(a, b) for a, b in zip(xmaxs[:-1], xmins[1:], strict=True))  # intervals tile the tier
    texts = [t for t in _values(word_tier, "text") if t != '""']
    assert texts == [f'"{w}"' for w in TEXT.split()]


def _values(block: str, key: str) -> list[str]:
    return [line.split("=", 1)[1].strip() for line in block.splitlines() if line.strip().startswith(f"{key} =")]


def test_audacity_labels(alignment):
    lines = to_audacity(alignment).splitlines()
    assert len(lines) == 5
    start, end, text = lines[2].split("\t")
    assert text == "NOT" and float(start) == pytest.approx(alignment.words[2].start, abs=1e-6)
    assert float(end) == pytest.approx(alignment.words[2].end, abs=1e-6)


def test_write_picks_the_format_from_the_name_and_never_overwrites(alignment, tmp_path):
    for name, fmt in [
        ("a.json", "json"),
        ("a.srt", "srt"),
        ("a.vtt", "vtt"),
        ("a.TextGrid", "textgrid"),
        ("a.txt", "audacity"),
    ]:
        path = write_alignment(alignment, tmp_path / name)
        assert path.read_text(encoding="utf-8") == FORMATS[fmt](alignment)
    with pytest.raises(FileExistsError, match="a.srt: exists"):
        write_alignment(alignment, tmp_path / "a.srt")
    write_alignment(alignment, tmp_path / "a.srt", overwrite=True)
    with pytest.raises(ValueError, match=r"a\.xyz: cannot tell the format"):
        write_alignment(alignment, tmp_path / "a.xyz")


# ----------------------------------------------------------------------------------------------- command line


@pytest.fixture
def tone_model_dir(monkeypatch, tmp_path):
    """A saved model whose class's forward is the soft tone model (replaced for the test only)."""
    forward = SoftTones(16000)
    monkeypatch.setattr(HfWav2Vec2ForCTC, "forward", lambda self, input_values, **kw: forward(input_values))
    return save_model_dir(tmp_path / "tone-model", do_normalize=False), forward


def test_align_command(tone_model_dir, tmp_path, capsys):
    import soundfile as sf

    from hf_wav2vec2 import cli

    directory, forward = tone_model_dir
    audio, truth = forward.track(TEXT, seconds=6.0)
    wav = tmp_path / "clip.wav"
    sf.write(wav, audio, 16000, subtype="FLOAT")
    assert cli.main(["align", str(wav), TEXT, "--model", str(directory)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert_within_one_frame([(w["text"], w["start"], w["end"]) for w in data["words"]], expected_words(truth), 0.021)
    (tmp_path / "words.txt").write_text(TEXT + "\n", encoding="utf-8")
    grid = tmp_path / "out" / "clip.TextGrid"
    argv = ["align", str(wav), "--text_file", str(tmp_path / "words.txt"), "-m", str(directory), "-o", str(grid)]
    assert cli.main(argv) == 0
    assert grid.read_text(encoding="utf-8").startswith('File type = "ooTextFile"')
    assert cli.main(argv) == 2 and "clip.TextGrid: exists; pass --overwrite" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite", "--format", "srt"]) == 0
    assert grid.read_text(encoding="utf-8").startswith("1\n00:00:00,140 --> ")
    for bad, message in [
        (["align", str(wav), "-m", str(directory)], "either as TRANSCRIPT or with --text_file"),
        (["align", str(wav), TEXT, "-m", str(directory), "-o", str(wav)], "would overwrite an input file"),
        (["align", str(wav), TEXT, "-m", str(directory), "-o", str(tmp_path / "a.doc")], "cannot tell the format"),
    ]:
        assert cli.main(bad) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert cli.main(["align", str(wav), "A VERY LONG TEXT " * 40, "-m", str(directory)]) == 1
    assert "too short for the rest of the transcript" in capsys.readouterr().err
