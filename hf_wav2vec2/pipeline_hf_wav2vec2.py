"""Speech recognition pipeline for wav2vec 2.0 CTC models, as a subclass of transformers' own.

:class:`HfWav2Vec2AutomaticSpeechRecognitionPipeline` is ``AutomaticSpeechRecognitionPipeline`` with:

* **input handling** by :mod:`.audio` instead of torchaudio/ffmpeg: file paths (WAV, FLAC, OGG, MP3 through
  libsndfile; other formats through ffmpeg), encoded bytes, NumPy arrays and torch tensors (int PCM scaled, float64
  converted, stereo mixed to mono), ``(samples, rate)`` tuples and ``{"raw"/"array": ..., "sampling_rate": ...}``
  dicts at any rate, resampled with soxr. Bad input raises :class:`~.audio.AudioError`, one line naming the file;
  audio shorter than the model's receptive field (``config.receptive_field``) is refused up front;
* **long audio in bounded memory**: with ``chunk_length_s``, a file that libsndfile reads is streamed (decoded,
  mixed and resampled block by block), so only about one chunk of samples is held at a time;
* **LM decoding**: ``lm="path/to/lm.arpa"`` (or ``decoder=`` a ``CTCBeamSearchDecoder``) decodes with a CTC beam
  search and a KenLM n-gram model (needs this package's ``decoding`` module and ``flashlight-text``), with word
  timestamps;
* chunking, stride and ``return_timestamps`` ("char"/"word") as in transformers: timestamps are in seconds of the
  whole input, chunking or not.

This file imports nothing from the package outside its own folder but ``.audio`` and ``.chunking`` (themselves
numpy/soundfile/soxr only), so :func:`save_pipeline_code` can ship it beside a checkpoint as remote code: a process
without this package then gets the same pipeline with ``pipeline(model=DIR, trust_remote_code=True)``.

Registration (done by ``import hf_wav2vec2``, see :func:`register_pipelines`): the built-in
``"automatic-speech-recognition"`` task builds this class for models whose ``model_type`` is ``hf_wav2vec2`` or
``wav2vec2`` (transformers' own ``Wav2Vec2ForCTC``, the format of the ``facebook/wav2vec2-*`` checkpoints) and
transformers' class for every other model; the task :data:`PIPELINE_TASK` always builds this class.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutomaticSpeechRecognitionPipeline

from .audio import AUDIO_DICT_KEYS, DEFAULT_SAMPLING_RATE, AudioError, load_audio
from .chunking import ArrayReader, frame_duration, iter_chunks, open_stream, receptive_field

__all__ = [
    "PIPELINE_TASK",
    "HfWav2Vec2AutomaticSpeechRecognitionPipeline",
    "StockTaskDispatcher",
    "copy_pipeline_code",
    "prepare_pipeline_input",
    "register_pipelines",
    "register_task",
    "route_stock_task",
    "save_pipeline_code",
]

#: Task name under which this pipeline is registered and saved (``custom_pipelines`` in ``config.json``). It is not
#: ``"automatic-speech-recognition"``: transformers refuses to build any pipeline for a task listed in
#: ``custom_pipelines`` unless ``trust_remote_code=True``, which would break the plain
#: ``pipeline("automatic-speech-recognition", model=DIR)`` of processes that import this package.
PIPELINE_TASK = "hf-wav2vec2-asr"
STOCK_TASK = "automatic-speech-recognition"
MODEL_TYPE = "hf_wav2vec2"
#: Model types the stock task name builds this class for: ours, and transformers' Wav2Vec2 (same conv stack, same
#: CTC head, same processor), whose checkpoints users load most. Other types (HuBERT, WavLM, Whisper, ...) keep
#: transformers' class.
PIPELINE_MODEL_TYPES = frozenset({MODEL_TYPE, "wav2vec2"})

# Logit of every non-blank token in a frame made blank (padding): far below any real logit, finite for the decoders.
_BLANK_LOGIT_FLOOR = -1.0e4


# ----------------------------------------------------------------------------------------------- helpers


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike)) and not str(x).startswith(("http://", "https://"))


def _load_decoding_module() -> Any:
    """This package's ``decoding`` subpackage, imported by its absolute name.

    Not ``from .decoding import``: transformers copies every ``from .x import`` target of a remote-code file as a
    flat ``x.py``, and ``decoding`` is a folder; a remote-code copy of this file uses the installed package's.
    """
    try:
        return importlib.import_module("hf_wav2vec2.decoding")
    except ImportError as error:
        raise ImportError(
            "LM decoding needs the hf-wav2vec2 package (pip install 'hf-wav2vec2[lm]'); this copy of the pipeline "
            f"was loaded as remote code without it ({error})"
        ) from error


_RUNTIMES = {"onnx": False, "onnx-int8": True}  # runtime= -> int8 weights


def _onnx_runtime_model(model: Any, runtime: str) -> Any:
    """The ONNX Runtime model for ``runtime=`` (this package's ``onnx`` module, imported by name as
    :func:`_load_decoding_module` explains)."""
    if runtime not in _RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(map(repr, _RUNTIMES))} or None, got {runtime!r}")
    try:
        onnx_module = importlib.import_module("hf_wav2vec2.onnx")
    except ImportError:
        raise ImportError(
            "runtime= needs the hf-wav2vec2 package with its onnx extra (pip install 'hf-wav2vec2[onnx]')"
        ) from None
    return onnx_module.onnx_model(model, int8=_RUNTIMES[runtime])


def prepare_pipeline_input(
    x: Any,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    *,
    min_samples: int | None = None,
) -> np.ndarray | dict[str, Any]:
    """Convert one input of ``AutomaticSpeechRecognitionPipeline`` so the stock ``preprocess`` never resamples.

    The stock pipeline resamples dict inputs through torchaudio and decodes paths/bytes through ffmpeg; after
    this conversion it does neither. ``sampling_rate`` is the feature extractor's rate.

    Args:
        x: Anything :func:`load_audio` accepts. Lists are the caller's business (convert element by element).
        sampling_rate: Target rate, the pipeline feature extractor's ``sampling_rate``.
        min_samples: Passed to :func:`load_audio`.

    Returns:
        A 1-D float32 array at ``sampling_rate``, except for a dict input that carries a ``"stride"`` or extra
        keys (which the pipeline forwards to its output): then a dict ``{"raw": array, "sampling_rate":
        sampling_rate, "stride": (left, right), **extra}``. ``stride`` is in samples, so it is rescaled by
        ``sampling_rate / input_rate`` and rounded, as the pipeline itself does; ``"path"`` is dropped like the
        pipeline drops it.
    """
    if isinstance(x, list):
        raise AudioError("got a list: convert a batch of inputs element by element")
    array = load_audio(x, sampling_rate, min_samples=min_samples)
    if not isinstance(x, Mapping):
        return array
    extra = {k: v for k, v in x.items() if k not in (*AUDIO_DICT_KEYS, "sampling_rate", "path", "stride")}
    stride = x.get("stride")
    if stride is None and not extra:
        return array
    out: dict[str, Any] = {"raw": array, "sampling_rate": sampling_rate, **extra}
    if stride is not None:
        out["stride"] = _rescale_stride(stride, sampling_rate / x["sampling_rate"], array.shape[0])
    return out


def _rescale_stride(stride: Any, ratio: float, length: int) -> tuple[int, int]:
    name = "<audio dict>"
    try:
        left, right = (int(v) for v in stride)
    except (TypeError, ValueError):
        raise AudioError(f'"stride" must be a pair of sample counts (left, right), got {stride!r}', name) from None
    left, right = int(round(left * ratio)), int(round(right * ratio))
    if left < 0 or right < 0:
        raise AudioError(f'"stride" must not be negative, got {tuple(stride)!r}', name)
    if left + right > length:
        raise AudioError(
            f'"stride" {tuple(stride)!r} is longer than the audio ({length} samples after resampling)', name
        )
    return left, right


# ----------------------------------------------------------------------------------------------- the pipeline


def _match_tokenizer_language(model: Any, tokenizer: Any) -> None:
    """MMS: a model loaded for one language (``model_kwargs={"target_lang": "spa"}``) decodes with that language's
    vocabulary, whatever ``target_lang`` the multilingual tokenizer was saved with."""
    lang = getattr(model, "target_lang", None)
    vocab = getattr(tokenizer, "vocab", None)
    multilingual = isinstance(vocab, dict) and bool(vocab) and all(isinstance(v, dict) for v in vocab.values())
    if lang is not None and multilingual and getattr(tokenizer, "target_lang", None) != lang:
        tokenizer.set_target_lang(lang)  # a language the vocabulary lacks is a one-line error naming those it has


class HfWav2Vec2AutomaticSpeechRecognitionPipeline(AutomaticSpeechRecognitionPipeline):
    """transformers' ASR pipeline with soxr resampling, file streaming, clear input errors and n-gram LM decoding.

    Args:
        model, feature_extractor, tokenizer, device, **kwargs: as for ``AutomaticSpeechRecognitionPipeline``.
        decoder: An object with ``decode_hypothesis(logits) -> Hypothesis`` (``hf_wav2vec2.decoding``'s
            ``CTCBeamSearchDecoder`` or ``GreedyCTCDecoder``), used instead of greedy decoding. A pyctcdecode
            decoder is handed to transformers' own (deprecated) path unchanged.
        lm: Path to a KenLM model (ARPA or binary) to build a ``CTCBeamSearchDecoder`` from the tokenizer with.
        alpha, beta, beam_size: LM weight, word bonus and beam size of that decoder (the decoder's defaults when
            None).
        decoder_options: Further ``CTCBeamSearchDecoder`` arguments (``lexicon``, ``hotwords``, ``unigrams``, ...).
        runtime: ``"onnx"`` runs the model with ONNX Runtime (fp32), ``"onnx-int8"`` with int8 weights (needs this
            package's ``onnx`` extra). A folder written by ``hf-wav2vec2 export-onnx`` is used as it is; otherwise
            the model is exported first (a minute or more for BASE). ``None``: the PyTorch model.

    An MMS model loaded for a language (``model_kwargs={"target_lang": "spa"}``, or ``model.load_adapter``
    before) switches a multilingual tokenizer to that language. With a decoder, ``return_timestamps`` can only be
    ``"word"``. Calls accept what transformers' pipeline accepts
    (``chunk_length_s``, ``stride_length_s``, ``batch_size``, ``return_timestamps``) and every input kind listed in
    the module docstring; an empty list is an error. ``progress_callback``, when set, is called with the seconds
    of audio each model call covered (excluding stride overlap), which adds up to the input duration.
    """

    def __init__(
        self,
        model: Any,
        feature_extractor: Any = None,
        tokenizer: Any = None,
        decoder: Any = None,
        device: Any = None,
        *,
        lm: str | os.PathLike | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        beam_size: int | None = None,
        decoder_options: Mapping[str, Any] | None = None,
        runtime: str | None = None,
        **kwargs: Any,
    ):
        if decoder is not None and lm is not None:
            raise ValueError("pass either decoder= or lm=, not both")
        if runtime is not None:
            model = _onnx_runtime_model(model, runtime)
        ours = decoder if decoder is not None and hasattr(decoder, "decode_hypothesis") else None
        stock = decoder if ours is None else None
        super().__init__(
            model, feature_extractor=feature_extractor, tokenizer=tokenizer, decoder=stock, device=device, **kwargs
        )
        _match_tokenizer_language(self.model, self.tokenizer)
        self.progress_callback: Callable[[float], None] | None = None
        if lm is not None:
            ours = self._build_decoder(lm, alpha, beta, beam_size, decoder_options)
        elif any(v is not None for v in (alpha, beta, beam_size, decoder_options)):
            raise ValueError("alpha, beta, beam_size and decoder_options configure an LM decoder: pass lm= as well")
        if ours is not None:
            if self.type != "ctc":
                raise ValueError(f"a CTC decoder only works with CTC models, not {self.model.config.model_type!r}")
            self.decoder = ours
            self.type = "ctc_with_lm"
            if self._postprocess_params.get("return_timestamps") not in (None, "word"):
                raise ValueError("with an LM decoder only word timestamps exist: use return_timestamps='word'")

    def _build_decoder(self, lm: Any, alpha: Any, beta: Any, beam_size: Any, options: Any) -> Any:
        decoding = _load_decoding_module()
        kwargs = dict(options or {})
        for key, value in (("alpha", alpha), ("beta", beta), ("beam_size", beam_size)):
            if value is not None:
                kwargs[key] = value
        if self.tokenizer is None:
            raise ValueError("LM decoding needs the model's CTC tokenizer (vocab.json) next to it")
        return decoding.CTCBeamSearchDecoder.from_tokenizer(self.tokenizer, lm, **kwargs)

    # ------------------------------------------------------------------------------------------- calling

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Transcribe one input or a list of inputs (see the class and module docstrings)."""
        if isinstance(inputs, list) and not inputs:
            # transformers would fail with an IndexError deep inside
            raise AudioError("no audio to transcribe: the list of inputs is empty")
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs: Any, chunk_length_s: float = 0, stride_length_s: Any = None) -> Any:
        rate = self.feature_extractor.sampling_rate
        min_samples = receptive_field(self.model.config)
        chunking = bool(chunk_length_s) and self.type in ("ctc", "ctc_with_lm")
        geometry = self._chunk_geometry(chunk_length_s, stride_length_s, min_samples) if chunking else None
        if chunking and _is_path(inputs):
            stream = open_stream(inputs, rate, min_samples)
            if stream is not None:
                yield from self._chunked(stream.read, geometry, {}, min_samples)
                return
        converted = prepare_pipeline_input(inputs, rate, min_samples=min_samples)
        if chunking:
            extra = {}
            if isinstance(converted, dict):
                # a dict's own "stride" means nothing once the pipeline chunks; other keys pass through
                extra = {k: v for k, v in converted.items() if k not in ("raw", "sampling_rate", "stride")}
                converted = converted["raw"]
            yield from self._chunked(ArrayReader(converted).read, geometry, extra, min_samples)
            return
        yield from super().preprocess(converted, chunk_length_s=chunk_length_s, stride_length_s=stride_length_s)

    def _chunk_geometry(
        self, chunk_length_s: float, stride_length_s: Any, min_samples: int | None
    ) -> tuple[int, int, int]:
        """(chunk, left stride, right stride) in samples, whole output frames each, as transformers rounds them."""
        rate, align = self.feature_extractor.sampling_rate, self._align_to
        if stride_length_s is None:
            stride_length_s = chunk_length_s / 6
        if isinstance(stride_length_s, (int, float)):
            stride_length_s = (stride_length_s, stride_length_s)
        chunk_len = int(round(chunk_length_s * rate / align) * align)
        left, right = (int(round(s * rate / align) * align) for s in stride_length_s)
        if chunk_len <= 0 or left < 0 or right < 0:
            raise ValueError(
                f"chunk_length_s must be positive and stride_length_s not negative, got "
                f"{chunk_length_s} and {stride_length_s}"
            )
        if chunk_len <= left + right:
            raise ValueError(
                f"chunk_length_s ({chunk_length_s}) must be longer than the two strides together ({stride_length_s})"
            )
        if min_samples and chunk_len < min_samples:
            raise ValueError(
                f"chunk_length_s={chunk_length_s} is shorter than the model's receptive field "
                f"({min_samples / rate:.3f} s)"
            )
        return chunk_len, left, right

    def _chunked(self, read: Callable, geometry: tuple[int, int, int], extra: dict, min_samples: int | None) -> Any:
        chunk_len, left, right = geometry
        rate = self.feature_extractor.sampling_rate
        for chunk, chunk_left, chunk_right, is_last in iter_chunks(
            read, chunk_len, left, right, min_samples or 1, self._align_to
        ):
            processed = self.feature_extractor(
                chunk, sampling_rate=rate, return_tensors="pt", return_attention_mask=True
            )
            if self.dtype is not None:
                processed = processed.to(dtype=self.dtype)
            yield {"is_last": is_last, "stride": (chunk.shape[0], chunk_left, chunk_right), **processed, **extra}

    def _forward(self, model_inputs: dict, **kwargs: Any) -> dict:
        seconds = self._covered_seconds(model_inputs) if self.progress_callback is not None else 0.0
        frames = self._real_frames(model_inputs)
        out = super()._forward(model_inputs, **kwargs)
        if frames is not None:
            self._blank_padding(out, frames)
        if self.progress_callback is not None:
            self.progress_callback(seconds)
        return out

    def _real_frames(self, model_inputs: dict) -> list[int] | None:
        """Output frames that come from real samples, per batch item (None when nothing is padded)."""
        mask = model_inputs.get("attention_mask")
        output_lengths = getattr(self.model, "_get_feat_extract_output_lengths", None)
        if self.type not in ("ctc", "ctc_with_lm") or mask is None or output_lengths is None:
            return None
        samples = mask.long().sum(-1)
        if bool((samples == mask.shape[-1]).all()):
            return None
        return [int(n) for n in output_lengths(samples)]

    def _blank_padding(self, out: dict, frames: list[int]) -> None:
        """Make the frames computed from batch padding blanks: transformers decodes them as if they were speech."""
        blank = self._blank_id()
        for i, n in enumerate(frames):
            if "tokens" in out:
                out["tokens"][i, n:] = blank
            if "logits" in out:
                out["logits"][i, n:] = _BLANK_LOGIT_FLOOR
                out["logits"][i, n:, blank] = 0.0

    def _blank_id(self) -> int:
        blank = getattr(self.tokenizer, "pad_token_id", None)
        return int(blank if blank is not None else self.model.config.pad_token_id or 0)

    def _covered_seconds(self, model_inputs: dict) -> float:
        """Seconds of input that a model call transcribes for good (chunk minus its strides)."""
        stride = model_inputs.get("stride")
        if stride is not None:
            strides = [stride] if isinstance(stride, tuple) else list(stride)
            samples = sum(n - left - right for n, left, right in strides)
        elif model_inputs.get("attention_mask") is not None:
            samples = int(model_inputs["attention_mask"].sum())
        else:
            values = model_inputs.get(self.model.main_input_name)
            samples = int(values.shape[0] * values.shape[-1]) if values is not None else 0
        return samples / self.feature_extractor.sampling_rate

    # ------------------------------------------------------------------------------------------- decoding

    def postprocess(
        self,
        model_outputs: list,
        decoder_kwargs: dict | None = None,
        return_timestamps: Any = None,
        return_language: Any = None,
    ) -> dict:
        if self.type in ("ctc", "ctc_with_lm"):
            self._complete_chunks(model_outputs)
        if self.type != "ctc_with_lm" or not hasattr(self.decoder, "decode_hypothesis"):
            return super().postprocess(
                model_outputs,
                decoder_kwargs=decoder_kwargs,
                return_timestamps=return_timestamps,
                return_language=return_language,
            )
        hypothesis = self.decoder.decode_hypothesis(self._stitch_logits(model_outputs))
        result: dict[str, Any] = {"text": hypothesis.text}
        if return_timestamps:
            seconds = frame_duration(self.model.config, self.feature_extractor.sampling_rate)
            result["chunks"] = [
                {"text": w.word, "timestamp": (w.start_time(seconds), w.end_time(seconds))} for w in hypothesis.words
            ]
        extra: dict[str, list] = {}
        for output in model_outputs:
            for key, value in output.items():
                if key not in ("logits", "tokens", "is_last", "stride"):
                    extra.setdefault(key, []).append(value)
        return {**result, **extra}

    def _complete_chunks(self, model_outputs: list) -> None:
        """Give each chunk the number of frames its stride arithmetic assumes.

        transformers cuts a chunk's frames by ``round(samples / 320)``, but the convolutions give one frame less when
        a chunk ends on a frame boundary. Chunks with a right stride lose nothing (the cut is inside the stride); a
        chunk without one would lose its last frame and every later chunk would land a frame (20 ms) early. The
        missing frame is filled with a copy of the last one: CTC merges the repeat, so a letter held across the cut
        stays one letter.
        """
        for output in model_outputs[:-1]:  # the last chunk ends with the audio: nothing after it could shift
            stride = output.get("stride")
            key = "logits" if "logits" in output else "tokens"
            if stride is None or key not in output:
                continue
            values = output[key]
            missing = stride[0] - values.shape[1]
            if missing > 0 and values.shape[1] > 0:
                repeat = [1] * values.dim()
                repeat[1] = missing
                output[key] = torch.cat([values, values[:, -1:].repeat(*repeat)], dim=1)

    @staticmethod
    def _stitch_logits(model_outputs: list) -> np.ndarray:
        """The chunks' logits, strides cut off, as one (frames, vocab) float32 array (transformers' arithmetic)."""
        pieces = []
        for output in model_outputs:
            logits = output["logits"].float().numpy()  # (1, frames, vocab)
            stride = output.get("stride")
            if stride is not None:
                total, left, right = stride
                logits = logits[:, left : total - right]
            pieces.append(logits)
        return np.concatenate(pieces, axis=1)[0]


