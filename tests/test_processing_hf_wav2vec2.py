"""Tests of HfWav2Vec2Processor: loading transformers' processor directories, labels, padding, Auto classes."""

import json
import random

import numpy as np
import pytest
import torch
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
    pipeline,
)

from hf_wav2vec2.feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from hf_wav2vec2.processing_hf_wav2vec2 import HfWav2Vec2Processor
from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

SR = 16000
LETTERS = "ETAONIHSRDLUMWCFGYPBVK'XJQZ"
EN_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: 5 + i for i, c in enumerate(LETTERS)}}


@pytest.fixture
def clips():
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(n) * 0.1).astype(np.float32) for n in (1200, 800, 1500)]


@pytest.fixture
def transformers_dir(tmp_path):
    """A processor directory written by transformers' Wav2Vec2Processor (layer-norm style: with attention mask)."""
    (tmp_path / "vocab.json").write_text(json.dumps(EN_VOCAB))
    processor = Wav2Vec2Processor(
        Wav2Vec2FeatureExtractor(return_attention_mask=True), Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    )
    processor.save_pretrained(tmp_path / "transformers")
    return tmp_path / "transformers"


@pytest.fixture
def processor(transformers_dir):
    return HfWav2Vec2Processor.from_pretrained(transformers_dir)


def write_legacy_dir(directory):
    """The processor files of facebook/wav2vec2-base-960h (written by transformers 4)."""
    directory.mkdir()
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    files = {
        "vocab.json": EN_VOCAB,
        "special_tokens_map.json": special,
        "tokenizer_config.json": {
            **special,
            "do_lower_case": False,
            "word_delimiter_token": "|",
            "return_attention_mask": False,
            "do_normalize": True,
            "tokenizer_class": "Wav2Vec2CTCTokenizer",
        },
        "preprocessor_config.json": {
            "do_normalize": True,
            "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0.0,
            "processor_class": "Wav2Vec2Processor",
            "return_attention_mask": False,
            "sampling_rate": 16000,
        },
    }
    for name, content in files.items():
        (directory / name).write_text(json.dumps(content))
    return directory


def test_loads_transformers_processor_directory(processor, transformers_dir, clips):
    assert type(processor.feature_extractor) is HfWav2Vec2FeatureExtractor
    assert type(processor.tokenizer) is HfWav2Vec2CTCTokenizer
    assert processor.feature_extractor.return_attention_mask is True

    theirs = Wav2Vec2Processor.from_pretrained(transformers_dir)
    ours_audio = processor(audio=clips, sampling_rate=SR, padding=True, return_tensors="np")
    their_audio = theirs(audio=clips, sampling_rate=SR, padding=True, return_tensors="np")
    assert np.abs(ours_audio["input_values"] - their_audio["input_values"]).max() <= 1e-6
    np.testing.assert_array_equal(ours_audio["attention_mask"], their_audio["attention_mask"])
    assert processor(text="HELLO WORLD")["input_ids"] == theirs(text="HELLO WORLD")["input_ids"]
    frames = [0, 11, 11, 5, 15, 0, 15, 8, 4, 0, 18, 8, 13, 15, 14, 0]
    assert processor.decode(frames) == theirs.decode(frames) == "HELLO WORLD"
    assert processor.batch_decode([frames, frames[:8]]) == ["HELLO WORLD", "HELLO"]


def test_loads_legacy_processor_files(tmp_path, clips):
    directory = write_legacy_dir(tmp_path / "base-960h")
    processor = HfWav2Vec2Processor.from_pretrained(directory)
    assert type(processor.feature_extractor) is HfWav2Vec2FeatureExtractor
    assert type(processor.tokenizer) is HfWav2Vec2CTCTokenizer
    assert processor.feature_extractor.return_attention_mask is False
    out = processor(audio=clips, sampling_rate=SR, padding=True, return_tensors="pt")
    assert set(out) == {"input_values"} and out["input_values"].shape == (3, 1500)
    assert processor.tokenizer.get_vocab() == EN_VOCAB


