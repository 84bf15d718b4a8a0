"""Tests of HfWav2Vec2FeatureExtractor, against transformers' Wav2Vec2FeatureExtractor where behaviour is shared."""

import json
import sys

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor

from hf_wav2vec2 import feature_extraction_hf_wav2vec2 as fe_module
from hf_wav2vec2.configuration_hf_wav2vec2 import HfWav2Vec2Config
from hf_wav2vec2.feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor

SR = 16000
TOLERANCE = 1e-6


@pytest.fixture
def clips():
    rng = np.random.default_rng(0)
    # Different scales and offsets so normalization does real work.
    return [
        (rng.standard_normal(length) * scale + offset).astype(np.float32)
        for length, scale, offset in ((1600, 0.1, 0.02), (900, 0.5, -0.1), (2100, 0.02, 0.0))
    ]


def max_diff(a, b):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b, strict=True))


def test_unpadded_matches_transformers(clips):
    ours = HfWav2Vec2FeatureExtractor()(clips, sampling_rate=SR)
    theirs = Wav2Vec2FeatureExtractor()(clips, sampling_rate=SR)
    assert set(ours) == set(theirs) == {"input_values"}
    assert [len(x) for x in ours["input_values"]] == [len(c) for c in clips]
    assert max_diff(ours["input_values"], theirs["input_values"]) <= TOLERANCE


@pytest.mark.parametrize(
    "pad_kwargs",
    [
        {"padding": True},
        {"padding": "max_length", "max_length": 2500},
        {"padding": True, "pad_to_multiple_of": 512},
        {"padding": "max_length", "max_length": 1000, "truncation": True},
    ],
)
def test_padded_with_attention_mask_matches_transformers(clips, pad_kwargs):
    call = dict(sampling_rate=SR, return_tensors="np", **pad_kwargs)
    ours = HfWav2Vec2FeatureExtractor(return_attention_mask=True)(clips, **call)
    theirs = Wav2Vec2FeatureExtractor(return_attention_mask=True)(clips, **call)
    assert ours["input_values"].dtype == np.float32 and ours["attention_mask"].dtype == np.int32
    assert ours["input_values"].shape == theirs["input_values"].shape
    assert np.abs(ours["input_values"] - theirs["input_values"]).max() <= TOLERANCE
    np.testing.assert_array_equal(ours["attention_mask"], theirs["attention_mask"])


def test_padded_without_attention_mask_normalizes_real_samples_only(clips):
    # transformers normalizes over the zero padding when it returns no mask; we never do, so our values equal
    # transformers' masked ones and the padding stays exactly padding_value.
    call = dict(sampling_rate=SR, padding=True, return_tensors="pt")
    ours = HfWav2Vec2FeatureExtractor(return_attention_mask=False)(clips, **call)
    theirs = Wav2Vec2FeatureExtractor(return_attention_mask=True)(clips, **call)
    assert "attention_mask" not in ours
    assert float((ours["input_values"] - theirs["input_values"]).abs().max()) <= TOLERANCE
    for row, clip in zip(ours["input_values"], clips, strict=True):
        assert torch.all(row[len(clip) :] == 0.0)
        real = row[: len(clip)].double()
        assert abs(float(real.mean())) < 1e-5 and abs(float(real.std(unbiased=False)) - 1) < 1e-3


def test_batching_does_not_change_a_clip(clips):
    extractor = HfWav2Vec2FeatureExtractor()
    batch = extractor(clips, sampling_rate=SR, padding=True)["input_values"]
    for row, clip in zip(batch, clips, strict=True):
        alone = extractor(clip, sampling_rate=SR)["input_values"][0]
        np.testing.assert_array_equal(row[: len(clip)], alone)


