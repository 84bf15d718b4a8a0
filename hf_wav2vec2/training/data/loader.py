"""The entry points: a source turned into a dataset (:func:`load_audio_dataset`) and into this process's
:class:`PretrainingDataLoader` (:func:`get_pretraining_dataloader`), which counts delivered batches for exact resume.

The loader is sharded already: do **not** pass it through ``accelerator.prepare`` (that would shard it a second
time); move batches with ``batch["input_values"].to(accelerator.device)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from .batching import BatchingOptions
from .collate import PretrainingCollator
from .constants import AUDIO_EXTENSIONS
from .dataset import AudioDataset
from .sampler import LengthBucketBatchSampler, resolve_rank
from .selection import NoUsableAudioError, count_files
from .sources import from_datasets_module, is_saved_hf_dataset, load_hf
from .streaming import StreamingPretrainingDataset


def _identity(batch: Any) -> Any:
    return batch


class PretrainingDataLoader(DataLoader):
    """A ``DataLoader`` that counts the batches it delivers, for exact resume, and moves
    skip reports from the batches into the dataset's counters (``loader.dataset.num_skipped``).

    ``set_epoch``, ``state_dict`` and ``load_state_dict`` act on the batch sampler (or, for
    streaming, ``set_epoch`` on the dataset). Batches contain ``input_values``, ``lengths`` and,
    with padding, ``attention_mask``. A batch none of whose examples (nor their replacements) could be loaded is
    a :class:`NoUsableAudioError`: the model cannot train on zero samples, and the files are the cause.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._consumed: int | None = None
        self._iter_epoch: int | None = None

    def _sampler(self) -> LengthBucketBatchSampler | None:
        return self.batch_sampler if isinstance(self.batch_sampler, LengthBucketBatchSampler) else None

    def set_epoch(self, epoch: int) -> None:
        if self._sampler() is not None:
            self.batch_sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        sampler = self._sampler()
        if sampler is not None:
            self._iter_epoch, self._consumed = sampler.epoch, sampler.next_start
        for batch in super().__iter__():
            skipped = batch.pop("skipped", None)
            if skipped and hasattr(self.dataset, "record_skipped"):
                self.dataset.record_skipped(skipped)
            if "input_values" not in batch:  # streaming: a report with no batch attached
                continue
            if batch["input_values"].shape[0] == 0:
                self._no_usable_batch()
            if sampler is not None:
                self._consumed += 1
            yield batch

    def _no_usable_batch(self) -> None:
        dataset = self.dataset
        reasons = dataset.unusable_reasons(getattr(dataset, "min_sample_size", 0))
        hint = ""
        if getattr(dataset, "lengths_given", False):
            hint = (
                " (the lengths were taken from the manifest or length column without opening the files; "
                "trust_manifest_lengths=False opens every file up front)"
            )
        raise NoUsableAudioError(
            f"no usable audio: no example of a batch, nor any replacement tried, could be loaded; {reasons}{hint}"
        )

    def state_dict(self) -> dict[str, int]:
        """Epoch and number of this rank's batches consumed in it (see
        :meth:`LengthBucketBatchSampler.state_dict`)."""
        sampler = self._sampler()
        if sampler is None:
            raise TypeError("state_dict needs a LengthBucketBatchSampler (not available for streaming)")
        if self._iter_epoch == sampler.epoch and self._consumed is not None:
            return sampler.state_dict(batches_consumed=self._consumed)
        return sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self._sampler()
        if sampler is None:
            raise TypeError("load_state_dict needs a LengthBucketBatchSampler (not available for streaming)")
        sampler.load_state_dict(state)
        self._iter_epoch = self._consumed = None


def load_audio_dataset(
    source: Any,
    *,
    source_type: str = "auto",
    audio_column: str = "audio",
    split: str = "train",
    dataset_config: str | None = None,
    length_column: str | None = None,
    trust_manifest_lengths: bool = True,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    **kwargs: Any,
) -> AudioDataset:
    """Build an :class:`AudioDataset` from any supported source.

    ``source_type="auto"`` decides as follows: an ``AudioDataset`` is returned as is; a
    ``datasets`` object is used directly; a ``.tsv`` file is a fairseq manifest; a folder saved
    with ``save_to_disk`` is loaded with ``load_from_disk`` (``split`` picks from a
    ``DatasetDict``); another folder is scanned for audio files; anything else is passed to
    ``datasets.load_dataset`` (hub name or loading script). Force a choice with
    ``"folder" | "manifest" | "hf"``. ``kwargs`` go to :class:`AudioDataset`.
    """
    if isinstance(source, AudioDataset):
        return source
    if source_type == "auto":
        if from_datasets_module(source):
            source_type = "hf"
        elif str(source).endswith(".tsv") and os.path.isfile(source):
            source_type = "manifest"
        elif os.path.isdir(source) and not is_saved_hf_dataset(Path(source)):
            source_type = "folder"
        else:
            source_type = "hf"
    if source_type == "folder":
        return AudioDataset.from_folder(source, extensions=extensions, **kwargs)
    if source_type == "manifest":
        return AudioDataset.from_manifest(source, trust_manifest_lengths=trust_manifest_lengths, **kwargs)
    if source_type == "hf":
        dataset = load_hf(source, split=split, dataset_config=dataset_config, streaming=False)
        return AudioDataset.from_hf_dataset(dataset, audio_column=audio_column, length_column=length_column, **kwargs)
    raise ValueError(f"unknown source_type {source_type!r}")


