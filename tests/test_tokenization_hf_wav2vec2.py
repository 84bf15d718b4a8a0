"""Tests of HfWav2Vec2CTCTokenizer, against transformers' Wav2Vec2CTCTokenizer where behaviour is shared."""

import json
import random

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2CTCTokenizer

from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer, HfWav2Vec2CTCTokenizerOutput

# The letter vocabulary of facebook/wav2vec2-base-960h (32 entries).
LETTERS = "ETAONIHSRDLUMWCFGYPBVK'XJQZ"
EN_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: 5 + i for i, c in enumerate(LETTERS)}}
PAD, BOS, EOS, UNK, SEP = 0, 1, 2, 3, 4
SPECIAL_STRINGS = ("<s>", "</s>", "<unk>", "<pad>")


def write_vocab(directory, vocab):
    path = directory / "vocab.json"
    path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab(tmp_path, EN_VOCAB)


@pytest.fixture
def tokenizers(tmp_path, vocab_file):
    """(ours, theirs): ours loaded from a directory that transformers' tokenizer saved."""
    theirs = Wav2Vec2CTCTokenizer(vocab_file)
    saved = tmp_path / "transformers"
    theirs.save_pretrained(saved)
    return HfWav2Vec2CTCTokenizer.from_pretrained(saved), theirs


def normalize_spaces(text):
    return " ".join(text.split())


def reference_ctc_decode(theirs, ids):
    """transformers' correct CTC decode (skip_special_tokens=False collapses repeats before dropping the blank),
    with the special tokens it leaks removed and the extra spaces it leaves collapsed."""
    text = theirs.decode(ids, skip_special_tokens=False)
    for special in SPECIAL_STRINGS:
        text = text.replace(special, "")
    return normalize_spaces(text)


def random_ctc_frames(rng, length, with_specials):
    """Frame-level argmax ids as a CTC model emits them: runs of letters, blanks and word delimiters."""
    alphabet = [PAD] * 6 + [SEP] * 2 + list(range(5, 32)) + ([BOS, EOS, UNK] if with_specials else [])
    frames = []
    while len(frames) < length:
        frames += [rng.choice(alphabet)] * rng.randint(1, 3)
    return frames[:length]


def ctc_expand(rng, ids, blank=PAD):
    """A valid CTC alignment of label ids: repeats, blanks between equal neighbours and at random elsewhere."""
    frames = [blank] * rng.randint(0, 2)
    for index, token in enumerate(ids):
        if index and ids[index - 1] == token or rng.random() < 0.3:
            frames += [blank] * rng.randint(1, 2)
        frames += [token] * rng.randint(1, 3)
    return frames + [blank] * rng.randint(0, 2)


# ----- loading -----


def test_loads_directory_saved_by_transformers(tokenizers):
    ours, theirs = tokenizers
    assert type(ours) is HfWav2Vec2CTCTokenizer
    assert ours.get_vocab() == theirs.get_vocab() and ours.vocab_size == 32 == len(ours)
    assert (ours.pad_token_id, ours.bos_token_id, ours.eos_token_id, ours.unk_token_id) == (0, 1, 2, 3)
    assert ours.word_delimiter_token == "|" and ours.word_delimiter_token_id == SEP
    assert ours.replace_word_delimiter_char == " " and ours.do_lower_case is False


def test_loads_legacy_file_layout(tmp_path):
    # The layout of facebook/wav2vec2-base-960h: tokenizer_config.json, special_tokens_map.json, added_tokens.json.
    write_vocab(tmp_path, EN_VOCAB)
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    config = {**special, "do_lower_case": False, "word_delimiter_token": "|", "tokenizer_class": "Wav2Vec2CTCTokenizer"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(special))
    (tmp_path / "added_tokens.json").write_text("{}")
    ours = HfWav2Vec2CTCTokenizer.from_pretrained(tmp_path)
    theirs = Wav2Vec2CTCTokenizer.from_pretrained(tmp_path)
    assert ours.get_vocab() == theirs.get_vocab()
    assert ours("HELLO WORLD")["input_ids"] == theirs("HELLO WORLD")["input_ids"]
    frames = [PAD, 11, 11, 5, 15, PAD, 15, 8, SEP, 18, 8, 13, 15, 14, PAD]
    assert ours.decode(frames) == theirs.decode(frames) == "HELLO WORLD"


