"""A cache of decoded audio: 16 kHz mono ``.npy`` files, written atomically and memory-mapped on read.

Decoding happens once: later epochs and runs only memory-map the slice they crop. Entries are keyed by the reader
(path + mtime + size, or dataset fingerprint + row), so an edited file gets a new entry; a file that failed to decode
gets a ``.err`` marker instead, so later runs skip it without trying again.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from ...audio import to_float32_mono

_INT16_SCALE = 32768.0


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
            # allow_pickle=False (numpy's default, said aloud): a crafted cache entry must not run code
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        except ValueError:
            # numpy cannot memory-map an empty array; anything else here is a damaged file.
            try:
                return np.load(path, allow_pickle=False)
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
