"""Live transcription: feed audio as it arrives, get committed (final) and partial text back.

:class:`StreamingTranscriber` cuts the incoming samples into exactly the chunks the chunked pipeline cuts a whole
file into (``pipeline(..., chunk_length_s=chunk_s, stride_length_s=context_s)``: chunks of ``chunk_s`` seconds
overlapping by ``context_s`` on each side, the first without left context, the last without right context), runs
each chunk through the pipeline's own feature extraction and forward pass as soon as it is complete and decodes
it greedily the way the pipeline does. So after :meth:`~StreamingTranscriber.finish` the committed text *is* the
chunked pipeline's transcript of the same audio, and the committed text only ever grows: a chunk's text is
committed up to where its right context starts, which no later audio changes.

* **Look-ahead and latency.** A sample's text is committed when the chunk holding it (outside that chunk's right
  context) is complete: at most ``chunk_s - context_s`` seconds after the sample arrived, plus the time of one
  forward pass. Between chunks, every ``partial_s`` seconds of new audio, the audio not committed yet is decoded
  on its own into the *partial* text (a guess the next chunk may revise; it always starts with the committed
  text). A guess that took ``d`` seconds is not repeated before ``2 d`` seconds of new audio have come, so on a
  slow machine the guesses thin out instead of delaying the committed text.
* **Memory** is bounded by one chunk of samples plus the model's receptive field; decoded tokens are kept only
  back to the last character (the text before it is final), so an hour of audio holds no more than a minute.
* Decoding is greedy: an LM beam search revises earlier words as later ones arrive, which committed text must not.

:func:`read_pcm_stream` reads raw PCM (``s16le``) or a WAV stream (e.g. ``arecord -f S16_LE -r 16000 -t wav``)
from a binary file such as stdin, and :func:`print_stream` prints the transcript of such a stream: partial text
rewritten in place on a terminal, only committed lines when the output is a pipe or file. ``hf-wav2vec2
transcribe - --stream`` is built from these two.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

__all__ = ["StreamUpdate", "StreamingTranscriber", "print_stream", "read_pcm_stream"]


@dataclass(frozen=True)
class StreamUpdate:
    """What :meth:`StreamingTranscriber.push` and :meth:`~StreamingTranscriber.finish` return.

    ``committed``: all final text so far; ``partial``: the best guess of the whole transcript now (``committed``
    followed by text that may still change); ``new_committed``: what this call added to ``committed``;
    ``committed_s`` / ``received_s``: seconds of audio whose text is final / that have arrived; ``final``: True
    after :meth:`~StreamingTranscriber.finish`.
    """

    committed: str
    partial: str
    new_committed: str
    committed_s: float
    received_s: float
    final: bool = False

    @property
    def tentative(self) -> str:
        """The part of ``partial`` after the committed text."""
        return self.partial[len(self.committed) :]


class _CommittedText:
    """Greedy CTC text of a growing token sequence, holding only the tokens after its last character.

    The tokenizer's CTC decoding (merge repeats, drop blanks, delimiters to spaces, no space at either end) only
    looks at neighbouring tokens, so the text before the last character token can no longer change: it is kept as
    a string and the tokens before that character are dropped.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        size = len(tokenizer.get_vocab())
        self.shows = {i for i in range(size) if self._decode([i]).strip()}  # ids that write text
        self.frozen = ""
        self.tail: list[int] = []
        self.text = ""

    def _decode(self, ids: list[int]) -> str:
        # the pipeline's call for CTC models ("ctc" type: special tokens are not skipped)
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    @staticmethod
    def _merged(tail: list[int], ids: list[int]) -> list[int]:
        out = list(tail)
        for i in ids:
            if not out or out[-1] != i:  # a repeat is one emission either way (CTC merges it)
                out.append(int(i))
        return out

    def extend(self, ids: list[int]) -> str:
        self.tail = self._merged(self.tail, ids)
        tail_text = self._decode(self.tail)
        self.text = self.frozen + tail_text
        last = next((j for j in range(len(self.tail) - 1, 0, -1) if self.tail[j] in self.shows), None)
        if last is not None:
            suffix = self._decode(self.tail[last:])
            if tail_text.endswith(suffix):  # always so for CTC tokenizers; otherwise keep the tokens
                self.frozen += tail_text[: len(tail_text) - len(suffix)]
                self.tail = self.tail[last:]
        return self.text

    def preview(self, ids: list[int]) -> str:
        return self.frozen + self._decode(self._merged(self.tail, ids))