def test_left_padding(clips):
    extractor = HfWav2Vec2FeatureExtractor(return_attention_mask=True, padding_side="left")
    out = extractor(clips, sampling_rate=SR, padding=True)
    longest = max(len(c) for c in clips)
    for row, mask, clip in zip(out["input_values"], out["attention_mask"], clips, strict=True):
        pad = longest - len(clip)
        assert np.all(row[:pad] == 0) and mask[:pad].sum() == 0 and mask[pad:].all()
        np.testing.assert_array_equal(row[pad:], extractor(clip, sampling_rate=SR)["input_values"][0])


def test_attention_mask_only_when_requested(clips):
    without = HfWav2Vec2FeatureExtractor(return_attention_mask=False)
    with_mask = HfWav2Vec2FeatureExtractor(return_attention_mask=True)
    assert "attention_mask" not in without(clips, sampling_rate=SR, padding=True)
    out = with_mask(clips, sampling_rate=SR, padding=True)
    assert [int(m.sum()) for m in out["attention_mask"]] == [len(c) for c in clips]
    assert "attention_mask" in without(clips, sampling_rate=SR, padding=True, return_attention_mask=True)
    assert "attention_mask" not in with_mask(clips, sampling_rate=SR, padding=True, return_attention_mask=False)


def test_for_config():
    assert HfWav2Vec2FeatureExtractor.for_config(HfWav2Vec2Config()).return_attention_mask is False
    large = HfWav2Vec2FeatureExtractor.for_config(HfWav2Vec2Config.large())
    assert large.return_attention_mask is True and large.do_normalize is True and large.sampling_rate == SR
    assert HfWav2Vec2FeatureExtractor.for_config(HfWav2Vec2Config(), return_attention_mask=True).return_attention_mask


@pytest.mark.parametrize("legacy_file", [False, True])
def test_loads_transformers_preprocessor_config(tmp_path, clips, legacy_file):
    if legacy_file:
        # As on the Hub for facebook/wav2vec2-base-960h, written by an older transformers.
        config = {
            "do_normalize": True,
            "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0.0,
            "processor_class": "Wav2Vec2Processor",
            "return_attention_mask": True,
            "sampling_rate": 16000,
        }
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
        theirs = Wav2Vec2FeatureExtractor.from_pretrained(tmp_path)
    else:
        theirs = Wav2Vec2FeatureExtractor(return_attention_mask=True, padding_value=0.0)
        theirs.save_pretrained(tmp_path)
        assert json.loads((tmp_path / "preprocessor_config.json").read_text())["feature_extractor_type"] == (
            "Wav2Vec2FeatureExtractor"
        )
    ours = HfWav2Vec2FeatureExtractor.from_pretrained(tmp_path)
    assert type(ours) is HfWav2Vec2FeatureExtractor
    assert ours.return_attention_mask is True and ours.do_normalize is True and ours.sampling_rate == SR
    assert ours.to_dict()["feature_extractor_type"] == "HfWav2Vec2FeatureExtractor"
    assert "processor_class" not in ours.to_dict()

    for mask in (True, False):
        a = ours(clips, sampling_rate=SR, padding=True, return_attention_mask=mask, return_tensors="np")
        b = theirs(clips, sampling_rate=SR, padding=True, return_attention_mask=True, return_tensors="np")
        assert np.abs(a["input_values"] - b["input_values"]).max() <= TOLERANCE
        if mask:
            np.testing.assert_array_equal(a["attention_mask"], b["attention_mask"])
        else:
            assert "attention_mask" not in a


def test_save_and_load_round_trip(tmp_path):
    ours = HfWav2Vec2FeatureExtractor(
        sampling_rate=8000, padding_value=-1.0, return_attention_mask=True, do_normalize=False
    )
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    reference = Wav2Vec2FeatureExtractor().to_dict()
    reference["feature_extractor_type"] = "HfWav2Vec2FeatureExtractor"
    # same JSON keys as transformers writes, plus the auto_map that importing hf_wav2vec2 registers
    assert set(saved) - {"auto_map"} == set(reference)
    loaded = HfWav2Vec2FeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == ours.to_dict()
    # and transformers reads ours
    theirs = Wav2Vec2FeatureExtractor.from_pretrained(tmp_path)
    assert (theirs.sampling_rate, theirs.padding_value, theirs.return_attention_mask, theirs.do_normalize) == (
        8000,
        -1.0,
        True,
        False,
    )


