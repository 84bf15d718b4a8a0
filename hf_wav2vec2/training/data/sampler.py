"""The resumable distributed batch sampler: this rank's share of each epoch's batch plan, and where it stands.

Like lhotse's samplers, the sampler owns rank handling (:func:`resolve_rank`) and ``state_dict``. All ranks derive
the same plan from ``(seed, epoch)``. The number of batches is made a multiple of ``world_size`` by splitting the
batches holding the most examples in two (halves of a valid batch are valid batches), so every rank gets the same
number of batches and each example is seen exactly once per epoch; only with fewer examples than ranks are batches
repeated, with a warning. Consecutive groups of ``world_size`` batches in length order go to the ranks together, so
ranks work on similar lengths at each step (and wait little on each other).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from .batching import BatchingOptions, BatchingStats, CropRequest, batching_stats, split_to_multiple


def distributed_is_initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values, else torch.distributed, else the RANK/WORLD_SIZE launcher variables."""
    if rank is None or world_size is None:
        if distributed_is_initialized():
            rank = torch.distributed.get_rank() if rank is None else rank
            world_size = torch.distributed.get_world_size() if world_size is None else world_size
        else:
            rank = int(os.environ.get("RANK", "0")) if rank is None else rank
            world_size = int(os.environ.get("WORLD_SIZE", "1")) if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return int(rank), int(world_size)


