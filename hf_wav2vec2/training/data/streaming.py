"""Pre-training batches from a streaming ``datasets.IterableDataset``, whose lengths are unknown up front."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from .batching import BatchingOptions
from .collate import PretrainingCollator
from .dataset import random_crop
from .sampler import resolve_rank
from .selection import DECODE_ERROR, TOO_SHORT, SkipLog, SkippedAudio
from .sources import AudioDecodeError, decode_audio, hf_audio_name, hf_audio_source, undecoded_audio_column


class StreamingPretrainingDataset(IterableDataset, SkipLog):
    """Ready-made batches from a streaming ``datasets.IterableDataset``.

    ``StreamingPretrainingDataset(dataset, options, ...)``; any :class:`BatchingOptions` field may also be given
    by name. Lengths are unknown up front, so bucketing works within a buffer: examples are decoded
    into a buffer of ``bucket_buffer_size`` examples, which is then planned with
    :func:`plan_batches` and emitted as collated batches in random order. Larger buffers waste
    less and cost memory (``bucket_buffer_size`` waveforms). Examples are shuffled beforehand by
    ``datasets`` with a ``shuffle_buffer_size`` buffer.

    Sharding: ``datasets.distributed.split_dataset_by_node`` gives each rank a disjoint part
    (whole shards when their number divides by ``world_size``), and ``datasets`` splits shards
    between DataLoader workers, so every example is read by one worker of one rank per pass.
    Ranks may then produce different numbers of batches: with DDP train for a fixed number of
    steps and use ``infinite=True`` (epochs follow one another, reshuffled), so that no rank runs
    out while the others still wait for it in an all-reduce. Resume is not exact for streaming.

    Decode failures and too-short examples are reported in each batch's ``skipped`` entry and
    collected into this object's counters by :class:`PretrainingDataLoader`.
    """

    def __init__(
        self,
        dataset: Any,
        options: BatchingOptions | None = None,
        *,
        audio_column: str = "audio",
        rank: int | None = None,
        world_size: int | None = None,
        shuffle_buffer_size: int = 1000,
        bucket_buffer_size: int = 1000,
        infinite: bool = False,
        **fields: Any,
    ):
        from datasets.distributed import split_dataset_by_node

        self._init_skip_log()
        self.options = BatchingOptions.of(options, **fields)
        if self.options.max_sample_size is not None and self.options.max_sample_size > self.options.max_tokens:
            raise ValueError("max_tokens must be at least max_sample_size")
        self.rank, self.world_size = resolve_rank(rank, world_size)
        dataset = undecoded_audio_column(dataset, audio_column)
        if self.world_size > 1:
            dataset = split_dataset_by_node(dataset, rank=self.rank, world_size=self.world_size)
        self.dataset = dataset
        self.audio_column = audio_column
        self.shuffle_buffer_size = shuffle_buffer_size
        self.bucket_buffer_size = bucket_buffer_size
        self.infinite = infinite
        self.collator = PretrainingCollator(pad=self.options.pad, normalize=self.options.normalize)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _emit(self, waves: list[np.ndarray], rng: np.random.Generator, pending: list) -> Iterator[dict]:
        lengths = np.array([len(w) for w in waves], dtype=np.int64)
        batches = self.options.plan(lengths, rng)
        if self.options.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        for batch in batches:
            targets = self.options.crop_lengths(lengths[batch])
            items = [
                {"input_values": random_crop(waves[i], int(t), int(rng.integers(2**31 - 1)))}
                for i, t in zip(batch, targets, strict=True)
            ]
            collated = self.collator(items)
            collated["skipped"], pending[:] = list(pending), []
            yield collated

    def _decoded(self, dataset: Any, pending: list) -> Iterator[np.ndarray]:
        """The usable waveforms of one pass; the others go to ``pending`` as skip records."""
        min_size = self.options.min_sample_size
        for row, example in enumerate(dataset):
            value = example[self.audio_column]
            name = hf_audio_name(value, f"row {row}")
            try:
                wave = decode_audio(hf_audio_source(value))
            except AudioDecodeError as err:
                pending.append(SkippedAudio(name, str(err), DECODE_ERROR))
                continue
            if len(wave) < min_size:
                pending.append(SkippedAudio(name, f"{len(wave)} samples < min_sample_size", TOO_SHORT, len(wave)))
                continue
            yield wave

    def _epoch_batches(self, epoch: int) -> Iterator[dict]:
        dataset = self.dataset
        if self.options.shuffle:
            dataset = dataset.shuffle(seed=self.options.seed, buffer_size=self.shuffle_buffer_size)
            dataset.set_epoch(epoch)
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.options.seed, epoch, self.rank, info.id if info else 0])
        waves, pending = [], []
        for wave in self._decoded(dataset, pending):
            waves.append(wave)
            if len(waves) >= self.bucket_buffer_size:
                yield from self._emit(waves, rng, pending)
                waves = []
        if waves:
            yield from self._emit(waves, rng, pending)
        if pending:  # problems after the last batch still have to reach the counters
            yield {"skipped": list(pending)}

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch
        while True:
            yield from self._epoch_batches(epoch)
            if not self.infinite:
                return
            epoch += 1
