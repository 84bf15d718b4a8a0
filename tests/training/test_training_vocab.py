"""Transcript normalization and character vocabularies (hf_wav2vec2.training.vocab)."""

import json

import pytest

from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer
from hf_wav2vec2.training.vocab import (
    TextNormalization,
    build_vocab,
    check_transcripts,
    count_characters,
    normalize_text,
    tokenizer_kwargs,
    write_vocab,
)

SPECIALS = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}


class TestNormalizeText:
    def test_default_lowercases_and_strips_punctuation_keeping_apostrophe(self):
        assert normalize_text("Hello, World! Don't panic.") == "hello world don't panic"

    @pytest.mark.parametrize(
        "case, expected", [("lower", "straße ölç"), ("upper", "STRASSE ÖLÇ"), ("keep", "Straße ÖlÇ")]
    )
    def test_case_options(self, case, expected):
        assert normalize_text("Straße ÖlÇ", TextNormalization(case=case)) == expected

    def test_unicode_punctuation_of_other_scripts(self):
        # Spanish inverted marks, guillemets, em dash, Devanagari danda, CJK full stop: all category P*
        assert normalize_text("¿Qué tal?") == "qué tal"
        assert normalize_text("«Привет», — сказал он.") == "привет сказал он"
        assert normalize_text("नमस्ते। धन्यवाद") == "नमस्ते धन्यवाद"
        assert normalize_text("你好。世界") == "你好世界"

    def test_dashes_separate_words(self):
        assert normalize_text("Call-Forward on Busy") == "call forward on busy"
        assert normalize_text("a—b", TextNormalization()) == "a b"

    def test_keep_punctuation_when_not_stripping(self):
        options = TextNormalization(strip_punctuation=False, case="keep")
        assert normalize_text("Hi, there!", options) == "Hi, there!"

    def test_typographic_apostrophes_unified(self):
        assert normalize_text("don’t l’homme п’ять") == "don't l'homme п'ять"
        assert normalize_text("don’t", TextNormalization(unify_apostrophes=False)) == "dont"

    def test_keep_punctuation_option(self):
        assert normalize_text("co-op's", TextNormalization(keep_punctuation="'-")) == "co-op's"
        assert normalize_text("rock'n'roll", TextNormalization(keep_punctuation="")) == "rocknroll"

    def test_digits_keep_or_drop(self):
        assert normalize_text("room 101 ok") == "room 101 ok"
        assert normalize_text("room 101 ok", TextNormalization(digits="drop")) == "room ok"
        # any Unicode decimal digit (Devanagari ४२)
        assert normalize_text("क ४२ ख", TextNormalization(digits="drop")) == "क ख"

    def test_drop_chars(self):
        assert normalize_text("a*b #c", TextNormalization(drop_chars="*#")) == "ab c"

    def test_nfc_composes_accents(self):
        decomposed = "e\u0301te\u0301"  # e + combining acute
        out = normalize_text(decomposed)
        assert out == "\u00e9t\u00e9" and len(out) == 3
        assert len(normalize_text(decomposed, TextNormalization(unicode_form=None))) == 5

    def test_nfkc_folds_compatibility_forms(self):
        assert normalize_text("ﬁne Ｈｅｌｌｏ", TextNormalization(unicode_form="NFKC")) == "fine hello"
        assert normalize_text("ﬁne", TextNormalization(unicode_form="NFC")) == "ﬁne"

    def test_whitespace_collapse(self):
        assert normalize_text("  a \t b\n\nc  ") == "a b c"
        options = TextNormalization(collapse_whitespace=False)
        assert normalize_text("a  b", options) == "a  b"

    def test_invalid_options(self):
        with pytest.raises(ValueError):
            TextNormalization(case="title")
        with pytest.raises(ValueError):
            TextNormalization(digits="spell")
        with pytest.raises(ValueError):
            TextNormalization(unicode_form="NFX")


