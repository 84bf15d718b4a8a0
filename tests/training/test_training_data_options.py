"""BatchingOptions (one object for the batching choices) and the pipeline's errors for unusable audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from hf_wav2vec2.training.data import (
    BatchingOptions,
    LengthBucketBatchSampler,
    NoUsableAudioError,
    get_pretraining_dataloader,
)
from hf_wav2vec2.training.synthetic import make_synthetic_corpus

SR = 16000


def test_options_given_by_name_or_as_an_object_make_the_same_plan():
    lengths = np.random.default_rng(0).integers(20_000, 90_000, 200)
    options = BatchingOptions(max_tokens=300_000, max_sample_size=80_000, seed=4, pad=True)
    by_object = LengthBucketBatchSampler(lengths, options, rank=0, world_size=2)
    by_name = LengthBucketBatchSampler(
        lengths, max_tokens=300_000, max_sample_size=80_000, seed=4, pad=True, rank=0, world_size=2
    )
    assert by_object.rank_batches(1) == by_name.rank_batches(1)
    # a field given by name replaces that field of the object, and only that one
    other = LengthBucketBatchSampler(lengths, options, seed=5, rank=0, world_size=2)
    assert other.options == BatchingOptions(max_tokens=300_000, max_sample_size=80_000, seed=5, pad=True)
    assert other.rank_batches(1) != by_object.rank_batches(1)


def test_options_are_frozen_and_checked():
    options = BatchingOptions()
    with pytest.raises(AttributeError):
        options.max_tokens = 1  # shared by sampler, collator and loader: nobody may change it under the others
    with pytest.raises(ValueError, match="max_tokens must be a whole number >= 1, got 0"):
        BatchingOptions(max_tokens=0)
    with pytest.raises(ValueError, match="min_sample_size must be a whole number >= 0, got -1"):
        BatchingOptions(min_sample_size=-1)
    with pytest.raises(ValueError, match="max_sample_size must be a whole number >= 1, got 2.5"):
        BatchingOptions(max_sample_size=2.5)
    with pytest.raises(ValueError, match=r"length_noise must be in \[0, 1\)"):
        BatchingOptions(length_noise=1.0)
    with pytest.raises(TypeError, match="unknown batching option.*max_token\\b"):
        LengthBucketBatchSampler([40_000], max_token=100_000)
    # whole floats (e.g. 1.4e6 from a config file) become ints, as the sampler's int() made them before
    assert BatchingOptions(max_tokens=1.4e6).max_tokens == 1_400_000
    assert type(BatchingOptions(max_tokens=np.int64(5)).max_tokens) is int


def test_loader_splits_batching_fields_from_source_arguments(tmp_path):
    make_synthetic_corpus(tmp_path / "audio", 6, 1.0, 2.0, sr=16000, seed=3)
    loader = get_pretraining_dataloader(
        tmp_path / "audio",
        BatchingOptions(max_tokens=90_000, seed=2),
        min_sample_size=8000,
        max_sample_size=30_000,
        extensions=[".wav"],
    )
    assert loader.batch_sampler.options == BatchingOptions(
        max_tokens=90_000, seed=2, min_sample_size=8000, max_sample_size=30_000
    )
    assert loader.dataset.min_sample_size == 8000 and loader.dataset.max_sample_size == 30_000
    assert sum(batch["input_values"].shape[0] for batch in loader) == 6


def test_a_folder_without_usable_audio_says_why_with_counts(tmp_path):
    (tmp_path / "noise.wav").write_bytes(b"\x01" * 4000)
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "short.wav", np.zeros(SR // 4, dtype=np.float32), SR)
    with pytest.raises(NoUsableAudioError) as error:
        get_pretraining_dataloader(tmp_path, max_tokens=200_000, min_sample_size=16_000)
    message = str(error.value)
    assert message.startswith(
        f"no usable audio in {tmp_path}: none of its 3 files can be used: 2 files cannot be read (e.g. "
    )
    assert "empty.wav: " in message and "noise.wav: " in message
    assert (
        "1 file shorter than min_sample_size=16000 samples (1.00 s; the longest has 4000 samples: pass a "
        "smaller --min_sample_size to keep them)"
    ) in message
    assert isinstance(error.value, ValueError)  # command lines print ValueErrors in one line


def test_files_that_fail_only_when_loaded_end_in_one_clear_error(tmp_path):
    # A manifest's lengths are trusted without opening the files: missing files are found only when loaded. Today's
    # loader gave the model an empty batch ("input is 0 samples; the model needs at least 400").
    manifest = tmp_path / "train.tsv"
    manifest.write_text(f"{tmp_path}\nmissing1.wav\t40000\nmissing2.wav\t50000\n")
    loader = get_pretraining_dataloader(manifest, max_tokens=200_000, min_sample_size=16_000)
    with pytest.raises(
        NoUsableAudioError,
        match=r"no usable audio: no example of a batch, nor any replacement "
        r"tried, could be loaded; 2 files cannot be read \(e\.g\. .*missing1\.wav: .*\) \(the lengths "
        r"were taken from the manifest",
    ):
        next(iter(loader))
    assert loader.dataset.num_skipped == 2
