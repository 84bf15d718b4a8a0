"""Batching as a pure function of example sizes (fairseq's ``batch_by_size``), its options and its cost.

:class:`BatchingOptions` holds every choice about how examples become batches, in one frozen object that the
batch sampler, the streaming dataset and the loader share. :func:`plan_batches` groups example indices so that
``batch_size * longest <= max_tokens`` over a (noisy) length sort; examples longer than ``max_sample_size`` are
randomly cropped to it. With ``pad=False`` (fairseq pre-training) every example of a batch is cropped to the
shortest one, with ``pad=True`` zero-padded to the longest. :class:`BatchingStats` measures the waste (padding plus
audio cropped away); on a realistic length distribution it is a few percent. Nothing here touches audio or torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .constants import DEFAULT_MAX_SAMPLE_SIZE, DEFAULT_MAX_TOKENS, DEFAULT_MIN_SAMPLE_SIZE


class CropRequest(NamedTuple):
    """What the batch sampler asks the dataset for: ``length`` samples of example ``index``,
    cropped at a random offset drawn from ``seed`` (so crops are reproducible on resume)."""

    index: int
    length: int
    seed: int


@dataclass(frozen=True)
class BatchingOptions:
    """How examples become batches (all sizes in 16 kHz samples).

    Attributes:
        max_tokens: per-batch budget, ``batch_size * longest <= max_tokens``.
        max_sample_size: longer examples are randomly cropped to this (``None``: no limit).
        min_sample_size: shorter examples are dropped.
        pad: ``False``: crop each batch to its shortest example (fairseq pre-training, no attention mask);
            ``True``: zero-pad to the longest and return ``attention_mask``.
        normalize: zero mean / unit variance per example (fairseq ``normalize``, for layer-norm models).
        seed: plans, shuffles and crops are deterministic given it.
        shuffle: a noisy length sort and shuffled batch order, different every epoch (``False``: the same exact
            sort every epoch).
        length_noise: the sort key is multiplied by ``1 + U(-length_noise, length_noise)`` when shuffling.
        max_batch_size: at most this many examples per batch (``None``: only ``max_tokens`` limits).
    """

    max_tokens: int = DEFAULT_MAX_TOKENS
    max_sample_size: int | None = DEFAULT_MAX_SAMPLE_SIZE
    min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE
    pad: bool = False
    normalize: bool = False
    seed: int = 0
    shuffle: bool = True
    length_noise: float = 0.05
    max_batch_size: int | None = None

    def __post_init__(self) -> None:
        # Whole numbers are stored as Python ints: numpy integers would leak into state_dicts and plans.
        for name, minimum in (
            ("max_tokens", 1),
            ("max_sample_size", 1),
            ("max_batch_size", 1),
            ("min_sample_size", 0),
            ("seed", None),
        ):
            value = getattr(self, name)
            if value is not None or name in ("max_tokens", "min_sample_size", "seed"):
                object.__setattr__(self, name, _whole_number(name, value, minimum))
        if not 0 <= self.length_noise < 1:
            raise ValueError(f"BatchingOptions: length_noise must be in [0, 1), got {self.length_noise!r}")

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def of(cls, options: BatchingOptions | None = None, **fields: Any) -> BatchingOptions:
        """``options`` (default: the defaults) with ``fields`` replaced; an unknown name is a TypeError."""
        unknown = sorted(set(fields) - cls.field_names())
        if unknown:
            raise TypeError(
                f"unknown batching option(s) {', '.join(unknown)}; BatchingOptions has "
                f"{', '.join(sorted(cls.field_names()))}"
            )
        return dataclasses.replace(options or cls(), **fields)

    def effective_lengths(self, lengths: Sequence[int] | np.ndarray) -> np.ndarray:
        """Lengths after the ``max_sample_size`` crop."""
        return effective_lengths(lengths, self.max_sample_size)

    def crop_lengths(self, lengths: Sequence[int] | np.ndarray) -> np.ndarray:
        """What each example of one batch is cropped to: its capped length (``pad``) or the batch's shortest."""
        eff = self.effective_lengths(lengths)
        return eff if self.pad else np.full(len(eff), eff.min())

    def plan(self, lengths: Sequence[int] | np.ndarray, rng: np.random.Generator | None) -> list[np.ndarray]:
        """:func:`plan_batches` with these options (``rng`` only used when shuffling)."""
        return plan_batches(
            lengths,
            max_tokens=self.max_tokens,
            max_sample_size=self.max_sample_size,
            rng=rng if self.shuffle else None,
            length_noise=self.length_noise,
            max_batch_size=self.max_batch_size,
        )


def _whole_number(name: str, value: Any, minimum: int | None) -> int:
    valid = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    valid = valid and math.isfinite(value) and value == int(value) and (minimum is None or value >= minimum)
    if not valid:
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"BatchingOptions: {name} must be a whole number{bound}, got {value!r}")
    return int(value)


def effective_lengths(lengths: Sequence[int] | np.ndarray, max_sample_size: int | None) -> np.ndarray:
    lengths = np.asarray(lengths, dtype=np.int64)
    return lengths if max_sample_size is None else np.minimum(lengths, max_sample_size)


