"""Character tokenizer and CTC decoder of wav2vec 2.0.

The vocabulary is a ``vocab.json`` of characters (plus ``<pad>``, ``<s>``, ``</s>``, ``<unk>`` and the word
delimiter ``|``), as written by transformers' ``Wav2Vec2CTCTokenizer``; its constructor arguments and saved files are
the same, so tokenizers move between the two packages.

Decoding differs from transformers where transformers gets CTC wrong:

* ``skip_special_tokens=True`` in transformers removes the blank (``<pad>``) *before* collapsing repeats, so
  ``H E L <pad> L O`` decodes to "HELO"; here repeats are always collapsed first and the blank dropped afterwards;
* ``<s>``, ``</s>``, ``<unk>`` never appear in a CTC transcript (transformers' ASR pipeline decodes with
  ``skip_special_tokens=False`` and so leaks them);
* leading, trailing and repeated word delimiters do not produce extra spaces.
"""

import json
import os
from dataclasses import dataclass
from itertools import groupby

from transformers import AddedToken
from transformers.tokenization_python import PreTrainedTokenizer, Trie
from transformers.utils import ModelOutput, logging, to_py_obj

logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}

Offsets = list[dict[str, str | int]]


@dataclass
class HfWav2Vec2CTCTokenizerOutput(ModelOutput):
    """Decoded text with frame offsets (the fields of transformers' ``Wav2Vec2CTCTokenizerOutput``).

    Args:
        text (`str` or `list[str]`): the transcript(s).
        char_offsets: per character, ``{"char", "start_offset", "end_offset"}`` in frames (end exclusive); one entry
            per character of `text` (a word break is one `replace_word_delimiter_char` entry).
        word_offsets: per word, ``{"word", "start_offset", "end_offset"}`` in frames.
    """

    text: str | list[str] = None
    char_offsets: Offsets | list[Offsets] | None = None
    word_offsets: Offsets | list[Offsets] | None = None


