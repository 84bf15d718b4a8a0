"""The numbers every stage of the pre-training data pipeline shares (rates, default sizes, file types)."""

from __future__ import annotations

from ...audio import DEFAULT_SAMPLING_RATE

#: Everything is decoded, resampled and measured at this rate (lengths are counts of 16 kHz samples); the
#: package's one sampling rate, under the name the pipeline's modules use.
TARGET_SAMPLE_RATE = DEFAULT_SAMPLING_RATE
#: fairseq wav2vec 2.0 BASE ``max_sample_size``: 15.6 s at 16 kHz.
DEFAULT_MAX_SAMPLE_SIZE = 250_000
#: 2 s at 16 kHz; shorter files are dropped.
DEFAULT_MIN_SAMPLE_SIZE = 32_000
#: fairseq BASE ``max_tokens`` per GPU.
DEFAULT_MAX_TOKENS = 1_400_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")