# ----------------------------------------------------------------------------------------------- registration


class StockTaskDispatcher:
    """Base of the classes registered for transformers' built-in tasks: builds ``ours`` for the model types of
    :data:`PIPELINE_MODEL_TYPES` and ``fallback`` (the class registered before, normally transformers' own; set by
    :func:`route_stock_task`) for any other, so other models see no change at all.

    A subclass also names what :func:`register_task` and :func:`copy_pipeline_code` write for ``ours``: the built-in
    ``stock_task`` it takes over, this package's own ``task`` name, the transformers auto class ``auto_model`` and
    transformers' input ``kind`` of the task.
    """

    ours: Any
    fallback: Any
    stock_task: str
    task: str
    auto_model: str
    kind: str

    def __new__(cls, model: Any = None, *args: Any, **kwargs: Any) -> Any:
        config = getattr(model, "config", None)
        target = cls.ours if getattr(config, "model_type", None) in PIPELINE_MODEL_TYPES else cls.fallback
        # Not an instance of cls, so Python does not run __init__ a second time.
        return target(model, *args, **kwargs)


class _AutomaticSpeechRecognitionDispatcher(StockTaskDispatcher, AutomaticSpeechRecognitionPipeline):
    """Registered for ``"automatic-speech-recognition"``."""

    ours = HfWav2Vec2AutomaticSpeechRecognitionPipeline
    fallback = AutomaticSpeechRecognitionPipeline
    stock_task, task, auto_model, kind = STOCK_TASK, PIPELINE_TASK, "AutoModelForCTC", "multimodal"


