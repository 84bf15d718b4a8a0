"""Word n-gram language models in ARPA format: a pure-Python builder and a reader/scorer.

:func:`build_arpa` estimates an interpolated modified Kneser-Ney model (Chen & Goodman, 1998), the estimator
KenLM's ``lmplz`` uses, without pruning, and writes it as an ARPA file that KenLM loads. It exists because a
fresh machine has no ``lmplz``; it keeps all counts in memory, so it suits corpora up to a few million words.

:class:`ArpaModel` reads an ARPA file and scores words with standard backoff; tests use it to check that a
model is normalised, and the beam search decoder reads a model's vocabulary with :func:`read_arpa_unigrams`.
"""

from __future__ import annotations

import gzip
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["ArpaModel", "NgramStats", "build_arpa", "read_arpa_unigrams", "BOS", "EOS", "UNK"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# What ARPA files conventionally give <s>, which is a context but never predicted.
_BOS_LOG10_PROB = -99.0
# lmplz's --discount_fallback values, used where a corpus is too small to estimate a discount.
_FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)

Ngram = tuple[str, ...]


@dataclass
class NgramStats:
    """What :func:`build_arpa` wrote: the file, the n-gram count per order, and the discounts per order."""

    path: Path
    counts: list[int]
    discounts: list[tuple[float, float, float]]


def _iter_sentences(text: str | os.PathLike | Iterable[str]) -> Iterable[list[str]]:
    if isinstance(text, (str, os.PathLike)):
        with open(text, encoding="utf-8") as f:
            yield from _iter_sentences(f)
        return
    if isinstance(text, bytes):
        raise TypeError("text must be a path or an iterable of str lines")
    for line in text:
        # Sentence markers inside the text would break the counting; they are implied per line.
        words = [w for w in line.split() if w not in (BOS, EOS)]
        if words:
            yield words