def test_wrong_sampling_rate_is_an_error(clips):
    with pytest.raises(ValueError, match=r"8000 Hz.*16000 Hz.*resample=True"):
        HfWav2Vec2FeatureExtractor()(clips[0], sampling_rate=8000)
    for bad in (-16000, 16000.5, "16000"):
        with pytest.raises(ValueError, match="positive whole number"):
            HfWav2Vec2FeatureExtractor()(clips[0], sampling_rate=bad, resample=True)
    assert len(HfWav2Vec2FeatureExtractor()(clips[0], sampling_rate=16000.0)["input_values"][0]) == len(clips[0])


def test_missing_sampling_rate_warns(clips, monkeypatch):
    warnings = []

    class Recorder:
        def warning_once(self, message):
            warnings.append(message)

        def warning(self, message):
            warnings.append(message)

    monkeypatch.setattr(fe_module, "logger", Recorder())
    out = HfWav2Vec2FeatureExtractor()(clips[0])
    assert len(out["input_values"][0]) == len(clips[0])
    assert len(warnings) == 1 and "sampling_rate" in warnings[0]
    HfWav2Vec2FeatureExtractor()(clips[0], sampling_rate=SR)
    assert len(warnings) == 1


@pytest.mark.parametrize("source_rate", [48000, 44100, 8000])
def test_resample(source_rate):
    seconds = 0.5
    t = np.arange(int(source_rate * seconds)) / source_rate
    tone = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    out = HfWav2Vec2FeatureExtractor(do_normalize=False)(tone, sampling_rate=source_rate, resample=True)
    values = out["input_values"][0]
    assert abs(len(values) - int(SR * seconds)) <= 1
    spectrum = np.abs(np.fft.rfft(values))
    peak_hz = np.argmax(spectrum) * SR / len(values)
    assert abs(peak_hz - 440.0) < 3
    assert abs(np.abs(values[200:-200]).max() - 1.0) < 0.02  # amplitude kept


