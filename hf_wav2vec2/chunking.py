"""Feeding audio to a wav2vec 2.0 model a piece at a time, in the model's own units.

* the model's geometry, read from its config (this package's or transformers' ``Wav2Vec2Config``):
  :func:`receptive_field`, the fewest samples that give one output frame, and :func:`frame_duration`, the seconds
  between two output frames (what turns frame indices into timestamps);
* readers with one method, ``read(n)`` -> the next (up to) ``n`` samples: :class:`ArrayReader` over an array in
  memory, :class:`SoundFileStream` over a file decoded, mixed to mono and resampled block by block (memory does not
  grow with the file; :func:`open_stream` opens one);
* :func:`iter_chunks`: a reader cut into the overlapping chunks of transformers' ``chunk_iter``, without knowing
  the total length.

Like :mod:`.audio` (its only import from the package) this file needs numpy, soundfile and soxr alone, so it travels
with the pipeline as remote code.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .audio import AudioError, check_frames_read, check_min_samples, check_wav_truncation, corrupt_file_error

__all__ = [
    "ArrayReader",
    "SoundFileStream",
    "frame_duration",
    "iter_chunks",
    "open_stream",
    "receptive_field",
]

# Frames read from a file per step while streaming (4 s at 16 kHz): small next to a chunk, large enough that
# the per-block overhead does not show.
_STREAM_BLOCK_FRAMES = 1 << 16


# ----------------------------------------------------------------------------------------------- geometry


def receptive_field(config: Any) -> int | None:
    """Samples a model needs for one output frame: its conv stack's receptive field (None when it has none).

    ``config.receptive_field`` for this package's configs; transformers' ``Wav2Vec2Config`` has no such property,
    so for it (and other configs with ``conv_kernel`` / ``conv_stride``) it is computed the same way here.
    """
    field = getattr(config, "receptive_field", None)
    if field is not None:
        return int(field)
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not kernels or not strides:
        return None
    field = 1
    for kernel, stride in reversed(list(zip(kernels, strides, strict=False))):
        field = (field - 1) * stride + kernel
    return field


def frame_duration(config: Any, sampling_rate: int | float) -> float:
    """Seconds between two output frames of a model fed audio at ``sampling_rate`` (0.02 for the released
    checkpoints at 16 kHz): its conv stack's total stride (``config.inputs_to_logits_ratio``) over the rate."""
    ratio = getattr(config, "inputs_to_logits_ratio", None)
    if ratio is None:
        strides = getattr(config, "conv_stride", None)
        if not strides:
            raise ValueError(
                f"{type(config).__name__} has neither inputs_to_logits_ratio nor conv_stride: cannot "
                "tell how long an output frame is"
            )
        ratio = math.prod(int(s) for s in strides)
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, float)) or not sampling_rate > 0:
        raise ValueError(f"sampling_rate must be a positive number, got {sampling_rate!r}")
    return int(ratio) / float(sampling_rate)


# ----------------------------------------------------------------------------------------------- readers


