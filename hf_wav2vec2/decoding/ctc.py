"""CTC vocabulary handling, greedy decoding, and the hypothesis types shared by all decoders.

A CTC vocabulary here is the character vocabulary of a wav2vec 2.0 CTC tokenizer (``vocab.json``), e.g.
``{"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, ...}``: the padding token doubles as the CTC
blank and ``|`` separates words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CTCVocabulary",
    "GreedyCTCDecoder",
    "Hypothesis",
    "WordOffset",
    "greedy_decode",
    "hypothesis_from_frames",
    "to_log_probs",
]


@dataclass(frozen=True)
class WordOffset:
    """A decoded word and the frames it spans: ``start_frame`` inclusive, ``end_frame`` exclusive.

    Frames are output frames of the acoustic model. The span runs from the first frame of the word's first token to
    the last frame of its last token; blanks between them count, blanks around them do not. The times take the
    model's ``frame_duration`` in seconds, :func:`hf_wav2vec2.chunking.frame_duration` of its config and sampling
    rate (0.02 for the released wav2vec 2.0 checkpoints at 16 kHz).
    """

    word: str
    start_frame: int
    end_frame: int

    def start_time(self, frame_duration: float) -> float:
        return self.start_frame * frame_duration

    def end_time(self, frame_duration: float) -> float:
        return self.end_frame * frame_duration


@dataclass
class Hypothesis:
    """One decoding result.

    ``score`` is what the search maximised (acoustic log-probability plus weighted LM terms); ``am_score`` and
    ``lm_score`` are its parts as the decoder reports them (``lm_score`` is 0 without an LM). For greedy
    decoding, ``score == am_score`` is the log-probability of the best path.
    """

    text: str
    words: list[WordOffset] = field(default_factory=list)
    score: float = 0.0
    am_score: float = 0.0
    lm_score: float = 0.0


class CTCVocabulary:
    """Token ids of a CTC character vocabulary and the roles of its special tokens.

    Args:
        vocab: ``{token: id}`` with ids ``0..V-1`` (as in ``vocab.json``), or the tokens in id order.
        blank_token: The CTC blank (``<pad>`` in wav2vec 2.0 tokenizers).
        word_delimiter: The token that separates words (``|``); decoded as a space.
        special_tokens: Tokens never written to text (nor emitted by the beam search). Default: every token
            spelled ``<...>`` other than the blank (``<s>``, ``</s>``, ``<unk>``).
    """

    def __init__(
        self,
        vocab: Mapping[str, int] | Sequence[str],
        blank_token: str = "<pad>",
        word_delimiter: str = "|",
        special_tokens: Iterable[str] | None = None,
    ):
        if isinstance(vocab, Mapping):
            ids = sorted(vocab.values())
            if ids != list(range(len(vocab))):
                raise ValueError(f"vocabulary ids must be 0..{len(vocab) - 1} without gaps or duplicates")
            tokens = [""] * len(vocab)
            for token, idx in vocab.items():
                tokens[idx] = token
        else:
            tokens = list(vocab)
            if len(set(tokens)) != len(tokens):
                raise ValueError("vocabulary tokens must be unique")
        if not tokens:
            raise ValueError("vocabulary is empty")
        self.tokens: list[str] = tokens
        self.token_to_id: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        for role, token in (("blank_token", blank_token), ("word_delimiter", word_delimiter)):
            if token not in self.token_to_id:
                raise ValueError(f"{role} {token!r} is not in the vocabulary")
        if blank_token == word_delimiter:
            raise ValueError("blank_token and word_delimiter must differ")
        self.blank_token = blank_token
        self.word_delimiter = word_delimiter
        self.blank_id = self.token_to_id[blank_token]
        self.delimiter_id = self.token_to_id[word_delimiter]
        if special_tokens is None:
            special = {t for t in tokens if len(t) > 2 and t.startswith("<") and t.endswith(">")}
        else:
            special = set(special_tokens)
            unknown = special - set(tokens)
            if unknown:
                raise ValueError(f"special tokens not in the vocabulary: {sorted(unknown)}")
        special -= {blank_token, word_delimiter}
        self.special_ids: frozenset[int] = frozenset(self.token_to_id[t] for t in special)
        # Tokens that spell words, longest first so multi-character tokens win when spelling.
        self._spelling = sorted(
            (
                t
                for i, t in enumerate(tokens)
                if i not in self.special_ids and i not in (self.blank_id, self.delimiter_id)
            ),
            key=len,
            reverse=True,
        )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> CTCVocabulary:
        """Build from a transformers CTC tokenizer (or processor): its vocab, pad token and word delimiter."""
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps the tokenizer
        kwargs.setdefault("blank_token", tokenizer.pad_token)
        kwargs.setdefault("word_delimiter", getattr(tokenizer, "word_delimiter_token", None) or "|")
        return cls(tokenizer.get_vocab(), **kwargs)

    def __len__(self) -> int:
        return len(self.tokens)

    def spell(self, word: str) -> list[int] | None:
        """Token ids that spell ``word`` (longest token first), or ``None`` when some part has no token."""
        ids: list[int] = []
        pos = 0
        while pos < len(word):
            for token in self._spelling:
                if word.startswith(token, pos):
                    ids.append(self.token_to_id[token])
                    pos += len(token)
                    break
            else:
                return None
        return ids if ids else None


def to_log_probs(logits: Any, vocab_size: int | None = None) -> np.ndarray:
    """Log-softmax over the last axis, as contiguous float32 NumPy.

    Accepts logits or log-probabilities (log-softmax is idempotent on the latter), as NumPy or torch. Columns
    beyond ``vocab_size`` (a model head larger than its tokenizer) are dropped before normalising.
    """
    if type(logits).__module__.startswith("torch"):
        logits = logits.detach().cpu().float().numpy()
    x = np.asarray(logits, dtype=np.float32)
    if x.ndim < 1:
        raise ValueError("logits must have a vocabulary axis")
    if vocab_size is not None:
        if x.shape[-1] < vocab_size:
            raise ValueError(f"logits have {x.shape[-1]} classes but the vocabulary has {vocab_size} tokens")
        x = x[..., :vocab_size]
    if x.size and not np.isfinite(x).all():
        if np.isnan(x).any():
            raise ValueError("logits contain NaN")
        if np.isposinf(x).any():
            raise ValueError("logits contain +inf")
    if x.shape[-1] == 0:
        return np.ascontiguousarray(x)
    peak = x.max(axis=-1, keepdims=True)
    if x.size and not np.isfinite(peak).all():
        raise ValueError("a frame has every logit at -inf")
    shifted = x - peak
    out = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.ascontiguousarray(out, dtype=np.float32)


def hypothesis_from_frames(labels: Sequence[int], vocab: CTCVocabulary, **scores: float) -> Hypothesis:
    """Turn a per-frame CTC label path into text and word offsets.

    CTC rules: consecutive repeats of a label are one emission, blanks separate emissions and are dropped, the
    word delimiter ends a word, and special tokens are dropped (they neither spell nor end a word).
    """
    words: list[WordOffset] = []
    chars: list[str] = []
    start = end = 0
    prev = -1
    for t, label in enumerate(labels):
        label = int(label)
        if label == vocab.blank_id or label in vocab.special_ids:
            prev = label
            continue
        if label == vocab.delimiter_id:
            if chars:
                words.append(WordOffset("".join(chars), start, end))
                chars = []
        elif label == prev:
            end = t + 1  # the same emission continues
        else:
            if not chars:
                start = t
            chars.append(vocab.tokens[label])
            end = t + 1
        prev = label
    if chars:
        words.append(WordOffset("".join(chars), start, end))
    return Hypothesis(" ".join(w.word for w in words), words, **scores)


def greedy_decode(logits: Any, vocab: CTCVocabulary | Mapping[str, int] | Sequence[str]) -> str:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks, word delimiter -> space."""
    if not isinstance(vocab, CTCVocabulary):
        vocab = CTCVocabulary(vocab)
    return GreedyCTCDecoder(vocab).decode(logits)


