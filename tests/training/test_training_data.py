"""Tests for the pre-training data pipeline (hf_wav2vec2.training.data / .synthetic)."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_wav2vec2.training.data import (
    TARGET_SAMPLE_RATE,
    AudioDataset,
    AudioDroppedWarning,
    AudioSelection,
    CropRequest,
    LengthBucketBatchSampler,
    PretrainingCollator,
    batching_stats,
    decode_audio,
    get_pretraining_dataloader,
    load_audio_dataset,
    plan_batches,
    probe_num_samples,
    read_manifest,
    write_manifest,
)
from hf_wav2vec2.training.synthetic import make_synthetic_corpus

SR = TARGET_SAMPLE_RATE
# Small budgets so a handful of 2-5 s files makes several batches.
SMALL = {"min_sample_size": 16000, "max_sample_size": 64000}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 speech-like files, 2-5 s, wav/flac/ogg/mp3 at 8/16/22.05 kHz, in speaker folders."""
    root = tmp_path_factory.mktemp("corpus")
    paths = make_synthetic_corpus(
        root, 12, 2.0, 5.0, sr=(8000, 16000, 22050), seed=1, formats=("wav", "flac", "ogg", "mp3")
    )
    return root, paths


def _copy_corpus(corpus, tmp_path):
    root, _ = corpus
    target = tmp_path / "audio"
    shutil.copytree(root, target)
    return target


def _expected_length(path):
    info = sf.info(str(path))
    return round(info.frames * SR / info.samplerate)


def _realistic_lengths(n, seed=0):
    """Utterance lengths in samples: lognormal around 7 s, clipped to 2..20 s."""
    seconds = np.clip(np.random.default_rng(seed).lognormal(np.log(7.0), 0.5, n), 2.0, 20.0)
    return (seconds * SR).astype(np.int64)


# ------------------------------------------------------------------------------------------
# Synthetic audio and decoding
# ------------------------------------------------------------------------------------------


