"""What the pipeline leaves out of training and why: skip records, their counters, the start-up report.

A file that cannot be decoded or is shorter than ``min_sample_size`` is recorded as a :class:`SkippedAudio`;
:class:`SkipLog` collects them (deduplicated, with rate-limited warnings) for map-style and streaming datasets alike,
and :class:`AudioSelection` sums up what indexing kept, per reason, once at start-up.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .constants import TARGET_SAMPLE_RATE

# One logger for the whole pipeline: users (and tests) configure "hf_wav2vec2.training.data".
logger = logging.getLogger(__package__)

DECODE_ERROR = "decode_error"
TOO_SHORT = "too_short"
# Individual warnings for the first few problem files; after that only a summary, to keep logs usable.
_MAX_INDIVIDUAL_WARNINGS = 10
#: An AudioDroppedWarning is issued when indexing leaves out more than this fraction of the files.
DROPPED_WARNING_FRACTION = 0.25
# How many example files an error about unusable audio names.
_EXAMPLES_IN_ERRORS = 3


class SkippedAudio(NamedTuple):
    """An example left out of training: ``kind`` is ``"decode_error"`` or ``"too_short"``;
    ``num_samples`` its length at 16 kHz where known (always for ``too_short``)."""

    source: str
    reason: str
    kind: str = DECODE_ERROR
    num_samples: int | None = None


class AudioDroppedWarning(UserWarning):
    """Indexing left out much of the audio (see :class:`AudioSelection`, ``dataset.selection``)."""


class NoUsableAudioError(ValueError):
    """No example of a source can be trained on; the message gives the counts per reason and examples."""


def count_files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


@dataclass(frozen=True)
class AudioSelection:
    """What indexing kept of a source and why it left out the rest (``AudioDataset.selection``).

    Seconds are of 16 kHz audio; the length of a file that cannot be read is unknown, so
    ``dropped_fraction`` counts files.
    """

    num_files: int
    num_kept: int
    kept_seconds: float
    num_too_short: int
    too_short_seconds: float
    num_unreadable: int
    min_sample_size: int

    @property
    def num_dropped(self) -> int:
        return self.num_too_short + self.num_unreadable

    @property
    def dropped_fraction(self) -> float:
        return self.num_dropped / self.num_files if self.num_files else 0.0

    def summary(self) -> str:
        """One line: what is kept, and per reason how many files (and seconds) are not."""
        known = self.kept_seconds + self.too_short_seconds
        text = (
            f"pre-training audio: kept {self.num_kept} of {count_files(self.num_files)} "
            f"({_duration(self.kept_seconds)} of {_duration(known)} with a known length)"
        )
        reasons = []
        if self.num_too_short:
            reasons.append(
                f"{self.num_too_short} shorter than min_sample_size={self.min_sample_size} samples "
                f"({self.min_sample_size / TARGET_SAMPLE_RATE:.2f} s): {_duration(self.too_short_seconds)}"
            )
        if self.num_unreadable:
            reasons.append(f"{self.num_unreadable} unreadable (length unknown)")
        return text + (f"; dropped {', '.join(reasons)}" if reasons else "")

    def warning(self) -> str | None:
        """The message of the AudioDroppedWarning, or None when at most DROPPED_WARNING_FRACTION is left out."""
        if self.dropped_fraction <= DROPPED_WARNING_FRACTION:
            return None
        hints = []
        if self.num_too_short:
            hints.append(
                f"{count_files(self.num_too_short)} ({_duration(self.too_short_seconds)}) shorter than "
                f"min_sample_size={self.min_sample_size} samples "
                f"({self.min_sample_size / TARGET_SAMPLE_RATE:.2f} s): pass a smaller one "
                f"(hf-wav2vec2 pretrain --min_sample_size) to keep them"
            )
        if self.num_unreadable:
            hints.append(f"{count_files(self.num_unreadable)} that cannot be read (the first reasons are logged above)")
        return (
            f"{self.dropped_fraction:.0%} of the {count_files(self.num_files)} of audio are left out of "
            f"pre-training: {'; '.join(hints)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "dropped_fraction": self.dropped_fraction}


class SkipLog:
    """``skipped`` (undecodable) and ``too_short`` lists with counted, rate-limited warnings (a mixin)."""

    def _init_skip_log(self) -> None:
        self.skipped: list[SkippedAudio] = []
        self.too_short: list[SkippedAudio] = []
        self._seen_skips: set[tuple[str, str]] = set()

    @property
    def num_skipped(self) -> int:
        """Number of examples skipped because they could not be decoded."""
        return len(self.skipped)

    @property
    def num_too_short(self) -> int:
        """Number of examples dropped for being shorter than ``min_sample_size``."""
        return len(self.too_short)

    def record_skipped(self, entries: Sequence[SkippedAudio], warn: bool = True) -> None:
        """Add skip records (deduplicated by source and kind) and warn about new decode errors
        (unless ``warn`` is false: another rank reports the same records)."""
        for entry in entries:
            entry = SkippedAudio(*entry)
            if (entry.source, entry.kind) in self._seen_skips:
                continue
            self._seen_skips.add((entry.source, entry.kind))
            if entry.kind == TOO_SHORT:
                self.too_short.append(entry)
                continue
            self.skipped.append(entry)
            if not warn:
                continue
            if len(self.skipped) <= _MAX_INDIVIDUAL_WARNINGS:
                logger.warning("Skipping undecodable audio %s: %s", entry.source, entry.reason)
            elif len(self.skipped) == _MAX_INDIVIDUAL_WARNINGS + 1:
                logger.warning("More undecodable audio; further files are only counted (see .skipped)")

    def unusable_reasons(self, min_sample_size: int) -> str:
        """Why examples were left out, per reason with counts and the first few files (for errors)."""
        parts = []
        if self.skipped:
            shown = "; ".join(f"{s.source}: {s.reason}" for s in self.skipped[:_EXAMPLES_IN_ERRORS])
            parts.append(f"{count_files(self.num_skipped)} cannot be read (e.g. {shown})")
        if self.too_short:
            longest = max(s.num_samples or 0 for s in self.too_short)
            parts.append(
                f"{count_files(self.num_too_short)} shorter than min_sample_size={min_sample_size} samples "
                f"({min_sample_size / TARGET_SAMPLE_RATE:.2f} s; the longest has {longest} samples: pass a "
                f"smaller --min_sample_size to keep them)"
            )
        return "; ".join(parts) if parts else "no audio files"