class GreedyCTCDecoder:
    """Best-path (argmax) CTC decoder with the same interface as :class:`CTCBeamSearchDecoder`.

    Args:
        vocab: A :class:`CTCVocabulary`, or what its constructor takes (then ``kwargs`` go to it too).
    """

    def __init__(self, vocab: CTCVocabulary | Mapping[str, int] | Sequence[str], **kwargs: Any):
        self.vocab = vocab if isinstance(vocab, CTCVocabulary) else CTCVocabulary(vocab, **kwargs)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> GreedyCTCDecoder:
        return cls(CTCVocabulary.from_tokenizer(tokenizer, **kwargs))

    def decode_hypothesis(self, logits: Any) -> Hypothesis:
        """Decode ``(T, V)`` logits or log-probs to a :class:`Hypothesis` with word offsets."""
        log_probs = to_log_probs(logits, len(self.vocab))
        if log_probs.ndim != 2:
            raise ValueError(f"expected logits shaped (frames, vocab), got {log_probs.shape}")
        labels = log_probs.argmax(axis=-1)
        score = float(log_probs[np.arange(len(labels)), labels].sum())
        return hypothesis_from_frames(labels, self.vocab, score=score, am_score=score)

    def decode(self, logits: Any) -> str:
        """Decode ``(T, V)`` logits or log-probs to text."""
        return self.decode_hypothesis(logits).text

    def decode_batch(self, logits: Any, lengths: Sequence[int] | None = None) -> list[str]:
        """Decode ``(B, T, V)`` logits (or a list of ``(T_i, V)``); frames at and past ``lengths[i]`` are ignored."""
        return [self.decode(x) for x in _split_batch(logits, lengths)]


def _split_batch(logits: Any, lengths: Sequence[int] | None) -> list[Any]:
    """Items of a padded batch, each cut to its length."""
    if type(logits).__module__.startswith("torch"):
        logits = logits.detach().cpu().float().numpy()
    if isinstance(logits, np.ndarray):
        if logits.ndim != 3:
            raise ValueError(f"expected batched logits shaped (batch, frames, vocab), got {logits.shape}")
        items: list[Any] = list(logits)
    else:
        items = list(logits)
    if lengths is None:
        return items
    if type(lengths).__module__.startswith("torch"):
        lengths = lengths.tolist()
    lengths = [int(n) for n in lengths]
    if len(lengths) != len(items):
        raise ValueError(f"got {len(lengths)} lengths for a batch of {len(items)}")
    for i, (n, item) in enumerate(zip(lengths, items, strict=True)):
        if n < 0 or n > len(item):
            raise ValueError(f"lengths[{i}] = {n} is outside 0..{len(item)}")
    return [item[:n] for item, n in zip(items, lengths, strict=True)]
