"""Small real-speech corpora with fixed splits, for examples, smoke tests and low-resource experiments.

* :mod:`hf_wav2vec2.corpora.asterisk`: Debian's Asterisk telephony prompts (one English speaker, 8 kHz, CC-BY-SA
  3.0) with a 10-minute labeled training set, a held-out test set of different sentences and unlabeled audio for
  pre-training.
"""

from . import asterisk

__all__ = ["asterisk"]