class LengthBucketBatchSampler(Sampler[list[CropRequest]]):
    """Duration-budgeted, length-bucketed batches of :class:`CropRequest`, sharded over ranks.

    ``LengthBucketBatchSampler(lengths, options, rank=..., world_size=...)``; any :class:`BatchingOptions` field
    may also be given by name (``max_tokens=...``), replacing that field of ``options``. Each epoch
    (``set_epoch``) all ranks derive the same plan from ``(seed, epoch)``:

    1. :func:`plan_batches`: batches with ``batch_size * longest <= max_tokens`` over a noisy
       length sort (``shuffle=False``: exact sort, same plan every epoch).
    2. Batches holding the most examples are split in two until their number is a multiple of
       ``world_size``. If there are too few examples for that, batches are repeated
       (``num_repeated_batches`` > 0, with a warning).
    3. Consecutive groups of ``world_size`` batches (similar lengths) are shuffled as units;
       step ``s`` of rank ``r`` is batch ``r`` of group ``s``.
    4. Each example gets its crop length (the batch's shortest with ``pad=False``, its own
       length capped at ``max_sample_size`` with ``pad=True``) and a crop seed.

    Iteration yields this rank's remaining batches of the current epoch. For exact resume use
    :meth:`state_dict` / :meth:`load_state_dict`; note that a DataLoader with workers pulls
    batches ahead, so take the state from :class:`PretrainingDataLoader`, which counts batches
    actually delivered.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        options: BatchingOptions | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        **fields: Any,
    ):
        self.options = BatchingOptions.of(options, **fields)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.num_repeated_batches = 0
        eff = self.options.effective_lengths(self.lengths)
        if len(eff) and eff.max() > self.options.max_tokens:
            raise ValueError(
                f"max_tokens={self.options.max_tokens} is smaller than the longest (capped) example "
                f"({int(eff.max())} samples); raise max_tokens or lower max_sample_size"
            )
        self._epoch = 0
        self._position = 0  # batches of this epoch handed out (or consumed, after a resume)
        self._start_next_at = 0  # where the next __iter__ starts (set by load_state_dict)
        self._plan_cache: tuple[int, list[np.ndarray], list[np.ndarray]] | None = None

    @property
    def seed(self) -> int:
        return self.options.seed

    # -- epoch plan --------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate. Setting the epoch a resumed state points at keeps the
        resume position; any other epoch starts from its first batch."""
        if epoch != self._epoch:
            self._epoch = int(epoch)
            self._position = 0
            self._start_next_at = 0

    def _plan(self, epoch: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Global batches of ``epoch`` in step-major order (rank r takes r, r+W, ...) and the
        crop seeds of their examples."""
        if self._plan_cache is not None and self._plan_cache[0] == epoch:
            return self._plan_cache[1], self._plan_cache[2]
        rng = np.random.default_rng([self.seed, epoch]) if self.options.shuffle else None
        batches = split_to_multiple(self.options.plan(self.lengths, rng), self.world_size)
        deficit = -len(batches) % self.world_size
        if deficit:
            warnings.warn(
                f"{len(self.lengths)} examples cannot fill {self.world_size} ranks equally; repeating "
                f"{deficit} batch(es) this epoch so that all ranks take the same number of steps",
                stacklevel=3,
            )
            batches = batches + [batches[i % len(batches)] for i in range(deficit)]
        self.num_repeated_batches = deficit

        groups = [batches[g : g + self.world_size] for g in range(0, len(batches), self.world_size)]
        if rng is not None:
            groups = [groups[g] for g in rng.permutation(len(groups))]
            groups = [[group[j] for j in rng.permutation(len(group))] for group in groups]
        ordered = [batch for group in groups for batch in group]
        # Without shuffling the crops still need seeds; drawing them from (seed, epoch) keeps them reproducible.
        seed_rng = rng if rng is not None else np.random.default_rng([self.seed, epoch])
        seeds = [seed_rng.integers(0, 2**31 - 1, size=len(b)) for b in ordered]
        self._plan_cache = (epoch, ordered, seeds)
        return ordered, seeds

    def _requests(self, batch: np.ndarray, seeds: np.ndarray) -> list[CropRequest]:
        targets = self.options.crop_lengths(self.lengths[batch])
        return [CropRequest(int(i), int(t), int(s)) for i, t, s in zip(batch, targets, seeds, strict=True)]

    def rank_batches(self, epoch: int | None = None) -> list[list[CropRequest]]:
        """This rank's batches of ``epoch`` (default: current), from the first one."""
        batches, seeds = self._plan(self._epoch if epoch is None else epoch)
        return [self._requests(batches[i], seeds[i]) for i in range(self.rank, len(batches), self.world_size)]

    def stats(self, epoch: int | None = None) -> BatchingStats:
        """Waste and fill of the global plan of ``epoch`` (default: current)."""
        batches, _ = self._plan(self._epoch if epoch is None else epoch)
        return batching_stats(
            self.lengths,
            batches,
            max_tokens=self.options.max_tokens,
            max_sample_size=self.options.max_sample_size,
            pad=self.options.pad,
        )

    @property
    def num_batches_per_epoch(self) -> int:
        """Batches per rank in the current epoch (from the start of the epoch)."""
        return len(self._plan(self._epoch)[0]) // self.world_size

    # -- iteration ---------------------------------------------------------------------------

    @property
    def next_start(self) -> int:
        """Index of the batch (within this rank's epoch) the next iteration starts with."""
        return self._start_next_at

    def __len__(self) -> int:
        """Number of batches the next iteration yields (fewer than an epoch after a resume)."""
        return self.num_batches_per_epoch - self._start_next_at

    def __iter__(self) -> Iterator[list[CropRequest]]:
        batches, seeds = self._plan(self._epoch)
        start, self._start_next_at = self._start_next_at, 0
        self._position = start
        for i in range(self.rank + start * self.world_size, len(batches), self.world_size):
            self._position += 1
            yield self._requests(batches[i], seeds[i])

    # -- resume ------------------------------------------------------------------------------

    def state_dict(self, batches_consumed: int | None = None) -> dict[str, int]:
        """``{"epoch", "batches_consumed", ...}``; ``batches_consumed`` defaults to the batches
        this sampler has handed out in the current epoch."""
        return {
            "epoch": self._epoch,
            "batches_consumed": self._position if batches_consumed is None else int(batches_consumed),
            "seed": self.seed,
            "world_size": self.world_size,
            "num_examples": len(self.lengths),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from ``state``: the next iteration starts after the consumed batches.

        The seed, world size and dataset size must match, or the plan (and so the position)
        would mean something else; a changed world size cannot be resumed exactly.
        """
        for name, mine in (("seed", self.seed), ("world_size", self.world_size), ("num_examples", len(self.lengths))):
            if name in state and int(state[name]) != mine:
                raise ValueError(f"cannot resume: state has {name}={state[name]}, this sampler has {mine}")
        self._epoch = int(state["epoch"])
        self._position = self._start_next_at = int(state["batches_consumed"])