def test_synthetic_corpus_is_deterministic_and_speechlike(tmp_path):
    a = make_synthetic_corpus(tmp_path / "a", 3, 2.0, 3.0, sr=16000, seed=7)
    b = make_synthetic_corpus(tmp_path / "b", 3, 2.0, 3.0, sr=16000, seed=7)
    for pa, pb in zip(a, b, strict=True):
        xa, sra = sf.read(pa)
        xb, _ = sf.read(pb)
        assert sra == 16000 and 2.0 <= len(xa) / sra <= 3.0
        np.testing.assert_array_equal(xa, xb)
        assert 0.05 < np.abs(xa).max() < 1.0
        # Speech-like: energy varies over time (syllables and pauses), unlike stationary noise.
        frame_energy = (xa[: len(xa) // 400 * 400].reshape(-1, 400) ** 2).mean(axis=1)
        assert frame_energy.max() > 10 * np.percentile(frame_energy, 10)


def test_decode_resamples_and_mixes_to_mono(tmp_path):
    x = (0.3 * np.sin(np.linspace(0, 400 * np.pi, 24000))).astype(np.float32)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([x, 0.5 * x], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(decode_audio(stereo), 0.75 * x, atol=1e-6)

    low = tmp_path / "low.flac"
    sf.write(low, x, 8000)
    wave = decode_audio(low)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == probe_num_samples(low) == 48000


# ------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------


def test_folder_source_mixed_formats_and_rates(corpus, tmp_path):
    root = _copy_corpus(corpus, tmp_path)
    stereo = root / "nested" / "deeper" / "stereo44k.wav"
    stereo.parent.mkdir(parents=True)
    tone = 0.2 * np.sin(np.linspace(0, 2000 * np.pi, 44100 * 3))
    sf.write(stereo, np.stack([tone, -tone * 0.5], axis=1), 44100)

    ds = AudioDataset.from_folder(root, **SMALL)
    assert len(ds) == 13 and ds.num_skipped == 0
    assert {os.path.splitext(s)[1] for s in ds.sources} == {".wav", ".flac", ".ogg", ".mp3"}
    for i, source in enumerate(ds.sources):
        assert ds.lengths[i] == _expected_length(source)
        item = ds[CropRequest(i, 20000, seed=3)]
        assert item["input_values"].dtype == np.float32 and item["input_values"].shape == (20000,)
    stereo_index = ds.sources.index(str(stereo))
    assert ds.lengths[stereo_index] == 3 * SR
    whole = ds[stereo_index]["input_values"]  # plain index: cropped to max_sample_size only
    assert whole.shape == (48000,)
    assert 0.03 < np.abs(whole).max() < 0.06  # mono = mean of +tone and -tone/2 = tone/4


def test_manifest_source(corpus, tmp_path):
    root, paths = corpus
    manifest = tmp_path / "train.tsv"
    write_manifest(manifest, root)
    files, lengths = read_manifest(manifest)
    assert sorted(files) == sorted(str(p) for p in paths)
    assert lengths == [_expected_length(f) for f in files]
    assert manifest.read_text().splitlines()[0] == str(root)

    ds = load_audio_dataset(manifest, **SMALL)  # ".tsv" -> manifest, lengths trusted
    assert len(ds) == len(paths) and list(ds.lengths) == lengths
    probed = load_audio_dataset(manifest, trust_manifest_lengths=False, **SMALL)
    assert list(probed.lengths) == lengths
    assert ds[0]["input_values"].shape == (min(lengths[0], SMALL["max_sample_size"]),)


def test_hf_dataset_source_saved_to_disk(corpus, tmp_path):
    from datasets import Audio, Dataset

    _, paths = corpus
    hf = Dataset.from_dict({"speech": [str(p) for p in paths], "text": ["x"] * len(paths)})
    hf = hf.cast_column("speech", Audio(decode=False))
    hf.save_to_disk(str(tmp_path / "saved"))  # embeds the audio bytes

    ds = load_audio_dataset(str(tmp_path / "saved"), audio_column="speech", **SMALL)
    folder = AudioDataset.from_files(paths, **SMALL)
    assert len(ds) == len(paths) and ds.num_skipped == 0
    np.testing.assert_array_equal(ds.lengths, folder.lengths)
    request = CropRequest(2, 16000, seed=5)
    np.testing.assert_array_equal(ds[request]["input_values"], folder[request]["input_values"])

    with pytest.raises(ValueError, match="not in dataset columns"):
        load_audio_dataset(str(tmp_path / "saved"), audio_column="audio")


def test_streaming_hf_dataset(corpus, tmp_path):
    from datasets import Audio, Dataset

    _, paths = corpus
    _write_bad_files(tmp_path)
    extra = [tmp_path / name for name in ("random.wav", "short.flac", "whole.wav")]
    hf = Dataset.from_dict({"audio": [str(p) for p in [*paths, *extra]]}).cast_column("audio", Audio(decode=False))
    streamed = hf.to_iterable_dataset(num_shards=4)
    sizes, skipped, too_short = [], 0, 0
    for rank in range(2):
        loader = get_pretraining_dataloader(
            streamed, streaming=True, max_tokens=200_000, rank=rank, world_size=2, bucket_buffer_size=4, **SMALL
        )
        for batch in loader:
            x = batch["input_values"]
            assert x.shape[0] * x.shape[1] <= 200_000 and "attention_mask" not in batch
            sizes.append(x.shape[0])
        skipped += loader.dataset.num_skipped
        too_short += loader.dataset.num_too_short
    assert sum(sizes) == len(paths) + 1  # the two ranks share the stream without overlap
    assert (skipped, too_short) == (1, 1)


# ------------------------------------------------------------------------------------------
# Bad files
# ------------------------------------------------------------------------------------------


def _write_bad_files(root):
    rng = np.random.default_rng(0)
    (root / "random.wav").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    good = (0.1 * rng.standard_normal(3 * SR)).astype(np.float32)
    sf.write(root / "whole.wav", good, SR, subtype="PCM_16")
    data = (root / "whole.wav").read_bytes()
    (root / "header_cut.wav").write_bytes(data[:30])
    (root / "data_cut.wav").write_bytes(data[: len(data) // 2])
    sf.write(root / "short.flac", good[: SR // 2], SR)


def test_corrupted_and_short_files_are_skipped_and_counted(corpus, tmp_path):
    root = _copy_corpus(corpus, tmp_path)
    _write_bad_files(root)
    loader = get_pretraining_dataloader(root, max_tokens=200_000, **SMALL)
    ds = loader.dataset
    assert ds.num_skipped == 3
    assert {os.path.basename(s.source) for s in ds.skipped} == {"random.wav", "header_cut.wav", "data_cut.wav"}
    assert any("truncated" in s.reason and "declares" in s.reason for s in ds.skipped)
    assert ds.num_too_short == 1 and ds.too_short[0].source.endswith("short.flac")
    assert len(ds) == 12 + 1  # the corpus plus whole.wav
    assert sum(batch["input_values"].shape[0] for batch in loader) == len(ds)


def _selection_records(caplog):
    return [
        r for r in caplog.records if r.name == "hf_wav2vec2.training.data" and "pre-training audio" in r.getMessage()
    ]


def test_selection_reports_kept_and_dropped_audio_per_reason(corpus, tmp_path, caplog):
    root = _copy_corpus(corpus, tmp_path)
    _write_bad_files(root)
    caplog.set_level(logging.INFO, logger="hf_wav2vec2.training.data")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AudioDroppedWarning)  # 4 of 17 files dropped: under a quarter, no alarm
        ds = AudioDataset.from_folder(root, **SMALL)
    selection = ds.selection
    assert (selection.num_files, selection.num_kept, selection.num_too_short, selection.num_unreadable) == (
        17,
        13,
        1,
        3,
    )
    assert selection.kept_seconds == pytest.approx(ds.lengths.sum() / SR)
    assert selection.too_short_seconds == pytest.approx(_expected_length(root / "short.flac") / SR)
    assert selection.dropped_fraction == pytest.approx(4 / 17) and selection.warning() is None
    [record] = _selection_records(caplog)
    assert record.levelno == logging.WARNING  # something was dropped
    message = record.getMessage()
    assert "kept 13 of 17 files" in message
    assert "1 shorter than min_sample_size=16000 samples (1.00 s): 0.5 s" in message
    assert "3 unreadable" in message


def test_selection_of_a_clean_corpus_is_logged_at_info(corpus, caplog):
    root, paths = corpus
    caplog.set_level(logging.INFO, logger="hf_wav2vec2.training.data")
    ds = AudioDataset.from_folder(root, **SMALL)
    [record] = _selection_records(caplog)
    assert record.levelno == logging.INFO and f"kept {len(paths)} of {len(paths)} files" in record.getMessage()
    assert ds.selection.num_dropped == 0


def test_dropping_most_audio_warns_and_names_the_flag(corpus):
    root, paths = corpus
    lengths = sorted(_expected_length(p) for p in paths)
    min_size = lengths[len(lengths) // 2]  # half the files are shorter
    short = [n for n in lengths if n < min_size]
    with pytest.warns(AudioDroppedWarning) as record:
        ds = AudioDataset.from_folder(root, min_sample_size=min_size, max_sample_size=64000)
    assert ds.selection.num_too_short == len(short) == len(paths) - len(ds)
    assert ds.selection.too_short_seconds == pytest.approx(sum(short) / SR)
    [warning] = [w for w in record if issubclass(w.category, AudioDroppedWarning)]
    message = str(warning.message)
    assert message.startswith(f"{len(short) / len(paths):.0%} of the {len(paths)} files of audio are left out")
    assert f"shorter than min_sample_size={min_size} samples" in message and "--min_sample_size" in message


def test_selection_warning_threshold_and_messages():
    def selection(kept, short, unreadable):
        return AudioSelection(kept + short + unreadable, kept, 3.0 * kept, short, 0.5 * short, unreadable, 32000)

    assert selection(3, 1, 0).warning() is None  # exactly a quarter
    message = selection(2, 1, 1).warning()
    assert message == (
        "50% of the 4 files of audio are left out of pre-training: 1 file (0.5 s) shorter than "
        "min_sample_size=32000 samples (2.00 s): pass a smaller one (hf-wav2vec2 pretrain "
        "--min_sample_size) to keep them; 1 file that cannot be read (the first reasons are logged "
        "above)"
    )
    assert (
        selection(40, 0, 0).summary() == "pre-training audio: kept 40 of 40 files (2.0 min of 2.0 min with a "
        "known length)"
    )
    assert selection(2, 1, 1).to_dict()["dropped_fraction"] == 0.5


def test_only_rank_zero_reports_the_selection(corpus, tmp_path, caplog):
    root = _copy_corpus(corpus, tmp_path)
    _write_bad_files(root)
    caplog.set_level(logging.INFO, logger="hf_wav2vec2.training.data")
    ds = AudioDataset.from_folder(root, rank=1, world_size=2, **SMALL)  # another rank reports the same records
    assert not [r for r in caplog.records if r.name == "hf_wav2vec2.training.data"]
    assert ds.selection.num_unreadable == ds.num_skipped == 3


def test_no_usable_audio_is_an_error(tmp_path):
    (tmp_path / "random.wav").write_bytes(b"\x01" * 4000)
    with pytest.raises(ValueError, match="no usable audio"):
        get_pretraining_dataloader(tmp_path, max_tokens=200_000, **SMALL)


def test_cached_failures_are_remembered(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    _write_bad_files(root)
    first = AudioDataset.from_folder(root, cache_dir=tmp_path / "cache", **SMALL)
    second = AudioDataset.from_folder(root, cache_dir=tmp_path / "cache", **SMALL)
    assert first.num_skipped == second.num_skipped == 3
    assert second.num_decodes == 0


def test_file_failing_after_indexing_is_replaced_and_counted(corpus, tmp_path):
    root = _copy_corpus(corpus, tmp_path)
    loader = get_pretraining_dataloader(root, max_tokens=200_000, seed=3, **SMALL)
    victim = loader.dataset.sources[0]
    with open(victim, "r+b") as handle:  # damage the file after its header was probed
        handle.seek(0)
        handle.write(b"JUNKJUNKJUNKJUNK")
    planned = [[r.length for r in b] for b in loader.batch_sampler.rank_batches()]
    shapes = [list(batch["lengths"]) for batch in loader]
    assert shapes == planned  # the batch keeps its planned shape (DDP ranks stay in step)
    assert loader.dataset.num_skipped == 1 and loader.dataset.skipped[0].source == victim


# ------------------------------------------------------------------------------------------
# Batching
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [False, True])
def test_batches_respect_max_tokens_and_crop_lengths(pad):
    lengths = _realistic_lengths(500, seed=1)
    max_tokens, max_size = 600_000, 250_000
    sampler = LengthBucketBatchSampler(lengths, max_tokens=max_tokens, max_sample_size=max_size, pad=pad, seed=0)
    seen = 0
    for batch in sampler:
        crops = [r.length for r in batch]
        assert len(batch) * max(crops) <= max_tokens
        for request in batch:
            capped = min(lengths[request.index], max_size)
            if pad:
                assert request.length == capped
            else:  # crop to the shortest example of the batch
                assert request.length == min(min(lengths[r.index], max_size) for r in batch) <= capped
        seen += len(batch)
    assert seen == len(lengths)


def test_collator_crop_pad_and_normalize():
    rng = np.random.default_rng(0)
    items = [{"input_values": (3 + 2 * rng.standard_normal(n)).astype(np.float32)} for n in (100, 80, 120)]
    cropped = PretrainingCollator(pad=False)(items)
    assert cropped["input_values"].shape == (3, 80) and "attention_mask" not in cropped
    assert cropped["lengths"].tolist() == [80, 80, 80]

    padded = PretrainingCollator(pad=True, normalize=True)(items)
    assert padded["input_values"].shape == (3, 120) and padded["input_values"].dtype == torch.float32
    assert padded["attention_mask"].dtype == torch.long
    assert padded["attention_mask"].sum(1).tolist() == [100, 80, 120] == padded["lengths"].tolist()
    for row, n in zip(padded["input_values"], [100, 80, 120], strict=True):
        assert abs(row[:n].mean()) < 1e-4 and abs(row[:n].std(unbiased=False) - 1) < 1e-3
        assert torch.all(row[n:] == 0)


def test_collator_scales_every_crop_to_unit_variance_near_silent_ones_too():
    from hf_wav2vec2 import HfWav2Vec2FeatureExtractor

    rng = np.random.default_rng(0)
    quiet, speech = (s * rng.standard_normal(4000).astype(np.float32) for s in (1e-5, 0.1))
    silent = np.zeros(4000, dtype=np.float32)
    batch = PretrainingCollator(pad=True, normalize=True)([{"input_values": w} for w in (quiet, speech, silent)])
    rows = batch["input_values"]
    # near-digital silence at unit scale like any crop, the epsilon taking 2 % (fairseq's 1e-5 on the variance
    # would leave a variance of 1e-5, the feature extractor's 1e-7 one of 1e-3)
    assert 0.97 < float(rows[0].var(unbiased=False)) < 1.0 and abs(float(rows[0].mean())) < 1e-4
    assert torch.all(rows[2] == 0)  # an all-zero crop stays zero, not NaN
    # a speech-level crop as the feature extractor normalizes it for inference, to 0.1 %
    extracted = HfWav2Vec2FeatureExtractor(do_normalize=True)(speech, sampling_rate=16_000)["input_values"][0]
    assert np.allclose(rows[1].numpy(), extracted, rtol=1e-3, atol=1e-4)


def test_waste_below_ten_percent_on_realistic_lengths():
    """Lognormal lengths (2-20 s, median 7 s), fairseq BASE budget: padding/cropping < 10%."""
    lengths = _realistic_lengths(4000, seed=2)
    for pad in (False, True):
        for world_size in (1, 2):
            sampler = LengthBucketBatchSampler(
                lengths, max_tokens=1_400_000, pad=pad, seed=0, rank=0, world_size=world_size
            )
            for epoch in (0, 1):
                stats = sampler.stats(epoch)
                assert stats.num_examples == len(lengths)
                assert stats.batching_waste_fraction < 0.10, str(stats)
                assert stats.waste_fraction < 0.10, str(stats)  # including the 15.6 s truncation
                assert stats.budget_utilization > 0.85, str(stats)


def test_unsorted_batches_would_waste_much_more():
    """Sanity check of the measure itself: random batches of the same sizes waste far more."""
    lengths = _realistic_lengths(4000, seed=2)
    bucketed = plan_batches(lengths, max_tokens=1_400_000, rng=np.random.default_rng(0))
    good = batching_stats(lengths, bucketed, max_tokens=1_400_000, pad=True)
    perm = np.random.default_rng(1).permutation(len(lengths))
    sizes = np.cumsum([len(b) for b in bucketed])[:-1]
    bad = batching_stats(lengths, np.split(perm, sizes), max_tokens=1_400_000, pad=True)
    assert bad.waste_fraction > 3 * good.waste_fraction


def test_max_tokens_smaller_than_an_example_raises():
    with pytest.raises(ValueError, match="max_tokens"):
        LengthBucketBatchSampler([300_000], max_tokens=200_000, max_sample_size=250_000)


# ------------------------------------------------------------------------------------------
# Distribution and resume
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("n", [37, 500])
def test_every_example_exactly_once_per_epoch(world_size, n):
    lengths = _realistic_lengths(n, seed=n)
    for epoch in range(3):
        counts, per_rank = Counter(), []
        for rank in range(world_size):
            sampler = LengthBucketBatchSampler(lengths, max_tokens=900_000, seed=11, rank=rank, world_size=world_size)
            sampler.set_epoch(epoch)
            batches = list(sampler)
            assert len(batches) == len(sampler) == sampler.num_batches_per_epoch
            per_rank.append(len(batches))
            counts.update(r.index for b in batches for r in b)
            assert sampler.num_repeated_batches == 0
        assert len(set(per_rank)) == 1, per_rank  # equal step counts: no DDP hang
        assert sorted(counts) == list(range(n)) and set(counts.values()) == {1}


def test_epochs_differ_and_plans_are_deterministic():
    lengths = _realistic_lengths(300, seed=4)
    a = LengthBucketBatchSampler(lengths, max_tokens=900_000, seed=5)
    b = LengthBucketBatchSampler(lengths, max_tokens=900_000, seed=5)
    assert a.rank_batches(0) == b.rank_batches(0)
    assert a.rank_batches(0) != a.rank_batches(1)
    assert a.rank_batches(0) != LengthBucketBatchSampler(lengths, max_tokens=900_000, seed=6).rank_batches(0)


def test_too_few_examples_for_ranks_repeats_with_warning():
    sampler = LengthBucketBatchSampler([40_000, 50_000], max_tokens=100_000, rank=2, world_size=3)
    with pytest.warns(UserWarning, match="repeating"):
        assert len(list(sampler)) == 1
    assert sampler.num_repeated_batches == 1


@pytest.mark.parametrize("world_size", [1, 2])
def test_sampler_resume_reproduces_remaining_batches(world_size):
    lengths = _realistic_lengths(400, seed=8)
    kwargs = {"max_tokens": 900_000, "seed": 3, "world_size": world_size}
    for rank in range(world_size):
        original = LengthBucketBatchSampler(lengths, rank=rank, **kwargs)
        original.set_epoch(2)
        iterator = iter(original)
        consumed = [next(iterator) for _ in range(5)]
        state = original.state_dict()
        assert state["epoch"] == 2 and state["batches_consumed"] == 5
        remaining = list(iterator)

        resumed = LengthBucketBatchSampler(lengths, rank=rank, **kwargs)
        resumed.load_state_dict(state)
        resumed.set_epoch(2)  # the usual loop calls set_epoch; it must keep the position
        assert len(resumed) == len(remaining)
        assert list(resumed) == remaining
        assert consumed + remaining == original.rank_batches(2)
        resumed.set_epoch(3)  # the following epoch starts from its beginning
        assert list(resumed) == original.rank_batches(3)

    with pytest.raises(ValueError, match="world_size"):
        LengthBucketBatchSampler(lengths, max_tokens=900_000, seed=3, world_size=4, rank=0).load_state_dict(state)


def test_loader_resume_with_workers_reproduces_remaining_batches(corpus):
    root, _ = corpus
    kwargs = {"max_tokens": 100_000, "seed": 9, "num_workers": 2, **SMALL}
    loader = get_pretraining_dataloader(root, **kwargs)
    loader.set_epoch(1)
    iterator = iter(loader)
    first = [next(iterator) for _ in range(2)]
    # The workers have prefetched further batches; the state must count delivered ones only.
    state = loader.state_dict()
    assert state["batches_consumed"] == 2
    rest = list(iterator)
    assert len(first) + len(rest) == loader.batch_sampler.num_batches_per_epoch

    resumed = get_pretraining_dataloader(root, **kwargs)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)
    again = list(resumed)
    assert len(again) == len(rest)
    for a, b in zip(again, rest, strict=True):
        torch.testing.assert_close(a["input_values"], b["input_values"], rtol=0, atol=0)
    assert resumed.state_dict()["batches_consumed"] == loader.batch_sampler.num_batches_per_epoch


# ------------------------------------------------------------------------------------------
# Cache and workers
# ------------------------------------------------------------------------------------------


def test_cache_is_reused_without_decoding(corpus, tmp_path):
    root, paths = corpus
    cache = tmp_path / "cache"
    first = AudioDataset.from_folder(root, cache_dir=cache, **SMALL)
    assert first.num_decodes == len(paths)
    cached = sorted(cache.rglob("*.npy"))
    assert len(cached) == len(paths)
    mtimes = [p.stat().st_mtime_ns for p in cached]

    second = AudioDataset.from_folder(root, cache_dir=cache, **SMALL)
    np.testing.assert_array_equal(second.lengths, first.lengths)
    for i in range(len(second)):
        item = second[CropRequest(i, 16000, seed=i)]
        np.testing.assert_array_equal(item["input_values"], first[CropRequest(i, 16000, seed=i)]["input_values"])
    assert second.num_decodes == 0
    assert [p.stat().st_mtime_ns for p in cached] == mtimes

    # int16 cache = 16-bit quantisation of the decoded audio.
    uncached = AudioDataset.from_folder(root, **SMALL)
    np.testing.assert_allclose(second[0]["input_values"], uncached[0]["input_values"], atol=2 / 32768)

    # An edited file gets a fresh entry rather than stale audio.
    os.utime(paths[0], ns=(os.stat(paths[0]).st_atime_ns, os.stat(paths[0]).st_mtime_ns + 10**9))
    third = AudioDataset.from_folder(root, cache_dir=cache, **SMALL)
    assert third.num_decodes == 1


@pytest.mark.parametrize("pad", [False, True])
def test_dataloader_with_two_workers_matches_single_process(corpus, tmp_path, pad):
    root, paths = corpus
    kwargs = {"max_tokens": 150_000, "seed": 4, "pad": pad, "normalize": True, "cache_dir": tmp_path / "c", **SMALL}
    single = list(get_pretraining_dataloader(root, num_workers=0, **kwargs))
    loader = get_pretraining_dataloader(root, num_workers=2, **kwargs)
    multi = list(loader)
    assert len(multi) == len(single) == len(loader)
    assert sum(b["input_values"].shape[0] for b in multi) == len(paths)
    for a, b in zip(single, multi, strict=True):
        assert a.keys() == b.keys()
        torch.testing.assert_close(a["input_values"], b["input_values"], rtol=0, atol=0)
        assert a["input_values"].shape[0] * a["input_values"].shape[1] <= 150_000
        if pad:
            assert torch.equal(a["attention_mask"].sum(1), a["lengths"])


# ------------------------------------------------------------------------------------------
# Real process group (gloo, forked processes: no re-import, so this stays fast)
# ------------------------------------------------------------------------------------------


def _distributed_rank(rank, world_size, init_file, root, cache, out_dir):
    import json

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        loader = get_pretraining_dataloader(root, max_tokens=100_000, cache_dir=cache, seed=2, **SMALL)
        sampler = loader.batch_sampler
        result = {
            "rank": sampler.rank,
            "world_size": sampler.world_size,
            "indices": [r.index for b in sampler.rank_batches() for r in b],
            "batches": sum(1 for _ in loader),
            "decodes": loader.dataset.num_decodes,
            "n": len(loader.dataset),
        }
        (out_dir / f"{rank}.json").write_text(json.dumps(result))
    finally:
        torch.distributed.destroy_process_group()


def test_process_group_shares_cache_and_covers_every_example_once(corpus, tmp_path):
    import json

    root, paths = corpus
    context = torch.multiprocessing.get_context("fork")
    procs = [
        context.Process(target=_distributed_rank, args=(rank, 2, tmp_path / "pg", root, tmp_path / "cache", tmp_path))
        for rank in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    results = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in range(2)]
    assert [r["rank"] for r in results] == [0, 1] and {r["world_size"] for r in results} == {2}
    assert sum(r["decodes"] for r in results) == len(paths)  # each rank cached its half
    assert results[0]["batches"] == results[1]["batches"]
    assert sorted(results[0]["indices"] + results[1]["indices"]) == list(range(len(paths)))


def test_training_package_re_exports_the_data_api_from_its_one_list():
    """hf_wav2vec2.training serves every name of training.data's __all__ (the one list), plus the synthetic corpus."""
    import hf_wav2vec2.training as training
    from hf_wav2vec2.training import data, synthetic

    for name in data.__all__:
        assert getattr(training, name) is getattr(data, name), name
    assert training.make_synthetic_corpus is synthetic.make_synthetic_corpus
    assert set(training.__all__) == {*data.__all__, "make_synthetic_corpus", "synthesize_utterance"}
    assert {"AudioDataset", "TARGET_SAMPLE_RATE"} <= set(dir(training))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        training.NoSuchName  # noqa: B018 (the attribute access is the test)