def _discounts(count_of_counts: Counter) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts D1, D2, D3+ from counts-of-counts (Chen & Goodman's estimates).

    A discount that cannot be estimated (a count-of-count is zero) or falls outside (0, k) is replaced by
    lmplz's fallback for that k.
    """
    t = [count_of_counts.get(k, 0) for k in range(5)]
    y = t[1] / (t[1] + 2 * t[2]) if t[1] + 2 * t[2] > 0 else 0.0
    out = []
    for k in (1, 2, 3):
        d = k - (k + 1) * y * t[k + 1] / t[k] if t[k] > 0 else -1.0
        out.append(d if 0.0 < d < k else _FALLBACK_DISCOUNTS[k - 1])
    return out[0], out[1], out[2]


def _discount(adjusted: int, d: tuple[float, float, float]) -> float:
    return d[min(adjusted, 3) - 1]


def _adjusted_counts(sentences: Iterable[list[str]], order: int) -> list[dict[Ngram, int]]:
    """Kneser-Ney adjusted counts per order (index n holds n-grams).

    Highest order and n-grams that start with <s> keep raw counts (nothing can precede them); every other
    n-gram counts the distinct words seen to its left.
    """
    top: Counter = Counter()
    bos_grams: list[Counter] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        padded = [BOS, *words, EOS]
        for i in range(len(padded) - order + 1):
            top[tuple(padded[i : i + order])] += 1
        # Lower-order n-grams that start with <s> keep raw counts. Every other occurrence of a lower-order
        # n-gram has a left neighbour, so it shows up below as the suffix of a longer n-gram.
        for n in range(1, min(order, len(padded) + 1)):
            bos_grams[n][tuple(padded[:n])] += 1
    adjusted: list[dict[Ngram, int]] = [dict() for _ in range(order + 1)]
    adjusted[order] = dict(top)
    for n in range(order - 1, 0, -1):
        left_ext: Counter = Counter()
        for gram in adjusted[n + 1]:
            left_ext[gram[1:]] += 1
        level = {g: c for g, c in left_ext.items() if g[0] != BOS}
        level.update(bos_grams[n])
        adjusted[n] = level
    return adjusted


def _context_masses(
    adjusted: list[dict[Ngram, int]], discounts: list[tuple[float, float, float]], order: int
) -> tuple[list[dict[Ngram, float]], list[dict[Ngram, float]]]:
    """Per order and context: the mass the discounts free for lower orders (gamma) and the total adjusted count."""
    gamma: list[dict[Ngram, float]] = [dict() for _ in range(order + 1)]
    denom: list[dict[Ngram, float]] = [dict() for _ in range(order + 1)]
    for n in range(1, order + 1):
        freed: dict[Ngram, float] = defaultdict(float)
        total: dict[Ngram, float] = defaultdict(float)
        for gram, c in adjusted[n].items():
            total[gram[:-1]] += c
            freed[gram[:-1]] += _discount(c, discounts[n])
        denom[n] = dict(total)
        gamma[n] = {h: freed[h] / total[h] for h in total}
    return gamma, denom


def _interpolated_probs(
    adjusted: list[dict[Ngram, int]],
    discounts: list[tuple[float, float, float]],
    gamma: list[dict[Ngram, float]],
    denom: list[dict[Ngram, float]],
    order: int,
) -> list[dict[Ngram, float]]:
    """Interpolated probabilities per order, down to a uniform distribution over the words, ``</s>`` and ``<unk>``."""
    unigrams = adjusted[1]
    vocab = sorted({g[0] for g in unigrams} | {EOS, UNK})
    uniform = 1.0 / len(vocab)
    probs: list[dict[Ngram, float]] = [dict() for _ in range(order + 1)]
    for w in vocab:
        c = unigrams.get((w,), 0)
        seen = (c - _discount(c, discounts[1])) / denom[1][()] if c else 0.0
        probs[1][(w,)] = seen + gamma[1][()] * uniform
    for n in range(2, order + 1):
        level = probs[n]
        lower = probs[n - 1]
        for gram, c in adjusted[n].items():
            h = gram[:-1]
            level[gram] = (c - _discount(c, discounts[n])) / denom[n][h] + gamma[n][h] * lower[gram[1:]]
    return probs


def _write_arpa(
    out_path: Path, probs: list[dict[Ngram, float]], gamma: list[dict[Ngram, float]], order: int
) -> list[int]:
    """Write the probabilities (and gamma as backoff weights) as an ARPA file; returns the n-gram count per order."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    counts = [len(probs[1]) + 1] + [len(probs[n]) for n in range(2, order + 1)]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for n, count in enumerate(counts, start=1):
            f.write(f"ngram {n}={count}\n")
        for n in range(1, order + 1):
            f.write(f"\n\\{n}-grams:\n")
            entries = dict(probs[n])
            if n == 1:
                entries[(BOS,)] = None  # type: ignore[assignment]
            backoffs = gamma[n + 1] if n < order else {}
            for gram in sorted(entries):
                p = entries[gram]
                logp = _BOS_LOG10_PROB if p is None else math.log10(p)
                line = f"{logp:.7g}\t{' '.join(gram)}"
                if gram in backoffs:
                    line += f"\t{math.log10(backoffs[gram]):.7g}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
    return counts


def build_arpa(
    text: str | os.PathLike | Iterable[str],
    out_path: str | os.PathLike,
    order: int = 3,
) -> NgramStats:
    """Estimate an interpolated modified Kneser-Ney n-gram model and write it as an ARPA file.

    Args:
        text: A UTF-8 text file (``str``/``os.PathLike``) or an iterable of lines; one sentence per line, words
            separated by whitespace. Normalise the text first: words must be spelled the way the decoder spells
            them (for the usual wav2vec 2.0 character vocabularies, upper case, apostrophes kept). Empty lines
            are skipped; ``<s>``/``</s>`` in the text are dropped (every line gets them).
        out_path: Where to write the ARPA file.
        order: n-gram order, at least 2 (KenLM loads nothing smaller).

    Returns:
        :class:`NgramStats` with the file path, n-gram counts per order and the discounts used.

    The model is the one ``lmplz -o ORDER`` estimates without pruning: adjusted (continuation) counts below the
    highest order, three discounts per order from counts-of-counts (with lmplz's fallback 0.5/1/1.5 where a
    tiny corpus cannot estimate them), interpolation down to a uniform distribution over the vocabulary
    (words, ``</s>`` and ``<unk>``), written as probabilities plus backoff weights so that backoff scoring
    reproduces the interpolated model exactly. ``<unk>`` gets only the uniform share.
    """
    if order < 2:
        raise ValueError("order must be at least 2 (KenLM does not load unigram models)")
    adjusted = _adjusted_counts(_iter_sentences(text), order)
    if not adjusted[order] and not adjusted[1]:
        raise ValueError("the text has no words")

    unigrams = {g: c for g, c in adjusted[1].items() if g != (BOS,)}
    adjusted[1] = unigrams
    discounts = [(0.0, 0.0, 0.0)] + [_discounts(Counter(adjusted[n].values())) for n in range(1, order + 1)]
    gamma, denom = _context_masses(adjusted, discounts, order)
    probs = _interpolated_probs(adjusted, discounts, gamma, denom, order)
    out_path = Path(out_path)
    counts = _write_arpa(out_path, probs, gamma, order)
    return NgramStats(out_path, counts, [discounts[n] for n in range(1, order + 1)])


def _open_text(path: str | os.PathLike) -> IO[str]:
    """Open an ARPA file, gzip-compressed or not (KenLM reads both)."""
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_arpa_unigrams(path: str | os.PathLike) -> list[str]:
    """The vocabulary of an ARPA file (its 1-gram section, optionally gzipped), read without loading the rest."""
    words: list[str] = []
    in_unigrams = False
    with _open_text(path) as f:
        for line in f:
            line = line.strip()
            if not in_unigrams:
                in_unigrams = line == "\\1-grams:"
                continue
            if not line:
                continue
            if line.startswith("\\"):
                break
            parts = line.split()
            if len(parts) >= 2:
                words.append(parts[1])
    if not in_unigrams:
        raise ValueError(f"{os.fspath(path)}: not an ARPA file (no \\1-grams: section)")
    return words


def is_arpa_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ARPA text file (possibly gzipped) rather than a KenLM binary."""
    try:
        with _open_text(path) as f:
            head = f.read(4096)
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    return head.lstrip().startswith("\\data\\")


class ArpaModel:
    """An ARPA backoff language model in memory, scored in log10 like KenLM.

    Words missing from the vocabulary are scored as ``<unk>`` (in the predicted position and in contexts).
    """

    def __init__(self, path: str | os.PathLike):
        self.order = 0
        self.log10_probs: dict[Ngram, float] = {}
        self.log10_backoffs: dict[Ngram, float] = {}
        declared: dict[int, int] = {}
        section = 0
        with _open_text(path) as f:
            for raw in f:
                line = raw.strip()
                if not line:
                    continue
                if line == "\\data\\" or line == "\\end\\":
                    section = 0
                    continue
                if line.startswith("ngram ") and section == 0:
                    n, count = line[6:].split("=")
                    declared[int(n)] = int(count)
                    continue
                if line.startswith("\\") and line.endswith("-grams:"):
                    section = int(line[1:].split("-")[0])
                    self.order = max(self.order, section)
                    continue
                parts = line.split("\t") if "\t" in line else line.split()
                if "\t" in line:
                    gram = tuple(parts[1].split())
                    backoff = float(parts[2]) if len(parts) > 2 else None
                else:
                    gram = tuple(parts[1 : 1 + section])
                    backoff = float(parts[1 + section]) if len(parts) > 1 + section else None
                self.log10_probs[gram] = float(parts[0])
                if backoff is not None:
                    self.log10_backoffs[gram] = backoff
        found = Counter(len(g) for g in self.log10_probs)
        for n, count in declared.items():
            if found.get(n, 0) != count:
                raise ValueError(
                    f"{os.fspath(path)}: header declares {count} {n}-grams but {found.get(n, 0)} are listed"
                )
        self.vocabulary: list[str] = [g[0] for g in self.log10_probs if len(g) == 1]
        self._known = set(self.vocabulary)

    def _map(self, word: str) -> str:
        return word if word in self._known else UNK

    def log10_prob(self, word: str, context: Sequence[str] = ()) -> float:
        """log10 P(word | context) with backoff; ``context`` is the preceding words, oldest first."""
        word = self._map(word)
        context = tuple(self._map(w) for w in context)[-(self.order - 1) :] if self.order > 1 else ()
        penalty = 0.0
        for start in range(len(context) + 1):
            h = context[start:]
            p = self.log10_probs.get(h + (word,))
            if p is not None:
                return penalty + p
            penalty += self.log10_backoffs.get(h, 0.0)
        return penalty + self.log10_probs.get((word,), float("-inf"))

    def score_sentence(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """Total log10 probability of ``words`` (plus ``</s>`` when ``eos``) after ``<s>`` when ``bos``."""
        context: list[str] = [BOS] if bos else []
        total = 0.0
        for w in [*words, EOS] if eos else list(words):
            total += self.log10_prob(w, context)
            context.append(w)
        return total
