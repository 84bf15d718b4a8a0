"""Bad fine-tuning data gets one clear line or a counted warning, never a deep traceback (issue 13).

Metadata that is not UTF-8 or has no rows, transcripts with characters outside the vocabulary or nothing left after
normalization, audio files that cannot be decoded. Everything here is text or a few tiny WAV files; the one run that
trains uses the tiny random model of tests/test_finetune_ctc.py for a couple of updates.
"""

import re

import numpy as np
import pytest
import soundfile as sf

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

    from hf_wav2vec2.training import finetune

    empty = datasets.Dataset.from_dict({"audio": [], "text": []})
    monkeypatch.setattr(finetune, "load_labeled_dataset", lambda *args, **kwargs: empty)
    with pytest.raises(ValueError, match=r"^some/corpus \(split train\): no rows"):
        _raw_datasets(DataArguments(dataset_name="some/corpus"))


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