def test_plain_vocab_file_constructor(vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file)
    assert tokenizer.decode([11, 10, SEP, 6, 11, 5, 13, 5]) == "HI THERE"


# ----- decoding against transformers -----


def test_ctc_decode_matches_transformers_on_random_frames(tokenizers):
    ours, theirs = tokenizers
    rng = random.Random(0)
    for trial in range(300):
        frames = random_ctc_frames(rng, rng.randint(0, 60), with_specials=trial % 2 == 1)
        assert ours.decode(frames) == reference_ctc_decode(theirs, frames), frames
        # special tokens never leak, whatever skip_special_tokens says (the ASR pipeline passes False)
        assert ours.decode(frames, skip_special_tokens=False) == ours.decode(frames)


def test_ctc_decode_is_exactly_transformers_on_clean_frames(tokenizers):
    ours, theirs = tokenizers
    frames = [PAD, PAD, 6, 6, 11, 5, PAD, SEP, SEP, 19, 7, 13, PAD, 13, 22, PAD]  # "THE CARRY"
    assert ours.decode(frames) == theirs.decode(frames) == "THE CARRY"
    assert ours.decode(np.array(frames)) == ours.decode(torch.tensor(frames)) == "THE CARRY"


def test_label_decode_matches_transformers_with_ignore_index(tokenizers):
    ours, theirs = tokenizers
    rng = random.Random(1)
    for _ in range(200):
        labels = [rng.choice([SEP] + list(range(5, 32))) for _ in range(rng.randint(1, 30))]
        labels += [-100] * rng.randint(0, 5)
        if rng.random() < 0.3:
            labels.insert(rng.randrange(len(labels)), rng.choice([BOS, EOS, UNK, PAD]))
        expected = normalize_spaces(theirs.decode(labels, group_tokens=False, skip_special_tokens=True))
        assert ours.decode(labels, group_tokens=False) == expected, labels


def as_int(offsets):
    """transformers' offsets hold numpy integers."""
    return [{k: (v if isinstance(v, str) else int(v)) for k, v in item.items()} for item in offsets]


def test_offsets_match_transformers(tokenizers):
    ours, theirs = tokenizers
    rng = random.Random(2)

    for _ in range(200):
        frames = random_ctc_frames(rng, rng.randint(1, 60), with_specials=False)
        out = ours.decode(frames, output_char_offsets=True, output_word_offsets=True)
        ref = theirs.decode(frames, output_char_offsets=True, output_word_offsets=True)
        assert isinstance(out, HfWav2Vec2CTCTokenizerOutput)
        assert out.word_offsets == as_int(ref.word_offsets)
        # Same letters at the same frames; spaces merged and trimmed so that chars line up with the text.
        letters = [o for o in as_int(ref.char_offsets) if o["char"] != " "]
        assert [o for o in out.char_offsets if o["char"] != " "] == letters
        assert "".join(o["char"] for o in out.char_offsets) == out.text
        assert out.text.split() == [w["word"] for w in out.word_offsets]


# ----- CTC semantics -----


def test_ctc_collapse_keeps_double_letters_split_by_blank(vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file)
    hello = [11, 11, 5, 15, 15, PAD, 15, 8, 8]  # H E L(L) <blank> L O
    assert tokenizer.decode(hello) == "HELLO"
    # skip_special_tokens=True must not drop the blank before collapsing (transformers would give "HELO")
    assert tokenizer.decode(hello, skip_special_tokens=True) == "HELLO"
    # a special token between equal letters separates them like a blank, and is not shown
    assert tokenizer.decode([7, BOS, 7, UNK, UNK, 7, EOS]) == "AAA"