def plan_batches(
    lengths: Sequence[int] | np.ndarray,
    *,
    max_tokens: int,
    max_sample_size: int | None = DEFAULT_MAX_SAMPLE_SIZE,
    rng: np.random.Generator | None = None,
    length_noise: float = 0.05,
    max_batch_size: int | None = None,
) -> list[np.ndarray]:
    """Group example indices into batches with ``len(batch) * longest <= max_tokens``.

    Examples are visited longest first (lengths capped at ``max_sample_size``), so neighbours
    have similar lengths and little is padded or cropped away. With ``rng`` the sort key is
    multiplied by ``1 + U(-length_noise, length_noise)`` and ties are broken randomly, so batch
    composition differs between epochs at the price of slightly more waste; without ``rng`` the
    plan is deterministic. Returns index arrays, longest batches first.
    """
    eff = effective_lengths(lengths, max_sample_size)
    if len(eff) == 0:
        return []
    if eff.max() > max_tokens:
        raise ValueError(
            f"an example of {int(eff.max())} samples does not fit max_tokens={max_tokens}; "
            "lower max_sample_size or raise max_tokens"
        )
    if rng is not None:
        key = eff * (1.0 + rng.uniform(-length_noise, length_noise, len(eff)))
        order = np.lexsort((rng.random(len(eff)), -key))
    else:
        order = np.argsort(-eff, kind="stable")

    batches, start, count, longest = [], 0, 0, 0
    for pos, length in enumerate(eff[order].tolist()):
        new_longest = max(longest, length)
        full = max_batch_size is not None and count >= max_batch_size
        if count and (full or (count + 1) * new_longest > max_tokens):
            batches.append(order[start:pos])
            start, count, new_longest = pos, 0, length
        count += 1
        longest = new_longest
    batches.append(order[start:])
    return batches


def split_to_multiple(batches: list[np.ndarray], multiple: int) -> list[np.ndarray]:
    """Split the batches holding the most examples in two until the count is a multiple of
    ``multiple`` (or nothing is left to split). Halves keep the budget and the length order."""
    batches = list(batches)
    while len(batches) % multiple:
        sizes = [len(b) for b in batches]
        i = int(np.argmax(sizes))
        if sizes[i] < 2:
            break
        half = sizes[i] // 2
        batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
    return batches


@dataclass(frozen=True)
class BatchingStats:
    """Where the audio goes under a batch plan (all counts in samples).

    ``total_samples`` of audio are available; ``truncated_samples`` are cut off by
    ``max_sample_size``; ``cropped_samples`` are cut off to make a batch's examples equally
    long (``pad=False``); ``padding_samples`` are zeros added instead (``pad=True``).
    """

    num_examples: int
    num_batches: int
    total_samples: int
    truncated_samples: int
    cropped_samples: int
    padding_samples: int
    tensor_samples: int
    max_tokens: int

    @property
    def waste_fraction(self) -> float:
        """(padding + everything cropped away) / (available audio + padding)."""
        denominator = self.total_samples + self.padding_samples
        wasted = self.padding_samples + self.cropped_samples + self.truncated_samples
        return wasted / denominator if denominator else 0.0

    @property
    def batching_waste_fraction(self) -> float:
        """Waste caused by batching alone (padding or crop-to-shortest), ignoring
        ``max_sample_size``, which is a modelling choice rather than a batching cost."""
        denominator = self.total_samples - self.truncated_samples + self.padding_samples
        return (self.padding_samples + self.cropped_samples) / denominator if denominator else 0.0

    @property
    def budget_utilization(self) -> float:
        """Mean fraction of ``max_tokens`` that batches fill."""
        return self.tensor_samples / (self.num_batches * self.max_tokens) if self.num_batches else 0.0

    @property
    def mean_batch_size(self) -> float:
        return self.num_examples / self.num_batches if self.num_batches else 0.0

    def __str__(self) -> str:
        return (
            f"{self.num_examples} examples in {self.num_batches} batches (mean {self.mean_batch_size:.1f}); "
            f"waste {100 * self.waste_fraction:.1f}% (batching {100 * self.batching_waste_fraction:.1f}%, "
            f"padding {self.padding_samples}, cropped {self.cropped_samples}, truncated {self.truncated_samples}); "
            f"budget use {100 * self.budget_utilization:.1f}%"
        )


def batching_stats(
    lengths: Sequence[int] | np.ndarray,
    batches: Sequence[Sequence[int]],
    *,
    max_tokens: int,
    max_sample_size: int | None = DEFAULT_MAX_SAMPLE_SIZE,
    pad: bool = False,
) -> BatchingStats:
    """Measure a batch plan: see :class:`BatchingStats`."""
    lengths = np.asarray(lengths, dtype=np.int64)
    eff = effective_lengths(lengths, max_sample_size)
    examples = cropped = padding = tensor = total = truncated = 0
    for batch in batches:
        batch = np.asarray(batch, dtype=np.int64)
        if len(batch) == 0:
            continue
        b_eff = eff[batch]
        examples += len(batch)
        total += int(lengths[batch].sum())
        truncated += int((lengths[batch] - b_eff).sum())
        if pad:
            padding += int(len(batch) * b_eff.max() - b_eff.sum())
            tensor += int(len(batch) * b_eff.max())
        else:
            cropped += int(b_eff.sum() - len(batch) * b_eff.min())
            tensor += int(len(batch) * b_eff.min())
    return BatchingStats(examples, len(batches), total, truncated, cropped, padding, tensor, max_tokens)
