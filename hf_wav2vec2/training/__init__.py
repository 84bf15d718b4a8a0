"""Training utilities for hf-wav2vec2.

The pre-training data pipeline (:mod:`hf_wav2vec2.training.data`) and the synthetic audio
generator (:mod:`hf_wav2vec2.training.synthetic`) are re-exported here; other submodules are
imported on their own (``from hf_wav2vec2.training.<module> import ...``).
"""

from .data import (
    AudioCache,
    AudioDataset,
    AudioDecodeError,
    BatchingStats,
    CropRequest,
    LengthBucketBatchSampler,
    PretrainingCollator,
    PretrainingDataLoader,
    SkippedAudio,
    StreamingPretrainingDataset,
    batching_stats,
    decode_audio,
    find_audio_files,
    get_pretraining_dataloader,
    load_audio_dataset,
    plan_batches,
    probe_num_samples,
    read_manifest,
    write_manifest,
)
from .synthetic import make_synthetic_corpus, synthesize_utterance

__all__ = [
    "AudioCache",
    "AudioDataset",
    "AudioDecodeError",
    "BatchingStats",
    "CropRequest",
    "LengthBucketBatchSampler",
    "PretrainingCollator",
    "PretrainingDataLoader",
    "SkippedAudio",
    "StreamingPretrainingDataset",
    "batching_stats",
    "decode_audio",
    "find_audio_files",
    "get_pretraining_dataloader",
    "load_audio_dataset",
    "make_synthetic_corpus",
    "plan_batches",
    "probe_num_samples",
    "read_manifest",
    "synthesize_utterance",
    "write_manifest",
]
