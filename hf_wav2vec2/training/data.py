"""Data pipeline for wav2vec 2.0 self-supervised pre-training on unlabeled audio.

Overview
--------
::

    source ──► AudioDataset ──────────────► LengthBucketBatchSampler ──► PretrainingCollator
    (folder,    decode → 16 kHz mono          duration-budgeted,           crop-to-shortest or
     manifest,  float32, optional .npy        length-bucketed batches,     pad + attention_mask,
     datasets)  cache, lengths known          sharded over ranks,          optional normalisation
                up front, bad files skipped   resumable

    get_pretraining_dataloader(source, ...) wires all of this into a PretrainingDataLoader
    (a torch DataLoader that also tracks its position for exact resume).

Sources
    * a folder of audio files (wav, flac, ogg, mp3, ... anything libsndfile reads), scanned
      recursively;
    * a fairseq manifest (``.tsv``: first line the root directory, then
      ``relative_path<TAB>num_samples``; lengths are taken as 16 kHz samples, fairseq's convention);
    * a Hugging Face ``datasets`` dataset: an object, a ``save_to_disk`` folder or a hub name.
      The audio column is cast to ``Audio(decode=False)`` and decoded here with soundfile + soxr,
      because ``datasets`` >= 4 decodes only through torchcodec. Streaming datasets are handled by
      :class:`StreamingPretrainingDataset`; there, length bucketing works within a buffer.

Everything is resampled to 16 kHz with soxr and mixed down to mono.

Speed
    Lengths come from the manifest, from ``soundfile.info`` (header only) or from the cache, so
    batches can be planned without decoding. Decoding happens once: with ``cache_dir`` every file
    is decoded (in a thread pool, shared between ranks) into ``<cache_dir>/<key>.<dtype>.npy``,
    keyed by path + mtime + size (or dataset fingerprint + row), and later epochs and runs only
    memory-map the slice they crop. Without a cache, decoding runs in DataLoader workers.

Robustness
    A file that cannot be decoded (unknown format, truncated WAV, non-finite samples, missing) is
    skipped with a warning and recorded in ``dataset.skipped`` (``dataset.num_skipped``); files
    shorter than ``min_sample_size`` go to ``dataset.too_short``. Most failures are caught while
    indexing, and ``dataset.selection`` (:class:`AudioSelection`) says at once how much audio is
    kept and how much each reason dropped (logged; an :class:`AudioDroppedWarning` when it is more
    than a quarter of the files, since the 2 s default silently dropped most of a prompt corpus). One discovered only when loading is replaced by another example of at least the
    planned length, so the batch keeps its shape and every rank keeps the same number of steps
    (DDP would hang otherwise); the loader then adds it to ``dataset.skipped`` in the main process.

Batching (fairseq semantics)
    Examples longer than ``max_sample_size`` (default 250 000 = 15.6 s) are randomly cropped to it.
    Batches are formed over a length-sorted order (with a little multiplicative noise so that batch
    composition changes between epochs) so that ``batch_size * longest_in_batch <= max_tokens``.
    With ``pad=False`` (fairseq pre-training default) every example in a batch is randomly cropped
    to the shortest one: no padding, no attention mask. With ``pad=True`` examples are zero-padded
    to the longest and an ``attention_mask`` is returned. :class:`BatchingStats` reports the waste
    (padding + audio cropped away); on a realistic length distribution it is a few percent.

Distributed training
    All ranks compute the same plan from ``(seed, epoch)``. The number of batches is made a
    multiple of ``world_size`` by splitting the batches holding the most examples in two (halves
    of a valid batch are valid batches), so every rank gets the same number of batches and each
    example is seen exactly once per epoch. Consecutive groups of ``world_size`` batches in length
    order go to the ranks together, so ranks work on similar lengths at each step. Only when that
    is impossible (fewer examples than ranks) are batches repeated, with a warning.

    The loader is sharded already: do **not** pass it through ``accelerator.prepare`` (that would
    shard it a second time); move batches with ``batch["input_values"].to(accelerator.device)``.

Resume
    ``loader.state_dict()`` returns the epoch and the number of batches this rank has consumed;
    after ``loader.load_state_dict(state)`` (and ``set_epoch`` with the same epoch, which keeps the
    position) iteration continues with exactly the batches (and crops) that were left.

Typical use::

    loader = get_pretraining_dataloader("/data/librispeech", max_tokens=1_400_000,
                                        cache_dir="/scratch/w2v_cache", num_workers=6,
                                        rank=accelerator.process_index,
                                        world_size=accelerator.num_processes)
    for epoch in range(start_epoch, num_epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            ...  # batch["input_values"]: (B, T) float32; "lengths": (B,); "attention_mask" if pad
            checkpoint["data"] = loader.state_dict()
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from ..audio import (
    AudioError,
    read_audio,
    resample,
    resampled_length,  # noqa: F401  (re-exported: part of this module's API)
    to_float32_mono,
)
from ..audio import probe_num_samples as audio_probe_num_samples

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_MAX_SAMPLE_SIZE",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MIN_SAMPLE_SIZE",
    "TARGET_SAMPLE_RATE",
    "AudioCache",
    "AudioDataset",
    "AudioDecodeError",
    "AudioDroppedWarning",
    "AudioSelection",
    "BatchingStats",
    "CropRequest",
    "LengthBucketBatchSampler",
    "PretrainingCollator",
    "PretrainingDataLoader",
    "SkippedAudio",
    "StreamingPretrainingDataset",
    "batching_stats",
    "decode_audio",
    "find_audio_files",
    "get_pretraining_dataloader",
    "load_audio_dataset",
    "plan_batches",
    "probe_num_samples",
    "read_manifest",
    "write_manifest",
]

logger = logging.getLogger(__name__)

TARGET_SAMPLE_RATE = 16_000
#: fairseq wav2vec 2.0 BASE ``max_sample_size``: 15.6 s at 16 kHz.
DEFAULT_MAX_SAMPLE_SIZE = 250_000
#: 2 s at 16 kHz; shorter files are dropped.
DEFAULT_MIN_SAMPLE_SIZE = 32_000
#: fairseq BASE ``max_tokens`` per GPU.
DEFAULT_MAX_TOKENS = 1_400_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")

DECODE_ERROR = "decode_error"
TOO_SHORT = "too_short"
# Individual warnings for the first few problem files; after that only a summary, to keep logs usable.
_MAX_INDIVIDUAL_WARNINGS = 10
#: An AudioDroppedWarning is issued when indexing leaves out more than this fraction of the files.
DROPPED_WARNING_FRACTION = 0.25
_INT16_SCALE = 32768.0


class AudioDecodeError(RuntimeError):
    """An audio file or buffer could not be decoded (the message says why)."""


class SkippedAudio(NamedTuple):
    """An example left out of training: ``kind`` is ``"decode_error"`` or ``"too_short"``;
    ``num_samples`` its length at 16 kHz where known (always for ``too_short``)."""

    source: str
    reason: str
    kind: str = DECODE_ERROR
    num_samples: int | None = None


class AudioDroppedWarning(UserWarning):
    """Indexing left out much of the audio (see :class:`AudioSelection`, ``dataset.selection``)."""


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


@dataclass(frozen=True)
class AudioSelection:
    """What indexing kept of a source and why it left out the rest (``AudioDataset.selection``).

    Seconds are of 16 kHz audio; the length of a file that cannot be read is unknown, so
    ``dropped_fraction`` counts files.
    """

    num_files: int
    num_kept: int
    kept_seconds: float
    num_too_short: int
    too_short_seconds: float
    num_unreadable: int
    min_sample_size: int

    @property
    def num_dropped(self) -> int:
        return self.num_too_short + self.num_unreadable

    @property
    def dropped_fraction(self) -> float:
        return self.num_dropped / self.num_files if self.num_files else 0.0

    def summary(self) -> str:
        """One line: what is kept, and per reason how many files (and seconds) are not."""
        known = self.kept_seconds + self.too_short_seconds
        text = (f"pre-training audio: kept {self.num_kept} of {_files(self.num_files)} "
                f"({_duration(self.kept_seconds)} of {_duration(known)} with a known length)")
        reasons = []
        if self.num_too_short:
            reasons.append(f"{self.num_too_short} shorter than min_sample_size={self.min_sample_size} samples "
                           f"({self.min_sample_size / TARGET_SAMPLE_RATE:.2f} s): {_duration(self.too_short_seconds)}")
        if self.num_unreadable:
            reasons.append(f"{self.num_unreadable} unreadable (length unknown)")
        return text + (f"; dropped {', '.join(reasons)}" if reasons else "")

    def warning(self) -> str | None:
        """The message of the AudioDroppedWarning, or None when at most DROPPED_WARNING_FRACTION is left out."""
        if self.dropped_fraction <= DROPPED_WARNING_FRACTION:
            return None
        hints = []
        if self.num_too_short:
            hints.append(f"{_files(self.num_too_short)} ({_duration(self.too_short_seconds)}) shorter than "
                         f"min_sample_size={self.min_sample_size} samples "
                         f"({self.min_sample_size / TARGET_SAMPLE_RATE:.2f} s): pass a smaller one "
                         f"(hf-wav2vec2 pretrain --min_sample_size) to keep them")
        if self.num_unreadable:
            hints.append(f"{_files(self.num_unreadable)} that cannot be read (the first reasons are logged above)")
        return (f"{self.dropped_fraction:.0%} of the {_files(self.num_files)} of audio are left out of "
                f"pre-training: {'; '.join(hints)}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "dropped_fraction": self.dropped_fraction}


class CropRequest(NamedTuple):
    """What the batch sampler asks the dataset for: ``length`` samples of example ``index``,
    cropped at a random offset drawn from ``seed`` (so crops are reproducible on resume)."""

    index: int
    length: int
    seed: int


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


@contextmanager
def _decode_errors() -> Iterator[None]:
    """Report any decoding failure as :class:`AudioDecodeError` (reason without the file name,
    which the skip records carry separately)."""
    try:
        yield
    except AudioDecodeError:
        raise
    except AudioError as err:
        raise AudioDecodeError(err.reason) from err
    except Exception as err:  # one bad file must never stop training
        raise AudioDecodeError(f"{type(err).__name__}: {err}") from err


def decode_audio(source: Any, target_sample_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Decode a file path, encoded bytes or binary file object to mono float32 at the target rate.

    Decoding, mono mixing, resampling (soxr "HQ") and the truncation/corruption checks are those
    of :func:`hf_wav2vec2.audio.read_audio` (soundfile only, no ffmpeg fallback). Any failure
    raises :class:`AudioDecodeError`.
    """
    with _decode_errors():
        wave, sample_rate = read_audio(source, ffmpeg=False)
        return resample(wave, sample_rate, target_sample_rate)