class StreamingTranscriber:
    """Incremental greedy transcription equal, after :meth:`finish`, to the chunked pipeline's (module docstring).

    Args:
        model: A CTC model directory or Hub id, an ASR pipeline of this package (greedy), or a loaded CTC model
            (then ``processor=``).
        chunk_s: Chunk length in seconds (the pipeline's ``chunk_length_s``).
        context_s: Context on each side of a chunk, or ``(left, right)`` (the pipeline's ``stride_length_s``;
            None: ``chunk_s / 6``, as the pipeline).
        partial_s: Decode the not yet committed audio every this many seconds of new audio (0 or None: never).
        sampling_rate: Rate of the pushed samples (default: the model's); other rates are resampled with soxr.
        processor / device: For a loaded model / a model loaded from a path.

    ``push(samples)`` takes 1-D (or ``(samples, channels)``) float or integer PCM; ``finish()`` flushes the last
    chunk and returns the final update; ``reset()`` starts a new stream with the same model.
    """

    def __init__(
        self,
        model: Any,
        chunk_s: float = 4.0,
        context_s: float | tuple[float, float] | None = 1.0,
        *,
        partial_s: float | None = 0.5,
        sampling_rate: int | None = None,
        processor: Any = None,
        device: Any = None,
    ):
        self.pipe = _greedy_pipeline(model, processor, device)
        self.rate = int(self.pipe.feature_extractor.sampling_rate)
        from .chunking import receptive_field

        self.min_samples = receptive_field(self.pipe.model.config) or 1
        self.chunk, self.left, self.right = self.pipe._chunk_geometry(chunk_s, context_s, self.min_samples)
        self.step = self.chunk - self.left - self.right
        self.partial_samples = round(partial_s * self.rate) if partial_s else 0
        self.input_rate = int(sampling_rate or self.rate)
        if self.input_rate <= 0:
            raise ValueError(f"StreamingTranscriber: sampling_rate must be positive, got {sampling_rate}")
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (the model stays loaded)."""
        self._buffer = np.zeros(0, np.float32)  # samples from the next chunk's start on
        self._history = np.zeros(0, np.float32)  # the receptive field's worth before it, for a short last chunk
        self._first = True
        self._finished = False
        self._received = 0  # samples at the model's rate
        self._committed_samples = 0
        self._since_partial = 0
        self._partial_cost = 0.0  # wall seconds the last partial decoding took
        self._text = _CommittedText(self.pipe.tokenizer)
        self._partial = ""
        self._resampler = None
        if self.input_rate != self.rate:
            import soxr

            # the same filter as the pipeline's file streaming and as one-shot soxr.resample
            self._resampler = soxr.ResampleStream(self.input_rate, self.rate, 1, dtype="float32", quality="HQ")

    # ------------------------------------------------------------------------------------------- feeding

    def push(self, samples: Any) -> StreamUpdate:
        """Add samples; runs every chunk they complete and, every ``partial_s``, the partial decoding."""
        if self._finished:
            raise RuntimeError("StreamingTranscriber.push: the stream is finished; call reset() to start another")
        from .audio import to_float32_mono

        samples = to_float32_mono(np.asarray(samples) if not hasattr(samples, "detach") else samples, "push")
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=False)
        before = self._text.text
        self._buffer = np.concatenate([self._buffer, samples])
        self._received += samples.shape[0]
        self._since_partial += samples.shape[0]
        ran = False
        while self._buffer.shape[0] > self.chunk:  # a sample beyond the chunk: it is not the last one
            self._run_chunk(self._buffer[: self.chunk], 0 if self._first else self.left, self.right, False)
            self._history = np.concatenate([self._history, self._buffer[: self.step]])[-self.min_samples :]
            self._buffer = self._buffer[self.step :]
            self._first = False
            ran = True
        if ran:  # the partial text is the committed text now; the next guess can wait for new audio
            self._partial = self._text.text
            self._since_partial = 0
        # A guess that took d seconds is not repeated before 2 d seconds of audio came: committed text first.
        due = max(self.partial_samples, round(2 * self._partial_cost * self.rate))
        if self.partial_samples and self._since_partial >= due:
            self._update_partial()
        return self._update(before)

    def finish(self) -> StreamUpdate:
        """Transcribe what is left as the last chunk; the committed text is then the whole transcript."""
        if self._finished:
            raise RuntimeError("StreamingTranscriber.finish: the stream is already finished")
        before = self._text.text
        if self._resampler is not None:
            rest = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self._buffer = np.concatenate([self._buffer, rest])
            self._received += rest.shape[0]
        chunk, left = self._buffer, 0 if self._first else self.left
        if chunk.shape[0] < self.min_samples and self._history.shape[0]:
            # as the pipeline does: a too-short last chunk borrows whole frames from before it, as left context
            align = self.pipe._align_to
            extra = min(
                -(-(self.min_samples - chunk.shape[0]) // align) * align, self._history.shape[0] // align * align
            )
            chunk = np.concatenate([self._history[self._history.shape[0] - extra :], chunk])
            left += extra
        if chunk.shape[0] > left and chunk.shape[0] >= self.min_samples:
            self._run_chunk(chunk, left, 0, True)
        self._committed_samples = self._received
        self._finished = True
        self._partial = self._text.text
        return self._update(before, final=True)

    # ------------------------------------------------------------------------------------------- internals

    def _tokens(self, chunk: np.ndarray, left: int, right: int, is_last: bool) -> list[int]:
        """Greedy tokens of a chunk with its strides cut off, computed exactly as the chunked pipeline does."""
        pipe = self.pipe
        processed = pipe.feature_extractor(
            chunk, sampling_rate=self.rate, return_tensors="pt", return_attention_mask=True
        )
        if pipe.dtype is not None:
            processed = processed.to(dtype=pipe.dtype)
        out = pipe.forward({"is_last": is_last, "stride": (chunk.shape[0], left, right), **processed})
        if not is_last:
            pipe._complete_chunks([out, {}])  # a chunk ending on a frame boundary gets its last frame back
        total, cut_left, cut_right = out["stride"]
        return out["tokens"][0, cut_left : total - cut_right].tolist()

    def _run_chunk(self, chunk: np.ndarray, left: int, right: int, is_last: bool) -> None:
        self._text.extend(self._tokens(chunk, left, right, is_last))
        start = self._received - self._buffer.shape[0]  # where the buffer (and a regular chunk) starts
        self._committed_samples = start + chunk.shape[0] - right if not is_last else self._received

    def _update_partial(self) -> None:
        self._since_partial = 0
        left = 0 if self._first else self.left
        if self._buffer.shape[0] < max(self.min_samples, left + 1):
            self._partial = self._text.text
            return
        started = time.perf_counter()
        self._partial = self._text.preview(self._tokens(self._buffer, left, 0, True))
        self._partial_cost = time.perf_counter() - started

    def _update(self, before: str, final: bool = False) -> StreamUpdate:
        committed = self._text.text
        partial = self._partial if self._partial.startswith(committed) else committed
        return StreamUpdate(
            committed,
            partial,
            committed[len(before) :],
            self._committed_samples / self.rate,
            self._received / self.rate,
            final,
        )


def _greedy_pipeline(model: Any, processor: Any, device: Any) -> Any:
    from .pipeline_hf_wav2vec2 import HfWav2Vec2AutomaticSpeechRecognitionPipeline
    from .transcribe import asr_pipeline

    if isinstance(model, HfWav2Vec2AutomaticSpeechRecognitionPipeline):
        pipe = model
    elif isinstance(model, (str, os.PathLike)):
        pipe = asr_pipeline(model, device=device)
    elif processor is not None:
        pipe = asr_pipeline(
            model, tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor, device=device
        )
    else:
        raise ValueError(
            "StreamingTranscriber: pass a model directory / Hub id, a pipeline, or a model with processor="
        )
    if pipe.type != "ctc":
        raise ValueError(
            f"StreamingTranscriber decodes greedily (pipeline type 'ctc'), not {pipe.type!r}: an LM "
            "beam search revises earlier words, which committed text must not"
        )
    return pipe


# ----------------------------------------------------------------------------------------------- stdin and printing

_WAV_INTEGER, _WAV_FLOAT, _WAV_EXTENSIBLE = 1, 3, 0xFFFE


def _read_exact(source: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        piece = source.read(n - len(data))
        if not piece:
            break
        data += piece
    return data


def _wav_header(source: IO[bytes], name: str) -> tuple[int, int, str]:
    """(rate, channels, numpy dtype) from a WAV stream's header, leaving the stream at the first sample."""
    _read_exact(source, 4)  # the RIFF size: a live recorder cannot know it
    if _read_exact(source, 4) != b"WAVE":
        raise ValueError(f"{name}: not a WAV stream (no WAVE header)")
    fmt = None
    while True:
        head = _read_exact(source, 8)
        if len(head) < 8:
            raise ValueError(f"{name}: WAV stream ends before its data chunk")
        kind, size = head[:4], struct.unpack("<I", head[4:])[0]
        if kind == b"data":
            break
        body = _read_exact(source, size + (size & 1))
        if kind == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16]) + (body[24:26] if len(body) >= 26 else b"",)
    if fmt is None:
        raise ValueError(f"{name}: WAV stream has no fmt chunk before its data")
    code, channels, rate, _, _, bits, sub = fmt
    if code == _WAV_EXTENSIBLE and len(sub) == 2:
        code = struct.unpack("<H", sub)[0]
    dtypes = {(_WAV_INTEGER, 8): "u1", (_WAV_INTEGER, 16): "<i2", (_WAV_INTEGER, 32): "<i4", (_WAV_FLOAT, 32): "<f4"}
    if (code, bits) not in dtypes:
        raise ValueError(
            f"{name}: WAV stream of {bits}-bit samples (format {code}) is not supported; use 8/16/32-bit "
            "PCM or 32-bit float (e.g. arecord -f S16_LE)"
        )
    return rate, channels, dtypes[(code, bits)]