def test_resample_without_soxr_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "soxr", None)  # makes `import soxr` raise ImportError
    with pytest.raises(ImportError, match="pip install soxr"):
        HfWav2Vec2FeatureExtractor()(np.zeros(4800, np.float32), sampling_rate=48000, resample=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(bad):
    clip = np.zeros(1000, np.float32)
    clip[10] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        HfWav2Vec2FeatureExtractor()(clip, sampling_rate=SR)
    with pytest.raises(ValueError, match="clip 1"):
        HfWav2Vec2FeatureExtractor()([np.ones(10, np.float32), clip], sampling_rate=SR)


@pytest.mark.parametrize("empty", [np.zeros(0, np.float32), [np.zeros(0, np.float32)], [], torch.zeros(0)])
def test_empty_audio(empty):
    with pytest.raises(ValueError, match="empty"):
        HfWav2Vec2FeatureExtractor()(empty, sampling_rate=SR)


@pytest.mark.parametrize("shape", [(16000, 2), (8000, 6), (2, 3, 1000)])
def test_multichannel_is_an_error(shape):
    # (samples, channels) and 3-D arrays; a (clips, samples) 2-D array is a batch (next tests).
    with pytest.raises(ValueError, match=r"raw_speech.*(M|m)ix to mono first"):
        HfWav2Vec2FeatureExtractor()(np.zeros(shape, np.float32), sampling_rate=SR)
    with pytest.raises(ValueError, match=r"raw_speech.*(M|m)ix to mono first"):
        HfWav2Vec2FeatureExtractor()(torch.zeros(shape), sampling_rate=SR)


@pytest.mark.parametrize("shape", [(2, 16000), (16000, 2), (6, 8000), (2, 3, 1000)])
def test_multichannel_clip_in_a_list_is_an_error(shape):
    with pytest.raises(ValueError, match="clip 0.*mix to mono first"):
        HfWav2Vec2FeatureExtractor()([np.zeros(shape, np.float32)], sampling_rate=SR)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("call", [{}, {"return_tensors": "np"}, {"padding": True, "return_tensors": "np"}])
def test_2d_array_is_a_batch_like_transformers(dtype, call):
    # `processor(np.stack(batch))`: transformers reads the rows of a 2-D array as mono clips.
    rng = np.random.default_rng(4)
    batch = (rng.standard_normal((3, 1200)) * np.array([[0.1], [0.5], [0.02]])).astype(dtype)
    call = dict(sampling_rate=SR, **call)
    ours = HfWav2Vec2FeatureExtractor(return_attention_mask=True)(batch, **call)
    theirs = Wav2Vec2FeatureExtractor(return_attention_mask=True)(batch, **call)
    assert set(ours) == set(theirs)
    assert len(ours["input_values"]) == 3 and max_diff(ours["input_values"], theirs["input_values"]) <= TOLERANCE
    np.testing.assert_array_equal(np.asarray(ours["attention_mask"]), np.asarray(theirs["attention_mask"]))
    if "return_tensors" in call:
        assert ours["input_values"].shape == theirs["input_values"].shape == (3, 1200)
    # the same clips as a list, or as a torch tensor, give the same features
    as_list = HfWav2Vec2FeatureExtractor(return_attention_mask=True)(list(batch), **call)["input_values"]
    assert max_diff(ours["input_values"], as_list) == 0
    as_tensor = HfWav2Vec2FeatureExtractor()(torch.from_numpy(batch), sampling_rate=SR, return_tensors="pt")
    assert as_tensor["input_values"].shape == (3, 1200)
    assert max_diff(as_tensor["input_values"].numpy(), as_list) == 0


def test_unpadded_clips_of_different_lengths_with_numpy_tensors_like_transformers(clips):
    for mask in (False, True):
        call = dict(sampling_rate=SR, return_tensors="np", return_attention_mask=mask)
        ours = HfWav2Vec2FeatureExtractor()(clips, **call)
        theirs = Wav2Vec2FeatureExtractor()(clips, **call)
        assert set(ours) == set(theirs)
        for key in ours:
            assert type(ours[key]) is type(theirs[key]) is np.ndarray
            assert ours[key].shape == theirs[key].shape == (len(clips),)
            assert [len(row) for row in ours[key]] == [len(c) for c in clips]
        assert max_diff(ours["input_values"], theirs["input_values"]) <= TOLERANCE
        assert all(row.dtype == np.float32 for row in ours["input_values"])


def test_single_channel_2d_is_one_clip(clips):
    extractor = HfWav2Vec2FeatureExtractor()
    expected = extractor(clips[0], sampling_rate=SR)["input_values"]
    for shaped in (clips[0][None, :], clips[0][:, None], torch.from_numpy(clips[0])[None, :]):
        got = extractor(shaped, sampling_rate=SR)["input_values"]
        assert len(got) == 1
        np.testing.assert_array_equal(got[0], expected[0])


def test_integer_pcm_is_scaled():
    rng = np.random.default_rng(1)
    pcm16 = rng.integers(-32768, 32767, 3000, dtype=np.int16)
    raw = HfWav2Vec2FeatureExtractor(do_normalize=False)
    np.testing.assert_allclose(raw(pcm16, sampling_rate=SR)["input_values"][0], pcm16 / 32768.0, atol=1e-7)
    assert raw(np.array([-32768, 0], np.int16), sampling_rate=SR)["input_values"][0].tolist() == [-1.0, 0.0]
    pcm32 = pcm16.astype(np.int32) << 16
    np.testing.assert_allclose(raw(pcm32, sampling_rate=SR)["input_values"][0], pcm16 / 32768.0, atol=1e-7)
    pcm8 = np.array([0, 128, 255], np.uint8)
    np.testing.assert_allclose(raw(pcm8, sampling_rate=SR)["input_values"][0], [-1.0, 0.0, 127 / 128])
    # normalized int16 equals normalized float audio
    norm = HfWav2Vec2FeatureExtractor()
    np.testing.assert_allclose(
        norm(pcm16, sampling_rate=SR)["input_values"][0],
        norm((pcm16 / 32768.0).astype(np.float32), sampling_rate=SR)["input_values"][0],
        atol=1e-5,
    )
    # a python list of numbers is sample values, never PCM codes
    assert raw([0.5, -0.25], sampling_rate=SR)["input_values"][0].tolist() == [0.5, -0.25]


def test_torch_and_list_inputs(clips):
    extractor = HfWav2Vec2FeatureExtractor()
    expected = extractor(clips, sampling_rate=SR, padding=True, return_tensors="np")["input_values"]
    tensors = [torch.from_numpy(c).double() for c in clips]
    got = extractor(tensors, sampling_rate=SR, padding=True, return_tensors="pt")["input_values"]
    assert got.dtype == torch.float32
    assert float(np.abs(got.numpy() - expected).max()) <= TOLERANCE
    got = extractor([c.tolist() for c in clips], sampling_rate=SR, padding=True, return_tensors="np")["input_values"]
    assert float(np.abs(got - expected).max()) <= TOLERANCE


def test_silent_clip_gives_zeros_not_nan():
    out = HfWav2Vec2FeatureExtractor()(np.zeros(1000, np.float32), sampling_rate=SR)["input_values"][0]
    assert np.all(out == 0)
    constant = HfWav2Vec2FeatureExtractor()(np.full(1000, 0.3, np.float32), sampling_rate=SR)["input_values"][0]
    assert np.all(np.isfinite(constant)) and np.abs(constant).max() < 1e-5


def test_unequal_lengths_to_torch_tensor_need_padding(clips):
    with pytest.raises(ValueError, match="different lengths.*'pt'.*padding=True"):
        HfWav2Vec2FeatureExtractor()(clips, sampling_rate=SR, return_tensors="pt")
    with pytest.raises(ValueError):  # transformers cannot either
        Wav2Vec2FeatureExtractor()(clips, sampling_rate=SR, return_tensors="pt")


def test_truncation_happens_before_normalization(clips):
    out = HfWav2Vec2FeatureExtractor()(clips, sampling_rate=SR, truncation=True, max_length=800)["input_values"]
    for values in out:
        assert len(values) == 800
        assert abs(values.mean()) < 1e-5 and abs(values.std() - 1) < 1e-3
    with pytest.raises(ValueError, match="max_length"):
        HfWav2Vec2FeatureExtractor()(clips, sampling_rate=SR, truncation=True)


def test_pad_collates_normalized_examples(clips):
    # The data-collator path: examples featurized one by one, then padded together.
    extractor = HfWav2Vec2FeatureExtractor(return_attention_mask=True)
    examples = [{"input_values": extractor(c, sampling_rate=SR)["input_values"][0]} for c in clips]
    batch = extractor.pad(examples, padding=True, return_tensors="pt")
    direct = extractor(clips, sampling_rate=SR, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_values"], direct["input_values"])
    assert torch.equal(batch["attention_mask"].long(), direct["attention_mask"].long())


def test_zero_mean_unit_var_norm_matches_transformers(clips):
    padded = HfWav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True)(
        clips, sampling_rate=SR, padding=True
    )
    args = (padded["input_values"], padded["attention_mask"])
    ours = HfWav2Vec2FeatureExtractor.zero_mean_unit_var_norm(*args, padding_value=0.0)
    theirs = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm(*args, padding_value=0.0)
    assert max_diff(ours, theirs) <= TOLERANCE