def test_spaces_are_stripped_and_collapsed(vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file)
    frames = [SEP, SEP, 7, SEP, PAD, SEP, UNK, SEP, 24, SEP]
    assert tokenizer.decode(frames) == "A B"
    # one space entry spanning all the delimiters of the break; leading/trailing ones dropped
    assert tokenizer.decode(frames, output_char_offsets=True).char_offsets == [
        {"char": "A", "start_offset": 2, "end_offset": 3},
        {"char": " ", "start_offset": 3, "end_offset": 8},
        {"char": "B", "start_offset": 8, "end_offset": 9},
    ]
    assert tokenizer.decode([SEP, PAD, SEP]) == ""
    assert tokenizer.decode([]) == ""


def test_label_decode_keeps_repeats_and_ignores_minus_100(vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file)
    labels = tokenizer("CARRY ALL")["input_ids"]
    assert tokenizer.decode(labels) == "CARY AL"  # CTC collapse is wrong for labels...
    assert tokenizer.decode(labels + [-100, -100], group_tokens=False) == "CARRY ALL"  # ...hence group_tokens=False
    assert tokenizer.decode([UNK] + labels + [PAD], group_tokens=False) == "CARRY ALL"
    assert tokenizer.decode([UNK] + labels, group_tokens=False, skip_special_tokens=False) == "<unk>CARRY ALL"


def test_batch_decode(vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file)
    batch = [tokenizer("CARRY")["input_ids"] + [-100] * 4, tokenizer("A DOG")["input_ids"]]
    padded = torch.tensor([row + [-100] * (9 - len(row)) for row in batch])
    assert tokenizer.batch_decode(padded, group_tokens=False) == ["CARRY", "A DOG"]
    assert tokenizer.decode(padded.numpy(), group_tokens=False) == ["CARRY", "A DOG"]
    frames = torch.tensor([[11, 10, PAD, PAD], [7, SEP, 24, 24]])
    out = tokenizer.batch_decode(frames, output_char_offsets=True, output_word_offsets=True)
    assert out.text == ["HI", "A B"]
    assert out.word_offsets[1] == [
        {"word": "A", "start_offset": 0, "end_offset": 1},
        {"word": "B", "start_offset": 2, "end_offset": 4},
    ]
    assert [c["char"] for c in out.char_offsets[0]] == ["H", "I"]


def test_pipeline_offset_calls(vocab_file):
    # What transformers' ASR pipeline does for return_timestamps="char" / "word".
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file)
    frames = np.array([PAD, 6, 11, 5, SEP, SEP, 19, 7, 13, PAD, 13, 22, PAD, SEP, BOS])
    chars = tokenizer.decode(frames, skip_special_tokens=False, output_char_offsets=True)["char_offsets"]
    assert "".join(c["char"] for c in chars) == "THE CARRY"
    words = tokenizer._get_word_offsets(chars, tokenizer.replace_word_delimiter_char)
    assert words == [
        {"word": "THE", "start_offset": 1, "end_offset": 4},
        {"word": "CARRY", "start_offset": 6, "end_offset": 12},
    ]
    assert tokenizer.decode(frames, output_word_offsets=True).word_offsets == words


def test_unknown_decode_arguments_are_rejected(vocab_file):
    with pytest.raises(TypeError):
        HfWav2Vec2CTCTokenizer(vocab_file).decode([5], group_token=False)


# ----- encoding -----


def test_encoding_matches_transformers(tokenizers):
    ours, theirs = tokenizers
    for text in ["HELLO WORLD", "IT'S A TEST", "A", "QUIZ JAX"]:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"]
        assert ours(text_target=text)["input_ids"] == theirs(text)["input_ids"]