def read_pcm_stream(
    source: IO[bytes], rate: int | None = None, *, block_s: float = 0.1, name: str = "<stdin>"
) -> tuple[int, Iterator[np.ndarray]]:
    """``(rate, blocks)`` of a binary stream: a WAV stream (detected by its ``RIFF`` header, whose rate wins) or
    raw 16-bit little-endian mono PCM at ``rate``. ``blocks`` yields float32 mono arrays of ``block_s`` seconds as
    they arrive (the last may be shorter)."""
    magic = _read_exact(source, 4)
    if magic == b"RIFF":
        rate, channels, dtype = _wav_header(source, name)
        lead = b""
    else:
        if rate is None:
            raise ValueError(f"{name}: raw PCM needs its sampling rate (--rate), or send a WAV stream")
        channels, dtype, lead = 1, "<i2", magic
    frame_bytes = channels * np.dtype(dtype).itemsize
    block = max(1, round(block_s * rate)) * frame_bytes

    def blocks() -> Iterator[np.ndarray]:
        pending = lead
        while True:
            data = pending + _read_exact(source, block - len(pending))
            usable = len(data) - len(data) % frame_bytes
            pending = data[usable:]
            if usable:
                samples = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, channels)
                yield _to_float(samples)
            if len(data) < block:
                return

    return rate, blocks()


