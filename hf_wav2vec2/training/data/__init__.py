"""Data pipeline for wav2vec 2.0 self-supervised pre-training on unlabeled audio.

::

    source ──► AudioDataset ──────────────► LengthBucketBatchSampler ──► PretrainingCollator
    (folder,    decode → 16 kHz mono          duration-budgeted,           crop-to-shortest or
     manifest,  float32, optional .npy        length-bucketed batches,     pad + attention_mask,
     datasets)  cache, lengths known          sharded over ranks,          optional normalisation
                up front, bad files skipped   resumable

    get_pretraining_dataloader(source, BatchingOptions(...), ...) wires all of this into a
    PretrainingDataLoader (a torch DataLoader that also tracks its position for exact resume).

Modules, one job each (every public name is importable from this package):

* :mod:`.sources`: folders, fairseq manifests, ``datasets`` datasets; naming, probing and decoding one item
  (soundfile + soxr to 16 kHz mono; ``datasets`` >= 4 would decode only through torchcodec);
* :mod:`.cache`: decoded audio as memory-mapped ``.npy`` files, written atomically, failures remembered;
* :mod:`.selection`: what is left out (undecodable, too short) and the start-up report of what is kept;
* :mod:`.dataset`: :class:`AudioDataset`, lengths known before decoding, late failures replaced;
* :mod:`.batching`: :class:`BatchingOptions` and batching as a pure function of example sizes (fairseq);
* :mod:`.sampler`: :class:`LengthBucketBatchSampler`, ranks, epochs and ``state_dict`` for exact resume;
* :mod:`.collate`: items to tensors; :mod:`.streaming`: ``datasets.IterableDataset`` sources;
* :mod:`.loader`: :func:`load_audio_dataset`, :func:`get_pretraining_dataloader`, :class:`PretrainingDataLoader`.

Robustness: a file that cannot be decoded (unknown format, truncated, non-finite samples, missing) is skipped
with a warning and counted (``dataset.skipped``), files shorter than ``min_sample_size`` too
(``dataset.too_short``); ``dataset.selection`` says at start-up how much audio each reason dropped (with an
:class:`AudioDroppedWarning` past a quarter of the files, since the 2 s default once silently dropped most of a
prompt corpus). A source with no usable audio at all is a :class:`NoUsableAudioError` with the counts and reasons.

Typical use (the loader is sharded already: do **not** pass it through ``accelerator.prepare``)::

    loader = get_pretraining_dataloader("/data/librispeech", BatchingOptions(max_tokens=1_400_000),
                                        cache_dir="/scratch/w2v_cache", num_workers=6,
                                        rank=accelerator.process_index,
                                        world_size=accelerator.num_processes)
    for epoch in range(start_epoch, num_epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            ...  # batch["input_values"]: (B, T) float32; "lengths": (B,); "attention_mask" if pad
            checkpoint["data"] = loader.state_dict()   # exact resume: loader.load_state_dict(...)
"""

from ...audio import resampled_length  # noqa: F401  (re-exported: part of this package's API)
from .batching import BatchingOptions, BatchingStats, CropRequest, batching_stats, plan_batches
from .cache import AudioCache, to_float32
from .collate import PretrainingCollator
from .constants import (
    AUDIO_EXTENSIONS,
    DEFAULT_MAX_SAMPLE_SIZE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MIN_SAMPLE_SIZE,
    TARGET_SAMPLE_RATE,
)
from .dataset import AudioDataset, random_crop
from .loader import PretrainingDataLoader, get_pretraining_dataloader, load_audio_dataset
from .sampler import LengthBucketBatchSampler
from .selection import AudioDroppedWarning, AudioSelection, NoUsableAudioError, SkippedAudio
from .sources import AudioDecodeError, decode_audio, find_audio_files, probe_num_samples, read_manifest, write_manifest
from .streaming import StreamingPretrainingDataset

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_MAX_SAMPLE_SIZE",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MIN_SAMPLE_SIZE",
    "TARGET_SAMPLE_RATE",
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
    "random_crop",
    "read_manifest",
    "to_float32",
    "write_manifest",
]