class HfWav2Vec2CTCTokenizer(PreTrainedTokenizer):
    r"""Character-level tokenizer for CTC labels and greedy CTC decoding.

    Encoding (`tokenizer(text)` / `tokenizer(text_target=text)`) returns ``{"input_ids", "attention_mask"}`` with one id
    per character, no `<s>`/`</s>` added: runs of whitespace become one word delimiter, leading and trailing whitespace
    is dropped, and characters missing from the vocabulary become `<unk>`.

    Decoding (`decode`, `batch_decode`) has two modes:

    * ``group_tokens=True`` (default, for model predictions): CTC collapse. Consecutive equal ids are merged, then the
      blank (`pad_token`) and every other special token (`<s>`, `</s>`, `<unk>`, ids outside the vocabulary, negative
      ids) are removed, whatever `skip_special_tokens` says: they carry no character, and callers such as
      transformers' ASR pipeline pass ``skip_special_tokens=False``.
    * ``group_tokens=False`` (for labels): every id is a character, so "CARRY" stays "CARRY". Padding (`pad_token`
      and negative ids such as -100) is always removed; the other special tokens are removed unless
      ``skip_special_tokens=False``.

    In both modes word delimiters become `replace_word_delimiter_char`, with no leading, trailing or doubled ones.
    `convert_tokens_to_string(tokens, ...)` decodes token strings the same way and returns transformers' dict
    ``{"text", "char_offsets", "word_offsets"}``; ``spaces_between_special_tokens=True`` joins the characters with
    spaces, as in transformers.

    Args:
        vocab_file (`str`): path of the ``vocab.json`` (token -> id; or language -> vocabulary with `target_lang`).
        bos_token (`str`, defaults to "<s>"), eos_token (`str`, defaults to "</s>"): never added when encoding.
        unk_token (`str`, defaults to "<unk>"): id for characters outside the vocabulary.
        pad_token (`str`, defaults to "<pad>"): padding, and the CTC blank.
        word_delimiter_token (`str`, defaults to "|"): the token standing for a space between words.
        replace_word_delimiter_char (`str`, defaults to " "): what a word delimiter decodes to.
        do_lower_case (`bool`, defaults to False): transformers' meaning: the vocabulary is upper case, so input text
            is upper-cased before lookup and decoded text is lower-cased.
        target_lang (`str`, *optional*): the language to use from a nested multilingual (MMS-style) ``vocab.json``
            of the form ``{"eng": {"<pad>": 0, ...}, "fra": {...}}``; required for such a file, and switched later
            with :meth:`set_target_lang`.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        word_delimiter_token="|",
        replace_word_delimiter_char=" ",
        do_lower_case=False,
        target_lang=None,
        **kwargs,
    ):
        if vocab_file is None:  # from_pretrained of a folder that holds a model but no tokenizer files
            where = kwargs.get("name_or_path") or "the model folder"
            # FileNotFoundError would be an OSError, which transformers replaces with a message naming no file
            raise ValueError(
                f"{where}: no vocab.json, so there is no tokenizer to decode with; save the processor beside the "
                "model (processor.save_pretrained(DIR)) or pass tokenizer=/processor= explicitly"
            )
        with open(vocab_file, encoding="utf-8") as handle:
            self.vocab = json.load(handle)
        self._vocab_file_name = os.path.basename(vocab_file)
        self.encoder = _select_vocabulary(self.vocab, target_lang, vocab_file)
        self.decoder = {index: token for token, index in self.encoder.items()}
        self.replace_word_delimiter_char = replace_word_delimiter_char
        self.do_lower_case = do_lower_case
        self.target_lang = target_lang
        kwargs.setdefault("special_tokens_pattern", "none")  # CTC labels carry no <s>/</s>

        # The base class registers word_delimiter_token as a model-specific special token, which gives
        # `tokenizer.word_delimiter_token(_id)` and saves it in tokenizer_config.json, as transformers does.
        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            unk_token=unk_token,
            pad_token=pad_token,
            word_delimiter_token=word_delimiter_token,
            replace_word_delimiter_char=replace_word_delimiter_char,
            do_lower_case=do_lower_case,
            target_lang=target_lang,
            **kwargs,
        )
        if self._is_multilingual:
            # A saved tokenizer_config.json lists its added tokens with the ids of the language it was saved in.
            self._sync_added_tokens()
        self._add_multi_char_tokens()

    # ----- vocabulary -----

    @property
    def _is_multilingual(self) -> bool:
        return self.encoder is not self.vocab

    def set_target_lang(self, target_lang: str):
        """Switch to the vocabulary of `target_lang` in a nested multilingual (MMS-style) ``vocab.json``.

        Encoding, decoding, `vocab_size` and the special token ids follow the new language, and `save_pretrained`
        records it as the tokenizer's `target_lang`. The model's output layer must be switched with it (for MMS,
        ``model.load_adapter(target_lang)``).
        """
        if not self._is_multilingual:
            raise ValueError(
                f"set_target_lang({target_lang!r}): {self._vocab_file_name} holds a single vocabulary, not one per "
                "language."
            )
        if target_lang not in self.vocab:
            raise ValueError(
                f"set_target_lang: {target_lang!r} is not a language of {self._vocab_file_name}; it has "
                f"{_language_list(self.vocab)}."
            )
        self.encoder = _select_vocabulary(self.vocab, target_lang, self._vocab_file_name)
        self.decoder = {index: token for token, index in self.encoder.items()}
        self.target_lang = target_lang
        self.init_kwargs["target_lang"] = target_lang
        self._sync_added_tokens()
        self._add_multi_char_tokens()

    def _sync_added_tokens(self):
        """Give the added tokens the ids of the current language.

        The base class keeps special tokens and multi-character graphemes as added tokens, with the ids of the
        language they were added under. Those that the current language has take its ids; those of other languages
        go. Tokens the user added keep their ids unless the current vocabulary uses them.
        """
        any_language = {token for vocabulary in self.vocab.values() for token in vocabulary}
        kept = {}
        for index, token in sorted(self._added_tokens_decoder.items()):
            if token.content in self.encoder:
                kept[self.encoder[token.content]] = token
            elif token.content not in any_language and index not in self.decoder:
                kept[index] = token
        # Special tokens the language lacks get ids after every id in use, as the base class gives them at init
        # (which counts tokens instead, and so would reuse an id of a vocabulary with gaps).
        next_id = max([*self.decoder, *kept], default=-1) + 1
        for content in self.all_special_tokens:
            if content not in self.encoder and all(token.content != content for token in kept.values()):
                kept[next_id] = AddedToken(content, rstrip=False, lstrip=False, normalized=False, special=True)
                next_id += 1
        self._added_tokens_decoder = kept
        self._added_tokens_encoder = {token.content: index for index, token in kept.items()}
        self.tokens_trie = Trie()  # the trie only ever grows: rebuild it without the dropped tokens
        self._update_trie()
        self._update_total_vocab_size()

    def _add_multi_char_tokens(self):
        # Multi-character vocabulary entries (graphemes such as "ch") must be matched whole, not split into letters.
        multi_char = [token for token in self.encoder if len(token) > 1 and token not in self._added_tokens_encoder]
        if multi_char:
            self.add_tokens([AddedToken(token, normalized=False) for token in multi_char])

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self.encoder)
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _convert_token_to_id(self, token: str) -> int:
        if token in self.encoder:
            return self.encoder[token]
        unk_id = self.encoder.get(str(self.unk_token))
        if unk_id is None:
            raise ValueError(f"{token!r} is not in the vocabulary, which has no unk token ({self.unk_token!r}) either.")
        return unk_id

    def _convert_id_to_token(self, index: int) -> str:
        return self.decoder.get(index, str(self.unk_token))

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory.")
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        path = os.path.join(save_directory, name)
        vocab = self.vocab
        if vocab is self.encoder:
            vocab = dict(sorted(vocab.items(), key=lambda item: item[1]))  # id order reads better than key order
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(vocab, indent=2, ensure_ascii=False) + "\n")
        return (path,)

    # ----- encoding -----

    def prepare_for_tokenization(self, text, is_split_into_words=False, **kwargs):
        # Collapsing whitespace here, before the base class splits around added tokens, keeps one delimiter per
        # word break and none at the ends.
        text = " ".join(text.split())
        if is_split_into_words:
            text = " " + text  # words are tokenized one by one: the leading delimiter separates them
        return text, kwargs

    def _tokenize(self, text, **kwargs) -> list[str]:
        if self.do_lower_case:
            text = text.upper()
        delimiter = self.word_delimiter_token
        return [delimiter if char == " " else char for char in text]

    # ----- decoding -----

    def decode(
        self,
        token_ids,
        skip_special_tokens: bool = True,
        clean_up_tokenization_spaces: bool | None = None,
        group_tokens: bool = True,
        output_char_offsets: bool = False,
        output_word_offsets: bool = False,
        **kwargs,
    ):
        """Turn ids (list, numpy array or tensor; one sequence, or a batch which goes to `batch_decode`) into text.

        Args:
            token_ids: the ids; for model predictions, the argmax over the vocabulary of each frame.
            skip_special_tokens: only used with ``group_tokens=False`` (see the class docstring).
            clean_up_tokenization_spaces: apply transformers' `clean_up_tokenization` to the text (not the offsets);
                defaults to the tokenizer's setting (False).
            group_tokens: CTC decoding (True) or one character per id, for labels (False).
            output_char_offsets / output_word_offsets: also return frame offsets of characters / words.
            spaces_between_special_tokens: join the characters with spaces (transformers' meaning for CTC).

        Returns:
            `str`, or an `HfWav2Vec2CTCTokenizerOutput` when offsets are requested.
        """
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        options = (
            skip_special_tokens,
            clean_up_tokenization_spaces,
            group_tokens,
            output_char_offsets,
            output_word_offsets,
        )
        is_batch = bool(token_ids) and isinstance(token_ids[0], (list, tuple))
        return (self.batch_decode if is_batch else self._decode)(token_ids, *options, **kwargs)

    def batch_decode(
        self,
        sequences,
        skip_special_tokens: bool = True,
        clean_up_tokenization_spaces: bool | None = None,
        group_tokens: bool = True,
        output_char_offsets: bool = False,
        output_word_offsets: bool = False,
        **kwargs,
    ):
        """`decode` each sequence of a batch (list of lists, 2-D array or tensor, e.g. a padded label batch).

        Returns a list of strings, or one `HfWav2Vec2CTCTokenizerOutput` holding lists when offsets are requested.
        """
        options = (
            skip_special_tokens,
            clean_up_tokenization_spaces,
            group_tokens,
            output_char_offsets,
            output_word_offsets,
        )
        decoded = [self._decode(sequence, *options, **kwargs) for sequence in to_py_obj(sequences)]
        if not (output_char_offsets or output_word_offsets):
            return decoded
        return HfWav2Vec2CTCTokenizerOutput(
            text=[item.text for item in decoded],
            char_offsets=[item.char_offsets for item in decoded] if output_char_offsets else None,
            word_offsets=[item.word_offsets for item in decoded] if output_word_offsets else None,
        )

    def convert_tokens_to_string(
        self,
        tokens: list[str],
        group_tokens: bool = True,
        spaces_between_special_tokens: bool = False,
        output_char_offsets: bool = False,
        output_word_offsets: bool = False,
    ) -> dict:
        """CTC-decode tokens (as `convert_ids_to_tokens` gives them) into text: transformers' signature and result.

        Returns ``{"text", "char_offsets", "word_offsets"}`` (offsets None unless asked for; frames as in `decode`),
        so ``["A", "B", "|", "C"]`` gives the text "AB C". The text is that of
        ``decode(convert_tokens_to_ids(tokens), skip_special_tokens=False, ...)``.
        """
        if len(tokens) == 0:
            return {"text": "", "char_offsets": [], "word_offsets": []}
        chars = self._ctc_chars(list(tokens), group_tokens, skip_special_tokens=False)
        text = self._join_chars(chars, spaces_between_special_tokens)
        char_offsets, word_offsets = self._offsets(chars, output_char_offsets, output_word_offsets)
        return {"text": text, "char_offsets": char_offsets, "word_offsets": word_offsets}

    def _decode(
        self,
        token_ids,
        skip_special_tokens: bool,
        clean_up_tokenization_spaces: bool | None,
        group_tokens: bool,
        output_char_offsets: bool,
        output_word_offsets: bool,
        spaces_between_special_tokens: bool = False,
    ):
        """`decode` of one sequence; the options come from `decode` / `batch_decode`, which hold their defaults."""
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        # Negative ids (-100 in padded labels) are placeholders: kept as None so frame positions stay right.
        tokens = [self.convert_ids_to_tokens(int(i)) if int(i) >= 0 else None for i in token_ids]
        chars = self._ctc_chars(tokens, group_tokens, skip_special_tokens)

        text = self._join_chars(chars, spaces_between_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            text = self.clean_up_tokenization(text)
        if not (output_char_offsets or output_word_offsets):
            return text
        char_offsets, word_offsets = self._offsets(chars, output_char_offsets, output_word_offsets)
        return HfWav2Vec2CTCTokenizerOutput(text=text, char_offsets=char_offsets, word_offsets=word_offsets)

    def _ctc_chars(self, tokens: list, group_tokens: bool, skip_special_tokens: bool) -> list[list]:
        """The characters of the transcript as ``[text, start_frame, end_frame, is_delimiter]`` (see the class
        docstring for which tokens are dropped); None tokens are placeholders that only take up a frame."""
        if group_tokens:
            runs = [(token, len(list(group))) for token, group in groupby(tokens)]
        else:
            runs = [(token, 1) for token in tokens]

        delimiter = str(self.word_delimiter_token)
        hidden = set(self.all_special_tokens) - {delimiter}
        if not group_tokens and not skip_special_tokens:
            hidden = set()
        hidden |= {str(self.pad_token), None}  # padding / CTC blank never reaches the text

        chars = []
        frame = 0
        for token, count in runs:
            start, frame = frame, frame + count
            if token in hidden:
                continue
            is_delimiter = token == delimiter or token.isspace()
            if is_delimiter and (not chars or chars[-1][3]):
                if chars:  # a repeated delimiter widens the previous one
                    chars[-1][2] = frame
                continue  # a leading delimiter is dropped
            text = self.replace_word_delimiter_char if is_delimiter else token
            chars.append([text.lower() if self.do_lower_case else text, start, frame, is_delimiter])
        if chars and chars[-1][3]:
            chars.pop()
        return chars

    @staticmethod
    def _join_chars(chars: list[list], spaces_between_special_tokens: bool) -> str:
        # transformers' meaning of the flag for CTC: every character, word break included, is joined with a space.
        return (" " if spaces_between_special_tokens else "").join(char[0] for char in chars)

    def _offsets(self, chars: list[list], with_chars: bool, with_words: bool) -> tuple[Offsets | None, Offsets | None]:
        char_offsets = [{"char": c, "start_offset": s, "end_offset": e} for c, s, e, _ in chars]
        word_offsets = self._get_word_offsets(char_offsets, self.replace_word_delimiter_char) if with_words else None
        return (char_offsets if with_chars else None), word_offsets

    @staticmethod
    def _get_word_offsets(offsets: Offsets, word_delimiter_char: str = " ") -> Offsets:
        """Group character offsets into words at `word_delimiter_char` entries.

        Same name and signature as transformers' method, which its ASR pipeline calls for word timestamps.
        """
        words = []
        current = None
        for offset in offsets:
            if offset["char"] == word_delimiter_char:
                current = None
            elif current is None:
                current = {"word": offset["char"], "start_offset": offset["start_offset"]}
                current["end_offset"] = offset["end_offset"]
                words.append(current)
            else:
                current["word"] += offset["char"]
                current["end_offset"] = offset["end_offset"]
        return words


def _language_list(vocab: dict) -> str:
    """The languages of a nested vocabulary for an error message (MMS has over a thousand)."""
    languages = sorted(vocab)
    shown = ", ".join(repr(language) for language in languages[:20])
    return shown if len(languages) <= 20 else f"{shown}, ... ({len(languages)} languages)"


def _select_vocabulary(vocab: dict, target_lang: str | None, vocab_file: str) -> dict[str, int]:
    """The token -> id table of a plain vocab.json, or of `target_lang` in a nested multilingual one."""
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{vocab_file} must hold a non-empty JSON object mapping tokens to ids.")
    nested = all(isinstance(value, dict) for value in vocab.values())
    if nested:
        if target_lang is None:
            raise ValueError(
                f"{vocab_file} holds one vocabulary per language: pass target_lang, one of {_language_list(vocab)}."
            )
        if target_lang not in vocab:
            raise ValueError(
                f"target_lang={target_lang!r} is not a language of {vocab_file}; it has {_language_list(vocab)}."
            )
        vocab = vocab[target_lang]
    elif target_lang is not None:
        raise ValueError(f"target_lang={target_lang!r} given, but {vocab_file} is not a multilingual vocabulary.")
    if not all(isinstance(index, int) and index >= 0 for index in vocab.values()):
        raise ValueError(f"{vocab_file}: every token must map to a non-negative integer id.")
    if len(set(vocab.values())) != len(vocab):
        raise ValueError(f"{vocab_file}: two tokens share an id.")
    return vocab


__all__ = ["HfWav2Vec2CTCTokenizer", "HfWav2Vec2CTCTokenizerOutput"]
