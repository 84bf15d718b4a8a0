"""Tests for hf_wav2vec2.decoding: greedy CTC decoding, beam search with KenLM, and the pure-Python ARPA builder."""

from __future__ import annotations

import gzip
import json
import math
import random
import sys

import numpy as np
import pytest

from hf_wav2vec2.decoding import (
    ArpaModel,
    CTCVocabulary,
    GreedyCTCDecoder,
    WordOffset,
    build_arpa,
    greedy_decode,
    is_flashlight_available,
    read_arpa_unigrams,
    to_log_probs,
)

requires_flashlight = pytest.mark.skipif(
    not is_flashlight_available(), reason="flashlight-text is not installed (pip install flashlight-text)"
)

VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
for _i, _c in enumerate("ETAOHCKSNRDLMZ'"):
    VOCAB[_c] = 5 + _i


def emissions(frames: list, floor: float = 1e-4) -> np.ndarray:
    """Log-probs from a frame spec: each frame is a token (prob 0.95) or a {token: prob} dict; the rest share floor."""
    out = np.full((len(frames), len(VOCAB)), floor)
    for t, frame in enumerate(frames):
        for token, p in ({frame: 0.95} if isinstance(frame, str) else frame).items():
            out[t, VOCAB[token]] = p
    out /= out.sum(axis=1, keepdims=True)
    return np.log(out).astype(np.float32)


# "THE CAT" where the first letter of the second word is a near-tie that acoustically favours K.
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


