"""Audio classification pipeline for wav2vec 2.0 classifiers, as a subclass of transformers' own.

:class:`HfWav2Vec2AudioClassificationPipeline` is ``AudioClassificationPipeline`` with this package's input
handling (:func:`.audio.load_audio`): file paths (WAV, FLAC, OGG, MP3 through libsndfile, other formats through
ffmpeg), encoded bytes, NumPy arrays and torch tensors (int PCM scaled, stereo mixed to mono), ``(samples, rate)``
tuples and ``{"raw"/"array": ..., "sampling_rate": ...}`` dicts at any rate, resampled with soxr (transformers'
class needs torchaudio for that). Bad or too-short input raises :class:`~.audio.AudioError`, one line naming the
file. ``top_k`` and ``function_to_apply`` are transformers' (``top_k=None``: every label).

Registration (:func:`register_audio_classification_pipeline`, called by ``import hf_wav2vec2``): the built-in
``"audio-classification"`` task builds this class for models whose ``model_type`` is ``hf_wav2vec2`` or
``wav2vec2`` and the previously registered class (transformers' own) for every other model type; the task
:data:`PIPELINE_TASK` always builds it.

Remote code (:func:`save_classification_pipeline_code`): this file imports only ``.audio``, ``.chunking`` and
``.pipeline_hf_wav2vec2`` (all remote-code safe), so it ships beside a classifier with a ``custom_pipelines`` entry,
and ``pipeline(model=DIR, trust_remote_code=True)`` builds this class in a process without this package.

:func:`classify_files` labels a list of files, skipping unreadable ones (the ``hf-wav2vec2 classify`` command).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import AudioClassificationPipeline

from .audio import AudioError, load_audio
from .chunking import receptive_field
from .pipeline_hf_wav2vec2 import PIPELINE_MODEL_TYPES, StockTaskDispatcher, copy_pipeline_code, register_task

__all__ = [
    "PIPELINE_TASK",
    "STOCK_TASK",
    "HfWav2Vec2AudioClassificationPipeline",
    "classify_files",
    "register_audio_classification_pipeline",
    "save_classification_pipeline_code",
]

STOCK_TASK = "audio-classification"
#: Task name of this pipeline in a saved config's ``custom_pipelines``. Not :data:`STOCK_TASK`: transformers refuses
#: every task listed there without ``trust_remote_code=True``, which would break ``pipeline(STOCK_TASK, model=DIR)``
#: in processes that import this package (the same reason as the ASR pipeline's ``hf-wav2vec2-asr``).
PIPELINE_TASK = "hf-wav2vec2-audio-classification"
# PIPELINE_MODEL_TYPES, the model types the stock task builds this class for, are the ASR pipeline's: ours and
# transformers' Wav2Vec2 (same feature extractor).


class HfWav2Vec2AudioClassificationPipeline(AudioClassificationPipeline):
    """transformers' ``AudioClassificationPipeline`` reading and resampling audio with this package (soxr)."""

    def check_model_type(self, supported_models: Any) -> None:
        # transformers checks the class name against its own list of names, which does not include classes
        # registered with AutoModelForAudioClassification (ours), and logs an error for them
        if getattr(self.model.config, "model_type", None) in PIPELINE_MODEL_TYPES:
            return
        super().check_model_type(supported_models)

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Classify one input or a list of inputs; returns ``[{"label", "score"}, ...]`` per input, best first."""
        if isinstance(inputs, list) and not inputs:
            raise AudioError("no audio to classify: the list of inputs is empty")
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs: Any) -> Any:
        rate = self.feature_extractor.sampling_rate
        audio = load_audio(inputs, rate, min_samples=receptive_field(self.model.config))
        return super().preprocess(audio)  # a 1-D float32 array at the extractor's rate: no resampling left


class _AudioClassificationDispatcher(StockTaskDispatcher, AudioClassificationPipeline):
    """Registered for ``"audio-classification"``."""

    ours = HfWav2Vec2AudioClassificationPipeline
    fallback = AudioClassificationPipeline
    stock_task, task, auto_model, kind = STOCK_TASK, PIPELINE_TASK, "AutoModelForAudioClassification", "audio"


def register_audio_classification_pipeline() -> None:
    """Route ``pipeline("audio-classification", ...)`` of wav2vec 2.0 models to our class and register
    :data:`PIPELINE_TASK` (idempotent)."""
    register_task(_AudioClassificationDispatcher)


def save_classification_pipeline_code(directory: str | os.PathLike) -> list[Path]:
    """Make a saved classifier build this pipeline in processes that do not have this package.

    Copies this file and the files it imports into ``directory`` and adds a ``custom_pipelines`` entry for
    :data:`PIPELINE_TASK` to its ``config.json``. Then, without ``hf_wav2vec2``, ``pipeline(model=directory,
    trust_remote_code=True)`` classifies files and arrays at any rate (soxr); ``pipeline("audio-classification",
    model=directory, trust_remote_code=True)`` builds transformers' own class, which needs torchaudio to resample.
    Returns the copied paths; ``FileNotFoundError`` when ``directory`` has no ``config.json``."""
    return copy_pipeline_code(directory, _AudioClassificationDispatcher)


# ------------------------------------------------------------------------------------------------- files


def classify_files(
    classifier: Any, files: list[str], top_k: int | None = 5, on_error: Any = None
) -> list[dict[str, Any]]:
    """Classify audio files one by one: ``[{"file", "labels": [{"label", "score"}, ...]}]`` for the files that could
    be read, best label first (``top_k=None``: every label). A file that cannot be read is skipped after calling
    ``on_error(file, AudioError)``, so one bad file does not stop the others (without ``on_error`` it raises)."""
    results = []
    for path in files:
        try:
            labels = classifier(path, top_k=top_k)
        except AudioError as error:
            if on_error is None:
                raise
            on_error(path, error)
            continue
        results.append({"file": str(path), "labels": labels})
    return results
