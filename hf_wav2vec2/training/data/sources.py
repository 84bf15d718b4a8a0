"""Where pre-training audio comes from and how one item of it is named, measured and decoded.

Sources: a folder of audio files (scanned recursively), a fairseq manifest (``.tsv``: first line the root
directory, then ``relative_path<TAB>num_samples`` in 16 kHz samples), or a Hugging Face ``datasets`` dataset (an
object, a ``save_to_disk`` folder or a hub name). A *reader* (:class:`FileReader`, :class:`HFReader`) gives the
dataset four things per item ``i``: a name for messages, a cache key, the length from the header alone, and the
decoded 16 kHz mono float32 waveform. Decoding is :func:`hf_wav2vec2.audio.decode_record`, fine-tuning's decoder
too (soundfile + soxr, here without the ffmpeg fallback); every failure becomes an :class:`AudioDecodeError` whose
message is the reason alone (skip records carry the file name separately).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...audio import AudioError, audio_record_source, decode_record
from ...audio import probe_num_samples as audio_probe_num_samples
from .constants import AUDIO_EXTENSIONS, TARGET_SAMPLE_RATE

logger = logging.getLogger(__package__)


class AudioDecodeError(RuntimeError):
    """An audio file or buffer could not be decoded (the message says why)."""


# ---------------------------------------------------------------------------------------------------- decoding


@contextmanager
def _decode_errors() -> Iterator[None]:
    """Report any decoding failure as :class:`AudioDecodeError` (reason without the file name)."""
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
    of :func:`hf_wav2vec2.audio.decode_record`, the decoder fine-tuning uses too (here without the
    ffmpeg fallback; empty audio is returned, to be counted as too short). Any failure raises
    :class:`AudioDecodeError`.
    """
    with _decode_errors():
        return decode_record(source, target_sample_rate, ffmpeg=False, allow_empty=True)


def probe_num_samples(source: Any, target_sample_rate: int = TARGET_SAMPLE_RATE) -> int:
    """Length in samples at ``target_sample_rate`` from the header alone (decodes only if the
    format does not state its length); see :func:`hf_wav2vec2.audio.probe_num_samples`."""
    with _decode_errors():
        return audio_probe_num_samples(source, target_sample_rate, ffmpeg=False)


# ------------------------------------------------------------------------------------------- folders, manifests


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
        try:
            lengths.append(int(parts[1]))
        except ValueError:
            raise ValueError(f"{path}:{number}: the length {parts[1]!r} is not a whole number of samples") from None
        paths.append(os.path.join(root, parts[0]))
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


# --------------------------------------------------------------------------------------------------- readers


def _hash_key(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode("utf-8")).hexdigest()


class FileReader:
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


def hf_audio_source(value: Any) -> Any:
    """What to decode for one value of an ``Audio(decode=False)`` (or path string) column:
    the embedded bytes if present, else the path (:func:`hf_wav2vec2.audio.audio_record_source`)."""
    if not isinstance(value, (str, dict)):
        raise AudioDecodeError(f"unsupported audio value of type {type(value).__name__}")
    with _decode_errors():
        return audio_record_source(value)[0]


def hf_audio_name(value: Any, fallback: str) -> str:
    path = value if isinstance(value, str) else value.get("path") if isinstance(value, dict) else None
    return f"{fallback} ({path})" if path else fallback


def undecoded_audio_column(dataset: Any, audio_column: str) -> Any:
    """``dataset`` with ``audio_column`` cast to ``Audio(decode=False)`` (unless it is already): ``datasets`` >= 4
    decodes only through torchcodec, so the raw bytes / paths are decoded here instead."""
    from datasets import Audio

    feature = (dataset.features or {}).get(audio_column)
    if isinstance(feature, Audio) and not feature.decode:
        return dataset
    return dataset.cast_column(audio_column, Audio(decode=False))


class HFReader:
    """Rows of a map-style ``datasets.Dataset``, audio column cast to ``Audio(decode=False)``."""

    def __init__(self, dataset: Any, audio_column: str):
        if audio_column not in dataset.column_names:
            raise ValueError(f"audio column {audio_column!r} not in dataset columns {dataset.column_names}")
        self.dataset = undecoded_audio_column(dataset.select_columns([audio_column]), audio_column)
        self.audio_column = audio_column
        # The fingerprint identifies the dataset's content for datasets loaded from disk or hub
        # (in-memory datasets get a random one, so their cache entries are not reused across runs).
        self.fingerprint = getattr(self.dataset, "_fingerprint", None) or uuid.uuid4().hex

    def __len__(self) -> int:
        return len(self.dataset)

    def _value(self, i: int) -> Any:
        return self.dataset[i][self.audio_column]

    def name(self, i: int) -> str:
        try:
            return hf_audio_name(self._value(i), f"row {i}")
        except Exception:  # noqa: BLE001 - a name only labels messages; never fail because of it
            return f"row {i}"

    def cache_key(self, i: int) -> str:
        return _hash_key("hf", self.fingerprint, self.audio_column, i, TARGET_SAMPLE_RATE)

    def probe(self, i: int) -> int:
        return probe_num_samples(hf_audio_source(self._value(i)))

    def decode(self, i: int) -> np.ndarray:
        return decode_audio(hf_audio_source(self._value(i)))


# ---------------------------------------------------------------------------------------------- datasets objects


def is_saved_hf_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def from_datasets_module(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "datasets"


def load_hf(source: Any, *, split: str, dataset_config: str | None, streaming: bool) -> Any:
    """Turn a path, hub name, Dataset or DatasetDict into one split of a datasets object."""
    import datasets

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() and is_saved_hf_dataset(path):
            source = datasets.load_from_disk(str(path))
        else:
            source = datasets.load_dataset(str(source), dataset_config, split=split, streaming=streaming)
    if isinstance(source, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in source:
            raise ValueError(f"split {split!r} not in {list(source)}")
        source = source[split]
    if streaming and isinstance(source, datasets.Dataset):
        source = source.to_iterable_dataset()
    return source