def test_encoding_details(vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file)
    encoded = tokenizer("  HI \t\n THERE  ")
    assert encoded["input_ids"] == [11, 10, SEP, 6, 11, 5, 13, 5]  # whitespace collapsed, ends trimmed
    assert encoded["attention_mask"] == [1] * 8
    assert tokenizer("HI?")["input_ids"] == [11, 10, UNK]  # unknown character
    assert tokenizer("hi")["input_ids"] == [UNK, UNK]  # case-sensitive unless do_lower_case
    assert tokenizer.tokenize("A <unk> B") == ["A", "|", "<unk>", "|", "B"]
    batch = tokenizer(["HI", "A B"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == [[11, 10, PAD], [7, SEP, 24]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]


def test_do_lower_case(tmp_path, vocab_file):
    ours = HfWav2Vec2CTCTokenizer(vocab_file, do_lower_case=True)
    theirs = Wav2Vec2CTCTokenizer(vocab_file, do_lower_case=True)
    assert ours("hello World")["input_ids"] == theirs("hello World")["input_ids"] == ours("HELLO WORLD")["input_ids"]
    frames = ours("HELLO")["input_ids"]
    assert ours.decode(frames, group_tokens=False) == "hello"
    out = ours.decode(frames, group_tokens=False, output_char_offsets=True)
    assert "".join(c["char"] for c in out.char_offsets) == out.text == "hello"


# ----- other vocabularies -----


@pytest.mark.parametrize(
    "texts",
    [
        ["привет мир", "съешь же ещё этих мягких французских булок"],
        ["café naïve", "ñandú über straße", "élève à côté"],
    ],
)
def test_multilingual_round_trip(tmp_path, texts):
    letters = sorted({c for text in texts for c in text if c != " "})
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: 5 + i for i, c in enumerate(letters)}}
    tokenizer = HfWav2Vec2CTCTokenizer(write_vocab(tmp_path, vocab))
    rng = random.Random(3)
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        assert UNK not in ids and len(ids) == len(text)
        assert tokenizer.decode(ids, group_tokens=False) == text
        for _ in range(20):
            assert tokenizer.decode(ctc_expand(rng, ids)) == text
    # and through save/load, with the file kept readable (not \u-escaped)
    tokenizer.save_pretrained(tmp_path / "saved")
    assert letters[-1] in (tmp_path / "saved" / "vocab.json").read_text(encoding="utf-8")
    reloaded = HfWav2Vec2CTCTokenizer.from_pretrained(tmp_path / "saved")
    assert reloaded(texts[0])["input_ids"] == tokenizer(texts[0])["input_ids"]


def test_multi_character_tokens_are_not_split(tmp_path):
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "c": 5, "h": 6, "ch": 7, "a": 8}
    tokenizer = HfWav2Vec2CTCTokenizer(write_vocab(tmp_path, vocab))
    assert tokenizer("cha ca")["input_ids"] == [7, 8, 4, 5, 8]
    assert tokenizer.decode([7, 7, 0, 8, 4, 5, 8]) == "cha ca"


def test_vocabulary_errors(tmp_path):
    no_unk = write_vocab(tmp_path, {"<pad>": 0, "|": 1, "A": 2})
    with pytest.raises(ValueError, match="not in the vocabulary"):
        HfWav2Vec2CTCTokenizer(no_unk)("AB")
    nested = write_vocab(tmp_path, {"eng": EN_VOCAB, "fra": EN_VOCAB})
    with pytest.raises(ValueError, match="target_lang"):
        HfWav2Vec2CTCTokenizer(nested)
    assert HfWav2Vec2CTCTokenizer(nested, target_lang="fra").decode([11, 10]) == "HI"
    duplicate = write_vocab(tmp_path, {"<pad>": 0, "A": 0})
    with pytest.raises(ValueError, match="share an id"):
        HfWav2Vec2CTCTokenizer(duplicate)


# ----- saving -----