@pytest.fixture
def tiny_arpa(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(TINY_ARPA)
    return path


# ---------------------------------------------------------------------------------------------- greedy


def test_greedy_decode_hand_made_logits():
    frames = ["<pad>", "|", "T", "T", "<pad>", "H", "E", "|", "|", "C", "<pad>", "A", "A", "T", "|", "<pad>"]
    assert greedy_decode(emissions(frames), VOCAB) == "THE CAT"
    # a blank separates a doubled letter; repeats without one collapse
    frames = ["S", "E", "E", "<pad>", "E", "|", "M", "O", "O", "N"]
    assert greedy_decode(emissions(frames), VOCAB) == "SEE MON"


def test_greedy_word_offsets_and_special_tokens():
    decoder = GreedyCTCDecoder(VOCAB)
    frames = ["<s>", "T", "H", "<pad>", "E", "E", "|", "<unk>", "C", "A", "T", "</s>"]
    hyp = decoder.decode_hypothesis(emissions(frames))
    assert hyp.text == "THE CAT"  # <s>, </s>, <unk> are never written out
    assert hyp.words == [WordOffset("THE", 1, 6), WordOffset("CAT", 8, 11)]
    assert hyp.words[1].start_time(0.02) == pytest.approx(0.16)  # the frame duration is the model's, not a constant
    assert hyp.words[1].end_time(0.01) == pytest.approx(0.11)
    assert hyp.score == pytest.approx(hyp.am_score) and hyp.score < 0


def test_greedy_accepts_torch_logits_and_a_larger_head():
    import torch

    log_probs = emissions(["C", "A", "T"])
    wider = np.concatenate([log_probs, np.full((3, 4), -50.0, np.float32)], axis=1)  # head larger than vocab
    assert greedy_decode(torch.from_numpy(wider), VOCAB) == "CAT"
    assert GreedyCTCDecoder(VOCAB).decode(np.zeros((0, len(VOCAB)), np.float32)) == ""


def test_greedy_batch_ignores_padding_frames():
    batch = np.stack([emissions(["C", "A", "T", "Z", "Z"]), emissions(["T", "H", "E", "<pad>", "<pad>"])])
    decoder = GreedyCTCDecoder(VOCAB)
    assert decoder.decode_batch(batch, [3, 5]) == ["CAT", "THE"]
    assert decoder.decode_batch(batch) == ["CATZ", "THE"]
    with pytest.raises(ValueError, match="lengths"):
        decoder.decode_batch(batch, [3])


def test_to_log_probs_is_idempotent_and_rejects_nan():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 7)).astype(np.float32) * 5
    once = to_log_probs(logits)
    np.testing.assert_allclose(np.exp(once).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(to_log_probs(once), once, atol=1e-5)
    logits[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        to_log_probs(logits)


def test_vocabulary_validation_and_from_tokenizer(tmp_path):
    with pytest.raises(ValueError, match="without gaps"):
        CTCVocabulary({"<pad>": 0, "|": 2})
    with pytest.raises(ValueError, match="blank_token"):
        CTCVocabulary({"|": 0, "A": 1})
    vocab = CTCVocabulary(VOCAB)
    assert vocab.spell("CAT'S") == [VOCAB[c] for c in "CAT'S"]
    assert vocab.spell("CAX") is None
    assert vocab.special_ids == {1, 2, 3}

    from transformers import Wav2Vec2CTCTokenizer

    (tmp_path / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    from_tok = CTCVocabulary.from_tokenizer(tokenizer)
    assert from_tok.blank_id == 0 and from_tok.delimiter_id == 4 and from_tok.tokens == vocab.tokens


# ------------------------------------------------------------------------------------------ beam search


@requires_flashlight
def test_lm_flips_a_near_tie_the_way_the_lm_says(tiny_arpa):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    log_probs = emissions(NEAR_TIE)
    assert greedy_decode(log_probs, VOCAB) == "THE KAT"
    no_lm_weight = CTCBeamSearchDecoder(VOCAB, tiny_arpa, alpha=0.0, beta=0.0)
    assert no_lm_weight.decode(log_probs) == "THE KAT"
    with_lm = CTCBeamSearchDecoder(VOCAB, tiny_arpa, alpha=0.5, beta=0.0)
    hyp = with_lm.decode_hypothesis(log_probs)
    assert hyp.text == "THE CAT"
    # LM part: alpha * ln P(THE|<s>) P(CAT|THE) P(</s>|CAT), each 10^-0.1 in the ARPA file
    assert hyp.lm_score == pytest.approx(0.5 * -0.3 * math.log(10), abs=1e-4)
    assert [w.word for w in hyp.words] == ["THE", "CAT"] and hyp.words[1].start_frame == 4
    # and with a lexicon holding both spellings, the LM decides there too
    lexicon = ["THE", "CAT", "KAT"]
    assert CTCBeamSearchDecoder(VOCAB, tiny_arpa, alpha=0.0, beta=0.0, lexicon=lexicon).decode(log_probs) == "THE KAT"
    assert CTCBeamSearchDecoder(VOCAB, tiny_arpa, alpha=0.5, beta=0.0, lexicon=lexicon).decode(log_probs) == "THE CAT"


@requires_flashlight
def test_no_lm_beam_search_matches_greedy_on_clear_input():
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    decoder = CTCBeamSearchDecoder(VOCAB)
    log_probs = emissions(NEAR_TIE)
    best = decoder.decode_nbest(log_probs, n=3)
    assert [h.text for h in best[:2]] == ["THE KAT", "THE CAT"]
    assert best[0].score >= best[1].score
    assert decoder.decode(np.zeros((0, len(VOCAB)), np.float32)) == ""
    # special tokens are never emitted, even where they are the argmax
    assert decoder.decode(emissions(["C", {"<unk>": 0.6, "A": 0.3}, "T"])) == "CAT"


@requires_flashlight
def test_lexicon_constrains_output_to_lexicon_words(tmp_path):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    # acoustics clearly say "KAT"; only lexicon words may come out
    log_probs = emissions(["T", "H", "E", "|", {"K": 0.7, "C": 0.25}, "A", "T", "|", "M", "A", "T"])
    assert greedy_decode(log_probs, VOCAB) == "THE KAT MAT"
    lexicon = ["THE", "CAT", "HAT", "MAT"]
    hyp = CTCBeamSearchDecoder(VOCAB, lexicon=lexicon).decode_hypothesis(log_probs)
    assert hyp.text == "THE CAT MAT"
    assert all(w.word in lexicon for w in hyp.words)
    # from a lexicon file (first field per line); unspellable words are skipped, not fatal
    path = tmp_path / "lexicon.txt"
    path.write_text("THE T H E |\nCAT C A T |\nMAT M A T |\nQUX Q U X |\n")
    assert CTCBeamSearchDecoder(VOCAB, lexicon=path).decode(log_probs) == "THE CAT MAT"
    with pytest.raises(ValueError, match="no lexicon word"):
        CTCBeamSearchDecoder(VOCAB, lexicon=["QUX"])


@requires_flashlight
def test_hotwords_pull_the_beam_towards_them(tiny_arpa):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    log_probs = emissions(NEAR_TIE)
    assert CTCBeamSearchDecoder(VOCAB, hotwords=["CAT"], hotword_weight=1.0).decode(log_probs) == "THE CAT"
    assert CTCBeamSearchDecoder(VOCAB, lexicon=["THE", "KAT", "CAT"], hotwords={"CAT": 1.0}).decode(log_probs) == (
        "THE CAT"
    )
    # a hotword outweighs the LM's preference
    decoder = CTCBeamSearchDecoder(VOCAB, tiny_arpa, alpha=0.5, beta=0.0, hotwords={"KAT": 5.0})
    assert decoder.decode(log_probs) == "THE KAT"
    with pytest.raises(ValueError, match="cannot be spelled"):
        CTCBeamSearchDecoder(VOCAB, hotwords=["QUX"])


@requires_flashlight
def test_batch_decode_ignores_padding_frames(tiny_arpa):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    first = emissions(NEAR_TIE)
    second = emissions(["T", "H", "E", "|", "H", "A", "T"] + ["Z"] * (len(NEAR_TIE) - 7))
    batch = np.stack([first, second])
    for decoder in (
        CTCBeamSearchDecoder(VOCAB, tiny_arpa, alpha=0.5, beta=0.0),
        CTCBeamSearchDecoder(VOCAB, lexicon=["THE", "CAT", "HAT", "HATZ"]),
    ):
        assert decoder.decode_batch(batch, lengths=[len(NEAR_TIE), 7]) == ["THE CAT", "THE HAT"]
        assert decoder.decode_batch([first, second[:7]]) == ["THE CAT", "THE HAT"]
    assert CTCBeamSearchDecoder(VOCAB).decode_batch(batch) == ["THE KAT", "THE HATZ"]


@requires_flashlight
def test_from_tokenizer_and_bad_lm_files(tmp_path):
    from transformers import Wav2Vec2CTCTokenizer

    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    (tmp_path / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    assert CTCBeamSearchDecoder.from_tokenizer(tokenizer, beam_size=10).decode(emissions(["C", "A", "T"])) == "CAT"
    with pytest.raises(FileNotFoundError, match="no such KenLM model"):
        CTCBeamSearchDecoder(VOCAB, tmp_path / "missing.arpa")
    garbage = tmp_path / "garbage.arpa"
    garbage.write_text("\\data\\\nngram 1=2\n\nnot an arpa file\n")
    with pytest.raises(ValueError, match="could not load the KenLM model") as err:
        CTCBeamSearchDecoder(VOCAB, garbage, lexicon=["CAT"])
    assert "\n" not in str(err.value)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\0")
    with pytest.raises(ValueError, match="unigrams="):
        CTCBeamSearchDecoder(VOCAB, binary)


def test_missing_flashlight_gives_install_hint(monkeypatch):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    # A None entry in sys.modules makes the import raise ImportError, as if the package were absent.
    for name in ("flashlight", "flashlight.lib", "flashlight.lib.text", "flashlight.lib.text.decoder"):
        monkeypatch.setitem(sys.modules, name, None)
    assert not is_flashlight_available()
    with pytest.raises(ImportError, match="pip install flashlight-text"):
        CTCBeamSearchDecoder(VOCAB)
    assert greedy_decode(emissions(["C", "A", "T"]), VOCAB) == "CAT"  # greedy needs nothing


# --------------------------------------------------------------------------------------------- n-grams

CORPUS = [
    "THE CAT SAT ON THE MAT",
    "THE CAT RAN",
    "A DOG SAT ON A MAT",
    "THE DOG AND THE CAT",
    "A CAT",
    "",
    "THE RAT SAT",
]


def _random_corpus(seed: int = 0, n: int = 150) -> list[str]:
    rng = random.Random(seed)
    words = "THE CAT SAT ON A MAT DOG RAN HAT TO".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 7))) for _ in range(n)] + CORPUS


