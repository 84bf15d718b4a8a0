"""CTC beam search with an optional KenLM word n-gram model, lexicon and hotwords (flashlight-text backend).

Two search modes, chosen by whether a lexicon is given:

* **Lexicon-free** (default): any character sequence can be output (flashlight's ``LexiconFreeDecoder``). With an
  LM, each word is scored when its word delimiter (or the end of the utterance) arrives; words the LM does not
  know get its ``<unk>`` probability. Without an LM this is plain CTC prefix beam search.
* **Lexicon**: output words are restricted to the lexicon (flashlight's ``LexiconDecoder`` over a trie of the
  words' spellings, each ending in the word delimiter), with LM look-ahead inside words.

Scores: the search maximises ``acoustic log-prob + alpha * ln P_LM(words) + beta * #words + hotword bonuses``.
``alpha`` multiplies the natural-log LM probability (KenLM's log10 scores are converted), so it is on the same
scale as the acoustic log-probabilities; ``alpha`` and ``beta`` only apply when an LM is given.

Hotwords get ``weight`` added to the score each time they are output. In lexicon mode they are added to the
lexicon. In lexicon-free mode partial hotwords get a proportional share of the bonus as they are spelled (so
the beam keeps them), taken back if the word ends up different. Hotwords must be spelled with the vocabulary's
tokens (usually upper case); a phrase is split into words that each get the bonus.

flashlight-text is imported lazily: the rest of the package works without it, and building a
:class:`CTCBeamSearchDecoder` without it raises ``ImportError`` naming ``pip install flashlight-text``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .ctc import CTCVocabulary, Hypothesis, _split_batch, hypothesis_from_frames, to_log_probs
from .ngram import BOS, EOS, UNK, is_arpa_file, read_arpa_unigrams

__all__ = ["CTCBeamSearchDecoder", "FLASHLIGHT_INSTALL_HINT", "is_flashlight_available"]

logger = logging.getLogger(__name__)

FLASHLIGHT_INSTALL_HINT = "CTC beam search needs flashlight-text: pip install flashlight-text"
_LN10 = math.log(10.0)
# Score for tokens that must never be emitted; finite so the decoder's sums stay well defined.
_NEVER = -1.0e5
_PYTHON_LM_TOKEN_BEAM = 8


def _import_flashlight() -> tuple[Any, Any]:
    """(flashlight.lib.text.decoder, flashlight.lib.text.dictionary), or ImportError with the install hint."""
    try:
        from flashlight.lib.text import decoder, dictionary
    except ImportError as err:
        raise ImportError(FLASHLIGHT_INSTALL_HINT) from err
    return decoder, dictionary


def is_flashlight_available() -> bool:
    """Whether flashlight-text (and so :class:`CTCBeamSearchDecoder`) can be used."""
    try:
        _import_flashlight()
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _stderr_to_buffer() -> Iterator[Any]:
    """Send fd 2 to a temporary file: KenLM prints a loading banner and progress bar from C++."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield None
        return
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield buffer
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _load_kenlm(path: str, word_dict: Any) -> Any:
    try:
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError as err:
        raise ImportError(f"{FLASHLIGHT_INSTALL_HINT} (this installation lacks its KenLM extension)") from err
    with _stderr_to_buffer():
        try:
            return KenLM(path, word_dict)
        except RuntimeError as err:
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            detail = lines[-1] if lines else "unknown error"
            raise ValueError(f"{path}: could not load the KenLM model ({detail})") from None


def _normalise_hotwords(hotwords: Mapping[str, float] | Iterable[str] | None, weight: float) -> dict[str, float]:
    if hotwords is None:
        return {}
    if isinstance(hotwords, str):
        hotwords = [hotwords]
    items = hotwords.items() if isinstance(hotwords, Mapping) else ((w, weight) for w in hotwords)
    out: dict[str, float] = {}
    for phrase, w in items:
        for word in str(phrase).split():
            out[word] = max(out.get(word, -math.inf), float(w))
    return out


