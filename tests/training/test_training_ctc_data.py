"""Labeled data for CTC fine-tuning (hf_wav2vec2.training.ctc_data)."""

import importlib.abc
import json
import logging
import sys

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tiny_config

from hf_wav2vec2 import HfWav2Vec2ForCTC
from hf_wav2vec2.feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from hf_wav2vec2.processing_hf_wav2vec2 import HfWav2Vec2Processor
from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer
from hf_wav2vec2.training.ctc_data import (
    DataCollatorCTCWithPadding,
    DatasetColumnError,
    ctc_required_frames,
    decode_audio,
    drop_unalignable,
    filter_duration,
    load_labeled_dataset,
    load_labeled_folder,
    output_frames,
    pad_labels,
    prepare_ctc_dataset,
    read_metadata,
)
from hf_wav2vec2.training.vocab import (
    TextNormalization,
    build_vocab,
    tokenizer_kwargs,
    write_vocab,
)

TEXTS = ["Hello world", "Good night!", "Ok"]


def make_processor(tmp_path, return_attention_mask):
    path = write_vocab(build_vocab(TEXTS), tmp_path / "vocab")
    tokenizer = HfWav2Vec2CTCTokenizer(str(path), **tokenizer_kwargs())
    extractor = HfWav2Vec2FeatureExtractor(return_attention_mask=return_attention_mask)
    return HfWav2Vec2Processor(extractor, tokenizer)


class TorchcodecBlocker(importlib.abc.MetaPathFinder):
    """Makes every import of torchcodec fail, and records the attempts."""

    def __init__(self):
        self.attempts = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torchcodec":
            self.attempts.append(name)
            raise ImportError(f"{name}: blocked by the test (its PyPI build does not load on this machine)")
        return None


@pytest.fixture
def no_torchcodec(monkeypatch):
    """torchcodec looks installed to datasets but does not import, as where its PyPI build does not load (no FFmpeg
    libraries, another torch build). Yields the blocker, whose ``attempts`` must stay empty."""
    blocker = TorchcodecBlocker()
    monkeypatch.setattr(datasets.config, "TORCHCODEC_AVAILABLE", True)
    for name in [name for name in sys.modules if name.split(".")[0] == "torchcodec"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [blocker, *sys.meta_path])
    yield blocker
    assert blocker.attempts == [], f"torchcodec was imported: {blocker.attempts}"


