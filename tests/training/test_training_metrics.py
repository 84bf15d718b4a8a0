"""WER / CER and the Trainer compute_metrics hook (hf_wav2vec2.training.metrics)."""

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer
from hf_wav2vec2.training.metrics import (
    UNKNOWN_CHAR,
    Curve,
    argmax_logits,
    cer,
    char_error_counts,
    decode_predictions,
    error_rates,
    finetuning_panels,
    make_compute_metrics,
    plot_training_curves,
    running_mean,
    wer,
    word_error_counts,
)
from hf_wav2vec2.training.vocab import TextNormalization, build_vocab, tokenizer_kwargs, write_vocab


class TestRates:
    def test_one_substitution(self):
        assert wer(["the cat sat"], ["the cat sit"]) == pytest.approx(1 / 3)
        # 11 characters including the two spaces, one substituted
        assert cer(["the cat sat"], ["the cat sit"]) == pytest.approx(1 / 11)

    def test_single_strings(self):
        assert wer("the cat sat", "the cat sat") == 0.0

    def test_insertion_deletion_substitution(self):
        counts = word_error_counts(["a b c d"], ["a x c d e"])  # b->x, +e
        assert (counts.substitutions, counts.deletions, counts.insertions, counts.hits) == (1, 0, 1, 3)
        assert counts.rate == pytest.approx(2 / 4)
        assert wer(["a b c d"], ["a d"]) == pytest.approx(2 / 4)  # two deletions
        assert wer(["a b"], ["a b c d e"]) == pytest.approx(3 / 2)  # WER can exceed 1

    def test_corpus_level_not_mean_of_utterances(self):
        # per-utterance rates 0 and 1 would average 0.5; the corpus rate is 1 error in 5 words
        assert wer(["a b c d", "e"], ["a b c d", "f"]) == pytest.approx(1 / 5)

    def test_cer_counts_spaces_and_ignores_extra_whitespace(self):
        assert cer(["ab cd"], ["abcd"]) == pytest.approx(1 / 5)
        assert cer(["ab  cd "], ["ab cd"]) == 0.0

    def test_empty_references_and_hypotheses(self):
        assert wer(["a b"], [""]) == 1.0
        counts = word_error_counts(["", "a b"], ["x y", "a b"])  # empty reference: both words are insertions
        assert counts.insertions == 2 and counts.reference_length == 2 and counts.rate == 1.0
        assert char_error_counts([""], ["ab"]).insertions == 2
        assert wer([""], [""]) == 0.0
        assert wer([""], ["a"]) == float("inf")

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match="references"):
            wer(["a", "b"], ["a"])

    def test_error_rates(self):
        rates = error_rates(["the cat sat"], ["the cat sit"])
        assert rates == {"wer": pytest.approx(1 / 3), "cer": pytest.approx(1 / 11)}


@pytest.fixture
def tokenizer(tmp_path):
    path = write_vocab(build_vocab(["the cat sat", "all good"]), tmp_path)
    return HfWav2Vec2CTCTokenizer(str(path), **tokenizer_kwargs())


def one_hot_logits(ids, vocab_size):
    logits = np.full((len(ids), vocab_size), -5.0, dtype=np.float32)
    logits[np.arange(len(ids)), ids] = 5.0
    return logits


def frames_for(tokenizer, text):
    """A CTC frame sequence for `text`: each character twice, blanks between double letters, padding blanks."""
    blank = tokenizer.pad_token_id
    frames = [blank]
    for char in text:
        token = tokenizer.convert_tokens_to_ids("|" if char == " " else char)
        if frames[-1] == token:
            frames.append(blank)
        frames += [token, token]
    return frames + [blank, blank]


