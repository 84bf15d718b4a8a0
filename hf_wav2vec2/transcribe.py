"""Transcribing files and evaluating a model: the library side of ``hf-wav2vec2 transcribe``.

* :func:`asr_pipeline`: build :class:`~hf_wav2vec2.pipeline_hf_wav2vec2.HfWav2Vec2AutomaticSpeechRecognitionPipeline`
  for a model directory or Hub id (any wav2vec 2.0 CTC checkpoint, ours or transformers'), optionally with an n-gram
  LM; an unusable model source is a one-line :class:`ModelLoadError`.
* :func:`transcribe_files`: many files through one pipeline, batched, with a progress bar; a bad file becomes a
  :class:`Transcription` with an ``error`` and the others are still transcribed.
* :func:`evaluate_model`: WER and CER (jiwer) of a model, with or without LM, on audio files with references, after
  the transcript normalization the model was fine-tuned with (``text_normalization.json`` beside it).
* :func:`group_words`, :func:`format_srt`, :func:`format_vtt`: subtitles from word timestamps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .audio import AudioError
from .pipeline_hf_wav2vec2 import STOCK_TASK, HfWav2Vec2AutomaticSpeechRecognitionPipeline

__all__ = [
    "ModelLoadError",
    "Transcription",
    "asr_pipeline",
    "evaluate_model",
    "format_srt",
    "format_vtt",
    "group_words",
    "normalize_transcript",
    "saved_normalizer",
    "transcribe_files",
]


class ModelLoadError(ValueError):
    """The model could not be loaded; the message is one line naming the model source."""

    def __init__(self, source: Any, problem: str):
        super().__init__(f"{source}: {' '.join(str(problem).split())}")


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _looks_like_path(name: str) -> bool:
    """Whether a model name can only be a local path (Hub ids are ``name`` or ``owner/name``)."""
    return (
        os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)
    )


def _check_model_source(model: Any) -> None:
    """Refuse, with a one-line message, model names that cannot work before transformers tries them."""
    if not isinstance(model, (str, os.PathLike)):
        return
    name = os.fspath(model)
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise ModelLoadError(name, "not a model directory (no config.json)")
    elif os.path.exists(name):
        raise ModelLoadError(name, "is a file; pass the directory the model was saved to")
    elif _looks_like_path(name):
        raise ModelLoadError(name, "no such model directory")


def _check_adapter_language(model: str, target_lang: str) -> None:
    """A local MMS folder without the language's adapter file: say so (transformers' error names only classes)."""
    from .adapters_hf_wav2vec2 import available_adapters

    if os.path.isdir(model) and target_lang not in available_adapters(model):
        have = available_adapters(model)
        raise ModelLoadError(
            model,
            f"no adapter.{target_lang}.safetensors or adapter.{target_lang}.bin for "
            f"target_lang={target_lang!r} ({'it has: ' + ', '.join(have) if have else 'none'})",
        )


def asr_pipeline(
    model: Any,
    *,
    lm: str | os.PathLike | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    beam_size: int | None = None,
    decoder: Any = None,
    decoder_options: dict | None = None,
    device: Any = None,
    target_lang: str | None = None,
    **kwargs: Any,
) -> HfWav2Vec2AutomaticSpeechRecognitionPipeline:
    """Speech recognition pipeline (this package's class) for ``model``.

    Args:
        model: A model directory, a Hub id, or a loaded CTC model (then pass ``tokenizer=``/``feature_extractor=``).
            transformers' own wav2vec 2.0 checkpoints work too: they get this pipeline's input handling.
        lm, alpha, beta, beam_size, decoder, decoder_options: LM decoding, see
            :class:`~hf_wav2vec2.pipeline_hf_wav2vec2.HfWav2Vec2AutomaticSpeechRecognitionPipeline`.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a device index, ...
        target_lang: For a multilingual MMS model (``adapter.<lang>.safetensors`` files): the language to load
            (its adapters, CTC head and vocabulary), e.g. ``"spa"``.
        kwargs: Further arguments of ``transformers.pipeline`` (``chunk_length_s``, ``dtype``, ``token``, ...).

    Raises:
        ModelLoadError: The model source does not exist or cannot be loaded (one line).
    """
    from transformers import pipeline

    _check_model_source(model)
    if lm is not None and not os.path.isfile(lm):
        raise ModelLoadError(os.fspath(lm), "no such language model file")
    for key, value in (
        ("lm", lm),
        ("alpha", alpha),
        ("beta", beta),
        ("beam_size", beam_size),
        ("decoder", decoder),
        ("decoder_options", decoder_options),
        ("device", device),
    ):
        if value is not None:
            kwargs[key] = os.fspath(value) if key == "lm" else value
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if target_lang is not None:
        if not isinstance(model, str):
            raise ValueError(
                "target_lang= needs a model directory or Hub id; load a model object with "
                "from_pretrained(..., target_lang=...) or model.load_adapter(lang) instead"
            )
        _check_adapter_language(model, target_lang)
        kwargs["model_kwargs"] = {**(kwargs.get("model_kwargs") or {}), "target_lang": target_lang}
    try:
        return pipeline(STOCK_TASK, model=model, pipeline_class=HfWav2Vec2AutomaticSpeechRecognitionPipeline, **kwargs)
    except Exception as error:  # noqa: BLE001 - a damaged file fails with whatever its reader hit
        if not isinstance(model, str):
            raise
        from .convert import unreadable_weights

        damaged = unreadable_weights(model)  # transformers' "Could not load model ..." hides which file and why
        if damaged is not None:
            raise ModelLoadError(*damaged) from None
        if not isinstance(error, (OSError, ValueError, KeyError)):
            raise
        raise ModelLoadError(model, f"cannot load a speech recognition model ({_first_line(error)})") from None


# ----------------------------------------------------------------------------------------------- transcribing


@dataclass
class Transcription:
    """What :func:`transcribe_files` returns per file: text and timestamp chunks, or the error."""

    source: str
    text: str = ""
    chunks: list[dict] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        """JSON-friendly: ``{"file", "text", "chunks": [{"text", "start", "end"}] or None, "error"}``."""
        chunks = None
        if self.chunks is not None:
            chunks = [
                {"text": c["text"], "start": round(c["timestamp"][0], 3), "end": round(c["timestamp"][1], 3)}
                for c in self.chunks
            ]
        return {"file": self.source, "text": self.text, "chunks": chunks, "error": self.error}


def _duration(path: Any) -> float | None:
    """Duration of an audio file from its header, or None when libsndfile cannot tell."""
    import soundfile as sf

    try:
        info = sf.info(os.fspath(path))
    except Exception:  # anything unreadable is reported when it is transcribed
        return None
    return info.frames / info.samplerate if info.samplerate else None


def _error_message(source: str, error: BaseException) -> str:
    """One line naming the file: AudioError messages already start with it."""
    if isinstance(error, AudioError) and error.source:
        return str(error)
    return f"{source}: {_first_line(error)}"


def _to_transcription(source: str, output: dict) -> Transcription:
    return Transcription(source=source, text=output.get("text", ""), chunks=output.get("chunks"))


def transcribe_files(
    pipe: Any,
    files: Sequence[str | os.PathLike],
    *,
    batch_size: int = 1,
    chunk_length_s: float | None = None,
    stride_length_s: float | Sequence[float] | None = None,
    return_timestamps: str | None = None,
    progress: bool = False,
    on_result: Callable[[Transcription], None] | None = None,
) -> list[Transcription]:
    """Transcribe ``files`` with ``pipe``; a file that fails is returned with ``error`` set, the rest go on.

    Files go through the pipeline ``batch_size`` at a time (chunks of long files are batched as well), grouped by
    length when ``batch_size > 1`` (:func:`length_groups`) so that little of a batch is padding; the results come
    back in the order of ``files``. When a group fails, its files are retried one by one so only the bad ones fail.
    ``progress`` shows a tqdm bar on stderr in seconds of audio (durations read from the file headers).
    ``on_result`` is called with each result as soon as its group is done (the CLI reports errors as they happen).
    """
    from tqdm.auto import tqdm

    if not files:
        raise AudioError("no audio files to transcribe")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    sources = [os.fspath(f) for f in files]
    durations = [_duration(f) for f in sources] if progress or batch_size > 1 else [None] * len(sources)
    known = all(d is not None for d in durations)
    call_kwargs: dict[str, Any] = {"batch_size": batch_size}
    if chunk_length_s:
        call_kwargs["chunk_length_s"] = chunk_length_s
        if stride_length_s is not None:
            call_kwargs["stride_length_s"] = stride_length_s
    if return_timestamps:
        call_kwargs["return_timestamps"] = return_timestamps

    bar = tqdm(
        total=round(sum(durations), 1) if known and progress else None,
        unit="s",
        disable=not progress,
        desc="transcribing",
        dynamic_ncols=True,
    )
    previous_callback = getattr(pipe, "progress_callback", None)
    if progress and hasattr(pipe, "progress_callback"):
        pipe.progress_callback = lambda seconds: bar.update(round(seconds, 2))
    results: dict[int, Transcription] = {}

    def run(group: list[int]) -> list[Transcription]:
        outputs = pipe([sources[i] for i in group], **call_kwargs)
        return [_to_transcription(sources[i], out) for i, out in zip(group, outputs, strict=True)]

    try:
        for group in length_groups(durations, batch_size):
            position = bar.n
            try:
                done = run(group)
            except Exception as error:  # noqa: BLE001 - isolate the bad file(s), report the rest
                if len(group) == 1:
                    done = [Transcription(sources[group[0]], error=_error_message(sources[group[0]], error))]
                    if durations[group[0]]:
                        bar.update(max(0.0, position + durations[group[0]] - bar.n))
                else:
                    bar.n = position  # the retries count the audio again
                    bar.refresh()
                    done = []
                    for i in group:
                        try:
                            done += run([i])
                        except Exception as single_error:  # noqa: BLE001
                            done.append(Transcription(sources[i], error=_error_message(sources[i], single_error)))
            for i, result in zip(group, done, strict=True):
                results[i] = result
                if on_result is not None:
                    on_result(result)
    finally:
        if hasattr(pipe, "progress_callback"):
            pipe.progress_callback = previous_callback
        bar.close()
    return [results[i] for i in range(len(sources))]


def length_groups(durations: Sequence[float | None], batch_size: int) -> list[list[int]]:
    """Indices of ``durations`` in groups of at most ``batch_size``, longest first, so that each batch holds files
    of similar length (a batch is padded to its longest file: mixing a 2 s and a 30 s file computes 28 s of padding).
    Longest first so that a batch too large for memory fails at the start, not after an hour. Files of unknown
    length (None: the header did not say) come last, in their order; ``batch_size`` 1 keeps the order of the files.
    """
    order = list(range(len(durations)))
    if batch_size > 1:
        known = sorted((i for i in order if durations[i] is not None), key=lambda i: -durations[i])  # stable
        order = known + [i for i in order if durations[i] is None]
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


# ----------------------------------------------------------------------------------------------- evaluation


def normalize_transcript(text: str) -> str:
    """Case-folded, with whitespace collapsed: character CTC vocabularies make case an artefact, not an error."""
    return " ".join(text.split()).lower()


SAVED_NORMALIZATION = "saved"


def _model_directory(model: Any) -> str | None:
    """The local folder `model` (a path, or a pipeline whose model was loaded from one) comes from, if any."""
    if isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
    else:
        loaded = getattr(model, "model", None)
        name = getattr(getattr(loaded, "config", None), "name_or_path", None) or getattr(loaded, "name_or_path", None)
    return name if isinstance(name, str) and os.path.isdir(name) else None


def saved_normalizer(model: Any) -> Callable[[str], str]:
    """How references and hypotheses of `model` are cleaned before scoring: the options fine-tuning saved beside it
    (``text_normalization.json``, the same as its own WER / CER used), else :func:`normalize_transcript`."""
    directory = _model_directory(model)
    if directory is not None:
        from .training.vocab import TextNormalization

        saved = TextNormalization.from_pretrained(directory)
        if saved is not None:
            return saved.normalize
    return normalize_transcript


@dataclass
class EvaluationResult:
    """WER/CER over a set, with the hypotheses; files that failed count as empty hypotheses."""

    wer: float
    cer: float
    num_utterances: int
    hypotheses: list[str]
    references: list[str]
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"wer": self.wer, "cer": self.cer, "num_utterances": self.num_utterances, "failed": dict(self.failed)}


def evaluate_model(
    model_dir: Any,
    audio_files: Sequence[str | os.PathLike],
    references: Sequence[str],
    lm: str | os.PathLike | None = None,
    *,
    alpha: float | None = None,
    beta: float | None = None,
    beam_size: int | None = None,
    batch_size: int = 1,
    chunk_length_s: float | None = None,
    stride_length_s: float | None = None,
    device: Any = None,
    normalize: Callable[[str], str] | str | None = SAVED_NORMALIZATION,
    progress: bool = False,
    target_lang: str | None = None,
) -> EvaluationResult:
    """Word and character error rates of a model on ``audio_files`` against ``references`` (jiwer).

    Args:
        model_dir: Model directory or Hub id, or an already built pipeline (then ``lm``/``alpha``/``beta``/
            ``beam_size``/``device`` must be left out).
        audio_files, references: Paired lists.
        lm, alpha, beta, beam_size: n-gram LM beam search (see :func:`asr_pipeline`); greedy decoding without ``lm``.
        batch_size, chunk_length_s, stride_length_s: as for :func:`transcribe_files`.
        target_lang: The language of a multilingual MMS model to evaluate (see :func:`asr_pipeline`).
        normalize: Applied to references and hypotheses before scoring. ``"saved"`` (default): the normalization
            the model was fine-tuned with when its folder has ``text_normalization.json`` (written by fine-tuning),
            so the rates match the ones fine-tuning reported; otherwise :func:`normalize_transcript` (case-fold,
            collapse whitespace). A function is used as given; None compares the texts as they are.

    Returns:
        :class:`EvaluationResult`. A file that cannot be transcribed is scored as an empty hypothesis (all its words
        deleted) and listed in ``failed``, so problems raise the error rate instead of vanishing from it.
    """
    import jiwer

    if len(audio_files) != len(references):
        raise ValueError(f"got {len(audio_files)} audio files but {len(references)} references")
    if not audio_files:
        raise ValueError("nothing to evaluate: no audio files")
    if normalize == SAVED_NORMALIZATION:
        normalize = saved_normalizer(model_dir)  # read before the model loads: a damaged file fails fast
    elif isinstance(normalize, str):
        raise ValueError(f"normalize must be a function, None or {SAVED_NORMALIZATION!r}, got {normalize!r}")
    if isinstance(model_dir, HfWav2Vec2AutomaticSpeechRecognitionPipeline) or hasattr(model_dir, "preprocess"):
        if any(v is not None for v in (lm, alpha, beta, beam_size, device, target_lang)):
            raise ValueError(
                "lm, alpha, beta, beam_size, device and target_lang configure a new pipeline: not with a pipeline"
            )
        pipe = model_dir
    else:
        pipe = asr_pipeline(
            model_dir, lm=lm, alpha=alpha, beta=beta, beam_size=beam_size, device=device, target_lang=target_lang
        )
    results = transcribe_files(
        pipe,
        audio_files,
        batch_size=batch_size,
        chunk_length_s=chunk_length_s,
        stride_length_s=stride_length_s,
        progress=progress,
    )
    clean = normalize or (lambda s: s)
    refs = [clean(r) for r in references]
    empty = [os.fspath(f) for f, r in zip(audio_files, refs, strict=True) if not r.strip()]
    if empty:
        raise ValueError(f"{len(empty)} references are empty (e.g. for {empty[0]}); WER is undefined for them")
    hyps = [clean(r.text) for r in results]
    return EvaluationResult(
        wer=float(jiwer.wer(refs, hyps)),
        cer=float(jiwer.cer(refs, hyps)),
        num_utterances=len(refs),
        hypotheses=hyps,
        references=refs,
        failed={r.source: r.error for r in results if r.error is not None},
    )


# ----------------------------------------------------------------------------------------------- subtitles


@dataclass
class Cue:
    """One subtitle: text shown from ``start`` to ``end`` seconds."""

    start: float
    end: float
    text: str


def group_words(
    words: Iterable[dict], max_words: int = 7, max_duration: float = 5.0, max_gap: float = 1.0
) -> list[Cue]:
    """Group word timestamps (``{"text", "timestamp": (start, end)}``, as the pipeline returns them) into cues.

    A cue ends before a word that would make it longer than ``max_words`` words or ``max_duration`` seconds, or that
    starts more than ``max_gap`` seconds after the previous word ends (a pause starts a new subtitle).
    """
    if max_words < 1 or max_duration <= 0:
        raise ValueError("max_words must be at least 1 and max_duration positive")
    cues: list[Cue] = []
    current: list[tuple[float, float, str]] = []
    for word in words:
        start, end = (float(t) for t in word["timestamp"])
        text = word["text"].strip()
        if not text:
            continue
        if current and (
            len(current) >= max_words or end - current[0][0] > max_duration or start - current[-1][1] > max_gap
        ):
            cues.append(Cue(current[0][0], current[-1][1], " ".join(w[2] for w in current)))
            current = []
        current.append((start, end, text))
    if current:
        cues.append(Cue(current[0][0], current[-1][1], " ".join(w[2] for w in current)))
    return cues


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cue_end(cue: Cue) -> float:
    # a cue needs a visible duration: CTC word spans can be a single 20 ms frame
    return max(cue.end, cue.start + 0.1)


def format_srt(cues: Iterable[Cue]) -> str:
    """SubRip text: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank line between cues."""
    blocks = [
        f"{i}\n{_clock(c.start, ',')} --> {_clock(_cue_end(c), ',')}\n{c.text}\n" for i, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def format_vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text: ``WEBVTT`` header, cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    blocks = [f"{_clock(c.start, '.')} --> {_clock(_cue_end(c), '.')}\n{_escape_vtt(c.text)}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _escape_vtt(text: str) -> str:
    # markup characters are not allowed in cue text (escaping ">" also takes care of "-->")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
