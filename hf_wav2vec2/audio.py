"""Audio input handling for transcription and training data.

Everything here turns "some audio" into what a wav2vec 2.0 model consumes: a 1-D ``float32`` NumPy array,
mono, at the model's sampling rate (16 kHz for every released checkpoint: :data:`DEFAULT_SAMPLING_RATE`, the one
place that number is written, for code that has no feature extractor at hand).

Accepted sources (see :func:`load_audio`): file paths (libsndfile formats through ``soundfile``, others through an
``ffmpeg`` subprocess when that binary is on ``PATH``), encoded bytes or binary file objects, NumPy arrays and
torch tensors, ``(samples, sampling_rate)`` tuples and ``{"raw" or "array": samples, "sampling_rate": rate}``
dicts (the convention of the transformers ASR pipeline and of ``datasets``' ``Audio`` feature).

Multichannel audio is mixed down to mono (mean over channels); integer PCM is scaled to ``[-1, 1)``;
anything else goes to ``float32``. Resampling uses ``soxr`` at its "HQ" quality.

Every problem with the input raises :class:`AudioError` (a ``ValueError``) whose message is one line
naming the file, when there is one, and what is wrong with it.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "AUDIO_DICT_KEYS",
    "AudioError",
    "DEFAULT_SAMPLING_RATE",
    "audio_record_source",
    "check_frames_read",
    "check_min_samples",
    "check_wav_truncation",
    "corrupt_file_error",
    "decode_record",
    "load_audio",
    "probe_num_samples",
    "read_audio",
    "resample",
    "resampled_length",
    "to_float32_mono",
]

#: The sampling rate of every released wav2vec 2.0 checkpoint (Hz). Code with a feature extractor at hand uses its
#: ``sampling_rate`` instead; everything else imports this constant rather than writing 16000.
DEFAULT_SAMPLING_RATE = 16000
#: Keys of an audio dict that may hold the samples: "raw" (transformers' pipelines), "array" (``datasets``).
AUDIO_DICT_KEYS = ("raw", "array")

# libsndfile error codes after which another decoder may still succeed (unknown container / codec).
_SF_UNRECOGNISED_FORMAT = 1
_SF_UNSUPPORTED_ENCODING = 4
# A 2-D array whose smaller side is larger than this is not read as (channels, samples) or the reverse.
_MAX_CHANNELS = 64
# MP3 frame counts from libsndfile are estimates (Xing/VBRI header or bitrate): allow this much shortfall
# before calling a short read truncation.
_MP3_FRAME_TOLERANCE = 0.05
_WAV_FORMATS = ("WAV", "WAVEX")
# soundfile reports an unknown frame count (e.g. some streamed containers) as a huge number.
_UNKNOWN_FRAMES = 2**62


class AudioError(ValueError):
    """The audio input is missing, unreadable, or unusable; the message is a single line."""

    def __init__(self, message: str, source: str | None = None):
        message = " ".join(str(message).split())  # callers rely on one line (CLI output, logs)
        self.source = source
        self.reason = message  # the message without the source prefix
        super().__init__(f"{source}: {message}" if source else message)


# ----------------------------------------------------------------------------------------------- helpers


def _format_rate(rate: float) -> str:
    khz = rate / 1000
    return f"{khz:g} kHz"


def _check_rate(rate: Any, name: str, source: str | None) -> int | float:
    """Validate a sampling rate: a positive finite number (integers preferred, floats allowed for soxr)."""
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise AudioError(f"{name} must be a positive number, got {rate!r}", source)
    if not np.isfinite(rate) or rate <= 0:
        raise AudioError(f"{name} must be a positive number, got {rate!r}", source)
    rate = rate.item() if isinstance(rate, np.generic) else rate
    return int(rate) if float(rate).is_integer() else float(rate)


def check_min_samples(
    num_samples: int,
    sampling_rate: int | float,
    min_samples: int | None,
    source: str | None = None,
) -> None:
    """Raise :class:`AudioError` when audio is too short for the model.

    Args:
        num_samples: Length of the (mono) audio, in samples at ``sampling_rate``.
        sampling_rate: Rate of that audio.
        min_samples: Minimum length in samples at ``sampling_rate``; ``None`` disables the check. For a model this
            is :func:`.chunking.receptive_field` of its config (400 samples, 25 ms, for the released checkpoints).
        source: Name of the file (or other description) for the message.

    Example message: ``audio is 0.012 s (192 samples at 16 kHz); the model needs at least 400 samples (0.025 s)``.
    """
    if min_samples is None or num_samples >= min_samples:
        return
    raise AudioError(
        f"audio is {num_samples / sampling_rate:.3f} s ({num_samples} samples at {_format_rate(sampling_rate)}); "
        f"the model needs at least {min_samples} samples ({min_samples / sampling_rate:.3f} s)",
        source,
    )


def _pcm_to_float32(array: np.ndarray, source: str | None) -> np.ndarray:
    """Scale integer PCM to float32 in [-1, 1); pass float data through as float32."""
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "f" and itemsize in (2, 4, 8):
        return array.astype(np.float32, copy=False)
    if kind == "i" and itemsize in (1, 2, 4):
        return (array.astype(np.float64) / float(2 ** (8 * itemsize - 1))).astype(np.float32)
    if kind == "u" and itemsize == 1:  # 8-bit WAV is unsigned with a 128 offset
        return ((array.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    hint = ""
    if kind in "iu":
        hint = " (integer audio must be 8-bit unsigned or 8/16/32-bit signed PCM; convert other integers to float)"
    raise AudioError(f"unsupported sample dtype {array.dtype}{hint}", source)


def to_float32_mono(array: Any, source: str | None = None) -> np.ndarray:
    """Convert samples to a 1-D float32 array.

    ``array`` may be a NumPy array or a torch tensor (any device), 1-D or 2-D. A 2-D input is read as
    ``(channels, samples)`` or ``(samples, channels)``, whichever side is the smaller one (and at most 64); the
    channels are averaged. Integer PCM (int8, int16, int32, uint8) is scaled to ``[-1, 1)``; float16/64 become
    float32. Raises :class:`AudioError` for other dtypes, more than 2 dimensions, an ambiguous 2-D shape, or
    non-finite samples.
    """
    if _is_torch_tensor(array):
        import torch

        tensor = array.detach().cpu()
        if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16
            tensor = tensor.float()
        array = tensor.numpy()
    if not isinstance(array, np.ndarray):
        raise AudioError(f"expected a NumPy array or torch tensor of samples, got {type(array).__name__}", source)
    if array.ndim == 0 or array.ndim > 2:
        raise AudioError(
            f"expected audio shaped (samples,), (channels, samples) or (samples, channels), got shape {array.shape}",
            source,
        )
    samples = _pcm_to_float32(array, source)
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    if samples.ndim == 2:
        rows, cols = samples.shape
        if rows < cols and rows <= _MAX_CHANNELS:
            samples = samples.mean(axis=0, dtype=np.float64).astype(np.float32)
        elif cols < rows and cols <= _MAX_CHANNELS:
            samples = samples.mean(axis=1, dtype=np.float64).astype(np.float32)
        elif rows == 1 or cols == 1:  # (1, 1): a single sample
            samples = samples.reshape(-1)
        else:
            raise AudioError(
                f"cannot tell channels from samples in audio of shape {array.shape}; pass 1-D audio", source
            )
    bad = ~np.isfinite(samples)
    if bad.any():
        raise AudioError(
            f"audio contains {int(bad.sum())} NaN/Inf samples (first at sample {int(np.argmax(bad))})", source
        )
    return np.ascontiguousarray(samples, dtype=np.float32)


def _is_torch_tensor(x: Any) -> bool:
    # Avoid importing torch for NumPy-only callers; a tensor implies torch is already imported.
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def resample(array: np.ndarray, orig_sr: int | float, target_sr: int | float) -> np.ndarray:
    """Resample 1-D (or ``(samples, channels)``) audio from ``orig_sr`` to ``target_sr`` with soxr "HQ".

    The output has ``round(len(array) * target_sr / orig_sr)`` samples and dtype float32. When the rates are
    equal the input comes back as float32 (the same array object if it already was float32).
    """
    orig_sr = _check_rate(orig_sr, "orig_sr", None)
    target_sr = _check_rate(target_sr, "target_sr", None)
    array = np.asarray(array)
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    if orig_sr == target_sr or array.shape[0] == 0:
        if orig_sr != target_sr:
            return np.zeros((0,) + array.shape[1:], dtype=np.float32)
        return array
    import soxr

    return soxr.resample(array, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def resampled_length(num_samples: int, orig_sr: int | float, target_sr: int | float = DEFAULT_SAMPLING_RATE) -> int:
    """Number of samples :func:`resample` returns for ``num_samples`` input samples."""
    if orig_sr == target_sr:
        return int(num_samples)
    return round(num_samples * target_sr / orig_sr)


# ------------------------------------------------------------------------------------------ file decoding


def _wav_truncation(header: bytes, total_size: int) -> tuple[int, int] | None:
    """Return (declared, present) data bytes when a RIFF/WAVE file's data chunk is cut short, else None.

    libsndfile silently shortens the frame count of a truncated WAV, so a half-downloaded file would decode
    as half the audio without a word; the header still says how long it should have been.
    """
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(header):
        chunk_id = header[offset : offset + 4]
        (size,) = struct.unpack("<I", header[offset + 4 : offset + 8])
        if chunk_id == b"data":
            present = total_size - (offset + 8)
            # 0 and 0xFFFFFFFF are written by streaming encoders that never patch the header
            if size not in (0, 0xFFFFFFFF) and present < size:
                return size, present
            return None
        offset += 8 + size + (size & 1)
    return None


def _source_bytes_head(data: bytes | str, limit: int = 1 << 16) -> tuple[bytes, int]:
    if isinstance(data, bytes):
        return data[:limit], len(data)
    with open(data, "rb") as f:
        return f.read(limit), os.fstat(f.fileno()).st_size


def check_wav_truncation(data: bytes | str, name: str | None) -> None:
    """Raise :class:`AudioError` when the WAV file ``data`` (a path or its bytes) holds fewer sample bytes than its
    header declares; libsndfile itself would silently read the shorter file."""
    cut = _wav_truncation(*_source_bytes_head(data))
    if cut is not None:
        raise AudioError(
            f"audio file is truncated: its header declares {cut[0]} bytes of samples but only {cut[1]} are present",
            name,
        )


def check_frames_read(declared: int, frames_read: int, file_format: str, name: str | None) -> None:
    """Raise :class:`AudioError` when decoding stopped short of the ``declared`` frame count (libsndfile's
    ``frames``); an MP3 may fall a little short, its count being an
    estimate."""
    tolerance = int(declared * _MP3_FRAME_TOLERANCE) if file_format == "MP3" else 0
    if frames_read + tolerance < declared:
        raise AudioError(
            f"audio file is truncated: its header declares {declared} samples but only {frames_read} could be read",
            name,
        )


def corrupt_file_error(err: Exception, name: str | None) -> AudioError:
    """The one-line :class:`AudioError` for a libsndfile error met while reading the samples of a file it opened."""
    return AudioError(f"audio file is corrupt or truncated (libsndfile: {_sf_reason(err)})", name)


def _sf_reason(err: Exception) -> str:
    reason = str(getattr(err, "error_string", err)).strip().rstrip(".")
    return reason.removeprefix("Error :").strip() or "unknown error"


def _sf_unrecognised(err: Any) -> bool:
    """Whether a libsndfile error means "unknown container/codec" (another decoder may succeed)."""
    return err.code in (_SF_UNRECOGNISED_FORMAT, _SF_UNSUPPORTED_ENCODING)


def _sf_error(err: Exception, name: str | None) -> AudioError:
    if _sf_unrecognised(err):
        return AudioError(f"not a readable audio file (libsndfile: {_sf_reason(err)})", name)
    return corrupt_file_error(err, name)


def _decode_with_soundfile(data: bytes | str, name: str | None) -> tuple[np.ndarray, int]:
    """Decode a file path or encoded bytes with libsndfile; returns (mono float32 samples, rate)."""
    import soundfile as sf

    handle = io.BytesIO(data) if isinstance(data, bytes) else data
    with sf.SoundFile(handle) as f:
        declared = f.frames
        rate = f.samplerate
        fmt = f.format
        try:
            samples = f.read(dtype="float32", always_2d=True)
        except sf.LibsndfileError as err:
            raise corrupt_file_error(err, name) from None
    if fmt in _WAV_FORMATS:
        check_wav_truncation(data, name)
    check_frames_read(declared, samples.shape[0], fmt, name)
    # The layout is known here, unlike for arrays: (frames, channels).
    mono = samples.mean(axis=1, dtype=np.float64).astype(np.float32) if samples.shape[1] > 1 else samples[:, 0]
    return mono, rate


def _decode_with_ffmpeg(data: bytes | str, target_sr: int | float, name: str | None) -> np.ndarray:
    """Decode anything ffmpeg reads to mono float32 at ``target_sr``."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise FileNotFoundError("ffmpeg")
    is_path = isinstance(data, str)
    command = [binary, "-nostdin", "-hide_banner", "-loglevel", "error"]
    command += ["-i", data if is_path else "pipe:0"]
    command += ["-vn", "-ac", "1", "-ar", str(int(round(target_sr))), "-f", "f32le", "pipe:1"]
    try:
        proc = subprocess.run(
            command,
            input=None if is_path else data,
            stdin=subprocess.DEVNULL if is_path else None,
            capture_output=True,
            check=False,
        )
    except OSError as err:
        raise AudioError(f"could not run ffmpeg ({err})", name) from err
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise AudioError(f"not a readable audio file (ffmpeg: {detail})", name)
    usable = len(proc.stdout) - len(proc.stdout) % 4
    return np.frombuffer(proc.stdout[:usable], dtype="<f4").astype(np.float32)