def probe_num_samples(source: Any, target_sample_rate: int = TARGET_SAMPLE_RATE) -> int:
    """Length in samples at ``target_sample_rate`` from the header alone (decodes only if the
    format does not state its length); see :func:`hf_wav2vec2.audio.probe_num_samples`."""
    with _decode_errors():
        return audio_probe_num_samples(source, target_sample_rate, ffmpeg=False)


# --------------------------------------------------------------------------------------------
# Source listing
# --------------------------------------------------------------------------------------------


def find_audio_files(directory: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[str]:
    """All files under ``directory`` (recursively, following symlinks) whose extension is in
    ``extensions`` (case-insensitive), as sorted absolute paths."""
    wanted = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    found = []
    for root, _dirs, files in os.walk(os.path.abspath(directory), followlinks=True):
        for name in files:
            if os.path.splitext(name)[1].lower() in wanted:
                found.append(os.path.join(root, name))
    found.sort()  # os.walk order is filesystem dependent; plans must not be
    return found


def read_manifest(path: str | os.PathLike) -> tuple[list[str], list[int]]:
    """Read a fairseq manifest: returns absolute paths and the listed lengths (in samples)."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if not lines:
        raise ValueError(f"empty manifest: {path}")
    root = lines[0].strip()
    if not os.path.isabs(root):  # relative roots are relative to the manifest, not the cwd
        root = os.path.join(os.path.dirname(os.path.abspath(path)), root)
    paths, lengths = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise ValueError(f"{path}:{number}: expected 'relative_path<TAB>num_samples', got {line!r}")
        paths.append(os.path.join(root, parts[0]))
        lengths.append(int(parts[1]))
    return paths, lengths


def write_manifest(
    path: str | os.PathLike,
    root: str | os.PathLike,
    files: Sequence[str | os.PathLike] | None = None,
    lengths: Sequence[int] | None = None,
) -> None:
    """Write a fairseq manifest for ``files`` (default: all audio under ``root``); lengths are
    probed (16 kHz samples) unless given. Files that cannot be probed are left out."""
    root = os.path.abspath(root)
    files = find_audio_files(root) if files is None else [os.path.abspath(f) for f in files]
    rows = []
    for i, file in enumerate(files):
        try:
            length = int(lengths[i]) if lengths is not None else probe_num_samples(file)
        except AudioDecodeError as err:
            logger.warning("write_manifest: leaving out %s (%s)", file, err)
            continue
        rows.append(f"{os.path.relpath(file, root)}\t{length}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join([root, *rows]) + "\n")


# --------------------------------------------------------------------------------------------
# Cache of decoded audio
# --------------------------------------------------------------------------------------------


class AudioCache:
    """Decoded 16 kHz mono audio as ``.npy`` files under ``directory``, memory-mapped on read.

    ``dtype="int16"`` halves disk space and I/O compared to ``"float32"``; the quantisation is
    that of the 16-bit sources most corpora come as. Writes are atomic (temporary file +
    rename), so ranks and workers can fill the cache concurrently. A file that failed to decode
    gets a ``.err`` marker holding the reason, so later runs skip it without trying again.
    """

    def __init__(self, directory: str | os.PathLike, dtype: str = "int16"):
        if dtype not in ("int16", "float32"):
            raise ValueError(f"cache dtype must be 'int16' or 'float32', got {dtype!r}")
        self.directory = Path(directory)
        self.dtype = dtype
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        # Two-character fan-out keeps directories small for million-file corpora.
        return self.directory / key[:2] / f"{key}.{self.dtype}.npy"

    def _error_path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.err"

    def load(self, key: str) -> np.ndarray | None:
        """The cached array (memory-mapped, in the cache dtype) or ``None`` if absent/unreadable."""
        path = self.path(key)
        try:
            return np.load(path, mmap_mode="r")
        except FileNotFoundError:
            return None
        except ValueError:
            # numpy cannot memory-map an empty array; anything else here is a damaged file.
            try:
                return np.load(path)
            except (ValueError, OSError):
                path.unlink(missing_ok=True)
                return None
        except OSError:
            path.unlink(missing_ok=True)
            return None

    def length(self, key: str) -> int | None:
        """Number of cached samples, from the ``.npy`` header alone (indexing a large corpus
        reads one header per file, so no memory map is set up), or ``None`` if not cached."""
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, _ = read_header(handle)
        except FileNotFoundError:
            return None
        except (ValueError, OSError):  # damaged entry: drop it so it is rebuilt
            path.unlink(missing_ok=True)
            return None
        return int(shape[0])

    def store(self, key: str, wave: np.ndarray) -> None:
        if self.dtype == "int16":
            wave = np.clip(np.round(wave * _INT16_SCALE), -32768, 32767).astype(np.int16)
        else:
            wave = np.asarray(wave, dtype=np.float32)
        self._atomic_write(self.path(key), lambda handle: np.save(handle, wave))

    def failure(self, key: str) -> str | None:
        try:
            return self._error_path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def mark_failed(self, key: str, reason: str) -> None:
        self._atomic_write(self._error_path(key), lambda handle: handle.write(reason.encode("utf-8")))

    @staticmethod
    def _atomic_write(path: Path, write) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as handle:
                write(handle)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def to_float32(samples: np.ndarray) -> np.ndarray:
    """A float32 copy of ``samples`` (int16 cache arrays are scaled to [-1, 1))."""
    wave = to_float32_mono(np.asarray(samples))
    # Never hand out a view of a memory-mapped cache file.
    return wave.copy() if np.may_share_memory(wave, samples) else wave


def _hash_key(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Readers: how to name, probe, decode and cache-key item i of one kind of source
# --------------------------------------------------------------------------------------------


class _FileReader:
    """Audio files on disk (folder and manifest sources)."""

    def __init__(self, paths: Sequence[str]):
        self.paths = [os.fspath(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, i: int) -> str:
        return self.paths[i]

    def cache_key(self, i: int) -> str:
        path = os.path.abspath(self.paths[i])
        try:
            stat = os.stat(path)
        except OSError as err:
            raise AudioDecodeError(f"cannot stat file: {err}") from err
        # mtime + size: an edited or replaced file gets a new entry instead of stale audio.
        return _hash_key("file", path, stat.st_mtime_ns, stat.st_size, TARGET_SAMPLE_RATE)

    def probe(self, i: int) -> int:
        return probe_num_samples(self.paths[i])

    def decode(self, i: int) -> np.ndarray:
        return decode_audio(self.paths[i])


def _hf_audio_source(value: Any) -> Any:
    """What to decode for one value of an ``Audio(decode=False)`` (or path string) column:
    the embedded bytes if present, else the path."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return value["bytes"]
        if value.get("path"):
            return value["path"]
        raise AudioDecodeError("row holds neither audio bytes nor a path")
    raise AudioDecodeError(f"unsupported audio value of type {type(value).__name__}")


def _hf_audio_name(value: Any, fallback: str) -> str:
    path = value if isinstance(value, str) else value.get("path") if isinstance(value, dict) else None
    return f"{fallback} ({path})" if path else fallback


class _HFReader:
    """Rows of a map-style ``datasets.Dataset``, audio column cast to ``Audio(decode=False)``."""

    def __init__(self, dataset: Any, audio_column: str):
        from datasets import Audio

        if audio_column not in dataset.column_names:
            raise ValueError(f"audio column {audio_column!r} not in dataset columns {dataset.column_names}")
        dataset = dataset.select_columns([audio_column])
        feature = dataset.features[audio_column]
        if not (isinstance(feature, Audio) and not feature.decode):
            # datasets >= 4 decodes only through torchcodec; we decode the raw bytes/paths ourselves.
            dataset = dataset.cast_column(audio_column, Audio(decode=False))
        self.dataset = dataset
        self.audio_column = audio_column
        # The fingerprint identifies the dataset's content for datasets loaded from disk or hub
        # (in-memory datasets get a random one, so their cache entries are not reused across runs).
        self.fingerprint = getattr(dataset, "_fingerprint", None) or uuid.uuid4().hex

    def __len__(self) -> int:
        return len(self.dataset)

    def _value(self, i: int) -> Any:
        return self.dataset[i][self.audio_column]

    def name(self, i: int) -> str:
        try:
            return _hf_audio_name(self._value(i), f"row {i}")
        except Exception:  # noqa: BLE001 - a name only labels messages; never fail because of it
            return f"row {i}"

    def cache_key(self, i: int) -> str:
        return _hash_key("hf", self.fingerprint, self.audio_column, i, TARGET_SAMPLE_RATE)

    def probe(self, i: int) -> int:
        return probe_num_samples(_hf_audio_source(self._value(i)))

    def decode(self, i: int) -> np.ndarray:
        return decode_audio(_hf_audio_source(self._value(i)))


# --------------------------------------------------------------------------------------------
# Skip bookkeeping shared by map-style and streaming datasets
# --------------------------------------------------------------------------------------------


class _SkipLog:
    """``skipped`` (undecodable) and ``too_short`` lists with counted, rate-limited warnings."""

    def _init_skip_log(self) -> None:
        self.skipped: list[SkippedAudio] = []
        self.too_short: list[SkippedAudio] = []
        self._seen_skips: set[tuple[str, str]] = set()

    @property
    def num_skipped(self) -> int:
        """Number of examples skipped because they could not be decoded."""
        return len(self.skipped)

    @property
    def num_too_short(self) -> int:
        """Number of examples dropped for being shorter than ``min_sample_size``."""
        return len(self.too_short)

    def record_skipped(self, entries: Sequence[SkippedAudio], warn: bool = True) -> None:
        """Add skip records (deduplicated by source and kind) and warn about new decode errors
        (unless ``warn`` is false: another rank reports the same records)."""
        for entry in entries:
            entry = SkippedAudio(*entry)
            if (entry.source, entry.kind) in self._seen_skips:
                continue
            self._seen_skips.add((entry.source, entry.kind))
            if entry.kind == TOO_SHORT:
                self.too_short.append(entry)
                continue
            self.skipped.append(entry)
            if not warn:
                continue
            if len(self.skipped) <= _MAX_INDIVIDUAL_WARNINGS:
                logger.warning("Skipping undecodable audio %s: %s", entry.source, entry.reason)
            elif len(self.skipped) == _MAX_INDIVIDUAL_WARNINGS + 1:
                logger.warning("More undecodable audio; further files are only counted (see .skipped)")


# --------------------------------------------------------------------------------------------
# Map-style dataset
# --------------------------------------------------------------------------------------------


def _parallel_map(fn, items: Sequence, num_workers: int) -> list:
    # libsndfile (via cffi) and soxr release the GIL, so threads decode in parallel without
    # the pickling and start-up cost of processes.
    if num_workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        return list(pool.map(fn, items, chunksize=max(1, min(64, len(items) // (4 * num_workers)))))


def _distributed_barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _distributed_is_initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class AudioDataset(Dataset, _SkipLog):
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
        reader: _FileReader | _HFReader,
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
        return cls(_FileReader([os.path.abspath(p) for p in paths]), **kwargs)

    @classmethod
    def from_folder(
        cls, directory: str | os.PathLike, *, extensions: Sequence[str] = AUDIO_EXTENSIONS, **kwargs: Any
    ) -> AudioDataset:
        """Dataset over every audio file under ``directory`` (recursive)."""
        paths = find_audio_files(directory, extensions)
        if not paths:
            raise ValueError(f"no audio files ({', '.join(extensions)}) under {directory}")
        return cls(_FileReader(paths), **kwargs)

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
        return cls(_FileReader(paths), known_lengths=lengths if trust_manifest_lengths else None, **kwargs)

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
        return cls(_HFReader(dataset, audio_column), known_lengths=lengths, **kwargs)

    # -- indexing ----------------------------------------------------------------------------

    def _precache(self, rank: int, world_size: int) -> None:
        """Decode into the cache everything this rank is responsible for, then sync ranks."""
        share = range(len(self._reader))
        if _distributed_is_initialized() and world_size > 1:
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
        distributed = _distributed_is_initialized() and world_size > 1
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
            warnings.warn(message, AudioDroppedWarning)

    # -- properties --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._item_ids)

    @property
    def sources(self) -> list[str]:
        return [self._reader.name(int(i)) for i in self._item_ids]

    @property
    def total_seconds(self) -> float:
        return float(self.lengths.sum()) / TARGET_SAMPLE_RATE

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


# --------------------------------------------------------------------------------------------
# Batch planning
# --------------------------------------------------------------------------------------------


def _effective_lengths(lengths: np.ndarray, max_sample_size: int | None) -> np.ndarray:
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
    eff = _effective_lengths(lengths, max_sample_size)
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


def _split_to_multiple(batches: list[np.ndarray], multiple: int) -> list[np.ndarray]:
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
    eff = _effective_lengths(lengths, max_sample_size)
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


# --------------------------------------------------------------------------------------------
# Batch sampler
# --------------------------------------------------------------------------------------------


def _resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values, else torch.distributed, else the RANK/WORLD_SIZE launcher variables."""
    if rank is None or world_size is None:
        if _distributed_is_initialized():
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

    Each epoch (``set_epoch``) all ranks derive the same plan from ``(seed, epoch)``:

    1. :func:`plan_batches`: batches with ``batch_size * longest <= max_tokens`` over a noisy
       length sort (``shuffle=False``: exact sort, same plan every epoch).
    2. Batches holding the most examples are split in two until their number is a multiple of
       ``world_size``; so every rank gets the same number of batches and every example appears
       exactly once per epoch. If there are too few examples for that, batches are repeated
       (``num_repeated_batches`` > 0, with a warning).
    3. Consecutive groups of ``world_size`` batches (similar lengths) are shuffled as units;
       step ``s`` of rank ``r`` is batch ``r`` of group ``s``, so ranks wait little on each other.
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
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_sample_size: int | None = DEFAULT_MAX_SAMPLE_SIZE,
        pad: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = True,
        length_noise: float = 0.05,
        max_batch_size: int | None = None,
    ):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_tokens = int(max_tokens)
        self.max_sample_size = max_sample_size
        self.pad = pad
        self.seed = int(seed)
        self.rank, self.world_size = _resolve_rank(rank, world_size)
        self.shuffle = shuffle
        self.length_noise = length_noise
        self.max_batch_size = max_batch_size
        self.num_repeated_batches = 0
        eff = _effective_lengths(self.lengths, max_sample_size)
        if len(eff) and eff.max() > self.max_tokens:
            raise ValueError(
                f"max_tokens={max_tokens} is smaller than the longest (capped) example ({int(eff.max())} "
                "samples); raise max_tokens or lower max_sample_size"
            )
        self._epoch = 0
        self._position = 0  # batches of this epoch handed out (or consumed, after a resume)
        self._start_next_at = 0  # where the next __iter__ starts (set by load_state_dict)
        self._plan_cache: tuple[int, list[np.ndarray], list[np.ndarray]] | None = None

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
        rng = np.random.default_rng([self.seed, epoch]) if self.shuffle else None
        batches = plan_batches(
            self.lengths,
            max_tokens=self.max_tokens,
            max_sample_size=self.max_sample_size,
            rng=rng,
            length_noise=self.length_noise,
            max_batch_size=self.max_batch_size,
        )
        batches = _split_to_multiple(batches, self.world_size)
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
        seed_rng = rng if rng is not None else np.random.default_rng([self.seed, epoch])
        seeds = [seed_rng.integers(0, 2**31 - 1, size=len(b)) for b in ordered]
        self._plan_cache = (epoch, ordered, seeds)
        return ordered, seeds

    def _requests(self, batch: np.ndarray, seeds: np.ndarray) -> list[CropRequest]:
        eff = _effective_lengths(self.lengths[batch], self.max_sample_size)
        targets = eff if self.pad else np.full(len(batch), eff.min())
        return [CropRequest(int(i), int(t), int(s)) for i, t, s in zip(batch, targets, seeds)]

    def global_batches(self, epoch: int | None = None) -> list[list[CropRequest]]:
        """All ranks' batches of ``epoch`` (default: current) in step-major order."""
        batches, seeds = self._plan(self._epoch if epoch is None else epoch)
        return [self._requests(b, s) for b, s in zip(batches, seeds)]

    def rank_batches(self, epoch: int | None = None) -> list[list[CropRequest]]:
        """This rank's batches of ``epoch`` (default: current), from the first one."""
        batches, seeds = self._plan(self._epoch if epoch is None else epoch)
        return [self._requests(batches[i], seeds[i]) for i in range(self.rank, len(batches), self.world_size)]

    def stats(self, epoch: int | None = None) -> BatchingStats:
        """Waste and fill of the global plan of ``epoch`` (default: current)."""
        batches, _ = self._plan(self._epoch if epoch is None else epoch)
        return batching_stats(
            self.lengths, batches, max_tokens=self.max_tokens, max_sample_size=self.max_sample_size, pad=self.pad
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


# --------------------------------------------------------------------------------------------
# Collation
# --------------------------------------------------------------------------------------------


class PretrainingCollator:
    """Stack dataset items into a batch.

    Output: ``input_values`` float32 (B, T); ``lengths`` int64 (B,) real samples per row;
    ``attention_mask`` int64 (B, T) only with ``pad=True``; ``skipped``: list of
    :class:`SkippedAudio` discovered while loading (consumed by :class:`PretrainingDataLoader`).

    ``pad=False`` (fairseq pre-training): rows are randomly cropped to the shortest (the batch
    sampler already requests equal lengths, so normally nothing is cropped here). ``pad=True``:
    rows are zero-padded to the longest. ``normalize=True`` scales each row's real samples to
    zero mean and unit variance (fairseq ``normalize``, needed by the layer-norm LARGE models).
    Items whose loading failed entirely are dropped; a batch without any row has shape (0, 0).
    """

    def __init__(self, pad: bool = False, normalize: bool = False, seed: int | None = None):
        self.pad = pad
        self.normalize = normalize
        self._rng = np.random.default_rng(seed)

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        skipped = [entry for item in items for entry in item.get("skipped", ())]
        waves = [
            np.asarray(item["input_values"], dtype=np.float32) for item in items if item["input_values"] is not None
        ]
        if not waves:
            batch = {"input_values": torch.zeros(0, 0), "lengths": torch.zeros(0, dtype=torch.long)}
            if self.pad:
                batch["attention_mask"] = torch.zeros(0, 0, dtype=torch.long)
            batch["skipped"] = skipped
            return batch
        if not self.pad:
            target = min(len(w) for w in waves)
            waves = [self._crop(w, target) for w in waves]
        if self.normalize:
            waves = [_normalize(w) for w in waves]
        lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
        values = torch.zeros(len(waves), int(lengths.max()))
        for row, wave in enumerate(waves):
            values[row, : len(wave)] = torch.from_numpy(wave)
        batch = {"input_values": values, "lengths": lengths}
        if self.pad:
            batch["attention_mask"] = (torch.arange(values.shape[1])[None, :] < lengths[:, None]).long()
        batch["skipped"] = skipped
        return batch

    def _crop(self, wave: np.ndarray, length: int) -> np.ndarray:
        if len(wave) == length:
            return wave
        start = int(self._rng.integers(0, len(wave) - length + 1))
        return wave[start : start + length]


def _normalize(wave: np.ndarray) -> np.ndarray:
    # eps as in fairseq's F.layer_norm over the waveform
    return ((wave - wave.mean()) / np.sqrt(wave.var() + 1e-5)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Streaming (datasets.IterableDataset)
# --------------------------------------------------------------------------------------------


def _identity(batch: Any) -> Any:
    return batch


class StreamingPretrainingDataset(IterableDataset, _SkipLog):
    """Ready-made batches from a streaming ``datasets.IterableDataset``.

    Lengths are unknown up front, so bucketing works within a buffer: examples are decoded
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
        *,
        audio_column: str = "audio",
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_sample_size: int | None = DEFAULT_MAX_SAMPLE_SIZE,
        min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE,
        pad: bool = False,
        normalize: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = True,
        shuffle_buffer_size: int = 1000,
        bucket_buffer_size: int = 1000,
        length_noise: float = 0.05,
        max_batch_size: int | None = None,
        infinite: bool = False,
    ):
        from datasets import Audio
        from datasets.distributed import split_dataset_by_node

        self._init_skip_log()
        if max_sample_size is not None and max_sample_size > max_tokens:
            raise ValueError("max_tokens must be at least max_sample_size")
        self.rank, self.world_size = _resolve_rank(rank, world_size)
        feature = (dataset.features or {}).get(audio_column)
        if not (isinstance(feature, Audio) and not feature.decode):
            dataset = dataset.cast_column(audio_column, Audio(decode=False))
        if self.world_size > 1:
            dataset = split_dataset_by_node(dataset, rank=self.rank, world_size=self.world_size)
        self.dataset = dataset
        self.audio_column = audio_column
        self.max_tokens = max_tokens
        self.max_sample_size = max_sample_size
        self.min_sample_size = min_sample_size
        self.seed = seed
        self.shuffle = shuffle
        self.shuffle_buffer_size = shuffle_buffer_size
        self.bucket_buffer_size = bucket_buffer_size
        self.length_noise = length_noise
        self.max_batch_size = max_batch_size
        self.infinite = infinite
        self.collator = PretrainingCollator(pad=pad, normalize=normalize)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _emit(self, waves: list[np.ndarray], rng: np.random.Generator, pending: list) -> Iterator[dict]:
        lengths = np.array([len(w) for w in waves], dtype=np.int64)
        batches = plan_batches(
            lengths,
            max_tokens=self.max_tokens,
            max_sample_size=self.max_sample_size,
            rng=rng if self.shuffle else None,
            length_noise=self.length_noise,
            max_batch_size=self.max_batch_size,
        )
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        for batch in batches:
            eff = _effective_lengths(lengths[batch], self.max_sample_size)
            targets = eff if self.collator.pad else np.full(len(batch), eff.min())
            items = [
                {"input_values": random_crop(waves[i], int(t), int(rng.integers(2**31 - 1)))}
                for i, t in zip(batch, targets)
            ]
            collated = self.collator(items)
            collated["skipped"], pending[:] = list(pending), []
            yield collated

    def _epoch_batches(self, epoch: int) -> Iterator[dict]:
        dataset = self.dataset
        if self.shuffle:
            dataset = dataset.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer_size)
            dataset.set_epoch(epoch)
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, epoch, self.rank, info.id if info else 0])
        waves, pending = [], []
        for row, example in enumerate(dataset):
            value = example[self.audio_column]
            name = _hf_audio_name(value, f"row {row}")
            try:
                wave = decode_audio(_hf_audio_source(value))
            except AudioDecodeError as err:
                pending.append(SkippedAudio(name, str(err), DECODE_ERROR))
                continue
            if len(wave) < self.min_sample_size:
                pending.append(SkippedAudio(name, f"{len(wave)} samples < min_sample_size", TOO_SHORT, len(wave)))
                continue
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


# --------------------------------------------------------------------------------------------
# DataLoader
# --------------------------------------------------------------------------------------------


class PretrainingDataLoader(DataLoader):
    """A ``DataLoader`` that counts the batches it delivers, for exact resume, and moves
    skip reports from the batches into the dataset's counters (``loader.dataset.num_skipped``).

    ``set_epoch``, ``state_dict`` and ``load_state_dict`` act on the batch sampler (or, for
    streaming, ``set_epoch`` on the dataset). Batches contain ``input_values``, ``lengths`` and,
    with padding, ``attention_mask``.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._consumed: int | None = None
        self._iter_epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.batch_sampler, LengthBucketBatchSampler):
            self.batch_sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        sampler = self.batch_sampler if isinstance(self.batch_sampler, LengthBucketBatchSampler) else None
        if sampler is not None:
            self._iter_epoch, self._consumed = sampler.epoch, sampler.next_start
        for batch in super().__iter__():
            skipped = batch.pop("skipped", None)
            if skipped and hasattr(self.dataset, "record_skipped"):
                self.dataset.record_skipped(skipped)
            if "input_values" not in batch:  # streaming: a report with no batch attached
                continue
            if sampler is not None:
                self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Epoch and number of this rank's batches consumed in it (see
        :meth:`LengthBucketBatchSampler.state_dict`)."""
        sampler = self.batch_sampler
        if not isinstance(sampler, LengthBucketBatchSampler):
            raise TypeError("state_dict needs a LengthBucketBatchSampler (not available for streaming)")
        if self._iter_epoch == sampler.epoch and self._consumed is not None:
            return sampler.state_dict(batches_consumed=self._consumed)
        return sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self.batch_sampler
        if not isinstance(sampler, LengthBucketBatchSampler):
            raise TypeError("load_state_dict needs a LengthBucketBatchSampler (not available for streaming)")
        sampler.load_state_dict(state)
        self._iter_epoch = self._consumed = None


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _is_saved_hf_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def _from_datasets_module(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "datasets"


def _load_hf(source: Any, *, split: str, dataset_config: str | None, streaming: bool) -> Any:
    """Turn a path, hub name, Dataset or DatasetDict into one split of a datasets object."""
    import datasets

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() and _is_saved_hf_dataset(path):
            source = datasets.load_from_disk(str(path))
            if streaming and isinstance(source, datasets.Dataset):
                source = source.to_iterable_dataset()
        else:
            source = datasets.load_dataset(str(source), dataset_config, split=split, streaming=streaming)
    if isinstance(source, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in source:
            raise ValueError(f"split {split!r} not in {list(source)}")
        source = source[split]
    if streaming and isinstance(source, datasets.Dataset):
        source = source.to_iterable_dataset()
    return source


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
        if _from_datasets_module(source):
            source_type = "hf"
        elif str(source).endswith(".tsv") and os.path.isfile(source):
            source_type = "manifest"
        elif os.path.isdir(source) and not _is_saved_hf_dataset(Path(source)):
            source_type = "folder"
        else:
            source_type = "hf"
    if source_type == "folder":
        return AudioDataset.from_folder(source, extensions=extensions, **kwargs)
    if source_type == "manifest":
        return AudioDataset.from_manifest(source, trust_manifest_lengths=trust_manifest_lengths, **kwargs)
    if source_type == "hf":
        dataset = _load_hf(source, split=split, dataset_config=dataset_config, streaming=False)
        return AudioDataset.from_hf_dataset(dataset, audio_column=audio_column, length_column=length_column, **kwargs)
    raise ValueError(f"unknown source_type {source_type!r}")


def get_pretraining_dataloader(
    source: Any,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_sample_size: int | None = DEFAULT_MAX_SAMPLE_SIZE,
    min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE,
    pad: bool = False,
    normalize: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_dtype: str = "int16",
    precache: bool = True,
    shuffle: bool = True,
    length_noise: float = 0.05,
    max_batch_size: int | None = None,
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
    **source_kwargs: Any,
) -> PretrainingDataLoader:
    """A DataLoader of pre-training batches for this process.

    Args:
        source: audio folder, ``.tsv`` manifest, saved/hub ``datasets`` dataset, a
            ``datasets.Dataset`` / ``IterableDataset``, or an :class:`AudioDataset`.
        max_tokens: per-batch budget ``batch_size * longest <= max_tokens`` (16 kHz samples).
        max_sample_size / min_sample_size: crop longer / drop shorter examples (samples).
        pad: ``False``: crop each batch to its shortest example (fairseq pre-training);
            ``True``: pad to the longest and return ``attention_mask``.
        normalize: zero mean / unit variance per example (for LARGE / layer-norm models).
        num_workers: DataLoader worker processes (decode/crop/collate in parallel).
        seed: plans, shuffles and crops are deterministic given it.
        rank / world_size: this process's shard; default from torch.distributed or the
            RANK/WORLD_SIZE environment variables.
        cache_dir: cache of decoded audio (see :class:`AudioDataset`, :class:`AudioCache`);
            with ``precache`` everything is decoded while building the loader.
        shuffle / length_noise / max_batch_size: see :class:`LengthBucketBatchSampler`.
        streaming: read ``source`` as a ``datasets`` IterableDataset (see
            :class:`StreamingPretrainingDataset`; ``shuffle_buffer_size``,
            ``bucket_buffer_size`` and ``infinite`` apply there).
        audio_column / split / dataset_config: for ``datasets`` sources.
        source_kwargs: passed on to :func:`load_audio_dataset` (e.g. ``length_column``,
            ``trust_manifest_lengths``, ``extensions``, ``source_type``).

    Returns a :class:`PretrainingDataLoader`; call ``set_epoch`` before each epoch. It is
    already sharded: do not pass it to ``accelerator.prepare``.
    """
    rank, world_size = _resolve_rank(rank, world_size)
    loader_kwargs: dict[str, Any] = {"num_workers": num_workers, "pin_memory": pin_memory}
    if num_workers > 0:
        if prefetch_factor is not None:
            loader_kwargs["prefetch_factor"] = prefetch_factor
        loader_kwargs["persistent_workers"] = (not streaming) if persistent_workers is None else persistent_workers

    if streaming or (_from_datasets_module(source) and type(source).__name__.startswith("Iterable")):
        hf_dataset = _load_hf(source, split=split, dataset_config=dataset_config, streaming=True)
        dataset = StreamingPretrainingDataset(
            hf_dataset,
            audio_column=audio_column,
            max_tokens=max_tokens,
            max_sample_size=max_sample_size,
            min_sample_size=min_sample_size,
            pad=pad,
            normalize=normalize,
            seed=seed,
            rank=rank,
            world_size=world_size,
            shuffle=shuffle,
            shuffle_buffer_size=shuffle_buffer_size,
            bucket_buffer_size=bucket_buffer_size,
            length_noise=length_noise,
            max_batch_size=max_batch_size,
            infinite=infinite,
        )
        return PretrainingDataLoader(dataset, batch_size=None, collate_fn=_identity, **loader_kwargs)

    dataset = load_audio_dataset(
        source,
        audio_column=audio_column,
        split=split,
        dataset_config=dataset_config,
        min_sample_size=min_sample_size,
        max_sample_size=max_sample_size,
        cache_dir=cache_dir,
        cache_dtype=cache_dtype,
        precache=precache,
        num_prepare_workers=num_prepare_workers,
        rank=rank,
        world_size=world_size,
        **source_kwargs,
    )
    if len(dataset) == 0:
        raise ValueError(
            f"no usable audio in {source!r}: {dataset.num_skipped} undecodable, "
            f"{dataset.num_too_short} shorter than min_sample_size={min_sample_size}"
        )
    sampler = LengthBucketBatchSampler(
        dataset.lengths,
        max_tokens=max_tokens,
        max_sample_size=max_sample_size,
        pad=pad,
        seed=seed,
        rank=rank,
        world_size=world_size,
        shuffle=shuffle,
        length_noise=length_noise,
        max_batch_size=max_batch_size,
    )
    collator = PretrainingCollator(pad=pad, normalize=normalize, seed=seed)
    return PretrainingDataLoader(dataset, batch_sampler=sampler, collate_fn=collator, **loader_kwargs)