def write_audiofolder(directory, splits=("train", "test"), rate=8000):
    """A datasets audiofolder: one subfolder per split, WAV files and a metadata.csv (file_name,text) in each.
    Returns {split: [(audio, text), ...]}."""
    rng = np.random.default_rng(1)
    written = {}
    for split_index, split in enumerate(splits):
        folder = directory / split
        folder.mkdir(parents=True)
        rows, written[split] = ["file_name,text"], []
        for index, text in enumerate(TEXTS[: 3 - split_index]):
            audio = (0.1 * rng.standard_normal(int((0.2 + 0.1 * index) * rate))).astype(np.float32)
            sf.write(str(folder / f"{split}{index}.wav"), audio, rate, subtype="FLOAT")
            rows.append(f'{split}{index}.wav,"{text}"')
            written[split].append((audio, text))
        (folder / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return written


def write_folder(directory, rate=8000, durations=(0.5, 0.3, 0.2), subdir="clips"):
    """WAV files at `rate` plus metadata.csv; returns the folder."""
    rng = np.random.default_rng(0)
    (directory / subdir).mkdir(parents=True, exist_ok=True)
    rows = ["file,text"]
    for index, (seconds, text) in enumerate(zip(durations, TEXTS, strict=False)):
        name = f"{subdir}/utt{index}.wav"
        sf.write(str(directory / name), 0.1 * rng.standard_normal(int(seconds * rate)), rate, subtype="PCM_16")
        rows.append(f'{name},"{text}"')
    (directory / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory


class TestCollator:
    FEATURES = (
        {"input_values": [0.5, -0.5, 1.0, 0.25], "labels": [5, 6, 7], "input_length": 4, "text": "abc"},
        {"input_values": [1.0, 2.0], "labels": [8], "input_length": 2, "text": "d"},
    )

    def test_pads_audio_with_mask_and_labels_with_minus_100(self, tmp_path):
        collator = DataCollatorCTCWithPadding(make_processor(tmp_path, return_attention_mask=True))
        batch = collator(self.FEATURES)
        assert set(batch) == {"input_values", "attention_mask", "labels"}
        assert batch["input_values"].dtype == torch.float32 and batch["input_values"].shape == (2, 4)
        assert batch["input_values"][1].tolist() == [1.0, 2.0, 0.0, 0.0]
        assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
        assert batch["labels"].dtype == torch.long
        assert batch["labels"].tolist() == [[5, 6, 7], [8, -100, -100]]

    def test_padding_is_masked_even_for_group_norm_extractors(self, tmp_path):
        group_norm = make_processor(tmp_path, return_attention_mask=False)
        batch = DataCollatorCTCWithPadding(group_norm)(self.FEATURES)
        assert batch["attention_mask"].tolist()[1] == [1, 1, 0, 0]
        following = DataCollatorCTCWithPadding(group_norm, return_attention_mask=None)(self.FEATURES)
        assert "attention_mask" not in following and following["input_values"].shape == (2, 4)
        dropped = DataCollatorCTCWithPadding(make_processor(tmp_path, True), return_attention_mask=False)(self.FEATURES)
        assert "attention_mask" not in dropped

    def test_pad_to_multiple_of(self, tmp_path):
        collator = DataCollatorCTCWithPadding(make_processor(tmp_path, True), pad_to_multiple_of=8)
        assert collator(self.FEATURES)["input_values"].shape == (2, 8)

    def test_pad_labels(self):
        assert pad_labels([[1], [2, 3]]).tolist() == [[1, -100], [2, 3]]

    def test_batch_gives_a_finite_ctc_loss(self, tmp_path):
        processor = make_processor(tmp_path, return_attention_mask=True)
        config = tiny_config(vocab_size=len(processor.tokenizer), mask_time_prob=0.0)
        model = HfWav2Vec2ForCTC(config).eval()
        features = [
            {"input_values": np.random.default_rng(i).standard_normal(800 + 400 * i).tolist(), "labels": [5, 6, 5]}
            for i in range(2)
        ]
        batch = DataCollatorCTCWithPadding(processor)(features)
        loss = model(**batch).loss
        assert torch.isfinite(loss) and loss > 0


class TestFrames:
    def test_required_frames_count_blanks_between_repeats(self):
        assert ctc_required_frames([]) == 0
        assert ctc_required_frames([1, 2, 3]) == 3
        assert ctc_required_frames([1, 1, 2]) == 4  # "aab" needs a blank between the a's
        assert ctc_required_frames([4, 4, 4]) == 5

    def test_output_frames(self):
        config = tiny_config()  # kernels 10,3,3 strides 5,2,2: receptive field 40 samples, hop 20
        assert config.receptive_field == 40
        assert output_frames(39, config) == 0
        assert output_frames(40, config) == 1
        assert output_frames(59, config) == 1
        assert output_frames(60, config) == 2
        assert output_frames(16000, config) == 799


class TestDropUnalignable:
    def test_counts_and_logs_too_long_transcripts(self, caplog):
        config = tiny_config()
        dataset = datasets.Dataset.from_dict(
            {
                "input_length": [70, 70, 70, 10, 16000],  # 2, 2, 2, 0, 799 frames
                "labels": [[5, 6], [5, 6, 7], [5, 5], [5], list(range(5, 25))],
            }
        )
        with caplog.at_level(logging.WARNING):
            kept, dropped = drop_unalignable(dataset, config, description="train")
        assert dropped == 2  # three labels in 2 frames; "aa" needs 3 frames
        assert kept["labels"] == [[5, 6], list(range(5, 25))]
        assert "dropped 2 utterances whose transcripts are longer than their audio allows" in caplog.text
        assert "dropped 1 utterances shorter than the model's receptive field" in caplog.text

    def test_nothing_dropped_keeps_dataset(self):
        dataset = datasets.Dataset.from_dict({"input_length": [16000], "labels": [[5]]})
        kept, dropped = drop_unalignable(dataset, tiny_config())
        assert dropped == 0 and len(kept) == 1

    def test_dropped_utterances_would_have_infinite_loss(self):
        config = tiny_config(vocab_size=12, mask_time_prob=0.0, ctc_zero_infinity=False)
        model = HfWav2Vec2ForCTC(config).eval()
        loss = model(torch.randn(1, 70), labels=torch.tensor([[5, 6, 7]])).loss
        assert torch.isinf(loss)


class TestSources:
    def test_read_metadata_formats(self, tmp_path):
        (tmp_path / "m.tsv").write_text("path\tsentence\na.wav\thello, world\n", encoding="utf-8")
        rows = read_metadata(tmp_path / "m.tsv", audio_column="path", text_column="sentence")
        assert rows == [{"audio": str(tmp_path / "a.wav"), "text": "hello, world"}]
        (tmp_path / "m.jsonl").write_text(json.dumps({"file": "/abs/b.wav", "text": "hi"}) + "\n", encoding="utf-8")
        assert read_metadata(tmp_path / "m.jsonl") == [{"audio": "/abs/b.wav", "text": "hi"}]
        with pytest.raises(ValueError, match="no column"):
            read_metadata(tmp_path / "m.tsv")

    def test_rows_with_extra_or_missing_fields_are_refused(self, tmp_path):
        (tmp_path / "ok.csv").write_text('file,text\na.wav,"hello, world"\n', encoding="utf-8")
        assert read_metadata(tmp_path / "ok.csv")[0]["text"] == "hello, world"  # quoted commas are fine
        (tmp_path / "extra.csv").write_text("file,text\na.wav,hello\nb.wav,hello, world\n", encoding="utf-8")
        with pytest.raises(ValueError, match="row 2 does not have as many fields"):
            read_metadata(tmp_path / "extra.csv")
        (tmp_path / "short.csv").write_text("file,text,duration\na.wav,hello\n", encoding="utf-8")
        with pytest.raises(ValueError, match="row 1 does not have as many fields"):
            read_metadata(tmp_path / "short.csv")

    def test_folder_to_features_resampled_to_16k(self, tmp_path):
        folder = write_folder(tmp_path / "data")
        raw = load_labeled_folder(folder)
        assert raw.column_names == ["audio", "text"] and raw["text"] == TEXTS
        processor = make_processor(tmp_path, return_attention_mask=False)
        prepared = prepare_ctc_dataset(raw, processor, TextNormalization())
        assert prepared["input_length"] == [8000, 4800, 3200]  # 8 kHz files, resampled
        assert len(prepared[0]["input_values"]) == 8000
        values = np.asarray(prepared[0]["input_values"])
        assert abs(values.mean()) < 1e-3 and abs(values.std() - 1) < 1e-2  # normalized by the feature extractor
        assert prepared["text"] == ["hello world", "good night", "ok"]
        assert processor.tokenizer.decode(prepared[1]["labels"], group_tokens=False) == "good night"
        shorter = filter_duration(prepared, min_seconds=0.25, max_seconds=0.4)
        assert shorter["input_length"] == [4800]

    def test_missing_audio_file(self, tmp_path):
        folder = write_folder(tmp_path / "data")
        (folder / "clips" / "utt1.wav").unlink()
        with pytest.raises(FileNotFoundError, match="missing"):
            load_labeled_folder(folder)

    def test_saved_dataset_with_audio_feature_and_custom_columns(self, tmp_path):
        folder = write_folder(tmp_path / "data")
        paths = [str(p) for p in sorted((folder / "clips").glob("*.wav"))]
        dataset = datasets.Dataset.from_dict({"speech": paths, "sentence": TEXTS, "extra": [1, 2, 3]})
        dataset = dataset.cast_column("speech", datasets.Audio())
        datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "saved"))
        loaded = load_labeled_dataset(
            str(tmp_path / "saved"), split="test", audio_column="speech", text_column="sentence"
        )
        assert loaded.column_names == ["audio", "text"]
        record = loaded[0]["audio"]  # undecoded: no torchcodec needed
        assert set(record) == {"bytes", "path"}
        assert decode_audio(record).shape == (8000,)
        prepared = prepare_ctc_dataset(loaded, make_processor(tmp_path, False))
        assert prepared["input_length"] == [8000, 4800, 3200]
        with pytest.raises(KeyError, match="splits"):
            load_labeled_dataset(str(tmp_path / "saved"), split="train", audio_column="speech")

    def test_decode_audio_records(self, tmp_path):
        array = np.zeros(800, dtype=np.float32)
        assert decode_audio({"array": array, "sampling_rate": 8000}).shape == (1600,)
        folder = write_folder(tmp_path / "data")
        data = (folder / "clips" / "utt0.wav").read_bytes()
        assert decode_audio({"bytes": data, "path": "utt0.wav"}).shape == (8000,)
        assert decode_audio({"bytes": None, "path": str(folder / "clips" / "utt0.wav")}).shape == (8000,)

    def test_undecodable_record_names_its_file_once(self):
        from hf_wav2vec2.audio import AudioError

        with pytest.raises(AudioError) as error:
            decode_audio({"bytes": b"\x01" * 4000, "path": "clip.wav"})
        assert str(error.value).startswith("clip.wav: not a readable audio file (")
        assert "<audio bytes>" not in str(error.value) and error.value.source == "clip.wav"
        with pytest.raises(AudioError, match=r"^<audio bytes>: not a readable audio file"):
            decode_audio({"bytes": b"\x01" * 4000, "path": None})  # no file name: the bytes, named once