def route_stock_task(task: str, dispatcher: type) -> None:
    """Make ``dispatcher`` the class transformers builds for its built-in ``task``, and the class registered before
    (normally transformers' own) its ``fallback`` for the models it leaves alone. Idempotent."""
    from transformers.pipelines import PIPELINE_REGISTRY

    tasks = PIPELINE_REGISTRY.supported_tasks
    entry = tasks[task]
    impl = entry["impl"]
    if impl is dispatcher:
        return
    if isinstance(impl, str):
        module, name = impl.rsplit(".", 1)
        impl = getattr(importlib.import_module(module), name)
    dispatcher.fallback = impl
    tasks[task] = {**entry, "impl": dispatcher}


def register_task(dispatcher: type[StockTaskDispatcher]) -> None:
    """Route the dispatcher's built-in ``stock_task`` through it (:func:`route_stock_task`) and register its own
    ``task`` for its pipeline class (idempotent)."""
    import transformers
    from transformers.pipelines import PIPELINE_REGISTRY

    route_stock_task(dispatcher.stock_task, dispatcher)
    if dispatcher.task not in PIPELINE_REGISTRY.supported_tasks:
        PIPELINE_REGISTRY.register_pipeline(
            dispatcher.task,
            pipeline_class=dispatcher.ours,
            pt_model=getattr(transformers, dispatcher.auto_model),
            type=dispatcher.kind,
        )


