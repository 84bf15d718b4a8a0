"""Bad fine-tuning data gets one clear line or a counted warning, never a deep traceback (issue 13).

Metadata that is not UTF-8 or has no rows, transcripts with characters outside the vocabulary or nothing left after
normalization, audio files that cannot be decoded. Everything here is text or a few tiny WAV files; the one run that
trains uses the tiny random model of tests/training/test_finetune_ctc.py for a couple of updates.
"""

import re

import numpy as np
import pytest
import soundfile as sf
from test_finetune_ctc import common_args, pretrained_dir, tone_speech  # noqa: F401 (fixture)

from hf_wav2vec2.cli.common import CommandError
from hf_wav2vec2.cli.evaluate import read_labeled_data
from hf_wav2vec2.training.ctc_data import MetadataError, read_metadata
from hf_wav2vec2.training.finetune import DataArguments, _raw_datasets

RATE = 16000


def write_clip(path, seconds=0.3, seed=0):
    rng = np.random.default_rng(seed)
    sf.write(str(path), (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32), RATE)


# ------------------------------------------------------------------------------------------------ metadata


@pytest.mark.parametrize("name,separator", [("metadata.csv", ","), ("metadata.tsv", "\t")])
def test_metadata_not_utf8_names_file_and_line(tmp_path, name, separator):
    rows = ["file", "text"], ["a.wav", "hello"], ["b.wav", "caf\xe9"]  # Latin-1 "é" on line 3
    (tmp_path / name).write_bytes("\n".join(separator.join(row) for row in rows).encode("latin-1") + b"\n")
    with pytest.raises(MetadataError, match=rf"^{re.escape(str(tmp_path / name))}: line 3 is not UTF-8"):
        read_metadata(tmp_path / name)


def test_metadata_with_only_a_header_says_no_rows(tmp_path):
    (tmp_path / "metadata.csv").write_text("file,text\n", encoding="utf-8")
    with pytest.raises(MetadataError, match=r"metadata.csv: no rows \(only a header\)"):
        read_metadata(tmp_path / "metadata.csv")
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(MetadataError, match=r"empty.jsonl: no rows \(the file is empty\)"):
        read_metadata(tmp_path / "empty.jsonl")


def test_metadata_byte_order_mark_is_not_part_of_the_header(tmp_path):
    (tmp_path / "metadata.csv").write_bytes("file,text\na.wav,hi\n".encode("utf-8-sig"))
    assert read_metadata(tmp_path / "metadata.csv") == [{"audio": str(tmp_path / "a.wav"), "text": "hi"}]


def test_finetune_header_only_folder_is_one_line(tmp_path):
    (tmp_path / "metadata.csv").write_text("file,text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"metadata.csv: no rows"):
        _raw_datasets(DataArguments(train_dir=str(tmp_path)))


def test_finetune_empty_dataset_split_is_one_line(monkeypatch):
    import datasets

    from hf_wav2vec2.training import ctc_data

    empty = datasets.Dataset.from_dict({"audio": [], "text": []})
    monkeypatch.setattr(ctc_data, "_load_hub_or_builder", lambda *args, **kwargs: empty)
    with pytest.raises(ValueError, match=r"^some/corpus: split 'test' has no rows$"):
        _raw_datasets(DataArguments(dataset_name="some/corpus", train_split_name="test"))


def test_evaluate_reference_file_errors(tmp_path):
    (tmp_path / "metadata.csv").write_bytes(b"file,text\na.wav,ok\nb.wav,\xff\xfe\n")
    with pytest.raises(CommandError, match=r"metadata.csv: line 3 is not UTF-8"):
        read_labeled_data(tmp_path)
    (tmp_path / "metadata.csv").write_text("file,text\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"metadata.csv: no rows \(only a header\)"):
        read_labeled_data(tmp_path)
    (tmp_path / "list.txt").write_bytes(b"a.wav\tok\n\nb.wav\t\xe9t\xe9\n")
    with pytest.raises(CommandError, match=r"list.txt: line 3 is not UTF-8"):
        read_labeled_data(tmp_path / "list.txt")


# ------------------------------------------------------------------------------------------- one decoder


def test_fine_tuning_and_pre_training_share_one_record_decoder(tmp_path):
    from hf_wav2vec2.audio import AudioError, decode_record
    from hf_wav2vec2.training.ctc_data import decode_audio as ctc_decode
    from hf_wav2vec2.training.data.sources import AudioDecodeError, hf_audio_source
    from hf_wav2vec2.training.data.sources import decode_audio as pretrain_decode

    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((4000, 2))).astype(np.float32)
    sf.write(str(tmp_path / "st.wav"), stereo, 8000, subtype="FLOAT")
    record = {"bytes": (tmp_path / "st.wav").read_bytes(), "path": "st.wav"}
    expected = decode_record(record)
    assert expected.shape == (8000,)
    np.testing.assert_array_equal(ctc_decode(record), expected)
    np.testing.assert_array_equal(pretrain_decode(hf_audio_source(record)), expected)
    np.testing.assert_array_equal(pretrain_decode(tmp_path / "st.wav"), expected)
    with pytest.raises(AudioError, match=r"^clip.wav: not a readable audio file"):
        decode_record({"bytes": b"\x01" * 4000, "path": "clip.wav"})
    with pytest.raises(AudioDecodeError, match=r"^not a readable audio file"):  # the reason alone, as before
        pretrain_decode(b"\x01" * 4000)
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 16000)
    assert pretrain_decode(tmp_path / "empty.wav").size == 0  # pre-training counts it as too short
    with pytest.raises(AudioError, match=r"empty.wav: audio is empty"):
        ctc_decode(str(tmp_path / "empty.wav"))