class TestWithoutTorchcodec:
    """datasets 4+ decodes and even encodes audio through torchcodec; loading must not need it."""

    def test_audiofolder_splits(self, tmp_path, no_torchcodec):
        written = write_audiofolder(tmp_path / "corpus")
        load = {"data_dir": str(tmp_path / "corpus"), "cache_dir": str(tmp_path / "cache")}
        for split, items in written.items():
            loaded = load_labeled_dataset("audiofolder", split=split, **load)
            assert loaded.column_names == ["audio", "text"] and loaded["text"] == [text for _, text in items]
            for record, (audio, _) in zip(loaded["audio"], items, strict=True):
                assert set(record) == {"bytes", "path"}  # undecoded
                decoded = decode_audio(record, sampling_rate=8000)  # soundfile, no resampling at the file's rate
                np.testing.assert_allclose(decoded, audio, atol=1e-6)
        assert len(load_labeled_dataset("audiofolder", split="train[:2]", **load)) == 2
        with pytest.raises(DatasetColumnError, match=r"no split 'dev'; its splits are \['test', 'train'\]") as error:
            load_labeled_dataset("audiofolder", split="dev", **load)
        assert isinstance(error.value, ValueError) and "\n" not in str(error.value)
        assert not str(error.value).startswith("'")  # not quoted like a plain KeyError

    def test_audiofolder_to_features(self, tmp_path, no_torchcodec):
        write_audiofolder(tmp_path / "corpus", splits=("train",))
        loaded = load_labeled_dataset(
            "audiofolder", data_dir=str(tmp_path / "corpus"), cache_dir=str(tmp_path / "cache")
        )
        prepared = prepare_ctc_dataset(loaded, make_processor(tmp_path, False), TextNormalization())
        assert prepared["input_length"] == [3200, 4800, 6400]  # 8 kHz, resampled to 16 kHz
        assert prepared["text"] == ["hello world", "good night", "ok"]

    def test_saved_dataset_with_embedded_bytes(self, tmp_path, no_torchcodec):
        written = write_audiofolder(tmp_path / "corpus", splits=("train",))["train"]
        records = [
            {"bytes": (tmp_path / "corpus" / "train" / f"train{i}.wav").read_bytes(), "path": f"train{i}.wav"}
            for i in range(len(written))
        ]
        dataset = datasets.Dataset.from_dict({"audio": records, "text": [text for _, text in written]})
        dataset.cast_column("audio", datasets.Audio()).save_to_disk(str(tmp_path / "saved"))
        loaded = load_labeled_dataset(str(tmp_path / "saved"))
        assert loaded[0]["audio"]["bytes"] == records[0]["bytes"]
        np.testing.assert_allclose(decode_audio(loaded[1]["audio"], 8000), written[1][0], atol=1e-6)
        with pytest.raises(DatasetColumnError, match="no column 'sentence'"):
            load_labeled_dataset(str(tmp_path / "saved"), text_column="sentence")