def test_save_and_load_round_trip(tmp_path, vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(vocab_file, replace_word_delimiter_char="_", do_lower_case=True)
    tokenizer.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "HfWav2Vec2CTCTokenizer"
    assert config["word_delimiter_token"] == "|" and config["replace_word_delimiter_char"] == "_"
    assert json.loads((tmp_path / "saved" / "vocab.json").read_text()) == EN_VOCAB
    loaded = HfWav2Vec2CTCTokenizer.from_pretrained(tmp_path / "saved")
    assert loaded.do_lower_case is True and loaded.replace_word_delimiter_char == "_"
    frames = [11, 10, SEP, PAD, 6, 11, 5, 13, 5]
    assert loaded.decode(frames) == tokenizer.decode(frames) == "hi_there"
    assert loaded.decode(frames, output_word_offsets=True).word_offsets[1]["word"] == "there"
    # transformers reads our directory too
    theirs = Wav2Vec2CTCTokenizer.from_pretrained(tmp_path / "saved")
    assert theirs.get_vocab() == loaded.get_vocab()


def test_register_for_auto_class_writes_auto_map(tmp_path, vocab_file, monkeypatch):
    monkeypatch.setattr(HfWav2Vec2CTCTokenizer, "_auto_class", None)
    HfWav2Vec2CTCTokenizer.register_for_auto_class("AutoTokenizer")
    HfWav2Vec2CTCTokenizer(vocab_file).save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_hf_wav2vec2.HfWav2Vec2CTCTokenizer"
    assert (tmp_path / "saved" / "tokenization_hf_wav2vec2.py").exists()


# ----- convert_tokens_to_string (transformers' signature and dict result) -----


def test_convert_tokens_to_string_is_ctc_text_like_transformers(tokenizers):
    ours, theirs = tokenizers
    cases = [
        ["A", "B", "|", "C"],
        ["<pad>", "T", "T", "H", "E", "<pad>", "|", "C", "A", "R", "<pad>", "R", "Y", "<pad>"],
        ["H", "E", "L", "L", "O"],
    ]
    for tokens in cases:
        for kwargs in (
            {},
            {"group_tokens": False},
            {"spaces_between_special_tokens": True},
            {"output_char_offsets": True},
            {"output_word_offsets": True},
            {"output_char_offsets": True, "output_word_offsets": True, "group_tokens": False},
        ):
            got = ours.convert_tokens_to_string(tokens, **kwargs)
            expected = theirs.convert_tokens_to_string(tokens, **kwargs)
            assert set(got) == {"text", "char_offsets", "word_offsets"} and got["text"] == expected["text"]
            for key in ("char_offsets", "word_offsets"):
                if expected[key] is None:
                    assert got[key] is None, (tokens, kwargs, key)
                else:
                    assert got[key] == as_int(expected[key]), (tokens, kwargs, key)
    assert ours.convert_tokens_to_string(["A", "B", "|", "C"])["text"] == "AB C"
    # Where transformers leaves doubled or leading spaces, the text is decode()'s (one space per word break).
    doubled = ["|", "A", "|", "<pad>", "|", "B"]
    assert theirs.convert_tokens_to_string(doubled)["text"] == "A  B"
    assert ours.convert_tokens_to_string(doubled)["text"] == "A B"
    assert ours.convert_tokens_to_string([]) == theirs.convert_tokens_to_string([])


def test_convert_tokens_to_string_agrees_with_decode(tokenizers):
    ours, _ = tokenizers
    rng = random.Random(5)
    for trial in range(200):
        frames = random_ctc_frames(rng, rng.randint(1, 40), with_specials=trial % 2 == 1)
        tokens = ours.convert_ids_to_tokens(frames)
        for group_tokens in (True, False):
            got = ours.convert_tokens_to_string(tokens, group_tokens=group_tokens, output_word_offsets=True)
            decoded = ours.decode(
                frames, group_tokens=group_tokens, skip_special_tokens=False, output_word_offsets=True
            )
            assert got["text"] == decoded.text and got["word_offsets"] == decoded.word_offsets, frames


def test_decode_spaces_between_special_tokens_like_transformers(tokenizers):
    ours, theirs = tokenizers
    frames = [PAD, 6, 11, 5, SEP, 19, 7, 13, PAD, 13, 22]  # "THE CARRY"
    expected = theirs.decode(frames, spaces_between_special_tokens=True)
    assert ours.decode(frames, spaces_between_special_tokens=True) == expected == "T H E   C A R R Y"
    assert ours.batch_decode([frames], spaces_between_special_tokens=True) == [expected]


# ----- nested (multilingual, MMS-style) vocabularies -----

ENG = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "a": 5, "b": 6, "c": 7, "h": 8, "ch": 9}
FRA = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "é": 5, "a": 6, "ou": 7, "o": 8, "u": 9, "b": 10, "c": 11}


@pytest.fixture
def nested_vocab_file(tmp_path):
    (tmp_path / "mms").mkdir()
    return write_vocab(tmp_path / "mms", {"eng": ENG, "fra": FRA})


