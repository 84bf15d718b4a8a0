"""Decoding CTC output to text: greedy decoding, beam search with a KenLM n-gram model, and ARPA model building.

* :class:`GreedyCTCDecoder` / :func:`greedy_decode`: best path (argmax), no dependencies.
* :class:`CTCBeamSearchDecoder`: beam search with optional KenLM model, lexicon and hotwords; needs
  ``flashlight-text`` (``pip install flashlight-text``), imported only when a decoder is built.
* :func:`build_arpa`: estimate an interpolated modified Kneser-Ney model from text, in pure Python, as an ARPA
  file KenLM loads; :class:`ArpaModel` reads and scores ARPA files.

Both decoders share one interface: ``decode(logits) -> str``, ``decode_batch(logits, lengths) -> list[str]``
and ``decode_hypothesis(logits) -> Hypothesis`` (text, word offsets in frames, scores).
"""

from .beam_search import FLASHLIGHT_INSTALL_HINT, CTCBeamSearchDecoder, is_flashlight_available
from .ctc import (
    CTCVocabulary,
    GreedyCTCDecoder,
    Hypothesis,
    WordOffset,
    greedy_decode,
    hypothesis_from_frames,
    to_log_probs,
)
from .ngram import ArpaModel, NgramStats, build_arpa, read_arpa_unigrams

__all__ = [
    "ArpaModel",
    "CTCBeamSearchDecoder",
    "CTCVocabulary",
    "FLASHLIGHT_INSTALL_HINT",
    "GreedyCTCDecoder",
    "Hypothesis",
    "NgramStats",
    "WordOffset",
    "build_arpa",
    "greedy_decode",
    "hypothesis_from_frames",
    "is_flashlight_available",
    "read_arpa_unigrams",
    "to_log_probs",
]