def _read_word_list(words: str | os.PathLike | Iterable[str]) -> list[str]:
    """Words from an iterable, or from a file with one word per line (first field; lexicon files qualify)."""
    if isinstance(words, (str, os.PathLike)):
        with open(words, encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]
    return [w.strip() for w in words if w and w.strip()]


class _WordScoring:
    """Word-level scoring for flashlight decoders, already weighted (run the decoder with lm_weight=1).

    ``spelling=False`` (lexicon decoder): ``score`` receives word ids and returns
    ``scale * log10 P(word | history) + hotword bonus``; states are KenLM's own.

    ``spelling=True`` (lexicon-free decoder): ``score`` receives token ids. Tokens accumulate into the
    current word (scoring only hotword-prefix shares); the word delimiter scores the whole word, adding
    ``beta``. States form a tree over token histories (``LMState.child``), so identical prefixes share one
    state and the decoder merges them; per-state data lives in ``self._info`` until the next ``start``.

    flashlight's ``LM`` base class exists only once flashlight-text is imported: :func:`_word_lm` mixes this
    class into it, and passes its ``LMState`` class as ``new_state``.
    """

    def __init__(
        self,
        new_state: type,
        kenlm: Any | None,
        word_ids: Mapping[str, int],
        unk_id: int,
        scale: float,
        beta: float,
        hotwords: Mapping[str, float],
        vocab: CTCVocabulary | None = None,
    ):
        self._new_state = new_state
        self.kenlm = kenlm
        self.scale = scale
        self.beta = beta
        self.word_ids = dict(word_ids)
        self.unk_id = unk_id
        self.hotwords = dict(hotwords)
        self.hotword_by_id = {self.word_ids[w]: b for w, b in self.hotwords.items() if w in self.word_ids}
        self.vocab = vocab
        self.spelling = vocab is not None
        # Largest share of a hotword bonus that each prefix of a hotword earns while being spelled; a whole
        # hotword has earned all of it, so its delimiter adds nothing more than the bonus taken back.
        self.prefix_bonus: dict[str, float] = {}
        for word, bonus in self.hotwords.items():
            for end in range(1, len(word) + 1):
                share = bonus * end / len(word)
                self.prefix_bonus[word[:end]] = max(self.prefix_bonus.get(word[:end], -math.inf), share)
        self._info: dict[Any, tuple[Any, str, float]] = {}
        self._step: dict[tuple[Any, int], tuple[Any, float]] = {}
        self._null = new_state()

    def start(self, start_with_nothing: bool) -> Any:
        kstate = self.kenlm.start(start_with_nothing) if self.kenlm is not None else self._null
        if not self.spelling:
            return kstate
        root = self._new_state()
        self._info = {root: (kstate, "", 0.0)}
        self._step = {}
        return root

    def _word(self, kstate: Any, word: str) -> tuple[Any, float]:
        score = self.beta + self.hotwords.get(word, 0.0)
        if self.kenlm is not None:
            kstate, log10p = self.kenlm.score(kstate, self.word_ids.get(word, self.unk_id))
            score += self.scale * log10p
        return kstate, score

    def score(self, state: Any, token: int) -> tuple[Any, float]:
        if not self.spelling:
            bonus = self.hotword_by_id.get(token, 0.0)
            if self.kenlm is None:
                return state, bonus
            kstate, log10p = self.kenlm.score(state, token)
            return kstate, self.scale * log10p + bonus
        hit = self._step.get((state, token))
        if hit is not None:
            return hit
        kstate, partial, earned = self._info[state]
        vocab = self.vocab
        if token == vocab.delimiter_id:
            if partial:
                kstate, step = self._word(kstate, partial)
                step -= earned
            else:
                step = 0.0
            info = (kstate, "", 0.0)
        elif token == vocab.blank_id or token in vocab.special_ids:
            info, step = (kstate, partial, earned), 0.0
        else:
            partial += vocab.tokens[token]
            share = self.prefix_bonus.get(partial, 0.0)
            info, step = (kstate, partial, share), share - earned
        child = state.child(token)
        self._info[child] = info
        # The decoder asks again for every frame a hypothesis survives; keyed by the (live) parent state.
        hit = self._step[(state, token)] = (child, step)
        return hit

    def finish(self, state: Any) -> tuple[Any, float]:
        if not self.spelling:
            if self.kenlm is None:
                return state, 0.0
            kstate, log10p = self.kenlm.finish(state)
            return kstate, self.scale * log10p
        kstate, partial, earned = self._info[state]
        total = 0.0
        if partial:
            kstate, total = self._word(kstate, partial)
            total -= earned
        if self.kenlm is not None:
            _, log10p = self.kenlm.finish(kstate)
            total += self.scale * log10p
        return state, total