def test_from_pretrained_overrides(transformers_dir, clips):
    processor = HfWav2Vec2Processor.from_pretrained(transformers_dir, return_attention_mask=False, do_lower_case=True)
    assert "attention_mask" not in processor(audio=clips, sampling_rate=SR, padding=True)
    assert processor.tokenizer.do_lower_case is True
    assert processor(text="hi")["input_ids"] == [11, 10]
    assert processor.decode([11, 10]) == "hi"


def test_audio_and_text_give_labels_padded_with_minus_100(processor, clips):
    texts = ["HELLO", "HI THERE", "A"]
    out = processor(audio=clips, text=texts, sampling_rate=SR, padding=True, return_tensors="pt")
    assert set(out) == {"input_values", "attention_mask", "labels"}
    assert out["input_values"].shape == (3, 1500)  # padding in samples, not characters
    labels = out["labels"]
    assert labels.shape == (3, 8) and labels.dtype == torch.long
    for row, text in zip(labels, texts, strict=True):
        ids = processor.tokenizer(text)["input_ids"]
        assert row[: len(ids)].tolist() == ids and torch.all(row[len(ids) :] == -100)
    assert processor.batch_decode(labels, group_tokens=False) == texts

    single = processor(audio=clips[0], text="HELLO", sampling_rate=SR)
    assert single["labels"] == processor.tokenizer("HELLO")["input_ids"]
    single = processor(audio=clips[0], text="HELLO", sampling_rate=SR, return_tensors="pt")
    assert single["labels"].shape == (1, 5) and single["input_values"].shape == (1, 1200)


def test_text_kwargs_do_not_leak_into_audio(processor, clips):
    out = processor(
        audio=clips,
        text=["AB", "A", "ABC"],
        sampling_rate=SR,
        padding="max_length",
        max_length=1600,
        text_kwargs={"max_length": 6},
        return_tensors="np",
    )
    assert out["input_values"].shape == (3, 1600) and out["labels"].shape == (3, 6)
    assert out["labels"][1].tolist() == [7] + [-100] * 5


def test_call_errors(processor, clips):
    with pytest.raises(ValueError, match="audio"):
        processor()
    with pytest.raises(ValueError, match="2 transcripts"):
        processor(audio=clips, text=["A", "B"], sampling_rate=SR, padding=True)
    with pytest.raises(ValueError, match="Got 1 clip but 2 transcripts: pass one transcript per clip"):
        processor(audio=clips[0], text=["A", "B"], sampling_rate=SR)
    with pytest.raises(ValueError, match="Got 3 clips but 1 transcript:"):
        processor(audio=clips, text="A", sampling_rate=SR, padding=True)
    with pytest.raises(ValueError, match="resample=True"):
        processor(audio=clips, sampling_rate=8000)


def test_resample_through_processor(processor):
    out = processor(audio=np.zeros(48000, np.float32), sampling_rate=48000, resample=True)
    assert len(out["input_values"][0]) == 16000