# ------------------------------------------------------------------------------------------------ labels


def make_processor(directory, chars="abcdeilnorst'"):
    from hf_wav2vec2.feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from hf_wav2vec2.processing_hf_wav2vec2 import HfWav2Vec2Processor
    from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer
    from hf_wav2vec2.training.vocab import build_vocab, tokenizer_kwargs, write_vocab

    path = write_vocab(build_vocab([], extra_chars=chars), directory)
    tokenizer = HfWav2Vec2CTCTokenizer(str(path), **tokenizer_kwargs())
    return HfWav2Vec2Processor(HfWav2Vec2FeatureExtractor(return_attention_mask=True), tokenizer)


def labeled(tmp_path, texts, bad_audio=()):
    """A datasets.Dataset of clip{i}.wav files with `texts`; the clips at `bad_audio` are cut mid-sample."""
    import datasets

    files = []
    for index, _ in enumerate(texts):
        path = tmp_path / f"clip{index}.wav"
        write_clip(path, seed=index)
        if index in bad_audio:
            path.write_bytes(path.read_bytes()[:1001])  # the header promises more samples than follow
        files.append(str(path))
    return datasets.Dataset.from_dict({"audio": files, "text": list(texts)})


def test_bad_transcripts_warn_with_counts_and_files(tmp_path):
    from hf_wav2vec2.training.ctc_data import screen_transcripts
    from hf_wav2vec2.training.vocab import TextNormalization, TranscriptWarning

    texts = ["a cat", "Café", "?!", "", "straße oder", "it's"]
    dataset = labeled(tmp_path, texts)
    vocab = make_processor(tmp_path).tokenizer.get_vocab()
    with pytest.warns(TranscriptWarning) as record:
        kept = screen_transcripts(dataset, vocab, TextNormalization(), description="training")
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("training: of 6 transcripts, 2 have characters outside the vocabulary (")
    assert "('f' x1, 'é' x1, 'ß' x1)" in message  # the characters the vocabulary lacks, most frequent first
    assert "become <unk> targets, e.g. clip1.wav, clip4.wav;" in message
    assert "2 are empty after normalization (all-blank targets), e.g. clip2.wav, clip3.wav." in message
    assert message.endswith("They are kept; pass --drop_bad_transcripts to leave them out")
    assert kept["text"] == texts  # the default keeps them
    with pytest.warns(TranscriptWarning, match=r"left out \(--drop_bad_transcripts\)$"):
        dropped = screen_transcripts(dataset, vocab, TextNormalization(), drop=True, description="training")
    assert dropped["text"] == ["a cat", "it's"]


def test_clean_transcripts_give_no_warning(tmp_path, recwarn):
    from hf_wav2vec2.training.ctc_data import screen_transcripts
    from hf_wav2vec2.training.vocab import TextNormalization

    dataset = labeled(tmp_path, ["A cat!", "it's"])
    assert len(screen_transcripts(dataset, make_processor(tmp_path).tokenizer.get_vocab(), TextNormalization())) == 2
    assert not [w for w in recwarn if "transcripts" in str(w.message)]