@pytest.mark.parametrize("order", [2, 3, 4])
def test_build_arpa_is_a_normalised_backoff_model(tmp_path, order):
    path = tmp_path / f"lm{order}.arpa"
    stats = build_arpa(_random_corpus(order), path, order=order)
    model = ArpaModel(path)
    assert model.order == order and len(stats.counts) == order
    assert {"<s>", "</s>", "<unk>"} <= set(model.vocabulary)
    assert model.log10_probs[("<s>",)] == -99
    predictable = [w for w in model.vocabulary if w != "<s>"]
    contexts = [(), ("<s>",), ("THE",), ("<s>", "THE"), ("THE", "CAT"), ("CAT", "SAT", "ON"), ("ZEBRA", "QUX")]
    for context in contexts:
        total = sum(10 ** model.log10_prob(w, context) for w in predictable)
        assert total == pytest.approx(1.0, abs=1e-4), (order, context)
    assert model.log10_prob("<unk>") < model.log10_prob("THE")
    for d1, d2, d3 in stats.discounts:
        assert 0 < d1 < 1 and 0 < d2 < 2 and 0 < d3 < 3


def test_build_arpa_reads_a_text_file_and_validates(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(CORPUS) + "\n")
    stats = build_arpa(text, tmp_path / "out" / "lm.arpa", order=3)
    assert stats.path.exists()
    header = stats.path.read_text().split("\n\n")[0].splitlines()
    assert header == [
        "\\data\\",
        f"ngram 1={stats.counts[0]}",
        f"ngram 2={stats.counts[1]}",
        f"ngram 3={stats.counts[2]}",
    ]
    assert sorted(read_arpa_unigrams(stats.path)) == sorted(ArpaModel(stats.path).vocabulary)
    with pytest.raises(ValueError, match="at least 2"):
        build_arpa(CORPUS, tmp_path / "x.arpa", order=1)
    with pytest.raises(ValueError, match="no words"):
        build_arpa(["", "  "], tmp_path / "x.arpa")