def assert_same_as_transformers(ours, theirs, texts, frames):
    assert ours.target_lang == theirs.target_lang
    assert ours.vocab_size == theirs.vocab_size and len(ours) == len(theirs)
    assert ours.get_vocab() == theirs.get_vocab()
    assert (ours.pad_token_id, ours.unk_token_id, ours.word_delimiter_token_id) == (
        theirs.pad_token_id,
        theirs.unk_token_id,
        theirs.word_delimiter_token_id,
    )
    ids = list(range(ours.vocab_size))
    assert ours.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
    for text in texts:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text
    assert ours.decode(frames) == theirs.decode(frames)


def test_set_target_lang_like_transformers(nested_vocab_file):
    ours = HfWav2Vec2CTCTokenizer(nested_vocab_file, target_lang="eng")
    theirs = Wav2Vec2CTCTokenizer(nested_vocab_file, target_lang="eng")
    eng_texts, eng_frames = ["cha bac", "ch", "bacha hab"], [9, 9, PAD, 5, SEP, 6, 5, 7]
    # multi-character tokens never next to a space: transformers strips the delimiter there (see the next test)
    fra_texts, fra_frames = ["cou", "bé cou", "boué a"], [11, PAD, 7, 7, SEP, 10, 5, PAD, 5]
    assert_same_as_transformers(ours, theirs, eng_texts, eng_frames)
    assert ours.decode(eng_frames) == "cha bac"
    for tokenizer in (ours, theirs):
        tokenizer.set_target_lang("fra")
    assert_same_as_transformers(ours, theirs, fra_texts, fra_frames)
    assert ours.vocab_size == len(FRA) and ours.get_vocab() == FRA
    assert ours("cou é")["input_ids"] == [11, 7, SEP, 5]  # "ou" is one token, "ch" is not a token any more
    assert ours("ch")["input_ids"] == [11, UNK]
    assert ours.decode(fra_frames) == "cou béé"  # the blank between the two é keeps both
    for tokenizer in (ours, theirs):
        tokenizer.set_target_lang("eng")
    assert_same_as_transformers(ours, theirs, eng_texts, eng_frames)
    assert ours.get_vocab() == ENG and ours.convert_ids_to_tokens([7, 9]) == ["c", "ch"]


def test_set_target_lang_keeps_the_delimiter_after_a_multi_character_token(nested_vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(nested_vocab_file, target_lang="eng")
    tokenizer.set_target_lang("fra")
    ids = tokenizer("bou é")["input_ids"]
    assert ids == [10, 7, SEP, 5]
    assert tokenizer.decode(ids, group_tokens=False) == "bou é"


def test_set_target_lang_errors(nested_vocab_file, vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(nested_vocab_file, target_lang="eng")
    with pytest.raises(ValueError, match=r"'deu' is not a language of vocab.json; it has 'eng', 'fra'"):
        tokenizer.set_target_lang("deu")
    assert tokenizer.target_lang == "eng" and tokenizer.get_vocab() == ENG  # unchanged
    with pytest.raises(ValueError, match="single vocabulary"):
        HfWav2Vec2CTCTokenizer(vocab_file).set_target_lang("eng")
    with pytest.raises(ValueError, match=r"pass target_lang, one of 'eng', 'fra'"):
        HfWav2Vec2CTCTokenizer(nested_vocab_file)
    with pytest.raises(ValueError, match=r"target_lang='xx' is not a language"):
        HfWav2Vec2CTCTokenizer(nested_vocab_file, target_lang="xx")


def test_long_language_lists_are_shortened(tmp_path):
    nested = write_vocab(tmp_path, {f"l{i:03d}": ENG for i in range(300)})
    with pytest.raises(ValueError, match=r"'l019', \.\.\. \(300 languages\)\.$") as error:
        HfWav2Vec2CTCTokenizer(nested)
    assert "'l020'" not in str(error.value)


def test_nested_vocab_save_and_load_round_trip(tmp_path, nested_vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(nested_vocab_file, target_lang="eng")
    tokenizer.set_target_lang("fra")
    tokenizer.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "vocab.json").read_text(encoding="utf-8")) == {"eng": ENG, "fra": FRA}
    assert json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())["target_lang"] == "fra"
    loaded = HfWav2Vec2CTCTokenizer.from_pretrained(tmp_path / "saved")
    assert loaded.target_lang == "fra" and loaded.get_vocab() == FRA
    assert loaded("cou é")["input_ids"] == tokenizer("cou é")["input_ids"]
    theirs = Wav2Vec2CTCTokenizer.from_pretrained(tmp_path / "saved")
    assert theirs.target_lang == "fra" and theirs.get_vocab() == loaded.get_vocab()

    # The saved added tokens carry French ids; loading as English must not keep them.
    english = HfWav2Vec2CTCTokenizer.from_pretrained(tmp_path / "saved", target_lang="eng")
    assert english.get_vocab() == ENG and len(english) == len(ENG)
    assert english("cha")["input_ids"] == [9, 5] and english.decode([7, 9]) == "cch"
    english.set_target_lang("fra")
    assert english.get_vocab() == FRA


