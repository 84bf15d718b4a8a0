"""The map-style dataset of pre-training audio: lengths known before any decoding, bad files left out.

Lengths come from the cache, a manifest or the file headers (:mod:`.sources`), so batches can be planned without
decoding; with a cache every file is decoded once, in a thread pool shared between ranks (:mod:`.cache`). A file
that cannot be decoded is skipped and recorded (:mod:`.selection`); one discovered only when loading is replaced by
another example of at least the planned length, so the batch keeps its shape and every rank keeps the same number
of steps (DDP would hang otherwise).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .batching import CropRequest
from .cache import AudioCache, to_float32
from .constants import AUDIO_EXTENSIONS, DEFAULT_MAX_SAMPLE_SIZE, DEFAULT_MIN_SAMPLE_SIZE, TARGET_SAMPLE_RATE
from .sampler import distributed_is_initialized
from .selection import DECODE_ERROR, TOO_SHORT, AudioDroppedWarning, AudioSelection, SkipLog, SkippedAudio
from .sources import AudioDecodeError, FileReader, HFReader, find_audio_files, read_manifest

logger = logging.getLogger(__package__)


def _parallel_map(fn, items: Sequence, num_workers: int) -> list:
    # libsndfile (via cffi) and soxr release the GIL, so threads decode in parallel without
    # the pickling and start-up cost of processes.
    if num_workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        return list(pool.map(fn, items, chunksize=max(1, min(64, len(items) // (4 * num_workers)))))


def _distributed_barrier() -> None:
    if distributed_is_initialized():
        torch.distributed.barrier()


class AudioDataset(Dataset, SkipLog):
    """Map-style dataset of 16 kHz mono waveforms with lengths known before any decoding.

    Build it with :meth:`from_folder`, :meth:`from_files`, :meth:`from_manifest` or
    :meth:`from_hf_dataset` (or :func:`load_audio_dataset`, which picks one from the source).

    Indexing:
        * ``dataset[i]`` (int) returns ``{"input_values": float32 array, "index": i,
          "skipped": [...]}`` holding the whole example, randomly cropped to ``max_sample_size``;
        * ``dataset[CropRequest(i, length, seed)]`` (what :class:`LengthBucketBatchSampler`
          yields) returns ``length`` samples at an offset drawn from ``seed``. From the cache only
          that slice is read.

    Attributes:
        lengths: int64 array, length of each usable example in 16 kHz samples (before cropping).
        sources: names (paths, or "row i (path)") of the usable examples.
        skipped / num_skipped: undecodable examples, as :class:`SkippedAudio`.
        too_short / num_too_short: examples shorter than ``min_sample_size``.
        selection: :class:`AudioSelection`, what indexing kept and why it dropped the rest; rank 0
            logs its summary and issues an :class:`AudioDroppedWarning` when more than a
            quarter of the files is dropped.
        num_decodes: decodes performed by this process (0 on a fully cached second run).
    """

    def __init__(
        self,
        reader: FileReader | HFReader,
        *,
        known_lengths: Sequence[int] | None = None,
        min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE,
        max_sample_size: int | None = DEFAULT_MAX_SAMPLE_SIZE,
        cache_dir: str | os.PathLike | None = None,
        cache_dtype: str = "int16",
        precache: bool = True,
        num_prepare_workers: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        max_fallback_tries: int = 8,
    ):
        """Index ``reader``; prefer the ``from_*`` constructors.

        Args:
            known_lengths: per-item lengths in 16 kHz samples (e.g. from a manifest); otherwise
                probed from headers, or taken from the cache.
            min_sample_size: examples shorter than this are dropped (counted in ``too_short``).
            max_sample_size: longer examples are randomly cropped to this (``None``: no limit).
            cache_dir: directory for decoded ``.npy`` files (see :class:`AudioCache`).
            precache: with a cache, decode everything not yet cached now (each rank takes
                ``1/world_size`` of the files when torch.distributed is initialised, then all
                wait at a barrier). Lengths are then exact and every bad file is found up front.
                Otherwise files are cached the first time a worker loads them. For corpora that
                take longer to decode than the process group's timeout, fill the cache
                beforehand in a single process (build the dataset once with ``rank=0,
                world_size=1``).
            rank / world_size: this process's place. When torch.distributed is initialised,
                rank 0 builds the index and broadcasts it, so all ranks plan over the same
                examples even if a read fails on one of them.
            num_prepare_workers: threads for probing/decoding while indexing (default: CPU count).
            max_fallback_tries: how many replacement examples to try when loading fails late.
        """
        self._init_skip_log()
        self.min_sample_size = int(min_sample_size)
        self.max_sample_size = None if max_sample_size is None else int(max_sample_size)
        self.cache = AudioCache(cache_dir, cache_dtype) if cache_dir is not None else None
        self.max_fallback_tries = max_fallback_tries
        self._reader = reader
        self._known_lengths = None if known_lengths is None else [int(n) for n in known_lengths]
        #: lengths were given (manifest, length column), so files are first opened when loaded
        self.lengths_given = known_lengths is not None
        self._workers = num_prepare_workers or os.cpu_count() or 1
        self._decode_count = 0
        self._lock = threading.Lock()

        if self.cache is not None and precache:
            self._precache(rank, world_size)
        self._build_index(rank, world_size)

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike], **kwargs: Any) -> AudioDataset:
        """Dataset over explicit audio file paths."""
        return cls(FileReader([os.path.abspath(p) for p in paths]), **kwargs)

    @classmethod
    def from_folder(
        cls, directory: str | os.PathLike, *, extensions: Sequence[str] = AUDIO_EXTENSIONS, **kwargs: Any
    ) -> AudioDataset:
        """Dataset over every audio file under ``directory`` (recursive)."""
        paths = find_audio_files(directory, extensions)
        if not paths:
            raise ValueError(f"no audio files ({', '.join(extensions)}) under {directory}")
        return cls(FileReader(paths), **kwargs)

    @classmethod
    def from_manifest(
        cls, manifest: str | os.PathLike, *, trust_manifest_lengths: bool = True, **kwargs: Any
    ) -> AudioDataset:
        """Dataset over a fairseq ``.tsv`` manifest.

        With ``trust_manifest_lengths`` (default) the listed lengths are used as 16 kHz sample
        counts without opening the files (fairseq's behaviour: fast for huge corpora; files at
        other rates then get lengths that are off, and missing files are only found when
        loaded). Set it to ``False`` to probe each file's header instead.
        """
        paths, lengths = read_manifest(manifest)
        return cls(FileReader(paths), known_lengths=lengths if trust_manifest_lengths else None, **kwargs)

    @classmethod
    def from_hf_dataset(
        cls, dataset: Any, *, audio_column: str = "audio", length_column: str | None = None, **kwargs: Any
    ) -> AudioDataset:
        """Dataset over a map-style ``datasets.Dataset``.

        ``audio_column`` may be an ``Audio`` feature (any ``decode`` setting) or a string column
        of paths. ``length_column``, if given, holds lengths in 16 kHz samples and saves probing
        every row.
        """
        lengths = None
        if length_column is not None:
            lengths = [int(n) for n in dataset[length_column]]
        return cls(HFReader(dataset, audio_column), known_lengths=lengths, **kwargs)

    # -- indexing ----------------------------------------------------------------------------

    def _precache(self, rank: int, world_size: int) -> None:
        """Decode into the cache everything this rank is responsible for, then sync ranks."""
        share = range(len(self._reader))
        if distributed_is_initialized() and world_size > 1:
            share = range(rank, len(self._reader), world_size)
        _parallel_map(self._precache_one, list(share), self._workers)
        _distributed_barrier()

    def _precache_one(self, i: int) -> None:
        try:
            key = self._reader.cache_key(i)
        except AudioDecodeError:
            return  # reported by _index_one
        if self.cache.length(key) is not None or self.cache.failure(key) is not None:
            return
        try:
            wave = self._decode(i)
        except AudioDecodeError as err:
            self.cache.mark_failed(key, str(err))
            return
        self.cache.store(key, wave)

    def _index_one(self, i: int) -> tuple[int | None, SkippedAudio | None]:
        """Length of reader item ``i`` (cache, then known lengths, then header) or why not."""
        try:
            if self.cache is not None:
                key = self._reader.cache_key(i)
                length = self.cache.length(key)
                if length is not None:
                    return length, None
                reason = self.cache.failure(key)
                if reason is not None:
                    return None, SkippedAudio(self._reader.name(i), reason, DECODE_ERROR)
            if self._known_lengths is not None:
                return self._known_lengths[i], None
            return self._reader.probe(i), None
        except AudioDecodeError as err:
            return None, SkippedAudio(self._reader.name(i), str(err), DECODE_ERROR)

    def _build_index(self, rank: int, world_size: int) -> None:
        results = None
        distributed = distributed_is_initialized() and world_size > 1
        if distributed:
            rank = torch.distributed.get_rank()
        if not distributed or rank == 0:
            results = _parallel_map(self._index_one, list(range(len(self._reader))), self._workers)
        if distributed:
            # Every rank must plan over the very same examples, or the "each example once" and
            # "same number of steps" guarantees break (a transient read error on one rank would
            # do it). So rank 0 indexes (sparing the file system N-fold header reads) and shares.
            box = [results]
            torch.distributed.broadcast_object_list(box, src=0)
            results = box[0]
        item_ids, lengths, problems = [], [], []
        for i, (length, problem) in enumerate(results):
            if problem is not None:
                problems.append(problem)
            elif length < self.min_sample_size:
                problems.append(
                    SkippedAudio(
                        self._reader.name(i),
                        f"{length} samples < min_sample_size {self.min_sample_size}",
                        TOO_SHORT,
                        int(length),
                    )
                )
            else:
                item_ids.append(i)
                lengths.append(length)
        # Every rank holds the same records; rank 0 alone reports them.
        self.record_skipped(problems, warn=rank == 0)
        self.selection = AudioSelection(
            num_files=len(results),
            num_kept=len(item_ids),
            kept_seconds=sum(lengths) / TARGET_SAMPLE_RATE,
            num_too_short=self.num_too_short,
            too_short_seconds=sum(e.num_samples or 0 for e in self.too_short) / TARGET_SAMPLE_RATE,
            num_unreadable=self.num_skipped,
            min_sample_size=self.min_sample_size,
        )
        if rank == 0:
            self._report_selection()
        self._item_ids = np.asarray(item_ids, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self._fallback_order: np.ndarray | None = None

    def _report_selection(self) -> None:
        """Say at start-up what is trained on: dropping clips silently once cost most of a prompt corpus."""
        selection = self.selection
        logger.log(logging.WARNING if selection.num_dropped else logging.INFO, "%s", selection.summary())
        message = selection.warning()
        if message is not None:
            warnings.warn(message, AudioDroppedWarning, stacklevel=2)

    # -- properties --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._item_ids)

    @property
    def sources(self) -> list[str]:
        return [self._reader.name(int(i)) for i in self._item_ids]

    @property
    def num_decodes(self) -> int:
        return self._decode_count

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]  # locks do not pickle; each worker process gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------------------

    def _decode(self, reader_index: int) -> np.ndarray:
        wave = self._reader.decode(reader_index)
        with self._lock:
            self._decode_count += 1
        return wave

    def load(self, index: int) -> np.ndarray:
        """Whole example ``index`` at 16 kHz, uncropped: a memory-mapped cache array (int16 or
        float32, see :func:`to_float32`) or a freshly decoded float32 array."""
        reader_index = int(self._item_ids[index])
        key = self._reader.cache_key(reader_index) if self.cache is not None else None
        if key is not None:
            cached = self.cache.load(key)
            if cached is not None:
                return cached
        try:
            wave = self._decode(reader_index)
        except AudioDecodeError as err:
            if key is not None:
                self.cache.mark_failed(key, str(err))
            raise
        if key is not None:
            try:
                self.cache.store(key, wave)
            except OSError as err:  # a full disk must not stop training: just read uncached
                logger.warning("Could not cache %s: %s", self._reader.name(reader_index), err)
        return wave

    def _fallbacks(self, index: int, length: int) -> Iterator[int]:
        """Replacement candidates for a failing example: the next longer ones in length order
        (so the planned crop length is available), then shorter ones."""
        if self._fallback_order is None:
            self._fallback_order = np.argsort(self.lengths, kind="stable")
        order = self._fallback_order
        start = int(np.searchsorted(self.lengths[order], length, side="left"))
        candidates = np.concatenate([order[start:], order[:start][::-1]])
        return (int(c) for c in candidates[: self.max_fallback_tries + 1] if c != index)

    def __getitem__(self, key: int | CropRequest) -> dict[str, Any]:
        if isinstance(key, CropRequest):
            index, length, seed = int(key.index), int(key.length), key.seed
        else:
            index, seed = int(key), None
            length = int(self.lengths[index])
            if self.max_sample_size is not None:
                length = min(length, self.max_sample_size)
        skipped = []
        for candidate in [index, *self._fallbacks(index, length)]:
            try:
                wave = self.load(candidate)
            except AudioDecodeError as err:
                # Reported through the batch so that the main process counts it (this may run
                # in a DataLoader worker, whose copy of the dataset nobody sees).
                skipped.append(SkippedAudio(self._reader.name(int(self._item_ids[candidate])), str(err)))
                continue
            return {"input_values": random_crop(wave, length, seed), "index": candidate, "skipped": skipped}
        return {"input_values": None, "index": index, "skipped": skipped}


def random_crop(wave: np.ndarray, length: int, seed: int | None = None) -> np.ndarray:
    """A float32 copy of ``length`` consecutive samples of ``wave`` at an offset drawn from
    ``seed`` (all of ``wave`` if it is not longer)."""
    if len(wave) <= length:
        return to_float32(wave)
    start = int(np.random.default_rng(seed).integers(0, len(wave) - length + 1))
    return to_float32(wave[start : start + length])