class TestBuildVocab:
    TEXTS = ("Привет, мир!", "Hello world", "Ça va? Très bien.")

    def test_layout_specials_then_sorted_characters(self):
        vocab = build_vocab(self.TEXTS)
        assert {k: vocab[k] for k in SPECIALS} == SPECIALS
        chars = [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])][5:]
        assert chars == sorted(chars)
        assert set(chars) == set("приветмhelowrdçavtèsbin")
        assert sorted(vocab.values()) == list(range(len(vocab)))
        assert " " not in vocab and "," not in vocab and "!" not in vocab

    def test_independent_of_transcript_order(self):
        assert build_vocab(self.TEXTS) == build_vocab(reversed(self.TEXTS))

    def test_accented_characters_are_single_tokens(self):
        vocab = build_vocab(["cafe\u0301", "café"])  # decomposed and composed forms of the same word
        assert "é" in vocab and "\u0301" not in vocab

    def test_min_count_and_extra_chars(self):
        counts = count_characters(["aaa b", "a"])
        assert counts["a"] == 4 and counts["b"] == 1 and counts[" "] == 1
        vocab = build_vocab(["aaa b", "a"], min_count=2, extra_chars="z")
        assert "a" in vocab and "b" not in vocab and "z" in vocab

    def test_reserved_delimiter_in_text_is_an_error(self):
        with pytest.raises(ValueError, match="drop_chars"):
            build_vocab(["a|b"], TextNormalization(strip_punctuation=False))
        vocab = build_vocab(["a|b"], TextNormalization(strip_punctuation=False, drop_chars="|"))
        assert list(vocab) == [*SPECIALS, "a", "b"]

    def test_written_vocab_works_with_the_tokenizer(self, tmp_path):
        options = TextNormalization()
        vocab = build_vocab(self.TEXTS, options)
        path = write_vocab(vocab, tmp_path)
        assert json.loads(path.read_text(encoding="utf-8")) == vocab
        assert "Привет" not in path.read_text(encoding="utf-8") and "п" in path.read_text(encoding="utf-8")
        tokenizer = HfWav2Vec2CTCTokenizer(str(path), **tokenizer_kwargs())
        assert tokenizer.pad_token_id == 0 and len(tokenizer) == len(vocab)
        text = normalize_text("Привет мир, ça va", options)
        ids = tokenizer(text).input_ids
        assert vocab["|"] in ids and vocab["<unk>"] not in ids
        assert tokenizer.decode(ids, group_tokens=False) == text


class TestSavedNormalization:
    OPTIONS = TextNormalization(
        case="upper",
        unicode_form=None,
        strip_punctuation=True,
        keep_punctuation="'-",
        digits="drop",
        drop_chars="*",
        punctuation_as_space="/",
    )

    def test_round_trip(self, tmp_path):
        path = self.OPTIONS.save_pretrained(tmp_path / "model")
        assert path == tmp_path / "model" / "text_normalization.json"
        loaded = TextNormalization.from_pretrained(tmp_path / "model")
        assert loaded == self.OPTIONS and loaded != TextNormalization()
        text = "Año 2024: l'été* co-op/¿sí?"
        assert loaded.normalize(text) == normalize_text(text, self.OPTIONS) == "AÑO L'ÉTÉ CO-OP SÍ"

    def test_absent_file_or_hub_id_is_none(self, tmp_path):
        assert TextNormalization.from_pretrained(tmp_path) is None
        assert TextNormalization.from_pretrained("facebook/wav2vec2-base-960h") is None  # never asks the Hub

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "expected a JSON object"),
            ('{"case": "lower", "lowercase": true}', "unknown normalization option(s) lowercase"),
            ('{"case": "title"}', "case must be one of"),
            ('{"strip_punctuation": "yes"}', "strip_punctuation must be a bool"),
            ('{"keep_punctuation": null}', "keep_punctuation must be a str"),
        ],
    )
    def test_damaged_file_is_a_one_line_error_naming_it(self, tmp_path, content, message):
        (tmp_path / "text_normalization.json").write_text(content, encoding="utf-8")
        with pytest.raises(ValueError) as error:
            TextNormalization.from_pretrained(tmp_path)
        text = str(error.value)
        assert text.startswith(str(tmp_path / "text_normalization.json")) and message in text and "\n" not in text

    def test_unicode_form_none_is_allowed(self, tmp_path):
        (tmp_path / "text_normalization.json").write_text('{"unicode_form": null}', encoding="utf-8")
        assert TextNormalization.from_pretrained(tmp_path).unicode_form is None


class TestCheckTranscripts:
    def test_finds_unknown_characters_and_empty_targets_after_normalization(self, tmp_path):
        vocab = build_vocab(["abc"])
        check = check_transcripts(["A b", "abé", "¿?", "  ", "ccz z"], vocab, TextNormalization())
        assert check.num_transcripts == 5 and check.out_of_vocabulary == [1, 4] and check.empty == [2, 3]
        assert check.unknown_chars == {"z": 2, "é": 1} and check.bad == [1, 2, 3, 4]
        # the tokenizer agrees: exactly the flagged characters become <unk>
        tokenizer = HfWav2Vec2CTCTokenizer(str(write_vocab(vocab, tmp_path)), **tokenizer_kwargs())
        assert tokenizer("ccz z").input_ids.count(tokenizer.unk_token_id) == 2
        assert tokenizer.unk_token_id not in tokenizer("a b").input_ids

    def test_a_space_is_unknown_without_the_word_delimiter(self):
        vocab = {"<pad>": 0, "<unk>": 1, "a": 2}
        assert check_transcripts(["a a", "aa"], vocab).out_of_vocabulary == [0]
