"""The Debian Asterisk prompts corpus and its fixed split (hf_wav2vec2.corpora.asterisk).

The split tests need ``apt-get install asterisk-core-sounds-en-wav`` (scripts/setup.sh): they are skipped without
it, and fail under CI=true (tests/conftest.py). The transcripts come from the system or the bundled copy.
"""

import csv

import pytest
import soundfile as sf

from hf_wav2vec2.corpora import asterisk
from hf_wav2vec2.training.ctc_data import load_labeled_folder

installed = pytest.mark.skipif(
    not asterisk.is_installed(), reason="needs the Debian package asterisk-core-sounds-en-wav"
)


class TestTranscriptRules:
    @pytest.mark.parametrize(
        "raw, expected",
        [
            ("Please press 1 to mute, 4 or 6 to exit.", "PLEASE PRESS ONE TO MUTE FOUR OR SIX TO EXIT"),
            ("at [@]", "AT"),
            ("exclaimation-point [!]", "EXCLAIMATION POINT"),
            ("Call-Forward on Busy.", "CALL FORWARD ON BUSY"),
            (
                'Dial 4 to send this caller to a polite "don\'t call" menu.',
                "DIAL FOUR TO SEND THIS CALLER TO A POLITE DON'T CALL MENU",
            ),
            ("...to leave the conference.", "TO LEAVE THE CONFERENCE"),
            ('IAX (note: does not say "2")', None),  # acronym
            ("M I S D N", "M I S D N"),  # spelled letters are fine
            (
                "Please leave your message after the tone. (simple tone sound plays)",
                "PLEASE LEAVE YOUR MESSAGE AFTER THE TONE",
            ),
        ],
    )
    def test_normalize(self, raw, expected):
        assert asterisk.normalize_transcript(raw) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "you can dial 500 to attempt",
            "28.8 kilobit modem",
            "3D audio enabled",
            "A.M.",
            "Asterisk PBX",
            "separated by * and then",
            "press # to enter",
            "visit www.asterisk.org",
            "H.323",
        ],
    )
    def test_unreliable_transcripts(self, raw):
        assert asterisk.normalize_transcript(raw) is None

    def test_non_speech(self):
        assert asterisk.is_non_speech("[this is a simple beep tone]", 0.43)
        assert asterisk.is_non_speech("<beep ascending>", 0.37)
        assert asterisk.is_non_speech("(10 seconds of silence)", 10.0)
        assert asterisk.is_non_speech("Goodbye", 0.3)  # too short for a word
        assert not asterisk.is_non_speech("at [@]", 0.6)
        assert not asterisk.is_non_speech("Goodbye!", 0.8)

    def test_read_transcripts_format(self, tmp_path):
        path = tmp_path / "t.txt"
        path.write_text("; comment\n\ndigits/1: one\npriv-callpending: waiting, who introduces themselves as:\n")
        assert asterisk.read_transcripts(path) == {
            "digits/1": "one",
            "priv-callpending": "waiting, who introduces themselves as:",
        }


@pytest.fixture(scope="module")
def prompts():
    return asterisk.load_prompts()


@pytest.fixture(scope="module")
def splits(prompts):
    return asterisk.split_prompts(prompts)