@requires_flashlight
def test_built_arpa_loads_in_kenlm_and_matches_python_scores(tmp_path):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    from hf_wav2vec2.decoding.beam_search import _stderr_to_buffer

    path = tmp_path / "lm.arpa"
    build_arpa(_random_corpus(), path, order=3)
    model = ArpaModel(path)
    words = [w for w in model.vocabulary if w not in ("<s>", "</s>")] + ["ZEBRA"]
    ids = {w: i for i, w in enumerate(words)}
    with _stderr_to_buffer():
        kenlm = KenLM(str(path), Dictionary(words))
    for sentence in (["THE", "CAT", "SAT"], ["A", "ZEBRA", "ON", "THE", "MAT"], ["MAT"], ["TO", "TO", "TO", "DOG"]):
        state, total = kenlm.start(False), 0.0
        for word in sentence:
            state, score = kenlm.score(state, ids[word])
            total += score
        total += kenlm.finish(state)[1]
        assert total == pytest.approx(model.score_sentence(sentence), abs=1e-4)


@requires_flashlight
def test_decoding_with_a_built_arpa(tmp_path):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    path = tmp_path / "lm.arpa"
    build_arpa(CORPUS * 3, path, order=3)
    log_probs = emissions(NEAR_TIE)
    assert CTCBeamSearchDecoder(VOCAB, path, alpha=0.0, beta=0.0).decode(log_probs) == "THE KAT"
    assert CTCBeamSearchDecoder(VOCAB, path, alpha=0.5, beta=0.0).decode(log_probs) == "THE CAT"
    lexicon = read_arpa_unigrams(path) + ["KAT"]
    assert CTCBeamSearchDecoder(VOCAB, path, alpha=0.5, beta=0.0, lexicon=lexicon).decode(log_probs) == "THE CAT"
    # gzipped ARPA files work too (KenLM reads them; the vocabulary is read through gzip)
    gz = tmp_path / "lm.arpa.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_arpa_unigrams(gz) == read_arpa_unigrams(path)
    assert CTCBeamSearchDecoder(VOCAB, gz, alpha=0.5, beta=0.0).decode(log_probs) == "THE CAT"


@requires_flashlight
def test_warns_when_lm_words_cannot_be_spelled(tmp_path, caplog):
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    path = tmp_path / "lower.arpa"
    build_arpa([line.lower() for line in CORPUS], path, order=2)
    with caplog.at_level("WARNING", logger="hf_wav2vec2.decoding.beam_search"):
        CTCBeamSearchDecoder(VOCAB, path)
    assert "normalised like the transcripts" in caplog.text