# ------------------------------------------------------------------------------------------ bad audio


def test_truncated_audio_is_left_out_counted_and_named(tmp_path):
    from hf_wav2vec2.training.ctc_data import prepare_ctc_dataset
    from hf_wav2vec2.training.data.selection import AudioDroppedWarning

    dataset = labeled(tmp_path, ["a cat", "a rat", "at last", "a tent"], bad_audio=(2,))
    processor = make_processor(tmp_path)
    with pytest.warns(AudioDroppedWarning) as record:
        prepared = prepare_ctc_dataset(dataset, processor, description="training", max_bad_audio_fraction=0.5)
    message = str(record[0].message)
    assert message.startswith("training: 1 of 4 audio files (25.0%) could not be decoded, e.g. ")
    assert f"{tmp_path / 'clip2.wav'}: audio file is truncated" in message and message.endswith("; left out")
    assert prepared["text"] == ["a cat", "a rat", "a tent"] and "audio_error" not in prepared.column_names
    assert min(prepared["input_length"]) == int(0.3 * RATE)


def test_too_much_bad_audio_stops_before_training_in_one_line(tmp_path):
    from hf_wav2vec2.training.ctc_data import DEFAULT_MAX_BAD_AUDIO_FRACTION, prepare_ctc_dataset

    dataset = labeled(tmp_path, ["a cat", "a rat", "at last", "a tent"], bad_audio=(2,))
    assert 0.25 > DEFAULT_MAX_BAD_AUDIO_FRACTION
    with pytest.raises(ValueError, match=r"^training: 1 of 4 audio files \(25.0%\) could not be decoded") as error:
        prepare_ctc_dataset(dataset, make_processor(tmp_path), description="training")
    assert "more than --max_bad_audio_fraction 0.05" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="max_bad_audio_fraction must be between 0 and 1"):
        DataArguments(train_dir=str(tmp_path), max_bad_audio_fraction=1.5)


# ---------------------------------------------------------------------------------------------- a run


def test_finetune_run_leaves_out_bad_audio_and_transcripts(tmp_path, pretrained_dir):  # noqa: F811 (fixture)
    """A training folder with a truncated file, a punctuation-only transcript and a letter the --vocab_file lacks:
    the run warns about each, leaves them out (--drop_bad_transcripts) and trains on the rest."""
    from hf_wav2vec2.training.data.selection import AudioDroppedWarning
    from hf_wav2vec2.training.finetune import main
    from hf_wav2vec2.training.vocab import TranscriptWarning

    rng = np.random.default_rng(0)
    texts = ["ab cab", "bad ace", "deed", "...", "cab bead", "dace ab", "bead", "faced", "ace cede", "bad ab"]
    rows = ["file,text"]
    for index, text in enumerate(texts):
        sf.write(str(tmp_path / f"u{index}.wav"), tone_speech(text.replace(".", "").replace("f", ""), rng), RATE)
        rows.append(f"u{index}.wav,{text}")
    (tmp_path / "u6.wav").write_bytes((tmp_path / "u6.wav").read_bytes()[:2001])  # truncated
    (tmp_path / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    make_processor(tmp_path / "v", "abcde")  # a given vocabulary without "f"
    common = [
        "--model_name_or_path",
        str(pretrained_dir),
        "--train_dir",
        str(tmp_path),
        "--vocab_file",
        str(tmp_path / "v" / "vocab.json"),
    ]
    with pytest.warns(TranscriptWarning, match=r"1 has characters outside.*u7.wav.*1 is empty.*u3.wav"):
        with pytest.warns(AudioDroppedWarning, match=r"1 of 8 audio files .*u6.wav: audio file is truncated"):
            metrics = main(
                [
                    *common,
                    "--drop_bad_transcripts",
                    "true",
                    "--max_bad_audio_fraction",
                    "0.2",
                    "--plot_curves",
                    "false",
                    *common_args(tmp_path / "out", 1),
                ]
            )
    assert metrics["train_samples"] == 7
    with pytest.warns(TranscriptWarning, match="They are kept"):  # by default
        with pytest.raises(ValueError, match=r"^training: 1 of 10 audio files .*than --max_bad_audio_fraction 0.05"):
            main([*common, *common_args(tmp_path / "out2", 1)])