@installed
class TestSplit:
    def test_speech_prompts_and_skip_rule(self, prompts):
        assert len(prompts) == 551
        names = {p.name for p in prompts}
        assert not any(name.startswith("silence/") for name in names)
        assert not names & {
            "beep",
            "beeperr",
            "ascending-2tone",
            "descending-2tone",
            "confbridge-join",
            "confbridge-leave",
            "tt-monkeys",
        }
        assert {"digits/7", "letters/z", "phonetic/a_p", "vm-goodbye"} <= names  # subfolders are scanned
        assert sum(not p.labeled for p in prompts) == 18

    def test_documented_sizes(self, splits):
        summary = asterisk.summarize(splits)
        assert {name: s["prompts"] for name, s in summary.items()} == {
            "train": 265,
            "test": 88,
            "unlabeled": 198,
            "pretrain": 463,
        }
        assert 595 <= summary["train"]["seconds"] <= 600  # the paper's 10 minutes
        assert 200 <= summary["test"]["seconds"] <= 210

    def test_deterministic(self, prompts, splits):
        again = asterisk.split_prompts(list(reversed(prompts)))
        for name in asterisk.SPLITS:
            assert [p.name for p in again[name]] == [p.name for p in splits[name]]

    def test_test_prompts_are_held_out(self, splits):
        test_names = {p.name for p in splits["test"]}
        for name in ("train", "unlabeled", "pretrain"):
            assert not test_names & {p.name for p in splits[name]}
        # not even the same sentence recorded under another name
        test_texts = {p.text for p in splits["test"]}
        assert not test_texts & {p.text for p in splits["pretrain"] if p.text}

    def test_labeled_sets_are_reliable_and_bounded(self, splits):
        for name in ("train", "test"):
            assert all(p.labeled and p.duration <= asterisk.MAX_LABELED_SECONDS for p in splits[name])
            assert all(set(p.text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ") for p in splits[name])

    def test_partition(self, prompts, splits):
        parts = [p.name for name in ("train", "test", "unlabeled") for p in splits[name]]
        assert sorted(parts) == sorted(p.name for p in prompts)
        assert {p.name for p in splits["pretrain"]} == {p.name for p in splits["train"] + splits["unlabeled"]}

    def test_export(self, splits, tmp_path):
        chosen = splits["test"][:3] + [p for p in splits["unlabeled"] if not p.labeled][:1]
        folder = asterisk.export_prompts(chosen, tmp_path / "out")
        with (folder / "metadata.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [row["file"] for row in rows] == [p.name + ".wav" for p in chosen]
        assert rows[-1]["text"] == "" and rows[0]["text"] == chosen[0].text
        info = sf.info(str(folder / rows[0]["file"]))
        assert info.samplerate == 16000 and abs(info.duration - chosen[0].duration) < 0.01
        dataset = load_labeled_folder(folder)
        assert len(dataset) == 4 and dataset["text"][0] == chosen[0].text

    def test_load_split_rejects_unknown_names(self):
        with pytest.raises(ValueError):
            asterisk.load_split("dev")


def test_missing_package_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-en-wav"):
        asterisk.load_prompts(tmp_path / "nope", tmp_path / "nope.txt.gz")
    with pytest.raises(FileNotFoundError, match="nope.txt.gz does not exist"):
        asterisk.load_prompts(tmp_path, tmp_path / "nope.txt.gz")


def test_bundled_transcripts_are_the_debian_file():
    bundled = asterisk.BUNDLED_TRANSCRIPTS_FILE
    transcripts = asterisk.read_transcripts(bundled)
    assert len(transcripts) == 569 and transcripts["vm-goodbye"] == "Goodbye"
    if asterisk.TRANSCRIPTS_FILE.is_file():  # the transcripts package is installed and /usr/share/doc kept
        assert asterisk.TRANSCRIPTS_FILE.read_bytes() == bundled.read_bytes()
        assert asterisk.find_transcripts() == asterisk.TRANSCRIPTS_FILE
    else:
        assert asterisk.find_transcripts() == bundled
    attribution = (bundled.parent / "README.md").read_text()
    assert "CC-BY-SA 3.0" in attribution and "Allison Smith" in attribution


@installed
def test_without_system_transcripts_the_bundled_copy_gives_the_same_split(monkeypatch, tmp_path, splits):
    # as on an image with /usr/share/doc excluded, or without the asterisk-core-sounds-en package
    monkeypatch.setattr(asterisk, "TRANSCRIPTS_FILE", tmp_path / "excluded" / "core-sounds-en.txt.gz")
    assert asterisk.is_installed() and asterisk.find_transcripts() == asterisk.BUNDLED_TRANSCRIPTS_FILE
    again = asterisk.split_prompts(asterisk.load_prompts())
    for name in asterisk.SPLITS:
        assert [p.name for p in again[name]] == [p.name for p in splits[name]]
