"""Character vocabularies for CTC fine-tuning, for any language and script.

A wav2vec 2.0 CTC model predicts one character (or the blank) per 20 ms frame, so its output vocabulary is simply
the set of characters of the training transcripts after normalization, plus a few special tokens. This module

* normalizes transcripts (:func:`normalize_text` with :class:`TextNormalization`): Unicode normalization form, case,
  punctuation (any Unicode ``P*`` category, so "¿", "«", "、" and "।" count, not only ASCII), digits, explicitly
  dropped characters and whitespace; the same options must be applied to evaluation references, otherwise WER
  measures the normalization instead of the model;
* builds the vocabulary (:func:`build_vocab`) in the layout of transformers' ``Wav2Vec2CTCTokenizer``: ``<pad>`` = 0
  (the CTC blank, matching ``pad_token_id=0`` of the model config), ``<s>`` = 1, ``</s>`` = 2, ``<unk>`` = 3, the
  word delimiter ``|`` = 4 (standing for a space), then the characters in code point order, so that the same
  transcripts always give the same ids whatever order they come in;
* writes it as ``vocab.json`` (:func:`write_vocab`), which ``HfWav2Vec2CTCTokenizer`` reads.

Fine-tuning saves its :class:`TextNormalization` beside the model (``text_normalization.json``,
:meth:`TextNormalization.save_pretrained`), so that evaluating the model later
(:func:`hf_wav2vec2.transcribe.evaluate_model`, ``hf-wav2vec2 evaluate``) scores references cleaned the same way.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
UNK_TOKEN = "<unk>"
WORD_DELIMITER = "|"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)

# Typographic apostrophes that stand for the same letter-like mark as "'" in "don't", "l'homme" or Ukrainian "п'ять".
_APOSTROPHES = "\u2019\u02bc\u2018\u0060\u00b4\u02b9\u2032"

NORMALIZATION_FILE = "text_normalization.json"
CASES = ("lower", "upper", "keep")
DIGIT_MODES = ("keep", "drop")
UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD", None)


@dataclass
class TextNormalization:
    """How transcripts are cleaned before they become CTC labels (and before references are scored).

    Args:
        case: "lower", "upper" or "keep". Case carries no sound, so folding it shrinks the vocabulary.
        unicode_form: Unicode normalization form applied first: "NFC" (default: composes "e" + combining accent
            into one character, so the same letter always gets one id), "NFKC" (also folds compatibility forms:
            full-width letters, ligatures, superscripts), "NFD"/"NFKD", or None to leave text as is.
        strip_punctuation: remove every character of a Unicode punctuation category (``P*``), except those in
            `keep_punctuation`; those in `punctuation_as_space` become spaces instead.
        keep_punctuation: punctuation that is part of words and stays (default: the apostrophe).
        punctuation_as_space: punctuation that separates words and becomes a space when stripping (dashes, slash),
            so "call-forward" gives two words rather than "callforward".
        unify_apostrophes: map typographic apostrophes (’ ʼ ‘ ` ´) to "'" first, so one apostrophe reaches the
            vocabulary.
        digits: "keep" or "drop" digits (any Unicode decimal digit). Spoken numbers are words: transcripts with
            digits are better spelled out before training; dropping them is a last resort.
        drop_chars: characters to delete outright (e.g. "*#" or a symbol that only marks annotations).
        collapse_whitespace: turn any run of whitespace into one space and strip both ends.
    """

    case: str = "lower"
    unicode_form: str | None = "NFC"
    strip_punctuation: bool = True
    keep_punctuation: str = "'"
    punctuation_as_space: str = "-\u2010\u2011\u2012\u2013\u2014\u2015/"
    unify_apostrophes: bool = True
    digits: str = "keep"
    drop_chars: str = ""
    collapse_whitespace: bool = True

    def __post_init__(self):
        if self.case not in CASES:
            raise ValueError(f"case must be one of {CASES}, got {self.case!r}")
        if self.digits not in DIGIT_MODES:
            raise ValueError(f"digits must be one of {DIGIT_MODES}, got {self.digits!r}")
        if self.unicode_form is not None and not self.unicode_form:
            self.unicode_form = None  # "" from a command line means "none"
        if self.unicode_form not in UNICODE_FORMS:
            raise ValueError(f"unicode_form must be one of {UNICODE_FORMS}, got {self.unicode_form!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def normalize(self, text: str) -> str:
        """:func:`normalize_text` with these options."""
        return normalize_text(text, self)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the options to ``directory/text_normalization.json`` (this package's own file, rewritten)."""
        path = Path(directory) / NORMALIZATION_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> TextNormalization | None:
        """The options saved in ``directory`` by :meth:`save_pretrained`, or None when it has none (a Hub id, a
        model saved before fine-tuning wrote the file). A damaged file is a one-line ``ValueError`` naming it."""
        path = Path(directory) / NORMALIZATION_FILE
        if not path.is_file():
            return None
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object of normalization options, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{path}: unknown normalization option(s) {', '.join(unknown)}")
        for option in fields(cls):
            value = values.get(option.name, option.default)
            if not isinstance(value, type(option.default)) and not (option.name == "unicode_form" and value is None):
                raise ValueError(f"{path}: {option.name} must be a {type(option.default).__name__}, got {value!r}")
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def normalize_text(text: str, options: TextNormalization | None = None) -> str:
    """Normalize one transcript with `options` (default :class:`TextNormalization`)."""
    options = options or TextNormalization()
    if options.unicode_form:
        text = unicodedata.normalize(options.unicode_form, text)
    if options.unify_apostrophes:
        text = text.translate({ord(char): "'" for char in _APOSTROPHES})
    if options.case == "lower":
        text = text.lower()
    elif options.case == "upper":
        text = text.upper()

    drop = set(options.drop_chars)
    out = []
    for char in text:
        if char in drop:
            continue
        if options.digits == "drop" and char.isdecimal():
            continue
        if options.strip_punctuation and _is_punctuation(char) and char not in options.keep_punctuation:
            if char in options.punctuation_as_space:
                out.append(" ")
            continue
        if unicodedata.category(char) == "Cc":
            # Control characters (tabs, newlines, ...) are never labels; whitespace ones separate words.
            out.append(" " if char.isspace() else "")
            continue
        out.append(char)
    text = "".join(out)
    if options.unicode_form and options.case != "keep":
        # case mapping can decompose ("İ".lower() is "i" + a combining dot): bring the text back to the form
        text = unicodedata.normalize(options.unicode_form, text)
    if options.collapse_whitespace:
        text = " ".join(text.split())
    return text


def count_characters(transcripts: Iterable[str], options: TextNormalization | None = None) -> Counter:
    """Characters of the normalized `transcripts` with their counts; a space stands for a word break."""
    counts = Counter()
    for text in transcripts:
        counts.update(normalize_text(text, options))
    return counts


def build_vocab(
    transcripts: Iterable[str],
    options: TextNormalization | None = None,
    min_count: int = 1,
    extra_chars: Iterable[str] = (),
) -> dict[str, int]:
    """Build the token -> id vocabulary of the normalized `transcripts`.

    Args:
        transcripts: the training transcripts (raw; they are normalized with `options` here).
        options: the normalization, the same as later applied to labels and evaluation references.
        min_count: characters seen fewer times are left out (they become ``<unk>``): a handful of stray foreign
            letters in a small corpus would otherwise get output units that can never be learned.
        extra_chars: characters to include even if unseen (e.g. letters known to occur only in the test set).

    Returns:
        ``{"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, <characters in code point order>...}``.
    """
    counts = count_characters(transcripts, options)
    chars = {char for char, count in counts.items() if count >= min_count}
    chars.update(extra_chars)
    chars.discard(" ")  # the word delimiter stands for it
    reserved = set(SPECIAL_TOKENS) | {WORD_DELIMITER}
    clash = reserved & chars
    if clash:
        # "|" in a transcript would silently become a word break; make the caller drop or replace it.
        raise ValueError(f"transcripts contain {sorted(clash)}, reserved for special tokens; add them to drop_chars")
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    vocab[WORD_DELIMITER] = len(vocab)
    for char in sorted(chars):
        vocab[char] = len(vocab)
    return vocab


class TranscriptWarning(UserWarning):
    """Transcripts that would train on ``<unk>`` or all-blank CTC targets (see :func:`check_transcripts`)."""


@dataclass
class TranscriptCheck:
    """Which transcripts of a split make poor CTC targets, by index: ``out_of_vocabulary`` ones have characters the
    vocabulary lacks (the tokenizer turns them into ``<unk>``, a target the model is taught to emit for any odd
    sound), ``empty`` ones are nothing after normalization (punctuation only: an all-blank target)."""

    num_transcripts: int
    out_of_vocabulary: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    unknown_chars: Counter = field(default_factory=Counter)

    @property
    def bad(self) -> list[int]:
        return sorted(set(self.out_of_vocabulary) | set(self.empty))


def check_transcripts(
    transcripts: Iterable[str], vocab: Iterable[str], options: TextNormalization | None = None
) -> TranscriptCheck:
    """Normalize `transcripts` with `options` and find those that are empty or use characters outside `vocab` (the
    tokenizer's tokens; a space is the word delimiter ``|``)."""
    known = set(vocab)
    if WORD_DELIMITER in known:
        known.add(" ")
    check = TranscriptCheck(0)
    for index, text in enumerate(transcripts):
        check.num_transcripts += 1
        normalized = normalize_text(text, options)
        if not normalized.strip():
            check.empty.append(index)
            continue
        unknown = [char for char in normalized if char not in known]
        if unknown:
            check.out_of_vocabulary.append(index)
            check.unknown_chars.update(unknown)
    return check


def write_vocab(vocab: dict[str, int], directory: str | Path, filename: str = "vocab.json") -> Path:
    """Write `vocab` as JSON (UTF-8, non-ASCII characters kept readable) and return the file's path."""
    path = Path(directory) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = dict(sorted(vocab.items(), key=lambda item: item[1]))
    path.write_text(json.dumps(ordered, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def tokenizer_kwargs() -> dict:
    """Constructor arguments of ``HfWav2Vec2CTCTokenizer`` matching the vocabularies built here."""
    return {
        "pad_token": PAD_TOKEN,
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "unk_token": UNK_TOKEN,
        "word_delimiter_token": WORD_DELIMITER,
        "do_lower_case": False,
    }


__all__ = [
    "NORMALIZATION_FILE",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "UNK_TOKEN",
    "WORD_DELIMITER",
    "TextNormalization",
    "TranscriptCheck",
    "TranscriptWarning",
    "build_vocab",
    "check_transcripts",
    "count_characters",
    "normalize_text",
    "tokenizer_kwargs",
    "write_vocab",
]
