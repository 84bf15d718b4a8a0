"""hf-wav2vec2: wav2vec 2.0 (Baevski et al., 2020) as transformers-compatible models.

Importing the package registers its config, models, feature extractor, tokenizer and processor with the
transformers Auto classes (model type ``hf_wav2vec2``) and routes the ASR pipeline of ``hf_wav2vec2`` models to
this package's pipeline class, and the audio-classification pipeline of wav2vec 2.0 classifiers likewise (see
:func:`register`).

One exception: in the ``hf-wav2vec2`` console script registration waits until the command needs a model, because
it imports torch and transformers (seconds) and ``hf-wav2vec2 --help`` should answer at once. The command line then
calls :func:`register` itself, and so does the first access to any of the names below.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

__version__ = "0.1.0"

# Public name -> submodule that defines it. Resolved on first access (PEP 562), which also registers.
_EXPORTS = {
    "HfWav2Vec2Config": "configuration_hf_wav2vec2",
    "HfWav2Vec2FeatureExtractor": "feature_extraction_hf_wav2vec2",
    "HfWav2Vec2Model": "modeling_hf_wav2vec2",
    "HfWav2Vec2ForPreTraining": "modeling_hf_wav2vec2",
    "HfWav2Vec2ForCTC": "modeling_hf_wav2vec2",
    "HfWav2Vec2PreTrainedModel": "modeling_hf_wav2vec2",
    "HfWav2Vec2ForSequenceClassification": "modeling_hf_wav2vec2_classification",
    "HfWav2Vec2ForAudioFrameClassification": "modeling_hf_wav2vec2_classification",
    "HfWav2Vec2ForXVector": "modeling_hf_wav2vec2_classification",
    "speaker_similarity": "modeling_hf_wav2vec2_classification",
    "verify_speakers": "modeling_hf_wav2vec2_classification",
    "HfWav2Vec2AudioClassificationPipeline": "pipeline_audio_classification",
    "compute_mask_indices": "modeling_hf_wav2vec2",
    "sample_negative_indices": "modeling_hf_wav2vec2",
    "HfWav2Vec2AutomaticSpeechRecognitionPipeline": "pipeline_hf_wav2vec2",
    "register_pipelines": "pipeline_hf_wav2vec2",
    "save_pipeline_code": "pipeline_hf_wav2vec2",
    "HfWav2Vec2Processor": "processing_hf_wav2vec2",
    "HfWav2Vec2CTCTokenizer": "tokenization_hf_wav2vec2",
    "asr_pipeline": "transcribe",
    "evaluate_model": "transcribe",
    "align": "alignment",
    "StreamingTranscriber": "streaming",
    # need the onnx extra (onnxruntime, onnx, onnxscript); imported only when used
    "export_onnx": "onnx",
    "OnnxWav2Vec2ForCTC": "onnx",
    "quantize": "quantization",
}
# Names the console script may be started as: pip's launcher on POSIX, its -script.py / .exe forms on Windows.
_CONSOLE_SCRIPT_NAMES = ("hf-wav2vec2", "hf-wav2vec2-script.py", "hf-wav2vec2-script.pyw", "hf-wav2vec2.exe")
_registered = False


def register() -> None:
    """Register this package with the transformers Auto classes and the ASR pipeline (idempotent).

    ``import hf_wav2vec2`` calls it, except inside the ``hf-wav2vec2`` command, which calls it once it knows the
    command needs a model.
    """
    global _registered
    if _registered:
        return
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForAudioClassification,
        AutoModelForAudioFrameClassification,
        AutoModelForAudioXVector,
        AutoModelForCTC,
        AutoModelForPreTraining,
        AutoProcessor,
        AutoTokenizer,
    )

    from .configuration_hf_wav2vec2 import HfWav2Vec2Config
    from .feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from .modeling_hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining, HfWav2Vec2Model
    from .modeling_hf_wav2vec2_classification import (
        HfWav2Vec2ForAudioFrameClassification,
        HfWav2Vec2ForSequenceClassification,
        HfWav2Vec2ForXVector,
    )
    from .pipeline_audio_classification import register_audio_classification_pipeline
    from .pipeline_hf_wav2vec2 import register_pipelines
    from .processing_hf_wav2vec2 import HfWav2Vec2Processor
    from .tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

    AutoConfig.register(HfWav2Vec2Config.model_type, HfWav2Vec2Config, exist_ok=True)
    AutoModel.register(HfWav2Vec2Config, HfWav2Vec2Model, exist_ok=True)
    AutoModelForPreTraining.register(HfWav2Vec2Config, HfWav2Vec2ForPreTraining, exist_ok=True)
    AutoModelForCTC.register(HfWav2Vec2Config, HfWav2Vec2ForCTC, exist_ok=True)
    heads = (
        (AutoModelForAudioClassification, HfWav2Vec2ForSequenceClassification),
        (AutoModelForAudioFrameClassification, HfWav2Vec2ForAudioFrameClassification),
        (AutoModelForAudioXVector, HfWav2Vec2ForXVector),
    )
    for auto_class, model_class in heads:
        auto_class.register(HfWav2Vec2Config, model_class, exist_ok=True)
    AutoFeatureExtractor.register(HfWav2Vec2Config, HfWav2Vec2FeatureExtractor, exist_ok=True)
    AutoTokenizer.register(HfWav2Vec2Config, slow_tokenizer_class=HfWav2Vec2CTCTokenizer, exist_ok=True)
    AutoProcessor.register(HfWav2Vec2Config, HfWav2Vec2Processor, exist_ok=True)
    # save_pretrained writes an auto_map and copies the code, so trust_remote_code loads without this package
    HfWav2Vec2Config.register_for_auto_class()
    HfWav2Vec2Model.register_for_auto_class("AutoModel")
    HfWav2Vec2ForPreTraining.register_for_auto_class("AutoModelForPreTraining")
    HfWav2Vec2ForCTC.register_for_auto_class("AutoModelForCTC")
    for auto_class, model_class in heads:
        model_class.register_for_auto_class(auto_class.__name__)
    HfWav2Vec2FeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    HfWav2Vec2CTCTokenizer.register_for_auto_class("AutoTokenizer")
    HfWav2Vec2Processor.register_for_auto_class("AutoProcessor")
    # pipeline("automatic-speech-recognition", model=...) builds our pipeline for hf_wav2vec2 models
    register_pipelines()
    register_audio_classification_pipeline()  # and pipeline("audio-classification", model=...) likewise
    _registered = True


def _in_console_script() -> bool:
    """Whether this process is the ``hf-wav2vec2`` command (console script or ``python -m hf_wav2vec2.cli``)
    that has not imported transformers yet: only then is registration left to the command line."""
    if "transformers" in sys.modules:
        return False  # registering costs little now, and whoever imported transformers may rely on it
    if os.path.basename(sys.argv[0] if sys.argv else "") in _CONSOLE_SCRIPT_NAMES:
        return True
    # While ``python -m`` locates the module (and imports this package), sys.argv[0] is "-m"; orig_argv has the name.
    argv = getattr(sys, "orig_argv", [])
    return any(a == "-m" and b == "hf_wav2vec2.cli" for a, b in zip(argv, argv[1:], strict=False))


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        # Submodules (hf_wav2vec2.transcribe, .audio, ...) were attributes after a plain import; they still are.
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # A user reaching for a model class expects the Auto classes to know it, as after a plain import.
    register()
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if not _in_console_script():
    register()

__all__ = [
    "HfWav2Vec2Config",
    "HfWav2Vec2Model",
    "HfWav2Vec2ForPreTraining",
    "HfWav2Vec2ForCTC",
    "HfWav2Vec2ForSequenceClassification",
    "HfWav2Vec2ForAudioFrameClassification",
    "HfWav2Vec2ForXVector",
    "HfWav2Vec2PreTrainedModel",
    "HfWav2Vec2FeatureExtractor",
    "HfWav2Vec2CTCTokenizer",
    "HfWav2Vec2Processor",
    "HfWav2Vec2AutomaticSpeechRecognitionPipeline",
    "HfWav2Vec2AudioClassificationPipeline",
    "asr_pipeline",
    "evaluate_model",
    "align",
    "StreamingTranscriber",
    "export_onnx",
    "OnnxWav2Vec2ForCTC",
    "quantize",
    "register",
    "save_pipeline_code",
    "compute_mask_indices",
    "sample_negative_indices",
    "speaker_similarity",
    "verify_speakers",
]