class TestComputeMetrics:
    def labels(self, tokenizer, texts):
        ids = [tokenizer(text).input_ids for text in texts]
        longest = max(map(len, ids))
        return np.array([row + [-100] * (longest - len(row)) for row in ids])

    def test_logits_and_padded_labels(self, tokenizer):
        refs = ["the cat sat", "all good"]
        hyps = ["the cat aat", "all good"]  # one wrong character ("i" is not in this vocabulary)
        frame_ids = [frames_for(tokenizer, text) for text in hyps]
        length = max(map(len, frame_ids))
        vocab_size = len(tokenizer)
        # Trainer pads predictions of different batches with -100
        logits = np.full((2, length, vocab_size), -100.0, dtype=np.float32)
        for row, ids in enumerate(frame_ids):
            logits[row, : len(ids)] = one_hot_logits(ids, vocab_size)
        prediction = EvalPrediction(predictions=logits, label_ids=self.labels(tokenizer, refs))
        metrics = make_compute_metrics(tokenizer)(prediction)
        # 1 wrong word in 5, 1 wrong character in 11 + 8
        assert metrics["wer"] == pytest.approx(1 / 5)
        assert metrics["cer"] == pytest.approx(1 / 19)

    def test_argmax_ids_with_padding_and_double_letters(self, tokenizer):
        refs = ["all good"]
        ids = frames_for(tokenizer, "all good")
        logits = torch.from_numpy(one_hot_logits(ids, len(tokenizer)))[None]
        predicted = argmax_logits(logits, None).numpy()
        predicted = np.concatenate([predicted, np.full((1, 3), -100)], axis=1)  # Trainer's cross-batch padding
        hypotheses, references = decode_predictions(tokenizer, predicted, self.labels(tokenizer, refs))
        # labels are decoded without CTC collapsing: "ll" and "oo" survive
        assert references == ["all good"] and hypotheses == ["all good"]
        prediction = EvalPrediction(predictions=predicted, label_ids=self.labels(tokenizer, refs))
        metrics = make_compute_metrics(tokenizer)(prediction)
        assert metrics == {"wer": 0.0, "cer": 0.0}

    def test_unknown_reference_characters_count_as_errors(self, tokenizer):
        labels = self.labels(tokenizer, ["the caz"])  # "z" is outside the vocabulary -> <unk>
        assert tokenizer.unk_token_id in labels[0]
        predicted = np.array([frames_for(tokenizer, "the ca")])
        _, references = decode_predictions(tokenizer, predicted, labels)
        assert references == [f"the ca{UNKNOWN_CHAR}"]
        metrics = make_compute_metrics(tokenizer)(EvalPrediction(predictions=predicted, label_ids=labels))
        assert metrics["wer"] == pytest.approx(1 / 2) and metrics["cer"] == pytest.approx(1 / 7)
        # fine-tuning scores with its transcript normalization on both sides: the unknown character stays an error
        normalized = make_compute_metrics(tokenizer, normalizer=TextNormalization().normalize)(
            EvalPrediction(predictions=predicted, label_ids=labels)
        )
        assert normalized == metrics

    def test_normalizer_applies_to_both_sides(self, tokenizer):
        labels = self.labels(tokenizer, ["the cat"])
        predicted = np.array([frames_for(tokenizer, "the cat sat")])
        strict = make_compute_metrics(tokenizer)(EvalPrediction(predictions=predicted, label_ids=labels))
        lenient = make_compute_metrics(tokenizer, normalizer=lambda text: " ".join(text.split()[:2]))(
            EvalPrediction(predictions=predicted, label_ids=labels)
        )
        assert strict["wer"] == pytest.approx(1 / 2) and lenient["wer"] == 0.0


class TestCurves:
    LOG = [
        {"loss": 3.0, "grad_norm": 10.0, "learning_rate": 1e-4, "step": 1},
        {"loss": 2.0, "grad_norm": 8.0, "learning_rate": 2e-4, "step": 2},
        {"eval_loss": 2.5, "eval_wer": 1.0, "eval_cer": 0.8, "step": 2},
        {"loss": 1.0, "grad_norm": 4.0, "learning_rate": 1e-4, "step": 3},
        {"train_runtime": 1.0, "train_loss": 2.0, "step": 3},
    ]

    def test_running_mean_skips_nan(self):
        values = running_mean([float("nan"), 1.0, 3.0, float("nan"), 5.0], window=2)
        assert np.isnan(values[0]) and values[1:] == [1.0, 2.0, 2.0, 4.0]

    def test_finetuning_panels_from_trainer_log(self):
        panels = dict(finetuning_panels(self.LOG, final={"eval_wer": 0.5, "eval_cer": 0.25}, final_step=3))
        train_loss, eval_loss = panels["CTC loss"]
        assert (list(train_loss.x), list(train_loss.y)) == ([1, 2, 3], [3.0, 2.0, 1.0])
        assert (list(eval_loss.x), list(eval_loss.y)) == ([2], [2.5])
        rates = {curve.label: (list(curve.x), list(curve.y)) for curve in panels["error rate (%)"]}
        assert rates == {
            "eval WER": ([2], [100.0]),
            "WER (final)": ([3], [50.0]),
            "eval CER": ([2], [80.0]),
            "CER (final)": ([3], [25.0]),
        }
        assert list(panels["learning rate"][0].y) == [1e-4, 2e-4, 1e-4]
        assert list(panels["gradient norm"][0].y) == [10.0, 8.0, 4.0]
        # without evaluation data the final numbers are on the training clips
        panels = dict(
            finetuning_panels(self.LOG[:2], final={"train_eval_wer": 0.9, "train_eval_cer": 0.3}, final_step=2)
        )
        assert [c.label for c in panels["error rate (%)"] if len(c.x)] == [
            "WER (final, on the training clips)",
            "CER (final, on the training clips)",
        ]

    def test_png_written_with_a_second_axis(self, tmp_path):
        pytest.importorskip("matplotlib")
        x = list(range(30))
        panels = [
            ("loss", [Curve("loss", x, [1 / (i + 1) for i in x])]),
            (
                "temperature / lr",
                [
                    Curve("temperature", x, [2.0 - i / 30 for i in x], smooth=False),
                    Curve("lr", x, [1e-3] * 30, smooth=False, right_axis=True, color="tab:red"),
                ],
            ),
            ("nothing logged", [Curve("eval WER", [], [])]),  # left out, not drawn empty
        ]
        path = plot_training_curves(panels, tmp_path / "curves.png")
        assert path == tmp_path / "curves.png"
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (990, 315)  # 2 panels in one row of 2 columns, 5.5 x 3.5 inches at 90 dpi
        assert plot_training_curves([("empty", [Curve("x", [], [])])], tmp_path / "none.png") is None
        assert not (tmp_path / "none.png").exists()
