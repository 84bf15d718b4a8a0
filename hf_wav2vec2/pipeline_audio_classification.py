"""Audio classification pipeline for wav2vec 2.0 classifiers, as a subclass of transformers' own.

:class:`HfWav2Vec2AudioClassificationPipeline` is ``AudioClassificationPipeline`` with this package's input
handling (:func:`.audio.load_audio`): file paths (WAV, FLAC, OGG, MP3 through libsndfile, other formats through
ffmpeg), encoded bytes, NumPy arrays and torch tensors (int PCM scaled, stereo mixed to mono), ``(samples, rate)``
tuples and ``{"raw"/"array": ..., "sampling_rate": ...}`` dicts at any rate, resampled with soxr (transformers'
class needs torchaudio for that). Bad or too-short input raises :class:`~.audio.AudioError`, one line naming the
file. ``top_k`` and ``function_to_apply`` are transformers' (``top_k=None``: every label).

Registration (:func:`register_audio_classification_pipeline`, called by ``import hf_wav2vec2``): the built-in
``"audio-classification"`` task builds this class for models whose ``model_type`` is ``hf_wav2vec2`` or
``wav2vec2`` and the previously registered class (transformers' own) for every other model type.

The ``hf-wav2vec2 classify`` command's arguments and body are :func:`add_arguments` and :func:`run`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from transformers import AudioClassificationPipeline

from .audio import AudioError, load_audio
from .chunking import receptive_field
from .pipeline_hf_wav2vec2 import route_stock_task

__all__ = [
    "STOCK_TASK",
    "HfWav2Vec2AudioClassificationPipeline",
    "add_arguments",
    "register_audio_classification_pipeline",
    "run",
]

STOCK_TASK = "audio-classification"
#: Model types the stock task builds this class for: ours and transformers' Wav2Vec2 (same feature extractor).
PIPELINE_MODEL_TYPES = frozenset({"hf_wav2vec2", "wav2vec2"})


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


class _AudioClassificationDispatcher(AudioClassificationPipeline):
    """Registered for ``"audio-classification"``: our pipeline for :data:`PIPELINE_MODEL_TYPES`, the previously
    registered class (transformers' own) for any other model, which therefore sees no change."""

    fallback: Any = AudioClassificationPipeline

    def __new__(cls, model: Any = None, *args: Any, **kwargs: Any) -> Any:
        config = getattr(model, "config", None)
        ours = getattr(config, "model_type", None) in PIPELINE_MODEL_TYPES
        target = HfWav2Vec2AudioClassificationPipeline if ours else cls.fallback
        return target(model, *args, **kwargs)  # not an instance of cls: Python does not run __init__ again


def register_audio_classification_pipeline() -> None:
    """Route ``pipeline("audio-classification", ...)`` of wav2vec 2.0 models to our class (idempotent)."""
    route_stock_task(STOCK_TASK, _AudioClassificationDispatcher)


# ------------------------------------------------------------------------------------- hf-wav2vec2 classify


def add_arguments(parser: Any) -> None:
    """Arguments of ``hf-wav2vec2 classify FILES --model M [--top_k K] [--format text|json]``."""
    parser.add_argument("files", nargs="+", help="audio files (any format and rate; resampled with soxr)")
    parser.add_argument("--model", required=True, help="a classification model: directory or Hub id")
    parser.add_argument("--top_k", type=int, default=5, help="labels to print per file (default 5; 0: all)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cpu)")


def run(args: Any, out: Any = None) -> int:
    """Classify ``args.files``; print one line per file (text) or a JSON list. Returns the exit status:
    0 when every file was classified, 1 when some could not be read (those are reported on stderr)."""
    from transformers import pipeline

    out = sys.stdout if out is None else out
    if args.top_k < 0:
        raise ValueError(f"--top_k must be >= 0, got {args.top_k}")
    classifier = pipeline(STOCK_TASK, model=args.model, device=args.device)
    top_k = args.top_k or None
    results, failed = [], 0
    for path in args.files:
        try:
            labels = classifier(path, top_k=top_k)
        except AudioError as error:
            print(f"hf-wav2vec2 classify: {error}", file=sys.stderr)
            failed += 1
            continue
        results.append({"file": path, "labels": labels})
    if args.format == "json":
        json.dump(results, out, indent=2)
        out.write("\n")
    else:
        for result in results:
            shown = ", ".join(f"{item['label']} {item['score']:.3f}" for item in result["labels"])
            print(f"{result['file']}\t{shown}", file=out)
    return 1 if failed else 0
