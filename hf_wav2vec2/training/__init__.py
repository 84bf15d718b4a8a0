"""Training utilities for hf-wav2vec2.

Pre-training: :mod:`.data` (the data pipeline, a package), :mod:`.pretrain` (the Accelerate training function),
:mod:`.pretrain_args` (its typed arguments and model config), :mod:`.checkpoints` (atomic, checked checkpoints),
:mod:`.pretrain_log` (log, curves), :mod:`.health` (failure-mode warnings), :mod:`.synthetic` (speech-like test
audio). Fine-tuning: :mod:`.finetune`, :mod:`.ctc_data`, :mod:`.vocab`, :mod:`.metrics`.

The data pipeline's public names and the synthetic audio generator are re-exported here; other submodules are
imported on their own (``from hf_wav2vec2.training.<module> import ...``). The re-exports are resolved on first
access (PEP 562): importing a submodule such as :mod:`hf_wav2vec2.training.pretrain` to parse ``--help`` must not
import torch through this package.
"""

from __future__ import annotations

import importlib

_DATA_EXPORTS = (
    "AudioCache",
    "AudioDataset",
    "AudioDecodeError",
    "AudioDroppedWarning",
    "AudioSelection",
    "BatchingOptions",
    "BatchingStats",
    "CropRequest",
    "LengthBucketBatchSampler",
    "NoUsableAudioError",
    "PretrainingCollator",
    "PretrainingDataLoader",
    "SkippedAudio",
    "StreamingPretrainingDataset",
    "batching_stats",
    "decode_audio",
    "find_audio_files",
    "get_pretraining_dataloader",
    "load_audio_dataset",
    "plan_batches",
    "probe_num_samples",
    "read_manifest",
    "write_manifest",
)
_EXPORTS = {**dict.fromkeys(_DATA_EXPORTS, "data"),
            "make_synthetic_corpus": "synthetic", "synthesize_utterance": "synthetic"}


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