def _split_kwargs(batching: BatchingOptions | None, kwargs: dict[str, Any]) -> tuple[BatchingOptions, dict]:
    """Batching fields given by name (``max_tokens=...``) replace those of ``batching``; the rest are for the
    source (:func:`load_audio_dataset`)."""
    names = BatchingOptions.field_names()
    options = BatchingOptions.of(batching, **{k: v for k, v in kwargs.items() if k in names})
    return options, {k: v for k, v in kwargs.items() if k not in names}


def _worker_kwargs(
    num_workers: int,
    pin_memory: bool,
    prefetch_factor: int | None,
    persistent_workers: bool | None,
    streaming: bool,
) -> dict[str, Any]:
    """The DataLoader's worker arguments; workers persist across epochs by default, except for streaming sources."""
    loader_kwargs: dict[str, Any] = {"num_workers": num_workers, "pin_memory": pin_memory}
    if num_workers > 0:
        if prefetch_factor is not None:
            loader_kwargs["prefetch_factor"] = prefetch_factor
        loader_kwargs["persistent_workers"] = (not streaming) if persistent_workers is None else persistent_workers
    return loader_kwargs


def _check_usable(dataset: AudioDataset, source: Any, min_sample_size: int) -> None:
    """Raise :class:`NoUsableAudioError`, saying why each file was dropped, when ``dataset`` kept no example."""
    if len(dataset) == 0:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__
        files = count_files(dataset.selection.num_files)
        raise NoUsableAudioError(
            f"no usable audio in {name}: none of its {files} can be used: {dataset.unusable_reasons(min_sample_size)}"
        )


def _indexed_loader(
    dataset: AudioDataset,
    source: Any,
    options: BatchingOptions,
    rank: int,
    world_size: int,
    loader_kwargs: dict[str, Any],
) -> PretrainingDataLoader:
    """The loader over an indexed dataset: this rank's length-bucketed batches, cropped and padded by the collator
    (an empty dataset is refused, see :func:`_check_usable`)."""
    _check_usable(dataset, source, options.min_sample_size)
    sampler = LengthBucketBatchSampler(dataset.lengths, options, rank=rank, world_size=world_size)
    collator = PretrainingCollator(pad=options.pad, normalize=options.normalize, seed=options.seed)
    return PretrainingDataLoader(dataset, batch_sampler=sampler, collate_fn=collator, **loader_kwargs)


def get_pretraining_dataloader(
    source: Any,
    batching: BatchingOptions | None = None,
    *,
    num_workers: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_dtype: str = "int16",
    precache: bool = True,
    streaming: bool = False,
    audio_column: str = "audio",
    split: str = "train",
    dataset_config: str | None = None,
    shuffle_buffer_size: int = 1000,
    bucket_buffer_size: int = 1000,
    infinite: bool = False,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    persistent_workers: bool | None = None,
    num_prepare_workers: int | None = None,
    **kwargs: Any,
) -> PretrainingDataLoader:
    """A DataLoader of pre-training batches for this process.

    Args:
        source: audio folder, ``.tsv`` manifest, saved/hub ``datasets`` dataset, a
            ``datasets.Dataset`` / ``IterableDataset``, or an :class:`AudioDataset`.
        batching: :class:`BatchingOptions` (budget, crop / drop sizes, padding, normalisation, seed, shuffling).
            Any of its fields may also be passed by name (``max_tokens=...``), replacing that field.
        num_workers: DataLoader worker processes (decode/crop/collate in parallel).
        rank / world_size: this process's shard; default from torch.distributed or the
            RANK/WORLD_SIZE environment variables.
        cache_dir: cache of decoded audio (see :class:`AudioDataset`, :class:`AudioCache`);
            with ``precache`` everything is decoded while building the loader.
        streaming: read ``source`` as a ``datasets`` IterableDataset (see
            :class:`StreamingPretrainingDataset`; ``shuffle_buffer_size``,
            ``bucket_buffer_size`` and ``infinite`` apply there).
        audio_column / split / dataset_config: for ``datasets`` sources.
        kwargs: batching fields, and the rest passed on to :func:`load_audio_dataset` (e.g. ``length_column``,
            ``trust_manifest_lengths``, ``extensions``, ``source_type``).

    Returns a :class:`PretrainingDataLoader`; call ``set_epoch`` before each epoch. It is
    already sharded: do not pass it to ``accelerator.prepare``.
    """
    options, source_kwargs = _split_kwargs(batching, kwargs)
    rank, world_size = resolve_rank(rank, world_size)
    loader_kwargs = _worker_kwargs(num_workers, pin_memory, prefetch_factor, persistent_workers, streaming)

    if streaming or (from_datasets_module(source) and type(source).__name__.startswith("Iterable")):
        hf_dataset = load_hf(source, split=split, dataset_config=dataset_config, streaming=True)
        dataset = StreamingPretrainingDataset(
            hf_dataset,
            options,
            audio_column=audio_column,
            rank=rank,
            world_size=world_size,
            shuffle_buffer_size=shuffle_buffer_size,
            bucket_buffer_size=bucket_buffer_size,
            infinite=infinite,
        )
        return PretrainingDataLoader(dataset, batch_size=None, collate_fn=_identity, **loader_kwargs)

    dataset = load_audio_dataset(
        source,
        audio_column=audio_column,
        split=split,
        dataset_config=dataset_config,
        min_sample_size=options.min_sample_size,
        max_sample_size=options.max_sample_size,
        cache_dir=cache_dir,
        cache_dtype=cache_dtype,
        precache=precache,
        num_prepare_workers=num_prepare_workers,
        rank=rank,
        world_size=world_size,
        **source_kwargs,
    )
    return _indexed_loader(dataset, source, options, rank, world_size, loader_kwargs)
