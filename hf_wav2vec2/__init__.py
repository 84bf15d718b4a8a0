"""hf-wav2vec2: wav2vec 2.0 (Baevski et al., 2020) as transformers-compatible models.

Importing the package registers its config, models, feature extractor, tokenizer and processor with the
transformers Auto classes (model type ``hf_wav2vec2``).
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForCTC,
    AutoModelForPreTraining,
    AutoProcessor,
    AutoTokenizer,
)

from .configuration_hf_wav2vec2 import HfWav2Vec2Config
from .feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from .modeling_hf_wav2vec2 import (
    HfWav2Vec2ForCTC,
    HfWav2Vec2ForPreTraining,
    HfWav2Vec2Model,
    HfWav2Vec2PreTrainedModel,
    compute_mask_indices,
    sample_negative_indices,
)
from .pipeline_hf_wav2vec2 import HfWav2Vec2AutomaticSpeechRecognitionPipeline, register_pipelines, save_pipeline_code
from .processing_hf_wav2vec2 import HfWav2Vec2Processor
from .tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer
from .transcribe import asr_pipeline, evaluate_model

__version__ = "0.1.0"


def _register():
    AutoConfig.register(HfWav2Vec2Config.model_type, HfWav2Vec2Config, exist_ok=True)
    AutoModel.register(HfWav2Vec2Config, HfWav2Vec2Model, exist_ok=True)
    AutoModelForPreTraining.register(HfWav2Vec2Config, HfWav2Vec2ForPreTraining, exist_ok=True)
    AutoModelForCTC.register(HfWav2Vec2Config, HfWav2Vec2ForCTC, exist_ok=True)
    AutoFeatureExtractor.register(HfWav2Vec2Config, HfWav2Vec2FeatureExtractor, exist_ok=True)
    AutoTokenizer.register(HfWav2Vec2Config, slow_tokenizer_class=HfWav2Vec2CTCTokenizer, exist_ok=True)
    AutoProcessor.register(HfWav2Vec2Config, HfWav2Vec2Processor, exist_ok=True)
    # save_pretrained writes an auto_map and copies the code, so trust_remote_code loads without this package
    HfWav2Vec2Config.register_for_auto_class()
    HfWav2Vec2Model.register_for_auto_class("AutoModel")
    HfWav2Vec2ForPreTraining.register_for_auto_class("AutoModelForPreTraining")
    HfWav2Vec2ForCTC.register_for_auto_class("AutoModelForCTC")
    HfWav2Vec2FeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    HfWav2Vec2CTCTokenizer.register_for_auto_class("AutoTokenizer")
    HfWav2Vec2Processor.register_for_auto_class("AutoProcessor")
    # pipeline("automatic-speech-recognition", model=...) builds our pipeline for hf_wav2vec2 models
    register_pipelines()


_register()

__all__ = [
    "HfWav2Vec2Config",
    "HfWav2Vec2Model",
    "HfWav2Vec2ForPreTraining",
    "HfWav2Vec2ForCTC",
    "HfWav2Vec2PreTrainedModel",
    "HfWav2Vec2FeatureExtractor",
    "HfWav2Vec2CTCTokenizer",
    "HfWav2Vec2Processor",
    "HfWav2Vec2AutomaticSpeechRecognitionPipeline",
    "asr_pipeline",
    "evaluate_model",
    "save_pipeline_code",
    "compute_mask_indices",
    "sample_negative_indices",
]
