"""Word and character error rates, computed offline with jiwer, and the ``compute_metrics`` hook of ``Trainer``.

The rates are corpus-level, as in the paper and in every ASR benchmark: the edit operations of all utterances are
summed and divided by the total number of reference words (characters), rather than averaging per-utterance rates
(which would let a one-word utterance weigh as much as a fifty-word one). ``evaluate.load("wer")`` is deliberately not
used: it downloads its metric script from the Hub, which fails offline.

:func:`plot_training_curves` draws the ``training_curves.png`` of fine-tuning (and can draw pre-training's): panels of
curves over updates, noisy ones with a running mean, optionally a second y axis (e.g. the learning rate).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np

logger = logging.getLogger(__name__)

LABEL_PAD_ID = -100
# Stands for a reference character outside the vocabulary (decoded from <unk>); no model can output it.
UNKNOWN_CHAR = "\N{REPLACEMENT CHARACTER}"


@dataclass
class ErrorCounts:
    """Edit operations summed over a corpus; ``rate`` is (S + D + I) / N with N = S + D + hits."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0

    @property
    def reference_length(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        if self.reference_length == 0:
            # Every reference is empty: the rate is undefined; 0 if nothing was hypothesized, else infinite.
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_length


def _check_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    if isinstance(references, str) or isinstance(hypotheses, str):
        references, hypotheses = [references], [hypotheses]
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references but {len(hypotheses)} hypotheses")
    return references, hypotheses


def _counts(process, references, hypotheses, split) -> ErrorCounts:
    counts = ErrorCounts()
    scored_refs, scored_hyps = [], []
    for ref, hyp in zip(references, hypotheses, strict=True):
        if ref.strip():
            scored_refs.append(ref)
            scored_hyps.append(hyp)
        else:
            # An empty reference has nothing to align: every hypothesized unit is an insertion. (Counted here
            # because jiwer's handling of empty references has changed between versions.)
            counts.insertions += len(split(hyp))
    if scored_refs:
        out = process(scored_refs, scored_hyps)
        counts.substitutions += out.substitutions
        counts.deletions += out.deletions
        counts.insertions += out.insertions
        counts.hits += out.hits
    return counts


def word_error_counts(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorCounts:
    """Word-level edit operations between `references` and `hypotheses` (words split on whitespace)."""
    references, hypotheses = _check_pairs(references, hypotheses)
    return _counts(jiwer.process_words, references, hypotheses, str.split)


def char_error_counts(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorCounts:
    """Character-level edit operations; spaces between words count as characters (jiwer's convention)."""
    references, hypotheses = _check_pairs(references, hypotheses)
    references = [" ".join(ref.split()) for ref in references]
    hypotheses = [" ".join(hyp.split()) for hyp in hypotheses]
    return _counts(jiwer.process_characters, references, hypotheses, list)


def wer(references: Sequence[str] | str, hypotheses: Sequence[str] | str) -> float:
    """Corpus word error rate: ``wer(["the cat sat"], ["the cat sit"]) == 1 / 3``."""
    return word_error_counts(references, hypotheses).rate


def cer(references: Sequence[str] | str, hypotheses: Sequence[str] | str) -> float:
    """Corpus character error rate: ``cer(["the cat sat"], ["the cat sit"]) == 1 / 11``."""
    return char_error_counts(references, hypotheses).rate


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """``{"wer": ..., "cer": ...}`` for the same pairs."""
    return {"wer": wer(references, hypotheses), "cer": cer(references, hypotheses)}


def argmax_logits(logits, labels=None):
    """``preprocess_logits_for_metrics`` for ``Trainer``: keep the argmax ids (B, T) instead of the logits (B, T, V).

    Evaluation then accumulates a vocabulary-size factor less memory; :func:`make_compute_metrics` accepts either.
    """
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def decode_predictions(tokenizer, predictions, labels) -> tuple[list[str], list[str]]:
    """Greedy CTC transcripts of `predictions` and the reference texts of `labels`.

    Args:
        tokenizer: the CTC tokenizer (or a processor with ``.tokenizer``).
        predictions: logits (B, T, V) or argmax ids (B, T). ``Trainer`` pads batches of different lengths with
            -100; those frames are mapped to the blank, which decodes to nothing.
        labels: label ids (B, S) padded with -100; decoded one character per id (``group_tokens=False``), so
            double letters in the reference are not collapsed as CTC output would be. ``<unk>`` becomes
            :data:`UNKNOWN_CHAR`, so characters outside the vocabulary count as errors.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    pad_id = tokenizer.pad_token_id
    predictions = np.asarray(predictions)
    if predictions.ndim == 3:
        predictions = predictions.argmax(axis=-1)
    predictions = np.where(predictions < 0, pad_id, predictions)
    labels = np.where(np.asarray(labels) < 0, pad_id, labels)
    hypotheses = tokenizer.batch_decode(predictions.tolist())
    # skip_special_tokens=False keeps <unk> in references: a character outside the vocabulary is one the model can
    # never output, so it must count as an error, not vanish. It becomes one character so CER counts it once.
    references = tokenizer.batch_decode(labels.tolist(), group_tokens=False, skip_special_tokens=False)
    unk = str(tokenizer.unk_token)
    references = [text.replace(unk, UNKNOWN_CHAR) for text in references]
    return hypotheses, references


def make_compute_metrics(tokenizer, normalizer: Callable[[str], str] | None = None, log_examples: int = 0) -> Callable:
    """Build ``compute_metrics`` for ``Trainer``: returns ``{"wer": ..., "cer": ...}`` (logged as ``eval_wer``...).

    Args:
        tokenizer: the CTC tokenizer or the processor.
        normalizer: optional function applied to hypotheses and references alike before scoring (the labels are
            already normalized, so this is only needed for extra, scoring-only normalization).
        log_examples: log this many hypothesis/reference pairs at each evaluation (0: none).
    """

    def compute_metrics(eval_prediction) -> dict[str, float]:
        hypotheses, references = decode_predictions(tokenizer, eval_prediction.predictions, eval_prediction.label_ids)
        if normalizer is not None:
            hypotheses = [normalizer(text) for text in hypotheses]
            references = [normalizer(text) for text in references]
        for hyp, ref in list(zip(hypotheses, references, strict=True))[:log_examples]:
            logger.info("REF: %s\nHYP: %s", ref, hyp)
        return error_rates(references, hypotheses)

    return compute_metrics


# ----------------------------------------------------------------------------------------------- curves


@dataclass
class Curve:
    """One line of a :func:`plot_training_curves` panel.

    Args:
        label: legend entry.
        x, y: the points (NaN values leave gaps).
        smooth: with 20 or more points, draw the values faint and a running mean over them (batches of very
            different lengths make per-update losses noisy).
        right_axis: draw on the panel's second y axis (a learning rate beside a temperature or a loss).
        color: a matplotlib colour, or None for the next one of the cycle.
        marker: a matplotlib marker, e.g. "o" for a few evaluation points.
        markersize: its size (None: matplotlib's).
    """

    label: str
    x: Sequence[float]
    y: Sequence[float]
    smooth: bool = True
    right_axis: bool = False
    color: str | None = None
    marker: str | None = None
    markersize: float | None = None


def running_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` finite values at each position (NaN until one is seen)."""
    out, recent = [], deque(maxlen=max(1, window))
    for value in values:
        if math.isfinite(value):
            recent.append(value)
        out.append(sum(recent) / len(recent) if recent else float("nan"))
    return out


def _draw(ax, curve: Curve) -> None:
    smooth = curve.smooth and len(curve.y) >= 20
    (line,) = ax.plot(
        curve.x,
        curve.y,
        label=curve.label,
        alpha=0.45 if smooth else 1.0,
        color=curve.color,
        marker=curve.marker,
        markersize=curve.markersize,
    )
    if smooth:
        ax.plot(
            curve.x,
            running_mean(curve.y, max(5, len(curve.y) // 20)),
            color=line.get_color(),
            label=f"{curve.label} (running mean)",
        )


def plot_training_curves(
    panels: Sequence[tuple[str, Sequence[Curve]]], path: str | Path, xlabel: str = "update", columns: int = 2
) -> Path | None:
    """Draw `panels` (``(title, curves)``) in a grid of `columns` and save the PNG at `path`; returns the path, or
    None when no panel has a point. matplotlib runs with its Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(title, [c for c in curves if len(c.x)]) for title, curves in panels]
    panels = [(title, curves) for title, curves in panels if curves]
    if not panels:
        return None
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 3.5 * rows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, panels, strict=False):  # a grid's last row may have spare axes
        right = None
        for curve in curves:
            if curve.right_axis:
                right = right or ax.twinx()
                _draw(right, curve)
            else:
                _draw(ax, curve)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        if any(not c.right_axis for c in curves):
            ax.legend(fontsize=8, loc="upper left" if right is not None else "best")
        if right is not None:
            right.legend(loc="upper right", fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def finetuning_panels(log_history: Sequence[dict], final: dict | None = None, final_step: int | None = None):
    """Panels of :func:`plot_training_curves` from ``Trainer.state.log_history``: CTC loss (train and eval), WER/CER
    in percent (with the final evaluation's, keys ``eval_wer`` or ``train_eval_wer``, at `final_step`), learning
    rate and gradient norm."""

    def series(key: str, scale: float = 1.0):
        points = [(entry["step"], scale * entry[key]) for entry in log_history if key in entry and "step" in entry]
        return [x for x, _ in points], [y for _, y in points]

    rates = []
    for key, name, color in (("eval_wer", "WER", "tab:blue"), ("eval_cer", "CER", "tab:orange")):
        rates.append(Curve(f"eval {name}", *series(key, 100.0), smooth=False, marker="o", color=color))
        for prefix in ("eval", "train_eval"):
            value = (final or {}).get(f"{prefix}_{name.lower()}")
            if value is not None and final_step is not None:
                label = "final" if prefix == "eval" else "final, on the training clips"
                rates.append(
                    Curve(
                        f"{name} ({label})",
                        [final_step],
                        [100 * value],
                        smooth=False,
                        marker="*",
                        markersize=14,
                        color=color,
                    )
                )
    return [
        (
            "CTC loss",
            [Curve("train loss", *series("loss")), Curve("eval loss", *series("eval_loss"), smooth=False, marker="o")],
        ),
        ("error rate (%)", rates),
        ("learning rate", [Curve("lr", *series("learning_rate"), smooth=False, color="tab:red")]),
        ("gradient norm", [Curve("grad norm", *series("grad_norm"))]),
    ]


__all__ = [
    "Curve",
    "ErrorCounts",
    "argmax_logits",
    "cer",
    "char_error_counts",
    "decode_predictions",
    "error_rates",
    "finetuning_panels",
    "make_compute_metrics",
    "plot_training_curves",
    "running_mean",
    "wer",
    "word_error_counts",
]