def _word_lm(fl: Any) -> type:
    """The flashlight ``LM`` subclass used for hotwords and lexicon-free word scoring (built after import)."""

    class WordLM(_WordScoring, fl.LM):
        __doc__ = _WordScoring.__doc__

        def __init__(self, *args: Any, **kwargs: Any):
            fl.LM.__init__(self)  # pybind11 refuses a subclass whose C++ base was not constructed
            _WordScoring.__init__(self, fl.LMState, *args, **kwargs)

    return WordLM


class CTCBeamSearchDecoder:
    """CTC beam search over a character vocabulary, with an optional KenLM model, lexicon and hotwords.

    Args:
        vocab: A :class:`~hf_wav2vec2.decoding.CTCVocabulary`, a ``{token: id}`` dict (a CTC ``vocab.json``) or
            the tokens in id order. ``blank_token``, ``word_delimiter`` and ``special_tokens`` configure a
            vocabulary built here.
        kenlm_model: Path to a word-level KenLM model, ARPA (``.arpa``) or KenLM binary. Its words must be
            spelled like the vocabulary (usually upper case). ``None``: no LM.
        alpha: LM weight, applied to natural-log probabilities.
        beta: Word insertion bonus (per word; only with an LM).
        beam_size: Hypotheses kept per frame.
        beam_size_token: Tokens tried per frame (the most likely ones). ``None``: 8 for lexicon-free decoding
            with an LM or hotwords (their word scoring runs in Python, once per hypothesis and token tried), all
            tokens otherwise.
        beam_threshold: Hypotheses scoring this much below the frame's best are pruned.
        lexicon: Restrict output to these words: an iterable of words, or a path to a file with one word per line
            (the first field of each line, so flashlight/fairseq lexicon files work). Words that cannot be
            spelled with the vocabulary are skipped with a warning.
        hotwords: Words to favour: ``{word: bonus}`` or an iterable of words that each get ``hotword_weight``.
        hotword_weight: Bonus for hotwords given without their own, in the units of the acoustic log-probs
            (nats): 3 makes a hotword win against an alternative up to e^3 = 20 times more likely acoustically.
        unigrams: The LM's vocabulary, needed for lexicon-free decoding with a binary KenLM model (read from the
            file for ARPA models).
        log_add: Merge hypotheses that reach the same state by log-sum-exp instead of max.

    Thread-safe: flashlight's decoder and the word LM keep per-utterance search state (hypotheses, ``LMState``
    trees), so concurrent calls take turns on a lock. Turns lose nothing: the native search holds the GIL for the
    whole utterance (a spinning Python thread got 2% of its solo rate during a lexicon decode), and the lexicon-free
    LM's callbacks run in Python, so decoders per thread could not decode in parallel either.
    """

    def __init__(
        self,
        vocab: CTCVocabulary | Mapping[str, int] | Sequence[str],
        kenlm_model: str | os.PathLike | None = None,
        *,
        alpha: float = 0.5,
        beta: float = 1.0,
        beam_size: int = 50,
        beam_size_token: int | None = None,
        beam_threshold: float = 25.0,
        lexicon: str | os.PathLike | Iterable[str] | None = None,
        hotwords: Mapping[str, float] | Iterable[str] | None = None,
        hotword_weight: float = 3.0,
        unigrams: str | os.PathLike | Iterable[str] | None = None,
        log_add: bool = False,
        blank_token: str = "<pad>",
        word_delimiter: str = "|",
        special_tokens: Iterable[str] | None = None,
    ):
        fl, fl_dictionary = _import_flashlight()
        self._lock = threading.Lock()  # one search at a time (see the class docstring)
        self.vocab = (
            vocab
            if isinstance(vocab, CTCVocabulary)
            else CTCVocabulary(
                vocab, blank_token=blank_token, word_delimiter=word_delimiter, special_tokens=special_tokens
            )
        )
        if beam_size < 1:
            raise ValueError("beam_size must be at least 1")
        self.alpha, self.beta = float(alpha), float(beta)
        self.hotwords = _normalise_hotwords(hotwords, hotword_weight)
        for word in self.hotwords:
            if self.vocab.spell(word) is None:
                raise ValueError(f"hotword {word!r} cannot be spelled with the vocabulary's tokens")
        self.kenlm_model = None if kenlm_model is None else os.fspath(kenlm_model)
        if self.kenlm_model is not None and not os.path.isfile(self.kenlm_model):
            raise FileNotFoundError(f"{self.kenlm_model}: no such KenLM model file")
        self.lexicon, self._spellings = self._spellable_lexicon(lexicon)

        # Word ids shared by the KenLM wrapper, the lexicon trie and the hotword bonuses.
        words = self._word_list(unigrams)
        self._word_ids = {w: i for i, w in enumerate(words)}
        self._word_dict = fl_dictionary.Dictionary(words)
        kenlm = _load_kenlm(self.kenlm_model, self._word_dict) if self.kenlm_model is not None else None
        self._lm, lm_weight = self._word_scorer(fl, kenlm)
        self._decoder = self._flashlight_decoder(
            fl,
            lm_weight,
            use_lm=kenlm is not None,
            beam_size=beam_size,
            beam_size_token=beam_size_token,
            beam_threshold=beam_threshold,
            log_add=log_add,
        )

    def _spellable_lexicon(
        self, lexicon: str | os.PathLike | Iterable[str] | None
    ) -> tuple[list[str] | None, dict[str, list[int]]]:
        """The lexicon's words and the hotwords that the vocabulary can spell (warning about the others), and their
        token ids; ``(None, {})`` without a lexicon."""
        if lexicon is None:
            return None, {}
        spellable, skipped, spellings = [], [], {}
        listed = [w for w in _read_word_list(lexicon) if w not in (BOS, EOS, UNK)]
        for word in dict.fromkeys([*listed, *self.hotwords]):
            ids = self.vocab.spell(word)
            (spellable if ids is not None else skipped).append(word)
            if ids is not None:
                spellings[word] = ids
        if skipped:
            logger.warning(
                "skipped %d lexicon words that the vocabulary cannot spell, e.g. %r", len(skipped), skipped[:5]
            )
        if not spellable:
            raise ValueError("no lexicon word can be spelled with the vocabulary's tokens")
        return spellable, spellings

    def _word_list(self, unigrams: str | os.PathLike | Iterable[str] | None) -> list[str]:
        """The decoder's words in id order, ``<unk>`` last: the lexicon's, else the LM's plus the hotwords."""
        if self.lexicon is not None:
            words = list(self.lexicon)
        elif self.kenlm_model is not None:
            if unigrams is not None:
                words = _read_word_list(unigrams)
            elif is_arpa_file(self.kenlm_model):
                words = read_arpa_unigrams(self.kenlm_model)
            else:
                raise ValueError(
                    f"{self.kenlm_model} is a binary KenLM model: lexicon-free decoding needs its vocabulary, "
                    "pass unigrams= (or a lexicon)"
                )
            self._warn_if_unspellable(words)
            words = [*words, *self.hotwords]
        else:
            words = list(self.hotwords)
        return [w for w in dict.fromkeys(words) if w not in (BOS, EOS, UNK)] + [UNK]

    def _word_scorer(self, fl: Any, kenlm: Any | None) -> tuple[Any, float]:
        """The LM the flashlight decoder calls and the weight it applies to its scores."""
        scale = self.alpha * _LN10  # KenLM scores are log10
        use_lm = kenlm is not None
        unk_id = self._word_ids[UNK]
        if self.lexicon is not None and use_lm and not self.hotwords:
            return kenlm, scale  # pure C++ path: the decoder weights KenLM's scores itself
        if self.lexicon is not None and (use_lm or self.hotwords):
            return _word_lm(fl)(kenlm, self._word_ids, unk_id, scale, 0.0, self.hotwords), 1.0
        if self.lexicon is None and (use_lm or self.hotwords):
            beta_here = self.beta if use_lm else 0.0
            return _word_lm(fl)(kenlm, self._word_ids, unk_id, scale, beta_here, self.hotwords, self.vocab), 1.0
        return fl.ZeroLM(), 0.0

    def _flashlight_decoder(
        self,
        fl: Any,
        lm_weight: float,
        *,
        use_lm: bool,
        beam_size: int,
        beam_size_token: int | None,
        beam_threshold: float,
        log_add: bool,
    ) -> Any:
        """flashlight's lexicon or lexicon-free decoder over ``self._lm`` (the lexicon's trie built on the way)."""
        num_tokens = len(self.vocab)
        if beam_size_token is None:
            # The Python word LM runs once per hypothesis and token tried; CTC posteriors are peaked enough that
            # tokens past the 8 likeliest per frame do not survive the beam anyway.
            python_lm = self.lexicon is None and not isinstance(self._lm, fl.ZeroLM)
            beam_size_token = _PYTHON_LM_TOKEN_BEAM if python_lm else num_tokens
        token_beam = max(1, min(int(beam_size_token), num_tokens))
        criterion = fl.CriterionType.CTC
        sil, blank = self.vocab.delimiter_id, self.vocab.blank_id
        if self.lexicon is not None:
            options = fl.LexiconDecoderOptions(
                beam_size=int(beam_size),
                beam_size_token=token_beam,
                beam_threshold=float(beam_threshold),
                lm_weight=lm_weight,
                word_score=self.beta if use_lm else 0.0,
                unk_score=-math.inf,
                sil_score=0.0,
                log_add=bool(log_add),
                criterion_type=criterion,
            )
            self._trie = self._build_trie(fl, num_tokens)
            unk_id = self._word_ids[UNK]
            return fl.LexiconDecoder(options, self._trie, self._lm, sil, blank, unk_id, [], False)
        options = fl.LexiconFreeDecoderOptions(
            beam_size=int(beam_size),
            beam_size_token=token_beam,
            beam_threshold=float(beam_threshold),
            lm_weight=lm_weight,
            sil_score=0.0,
            log_add=bool(log_add),
            criterion_type=criterion,
        )
        return fl.LexiconFreeDecoder(options, self._lm, sil, blank, [])

    def _warn_if_unspellable(self, lm_words: Sequence[str]) -> None:
        """Warn when the LM's words mostly cannot be spelled: usually a case mismatch (``the`` vs ``THE``)."""
        sample = [w for w in lm_words[:2000] if w not in (BOS, EOS, UNK)][:1000]
        if not sample:
            return
        spellable = sum(self.vocab.spell(w) is not None for w in sample)
        if spellable < len(sample) / 2:
            logger.warning(
                "only %d of %d sampled LM words can be spelled with the CTC vocabulary (e.g. %r): check that the "
                "LM text was normalised like the transcripts (case, punctuation)",
                spellable,
                len(sample),
                sample[:3],
            )

    def _build_trie(self, fl: Any, num_tokens: int) -> Any:
        """Trie of lexicon spellings (tokens + word delimiter), scored with unigram LM look-ahead."""
        trie = fl.Trie(num_tokens, self.vocab.delimiter_id)
        start = self._lm.start(False)
        for word in self.lexicon or ():
            word_id = self._word_ids[word]
            _, score = self._lm.score(start, word_id)
            trie.insert(self._spellings[word] + [self.vocab.delimiter_id], word_id, score)
        trie.smear(fl.SmearingMode.MAX)
        return trie

    @classmethod
    def from_tokenizer(
        cls, tokenizer: Any, kenlm_model: str | os.PathLike | None = None, **kwargs: Any
    ) -> CTCBeamSearchDecoder:
        """Build from a transformers CTC tokenizer (or processor); ``kwargs`` as for the constructor."""
        vocab_keys = ("blank_token", "word_delimiter", "special_tokens")
        vocab_kwargs = {k: kwargs.pop(k) for k in vocab_keys if k in kwargs}
        return cls(CTCVocabulary.from_tokenizer(tokenizer, **vocab_kwargs), kenlm_model, **kwargs)

    # ------------------------------------------------------------------------------------------ decoding

    def _search(self, logits: Any) -> tuple[list[Any], int]:
        """Run the search on one utterance: (flashlight results, number of real frames)."""
        log_probs = to_log_probs(logits, len(self.vocab))
        if log_probs.ndim != 2:
            raise ValueError(f"expected logits shaped (frames, vocab), got {log_probs.shape}")
        frames = log_probs.shape[0]
        if frames == 0:
            return [], 0
        emissions = log_probs.copy()
        if self.vocab.special_ids:
            emissions[:, sorted(self.vocab.special_ids)] = _NEVER
        if self.lexicon is not None:
            # A lexicon word is only complete after its delimiter; models rarely emit one after the last word,
            # so a final certain-delimiter frame closes it without changing any other score.
            closing = np.full((1, emissions.shape[1]), _NEVER, dtype=np.float32)
            closing[0, self.vocab.delimiter_id] = 0.0
            emissions = np.concatenate([emissions, closing])
        emissions = np.ascontiguousarray(emissions, dtype=np.float32)
        with self._lock:  # a second search would reset the first's hypotheses and LM states mid-way
            results = list(self._decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1]))
        return results, frames

    def _to_hypothesis(self, result: Any, frames: int) -> Hypothesis:
        # result.tokens has the start state, one label per frame, and the end state.
        labels = list(result.tokens)[1 : frames + 1]
        score, am = float(result.score), float(result.emittingModelScore)
        return hypothesis_from_frames(labels, self.vocab, score=score, am_score=am, lm_score=score - am)

    def decode_nbest(self, logits: Any, n: int = 10) -> list[Hypothesis]:
        """Up to ``n`` best hypotheses with distinct texts, best first, with word offsets in frames.

        ``lm_score`` is everything in ``score`` besides the acoustic part: weighted LM, word and hotword bonuses.
        """
        results, frames = self._search(logits)
        if frames == 0:
            return [Hypothesis("")]
        hypotheses: list[Hypothesis] = []
        seen: set[str] = set()
        for result in sorted(results, key=lambda r: r.score, reverse=True):
            hyp = self._to_hypothesis(result, frames)
            if hyp.text not in seen:
                seen.add(hyp.text)
                hypotheses.append(hyp)
                if len(hypotheses) >= n:
                    break
        return hypotheses or [Hypothesis("")]

    def decode_hypothesis(self, logits: Any) -> Hypothesis:
        """The best :class:`Hypothesis` for ``(T, V)`` logits or log-probs, with word offsets in frames."""
        return self.decode_nbest(logits, n=1)[0]

    def decode(self, logits: Any) -> str:
        """Decode ``(T, V)`` logits or log-probs (NumPy or torch) to text; words separated by single spaces."""
        return self.decode_hypothesis(logits).text

    def decode_batch(self, logits: Any, lengths: Sequence[int] | None = None) -> list[str]:
        """Decode ``(B, T, V)`` logits (or a list of ``(T_i, V)``); frames at and past ``lengths[i]`` are ignored."""
        return [self.decode(x) for x in _split_batch(logits, lengths)]