def test_pad_as_data_collator(processor, clips):
    texts = ["HELLO", "HI THERE", "A"]
    examples = [processor(audio=c, text=t, sampling_rate=SR) for c, t in zip(clips, texts, strict=True)]
    features = [{"input_values": e["input_values"][0]} for e in examples]
    labels = [{"input_ids": e["labels"]} for e in examples]

    batch = processor.pad(features, labels=labels, return_tensors="pt")
    direct = processor(audio=clips, text=texts, sampling_rate=SR, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_values"], direct["input_values"])
    assert torch.equal(batch["labels"], direct["labels"])
    assert torch.equal(batch["attention_mask"].long(), direct["attention_mask"].long())

    only_labels = processor.pad(labels=[e["labels"] for e in examples], return_tensors="pt")
    assert torch.equal(only_labels["input_ids"], direct["labels"])
    as_tensors = processor.pad(labels=[{"input_ids": torch.tensor(e["labels"])} for e in examples])
    assert torch.equal(torch.tensor(as_tensors["input_ids"]), direct["labels"])
    assert only_labels["attention_mask"].sum(-1).tolist() == [5, 8, 1]
    only_features = processor.pad(features, return_tensors="np")
    assert only_features["input_values"].shape == (3, 1500)


def test_save_and_load_round_trip(processor, tmp_path, clips):
    processor.save_pretrained(tmp_path / "ours")
    # as transformers' processor tests compare them (saving gives a registered processor its auto_map)
    assert HfWav2Vec2Processor.from_pretrained(tmp_path / "ours").to_dict() == processor.to_dict()
    saved = json.loads((tmp_path / "ours" / "processor_config.json").read_text())
    assert saved["processor_class"] == "HfWav2Vec2Processor"
    assert saved["feature_extractor"]["feature_extractor_type"] == "HfWav2Vec2FeatureExtractor"
    loaded = HfWav2Vec2Processor.from_pretrained(tmp_path / "ours")
    assert loaded.feature_extractor.to_dict() == processor.feature_extractor.to_dict()
    assert loaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    a = loaded(audio=clips, text=["A", "B", "C"], sampling_rate=SR, padding=True, return_tensors="np")
    b = processor(audio=clips, text=["A", "B", "C"], sampling_rate=SR, padding=True, return_tensors="np")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert loaded.model_input_names == ["input_values", "attention_mask", "labels"]


def test_remote_code_round_trip(processor, tmp_path, monkeypatch):
    # register_for_auto_class makes save_pretrained copy our modules and write auto_maps, so the directory loads
    # with trust_remote_code=True and no installed package (the relative imports must resolve among the copies).
    for cls, auto in (
        (HfWav2Vec2Processor, "AutoProcessor"),
        (HfWav2Vec2FeatureExtractor, "AutoFeatureExtractor"),
        (HfWav2Vec2CTCTokenizer, "AutoTokenizer"),
    ):
        monkeypatch.setattr(cls, "_auto_class", None)
        cls.register_for_auto_class(auto)
    processor.save_pretrained(tmp_path / "remote")
    for name in ("processing", "feature_extraction", "tokenization"):
        assert (tmp_path / "remote" / f"{name}_hf_wav2vec2.py").exists()
    config = json.loads((tmp_path / "remote" / "processor_config.json").read_text())
    assert config["auto_map"]["AutoProcessor"] == "processing_hf_wav2vec2.HfWav2Vec2Processor"
    tokenizer_config = json.loads((tmp_path / "remote" / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"]["AutoTokenizer"][0] == "tokenization_hf_wav2vec2.HfWav2Vec2CTCTokenizer"

    # Loading these copies in a process that cannot import hf_wav2vec2 is tested in tests/test_pipeline.py.


def test_transformers_asr_pipeline_with_our_processor(processor):
    # A tiny random transformers CTC model, decoded by the pipeline through our tokenizer and feature extractor.
    config = Wav2Vec2Config(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    model = Wav2Vec2ForCTC(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(50)  # spread the argmax over many letters
    asr = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        device="cpu",
    )
    audio = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    inputs = processor(audio=audio, sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        frames = model(**inputs).logits.argmax(-1)[0]
    expected = processor.decode(frames, output_word_offsets=True, output_char_offsets=True)
    assert len(expected.text.split()) > 3

    words = asr(audio.copy(), return_timestamps="word")
    assert words["text"] == expected.text
    seconds_per_frame = config.inputs_to_logits_ratio / SR
    assert [c["text"] for c in words["chunks"]] == [w["word"] for w in expected.word_offsets]
    first = expected.word_offsets[1]
    assert words["chunks"][1]["timestamp"] == pytest.approx(
        (first["start_offset"] * seconds_per_frame, first["end_offset"] * seconds_per_frame)
    )
    chars = asr(audio.copy(), return_timestamps="char")
    assert "".join(c["text"] for c in chars["chunks"]) == expected.text
    assert not any(special in words["text"] for special in ("<s>", "</s>", "<unk>", "<pad>"))


def test_random_frames_decode_like_transformers_processor(processor, transformers_dir):
    theirs = Wav2Vec2Processor.from_pretrained(transformers_dir)
    rng = random.Random(0)
    for _ in range(100):
        frames = [rng.choice([0, 0, 0, 4] + list(range(5, 32))) for _ in range(rng.randint(0, 40))]
        assert processor.decode(frames) == " ".join(theirs.decode(frames).split())


# ----- transformers' ProcessorMixin behaviour -----


@pytest.fixture
def theirs(transformers_dir):
    return Wav2Vec2Processor.from_pretrained(transformers_dir)


def test_one_transcript_for_one_clip_in_any_nesting_like_transformers(processor, theirs, clips):
    for audio, text in (([clips[0]], "ABC"), (clips[0], ["ABC"]), ([clips[0]], ["ABC"]), (clips[0], "ABC")):
        for return_tensors in (None, "pt"):
            call = dict(audio=audio, text=text, sampling_rate=SR, return_tensors=return_tensors)
            ours, expected = processor(**call), theirs(**call)
            assert set(ours) == set(expected)
            labels = ours["labels"].tolist() if return_tensors else ours["labels"]
            expected_labels = expected["labels"].tolist() if return_tensors else expected["labels"]
            assert labels == expected_labels, (audio is clips[0], text, return_tensors)
    single = processor(audio=[clips[0]], text="ABC", sampling_rate=SR, return_tensors="pt")
    assert single["labels"].shape == (1, 3) and single["input_values"].shape == (1, len(clips[0]))


def test_2d_audio_batch_like_transformers(processor, theirs):
    batch = np.random.default_rng(1).standard_normal((2, 900)).astype(np.float32)
    ours = processor(batch, text=["AB", "C"], sampling_rate=SR, padding=True, return_tensors="pt")
    expected = theirs(batch, text=["AB", "C"], sampling_rate=SR, padding=True, return_tensors="pt")
    assert ours["input_values"].shape == expected["input_values"].shape == (2, 900)
    assert float((ours["input_values"] - expected["input_values"]).abs().max()) <= 1e-6
    assert ours["labels"].tolist() == [[7, 24], [19, -100]]  # -100, not the pad id 0 that transformers leaves
    assert expected["labels"].tolist() == [[7, 24], [19, 0]]


def test_common_kwargs_reach_both_like_transformers(processor, theirs, clips):
    common = {"common_kwargs": {"return_tensors": "pt"}}
    audio = processor(audio=clips[0], sampling_rate=SR, **common)
    assert isinstance(audio["input_values"], torch.Tensor)
    expected = theirs(audio=clips[0], sampling_rate=SR, **common)
    assert float((audio["input_values"] - expected["input_values"]).abs().max()) <= 1e-6
    text = processor(text="HELLO", **common)
    assert torch.equal(text["input_ids"], theirs(text="HELLO", **common)["input_ids"])
    both = processor(audio=[clips[0]], text="ABC", sampling_rate=SR, **common)
    assert all(isinstance(value, torch.Tensor) for value in both.values())
    assert torch.equal(both["labels"], theirs(audio=[clips[0]], text="ABC", sampling_rate=SR, **common)["labels"])

    # modality dicts, with common_kwargs under them
    call = dict(
        audio=clips[:2],
        text=["HELLO", "A"],
        sampling_rate=SR,
        audio_kwargs={"padding": True},
        text_kwargs={"padding": True},
        common_kwargs={"return_tensors": "np"},
    )
    ours, expected = processor(**call), theirs(**call)
    assert ours["input_values"].shape == expected["input_values"].shape == (2, 1200)
    assert ours["labels"].shape == expected["labels"].shape == (2, 5)
    override = processor(audio=clips[0], sampling_rate=SR, audio_kwargs={"return_tensors": "pt"}, **common)
    assert isinstance(override["input_values"], torch.Tensor)
    lists = processor(text="HI", text_kwargs={"return_tensors": None}, **common)
    assert lists["input_ids"] == [11, 10]


def test_keyword_given_twice_is_an_error_like_transformers(processor, theirs, clips):
    call = dict(audio=clips, sampling_rate=SR, padding=True, audio_kwargs={"padding": "longest"})
    with pytest.raises(ValueError, match=r"\['padding'\] given both as keyword arguments and in audio_kwargs"):
        processor(**call)
    with pytest.raises(ValueError, match="two times"):
        theirs(**call)
    with pytest.raises(ValueError, match="text_kwargs"):
        processor(text="HI", return_tensors="pt", text_kwargs={"return_tensors": "np"})
    with pytest.raises(ValueError, match="sampling_rate"):
        processor(audio=clips, sampling_rate=SR, audio_kwargs={"sampling_rate": SR})
    # found before the audio is featurized (padding="max_length" without max_length would fail there first)
    with pytest.raises(ValueError, match="given both as keyword arguments and in text_kwargs"):
        processor(audio=clips, text=["A", "B", "C"], padding="max_length", text_kwargs={"padding": "max_length"})


def test_from_pretrained_passes_keyword_arguments_on_like_transformers(transformers_dir):
    kwargs = dict(cls_token="(CLS)", do_lower_case=True, padding_side="left", sampling_rate=8000)
    ours = HfWav2Vec2Processor.from_pretrained(transformers_dir, **kwargs)
    expected = Wav2Vec2Processor.from_pretrained(transformers_dir, **kwargs)
    for processor in (ours, expected):
        assert processor.tokenizer.cls_token == "(CLS)" and processor.tokenizer.do_lower_case is True
        assert processor.tokenizer.padding_side == processor.feature_extractor.padding_side == "left"
        assert processor.feature_extractor.sampling_rate == 8000
    assert ours.tokenizer.cls_token_id == expected.tokenizer.cls_token_id == len(EN_VOCAB)
    assert ours.tokenizer.convert_tokens_to_ids("(CLS)") == len(EN_VOCAB)


def test_from_pretrained_target_lang(tmp_path):
    nested = {"eng": EN_VOCAB, "abc": {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "B": 5, "A": 6}}
    (tmp_path / "vocab.json").write_text(json.dumps(nested))
    HfWav2Vec2Processor(
        HfWav2Vec2FeatureExtractor(), HfWav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), target_lang="eng")
    ).save_pretrained(tmp_path / "saved")
    processor = HfWav2Vec2Processor.from_pretrained(tmp_path / "saved", target_lang="abc")
    assert processor.tokenizer.target_lang == "abc" and processor(text="AB")["input_ids"] == [6, 5]
    processor.tokenizer.set_target_lang("eng")
    assert processor(text="AB")["input_ids"] == [7, 24]


def test_tokenizer_constructor_options_are_text_defaults_like_transformers(transformers_dir, clips):
    tokenizer = HfWav2Vec2CTCTokenizer.from_pretrained(transformers_dir, padding="max_length", max_length=12)
    processor = HfWav2Vec2Processor(HfWav2Vec2FeatureExtractor(), tokenizer)
    their_tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(transformers_dir, padding="max_length", max_length=12)
    theirs = Wav2Vec2Processor(Wav2Vec2FeatureExtractor(), their_tokenizer)
    assert processor(text="HELLO", return_tensors="pt")["input_ids"].shape == (1, 12)
    assert theirs(text="HELLO", return_tensors="pt")["input_ids"].shape == (1, 12)
    out = processor(
        audio=clips[:2], text=["HELLO", "A"], sampling_rate=SR, audio_kwargs={"padding": True}, return_tensors="pt"
    )
    assert out["labels"].shape == (2, 12) and out["input_values"].shape == (2, 1200)  # audio padded to its longest
    # a call's own padding wins over the constructor's
    out = processor(audio=clips[:2], text=["HELLO", "A"], sampling_rate=SR, padding=True, return_tensors="pt")
    assert out["labels"].shape == (2, 5)
    assert processor(text="HELLO", text_kwargs={"max_length": 7}, return_tensors="pt")["input_ids"].shape == (1, 7)