def test_set_target_lang_keeps_user_added_tokens(nested_vocab_file):
    tokenizer = HfWav2Vec2CTCTokenizer(nested_vocab_file, target_lang="eng")
    tokenizer.add_tokens(["<laugh>"])
    laugh = tokenizer.convert_tokens_to_ids("<laugh>")
    assert laugh == len(ENG)
    tokenizer.set_target_lang("fra")  # FRA uses ids up to 11, so <laugh> (id 10) collides and is dropped
    assert "<laugh>" not in tokenizer.get_vocab() and tokenizer.convert_ids_to_tokens(10) == "b"
    tokenizer.add_tokens(["<laugh>"])
    assert tokenizer.convert_tokens_to_ids("<laugh>") == len(FRA)
    tokenizer.set_target_lang("eng")  # id 12 is free in ENG: kept
    assert tokenizer.convert_tokens_to_ids("<laugh>") == len(FRA) and tokenizer("a<laugh>")["input_ids"] == [5, 12]


def test_set_target_lang_with_sparse_vocabularies_without_special_tokens(tmp_path):
    # Ids with gaps and no special tokens in the file: the base class gives the special tokens ids 2..6 under "eng",
    # and "ita" uses id 6 for a letter.
    nested = {"eng": {"a": 7, "b": 8}, "spa": {"a": 23, "c": 88}, "ita": {"a": 6, "d": 9}}
    ours = HfWav2Vec2CTCTokenizer(write_vocab(tmp_path, nested), target_lang="eng")
    theirs = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), target_lang="eng")
    for language, frames in (("eng", [7, 8, 7]), ("spa", [23, 88, 23]), ("ita", [6, 9, 9]), ("eng", [7, 7, 8])):
        for tokenizer in (ours, theirs):
            tokenizer.set_target_lang(language)
        assert ours.encoder == theirs.encoder == nested[language]
        assert ours.decode(frames) == theirs.decode(frames), language
    assert ours.decode([6, 9, 9]) != "ad"  # back in "eng", where 6 is a special token
    ours.set_target_lang("ita")
    assert ours.decode([6, 9, 9]) == "ad" and ours.convert_ids_to_tokens(6) == "a"
    # the word delimiter moved to a free id instead of sharing "a"'s (transformers drops it: id None)
    assert ours.word_delimiter_token_id == 10 and ours("ad a")["input_ids"] == [6, 9, 10, 6]
    ours.save_pretrained(tmp_path / "saved")
    reloaded = HfWav2Vec2CTCTokenizer.from_pretrained(tmp_path / "saved")
    assert reloaded.target_lang == "ita" and reloaded.decode([6, 9, 9]) == "ad"
    assert reloaded("ad a")["input_ids"] == [6, 9, 10, 6]


def test_folder_without_vocab_names_the_folder_and_the_fix(tmp_path):
    # a model saved without its processor (README's "Load" snippet before it saved the processor too)
    from conftest import tiny_config
    from transformers import pipeline

    from hf_wav2vec2 import HfWav2Vec2ForCTC

    HfWav2Vec2ForCTC(tiny_config()).save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match=r"model: no vocab\.json.*processor\.save_pretrained"):
        HfWav2Vec2CTCTokenizer.from_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match=r"no vocab\.json.*processor\.save_pretrained"):
        pipeline("automatic-speech-recognition", model=str(tmp_path / "model"))