def register_pipelines() -> None:
    """Register the pipelines with transformers (idempotent; ``import hf_wav2vec2`` calls it).

    * ``pipeline("automatic-speech-recognition", model=...)`` builds
      :class:`HfWav2Vec2AutomaticSpeechRecognitionPipeline` when the model's type is ``hf_wav2vec2`` or
      ``wav2vec2`` (anything else gets the class registered before, normally transformers' own);
    * ``pipeline(PIPELINE_TASK, model=...)`` always builds it, for any CTC model; saving such a pipeline
      (``pipe.save_pretrained``) writes the code and the ``custom_pipelines`` entry, like :func:`save_pipeline_code`.
    """
    register_task(_AutomaticSpeechRecognitionDispatcher)


def save_pipeline_code(directory: str | os.PathLike) -> list[Path]:
    """Make a saved checkpoint load this pipeline in processes that do not have this package.

    Copies this file and the files it imports (``audio.py``, ``chunking.py``) into ``directory`` and adds a
    ``custom_pipelines`` entry for :data:`PIPELINE_TASK` to its ``config.json`` (as ``pipe.save_pretrained`` does for
    a registered pipeline). Then, without ``hf_wav2vec2`` installed::

        pipeline(model=directory, trust_remote_code=True)            # the task is read from config.json
        pipeline("hf-wav2vec2-asr", model=directory, trust_remote_code=True)

    build this pipeline from the copied code (the model, tokenizer and feature extractor come from their own remote
    code, which ``save_pretrained`` of this package's classes already writes). ``pipeline("automatic-speech-
    recognition", model=directory, trust_remote_code=True)`` still builds transformers' own class, which works on
    16 kHz arrays but resamples through torchaudio and decodes files through ffmpeg.

    Returns the paths of the copied files. Raises ``FileNotFoundError`` when ``directory`` has no ``config.json``.
    """
    return copy_pipeline_code(directory, _AutomaticSpeechRecognitionDispatcher)


def copy_pipeline_code(directory: str | os.PathLike, dispatcher: type[StockTaskDispatcher]) -> list[Path]:
    """Copy the file of the dispatcher's pipeline class and the files it imports into ``directory`` and add a
    ``custom_pipelines`` entry for the dispatcher's ``task`` to its ``config.json``. Returns the copied paths;
    ``FileNotFoundError`` when ``directory`` has no ``config.json``."""
    from transformers.dynamic_module_utils import get_relative_import_files

    directory = Path(directory)
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{directory}: no config.json (save the model there first)")
    source = Path(inspect.getfile(dispatcher.ours))
    copied = []
    for path in [source, *map(Path, get_relative_import_files(source))]:
        copied.append(Path(shutil.copyfile(path, directory / path.name)))
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.setdefault("custom_pipelines", {})[dispatcher.task] = {
        "impl": f"{source.stem}.{dispatcher.ours.__name__}",
        "pt": [dispatcher.auto_model],
        "type": dispatcher.kind,
    }
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return copied