class ArrayReader:
    """``read(n)``: the next (up to) ``n`` samples of an in-memory array."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.position = 0

    def read(self, n: int) -> np.ndarray:
        out = self.array[self.position : self.position + n]
        self.position += out.shape[0]
        return out


class SoundFileStream:
    """``read(n)``: the next (up to) ``n`` samples of a file, decoded, mixed to mono and resampled block by block.

    Holds one block of the file plus what the caller has not read yet, so memory does not grow with the file.
    Problems (undecodable block, NaN/Inf, a file shorter than its header says) raise :class:`AudioError` when they
    are reached; too-short audio is refused before the first block. ``sound_file`` is an open
    ``soundfile.SoundFile``, closed when the stream ends or fails.
    """

    def __init__(self, sound_file: Any, name: str, target_sr: int, min_samples: int | None):
        self.file = sound_file
        self.name = name
        self.declared = sound_file.frames
        self.rate = sound_file.samplerate
        self.format = sound_file.format
        self.frames_read = 0
        self.pending: list[np.ndarray] = []
        self.buffered = 0
        self.finished = False
        if self.declared <= 0:
            raise AudioError("audio is empty (0 samples)", name)
        check_min_samples(round(self.declared * target_sr / self.rate), target_sr, min_samples, name)
        self.resampler = None
        if self.rate != target_sr:
            import soxr

            # Streaming gives the same samples as one-shot soxr.resample on the whole signal (same filter, HQ).
            self.resampler = soxr.ResampleStream(self.rate, target_sr, 1, dtype="float32", quality="HQ")

    def _pull(self) -> None:
        import soundfile as sf

        try:
            block = self.file.read(_STREAM_BLOCK_FRAMES, dtype="float32", always_2d=True)
        except sf.LibsndfileError as err:
            self._close()
            raise corrupt_file_error(err, self.name) from None
        last = block.shape[0] < _STREAM_BLOCK_FRAMES
        mono = block.mean(axis=1, dtype=np.float64).astype(np.float32) if block.shape[1] > 1 else block[:, 0]
        bad = ~np.isfinite(mono)
        if bad.any():
            self._close()
            first = self.frames_read + int(np.argmax(bad))
            raise AudioError(f"audio contains NaN/Inf samples (first at sample {first})", self.name)
        self.frames_read += mono.shape[0]
        if self.resampler is not None:
            mono = self.resampler.resample_chunk(mono, last=last)
        if mono.shape[0]:
            self.pending.append(mono)
            self.buffered += mono.shape[0]
        if last:
            self._close()
            check_frames_read(self.declared, self.frames_read, self.format, self.name)

    def _close(self) -> None:
        self.finished = True
        self.file.close()

    def read(self, n: int) -> np.ndarray:
        while self.buffered < n and not self.finished:
            self._pull()
        joined = (
            np.concatenate(self.pending)
            if len(self.pending) > 1
            else (self.pending[0] if self.pending else np.zeros(0, np.float32))
        )
        out, rest = joined[:n], joined[n:]
        self.pending = [rest] if rest.shape[0] else []
        self.buffered = rest.shape[0]
        return out


def open_stream(path: Any, target_sr: int, min_samples: int | None) -> SoundFileStream | None:
    """A stream over ``path`` when libsndfile reads it, else None (the caller then loads it whole, which also
    produces the right error for missing, empty or undecodable files, and decodes other formats with ffmpeg).
    A truncated WAV file is refused here, before the first block."""
    import soundfile as sf

    name = os.fsdecode(os.fspath(path))
    if not os.path.isfile(name) or not os.access(name, os.R_OK) or os.path.getsize(name) == 0:
        return None
    try:
        sound_file = sf.SoundFile(name)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    try:
        if sound_file.format in ("WAV", "WAVEX"):
            check_wav_truncation(name, name)  # libsndfile would silently stop early; the header says how long
        return SoundFileStream(sound_file, name, target_sr, min_samples)
    except BaseException:
        sound_file.close()
        raise


# ----------------------------------------------------------------------------------------------- chunks


def iter_chunks(
    read: Callable[[int], np.ndarray], chunk_len: int, left: int, right: int, min_len: int, align: int
) -> Iterator[tuple[np.ndarray, int, int, bool]]:
    """Cut a sample stream into overlapping chunks: yields ``(chunk, left_stride, right_stride, is_last)``.

    The geometry is transformers' ``chunk_iter``: chunks of ``chunk_len`` samples start every
    ``chunk_len - left - right`` samples; the first has no left stride and the last no right stride. It reads one
    step ahead to know which chunk is the last, so it needs no total length and works on streams. A last chunk
    shorter than ``min_len`` (possible only with tiny strides) is extended to the left by whole frames (``align``),
    which become extra left stride, instead of being too short for the model.
    """
    step = chunk_len - left - right
    buffer = read(chunk_len)
    history = np.zeros(0, np.float32)
    first = True
    while True:
        ahead = read(step) if buffer.shape[0] == chunk_len else np.zeros(0, np.float32)
        is_last = ahead.shape[0] == 0
        chunk, chunk_left = buffer, 0 if first else left
        if is_last and chunk.shape[0] < min_len and history.shape[0]:
            extra = min(math.ceil((min_len - chunk.shape[0]) / align) * align, history.shape[0] // align * align)
            chunk = np.concatenate([history[history.shape[0] - extra :], chunk])
            chunk_left += extra
        if chunk.shape[0] > chunk_left:
            yield chunk, chunk_left, 0 if is_last else right, is_last
        if is_last:
            return
        history = np.concatenate([history, buffer[:step]])[-min_len:]
        buffer = np.concatenate([buffer[step:], ahead])
        first = False