def _decode_encoded(
    data: bytes | str, target_sr: int | float, name: str | None, use_ffmpeg: bool = True
) -> tuple[np.ndarray, int | float, bool]:
    """Decode a path or encoded bytes: soundfile first, ffmpeg for formats libsndfile does not know
    (unless ``use_ffmpeg`` is False).

    Returns (samples, rate, native): ``native`` is False when ffmpeg already resampled to ``target_sr``.
    """
    import soundfile as sf

    try:
        samples, rate = _decode_with_soundfile(data, name)
        return samples, rate, True
    except sf.LibsndfileError as err:
        reason = _sf_reason(err)
        if not use_ffmpeg or not _sf_unrecognised(err):
            raise _sf_error(err, name) from None
    # libsndfile does not know this container or codec (M4A, WebM, ...): ffmpeg may.
    try:
        mono = _decode_with_ffmpeg(data, target_sr, name)
    except FileNotFoundError:
        raise AudioError(
            f"not a readable audio file (libsndfile: {reason}; install ffmpeg to decode formats libsndfile "
            "does not support)",
            name,
        ) from None
    if mono.size == 0:
        raise AudioError("not a readable audio file (ffmpeg decoded no audio stream)", name)
    return mono, target_sr, False


def _encoded_source(source: Any) -> tuple[bytes | str, str] | None:
    """(path or encoded bytes, name for messages) for a path, bytes or binary file object; None for other sources.

    Raises :class:`AudioError` for a missing, unreadable or empty file.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fsdecode(os.fspath(source))
        if name.startswith(("http://", "https://")):
            raise AudioError("URLs are not supported; download the file first", name)
        if not os.path.exists(name):
            raise AudioError("no such file", name)
        if os.path.isdir(name):
            raise AudioError("is a directory, not an audio file", name)
        if not os.access(name, os.R_OK):
            raise AudioError("permission denied", name)
        if os.path.getsize(name) == 0:
            raise AudioError("file is empty (0 bytes)", name)
        return name, name
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        name = "<audio bytes>"
        data = bytes(source) if not hasattr(source, "read") else source.read()
        if not isinstance(data, bytes):
            raise AudioError(
                f"file object returned {type(data).__name__}, expected bytes (open it in binary mode)", name
            )
        if len(data) == 0:
            raise AudioError("no data (0 bytes)", name)
        return data, name
    return None


def probe_num_samples(source: Any, target_sr: int | float = DEFAULT_SAMPLING_RATE, *, ffmpeg: bool = True) -> int:
    """Length of an encoded file (path, bytes or binary file object) in mono samples at ``target_sr``.

    Read from the header alone when the format states it (as :func:`resampled_length` of the file's frame count);
    otherwise the file is decoded. A truncated WAV is detected from its header. ``ffmpeg=False`` leaves out the
    ffmpeg fallback for formats libsndfile does not know. Raises :class:`AudioError` like :func:`load_audio`.
    """
    import soundfile as sf

    target_sr = _check_rate(target_sr, "target_sr", None)
    encoded = _encoded_source(source)
    if encoded is None:
        raise AudioError(f"cannot probe a {type(source).__name__}: expected a path, bytes or a binary file object")
    data, name = encoded
    try:
        info = sf.info(io.BytesIO(data) if isinstance(data, bytes) else data)
    except sf.LibsndfileError as err:
        if not (ffmpeg and _sf_unrecognised(err)):
            raise _sf_error(err, name) from None
        info = None  # ffmpeg may know the format: decode below
    if info is not None:
        rate = _check_rate(info.samplerate, "sampling_rate", name)
        if info.format in _WAV_FORMATS:
            check_wav_truncation(data, name)
        if 0 <= info.frames < _UNKNOWN_FRAMES:
            return resampled_length(info.frames, rate, target_sr)
    samples, rate, _ = _decode_encoded(data, target_sr, name, ffmpeg)
    return resampled_length(samples.shape[0], rate, target_sr)


# ------------------------------------------------------------------------------------------ public API


def _read(
    source: Any, sampling_rate: int | float | None, fallback_rate: int | float, use_ffmpeg: bool = True
) -> tuple[np.ndarray, int | float, str | None]:
    """Shared body of :func:`read_audio` and :func:`load_audio`: (mono float32 samples, rate, name for messages).

    ``fallback_rate`` is the rate ffmpeg decodes to when soundfile cannot read a file.
    """
    given = None if sampling_rate is None else _check_rate(sampling_rate, "sampling_rate", None)
    name: str | None = None

    def own_rate(rate: Any, what: str) -> int | float:
        rate = _check_rate(rate, "sampling_rate", name)
        if given is not None and given != rate:
            raise AudioError(
                f"{what} is at {rate} Hz but sampling_rate={given} was given (use target_sr to resample)", name
            )
        return rate

    encoded = _encoded_source(source)
    if encoded is not None:
        data, name = encoded
        samples, rate, native = _decode_encoded(data, given or fallback_rate, name, use_ffmpeg)
        if native:
            rate = own_rate(rate, "the file" if isinstance(data, str) else "the encoded audio")
    elif isinstance(source, Mapping):
        name = "<audio dict>"
        key = next((k for k in AUDIO_DICT_KEYS if source.get(k) is not None), None)
        if key is None or "sampling_rate" not in source:
            raise AudioError(
                'an audio dict needs a "raw" (or "array") key with the samples and a "sampling_rate" key', name
            )
        rate = own_rate(source["sampling_rate"], "the dict's audio")
        samples = source[key]
    elif isinstance(source, tuple) and len(source) == 2 and not np.isscalar(source[0]):
        name = "<audio tuple>"
        samples, rate = source[0], own_rate(source[1], "the tuple's audio")
    elif isinstance(source, np.ndarray) or _is_torch_tensor(source):
        name = "<audio array>"
        if given is None:
            raise AudioError("sampling_rate is required for array input", name)
        samples, rate = source, given
    else:
        raise AudioError(
            f"unsupported audio source of type {type(source).__name__} (expected a path, bytes, a NumPy array, "
            'a torch tensor, or a dict with "raw"/"array" and "sampling_rate")'
        )
    return to_float32_mono(samples, name), rate, name


def read_audio(
    source: Any, sampling_rate: int | float | None = None, *, ffmpeg: bool = True
) -> tuple[np.ndarray, int | float]:
    """Decode ``source`` to mono float32 at its own rate, without resampling; returns ``(samples, rate)``.

    ``sampling_rate`` is the rate of an array/tensor source (required for those). For sources that carry their
    own rate (files, bytes, tuples, dicts) it must be ``None`` or equal to that rate. Files that soundfile cannot
    decode go through ffmpeg (unless ``ffmpeg=False``), which decodes them at ``sampling_rate`` or 16 kHz. Empty
    audio is returned as is. See :func:`load_audio` for the accepted sources and the errors.
    """
    samples, rate, _ = _read(source, sampling_rate, DEFAULT_SAMPLING_RATE, ffmpeg)
    return samples, rate


def load_audio(
    source: Any,
    target_sr: int = DEFAULT_SAMPLING_RATE,
    *,
    sampling_rate: int | float | None = None,
    min_samples: int | None = None,
) -> np.ndarray:
    """Load audio from any supported source as a mono float32 array at ``target_sr``.

    Args:
        source: One of

            * a path (``str``/``os.PathLike``) to an audio file; libsndfile formats (WAV, FLAC, OGG Vorbis/Opus,
              MP3, AIFF, ...) are read with soundfile, other formats with ``ffmpeg`` when it is installed;
            * ``bytes``/``bytearray``/``memoryview``, or a binary file object, holding an encoded audio file;
            * a NumPy array or torch tensor of samples, 1-D or 2-D (channels on the smaller axis); at ``target_sr``
              unless ``sampling_rate`` is given;
            * a tuple ``(samples, rate)``;
            * a dict ``{"raw": samples, "sampling_rate": rate}`` (``"array"`` instead of ``"raw"`` works too, as
              ``datasets`` writes it; other keys are ignored).
        target_sr: Rate of the returned audio (Hz).
        sampling_rate: Rate of an array/tensor ``source``. For sources that carry their own rate it must be
            ``None`` or equal to it.
        min_samples: If set, raise when the result has fewer samples (at ``target_sr``) than this; for a model pass
            :func:`.chunking.receptive_field` of its config.

    Returns:
        1-D ``np.float32`` array at ``target_sr``.

    Raises:
        AudioError: missing/unreadable/truncated file, empty audio, audio shorter than ``min_samples``, NaN or
            Inf samples, an unsupported dtype or shape, or a non-positive sampling rate. The message is one line
            and starts with the file name (or ``<audio array>``, ``<audio bytes>``, ...).
    """
    target_sr = _check_rate(target_sr, "target_sr", None)
    if sampling_rate is None and (isinstance(source, np.ndarray) or _is_torch_tensor(source)):
        sampling_rate = target_sr
    samples, rate, name = _read(source, sampling_rate, target_sr)
    if samples.size == 0:
        raise AudioError("audio is empty (0 samples)", name)
    samples = resample(samples, rate, target_sr)
    check_min_samples(samples.shape[0], target_sr, min_samples, name)
    return samples


# ------------------------------------------------------------------------------------------ dataset records


def audio_record_source(value: Any) -> tuple[Any, str | None]:
    """What to decode for one audio value of a dataset, and the file name for messages (None when unknown).

    A path is itself. A ``datasets.Audio`` record gives its encoded ``bytes`` (undecoded, ``decode=False``), else its
    ``path``, or, decoded, ``{"array", "sampling_rate"}``; its ``path`` names it in errors rather than
    ``<audio bytes>``. Anything else (bytes, a file object, an array) is returned unnamed.
    """
    if isinstance(value, (str, os.PathLike)):
        return value, os.fsdecode(os.fspath(value))
    if not isinstance(value, Mapping):
        return value, None
    path = value.get("path") or None
    if value.get("array") is not None:
        return {"array": value["array"], "sampling_rate": value.get("sampling_rate")}, path
    if value.get("bytes"):
        return value["bytes"], path
    if path:
        return path, path
    raise AudioError(f"audio record without bytes, path or array: keys {sorted(value)}")


def decode_record(
    value: Any, target_sr: int | float = DEFAULT_SAMPLING_RATE, *, ffmpeg: bool = True, allow_empty: bool = False
) -> np.ndarray:
    """Mono float32 samples at ``target_sr`` of a path, encoded bytes or a ``datasets.Audio`` record (see
    :func:`audio_record_source`): the one decoder of fine-tuning and pre-training data.

    ``ffmpeg=False`` leaves out the ffmpeg fallback; ``allow_empty`` returns empty audio instead of raising (for
    callers that count it as too short). Errors are :class:`AudioError` naming the record's file once.
    """
    target_sr = _check_rate(target_sr, "target_sr", None)
    source, path = audio_record_source(value)
    try:
        samples, rate, name = _read(source, None, target_sr, ffmpeg)
        if samples.size == 0 and not allow_empty:
            raise AudioError("audio is empty (0 samples)", name)
    except AudioError as error:
        if path is None or error.source == path:
            raise
        raise AudioError(error.reason, path) from error
    return resample(samples, rate, target_sr)