def _to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype.kind == "u":
        mono = (samples.astype(np.float32) - 128.0) / 128.0
    elif samples.dtype.kind == "i":
        mono = samples.astype(np.float32) / float(2 ** (8 * samples.dtype.itemsize - 1))
    else:
        mono = samples.astype(np.float32)
    return mono.mean(axis=1) if mono.shape[1] > 1 else mono[:, 0]


def print_stream(
    transcriber: StreamingTranscriber, blocks: Iterator[np.ndarray], out: IO[str] | None = None, tty: bool | None = None
) -> StreamUpdate:
    """Push ``blocks`` and print as they are transcribed; returns the final update.

    On a terminal the current line shows the partial text, rewritten in place, and is ended once its committed
    part fills the width. Otherwise every update that commits whole words prints them as one line, and the rest
    is printed at the end: the lines joined by spaces are the transcript.
    """
    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
    printed = 0  # characters of the committed text already on finished lines (and the space after them)
    update = None
    for samples in blocks:
        update = transcriber.push(samples)
        printed = _print_update(update, printed, out, tty, width)
    update = transcriber.finish()
    rest = update.committed[printed:].strip()
    out.write(("\r\033[K" if tty else "") + (rest + "\n" if rest or tty else ""))
    out.flush()
    return update


def _print_update(update: StreamUpdate, printed: int, out: IO[str], tty: bool, width: int) -> int:
    committed = update.committed
    if tty:
        while len(update.partial) - printed > width and " " in committed[printed : printed + width]:
            cut = committed.rindex(" ", printed, printed + width)
            out.write("\r\033[K" + committed[printed:cut] + "\n")
            printed = cut + 1
        line = update.partial[printed:]
        out.write("\r\033[K" + line[-width:])
    elif " " in committed[printed:]:
        cut = committed.rindex(" ", printed)
        out.write(committed[printed:cut] + "\n")
        printed = cut + 1
    out.flush()
    return printed
