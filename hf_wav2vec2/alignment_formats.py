"""Forced-alignment results (:class:`Alignment`, :class:`WordSpan`, :class:`Span`) and the files they are written as.

* JSON (:func:`to_json`): ``Alignment.to_dict()``: words with their characters, and the model tokens, each with
  ``start``/``end`` seconds, ``score`` and frames.
* SubRip / WebVTT (:func:`to_srt`, :func:`to_vtt`): one cue per word, or per ``words_per_cue`` words.
* Praat TextGrid (:func:`to_textgrid`, long text format): an interval tier ``words`` and one ``chars``, each tiling
  the clip from 0 to its duration (gaps are empty intervals; characters that share a token, such as a ``<star>``
  run, share one interval).
* Audacity labels (:func:`to_audacity`): ``start<TAB>end<TAB>word`` per line (File > Import > Labels).

:func:`write_alignment` picks the format from the file name (``.json``, ``.srt``, ``.vtt``, ``.TextGrid``,
``.txt`` / ``.labels`` for Audacity) and never replaces an existing file unless told to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "FORMATS",
    "Alignment",
    "Span",
    "WordSpan",
    "to_audacity",
    "to_json",
    "to_srt",
    "to_textgrid",
    "to_vtt",
    "write_alignment",
]


@dataclass
class Span:
    """A token or character: ``text`` spoken from ``start`` to ``end`` seconds (frames ``[start_frame,
    end_frame)``); ``score`` in [0, 1] (geometric-mean probability), ``None`` for text that was not aligned."""

    text: str
    start: float
    end: float
    score: float | None
    start_frame: int
    end_frame: int


@dataclass
class WordSpan(Span):
    """A word of the transcript (as written there) with its characters."""

    chars: list[Span] = field(default_factory=list)


@dataclass
class Alignment:
    """The result of :func:`align` for one clip.

    ``words`` follow the transcript's words (split at whitespace); ``tokens`` are the aligned model tokens in order
    (word delimiters included, with ``text`` ``"|"``); ``score`` is the log-probability of the whole path (blanks
    included); ``frame_duration`` the seconds per frame; ``duration`` the clip's length in seconds.
    """

    transcript: str
    words: list[WordSpan]
    tokens: list[Span]
    score: float
    frame_duration: float
    duration: float

    @property
    def chars(self) -> list[Span]:
        return [char for word in self.words for char in word.chars]

    def to_dict(self) -> dict:
        """JSON-friendly: times rounded to the millisecond, scores to 4 digits."""

        def clean(item: dict) -> dict:
            item = dict(item)
            for key in ("start", "end"):
                item[key] = round(item[key], 3)
            if item.get("score") is not None:
                item["score"] = round(item["score"], 4)
            if "chars" in item:
                item["chars"] = [clean(c) for c in item["chars"]]
            return item

        return {
            "transcript": self.transcript,
            "duration": round(self.duration, 3),
            "frame_duration": self.frame_duration,
            "score": round(self.score, 4),
            "words": [clean(asdict(w)) for w in self.words],
            "tokens": [clean(asdict(t)) for t in self.tokens],
        }


# ----------------------------------------------------------------------------------------------- writers


def to_json(alignment: Alignment) -> str:
    return json.dumps(alignment.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _cues(alignment: Alignment, words_per_cue: int) -> list:
    from .transcribe import Cue

    if words_per_cue < 1:
        raise ValueError(f"words_per_cue must be at least 1, got {words_per_cue}")
    words = [w for w in alignment.words if w.score is not None]  # words that were aligned
    return [
        Cue(group[0].start, group[-1].end, " ".join(w.text for w in group))
        for group in (words[i : i + words_per_cue] for i in range(0, len(words), words_per_cue))
    ]


def to_srt(alignment: Alignment, words_per_cue: int = 1) -> str:
    from .transcribe import format_srt

    return format_srt(_cues(alignment, words_per_cue))


def to_vtt(alignment: Alignment, words_per_cue: int = 1) -> str:
    from .transcribe import format_vtt

    return format_vtt(_cues(alignment, words_per_cue))


def _intervals(spans: list[Span], duration: float) -> list[tuple[float, float, str]]:
    """Spans as intervals tiling ``[0, duration]``: zero-length spans dropped, spans with the same times merged
    (characters of one token), gaps filled with empty intervals."""
    merged: list[list] = []
    for span in spans:
        if span.end <= span.start:
            continue
        if merged and (merged[-1][0], merged[-1][1]) == (span.start, span.end):
            merged[-1][2] += span.text
        else:
            merged.append([span.start, span.end, span.text])
    tiled, at = [], 0.0
    for start, end, text in merged:
        if start > at:
            tiled.append((at, start, ""))
        tiled.append((start, end, text))
        at = end
    if at < duration or not tiled:
        tiled.append((at, max(duration, at), ""))
    return tiled


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def to_textgrid(alignment: Alignment) -> str:
    duration = max([alignment.duration] + [w.end for w in alignment.words])
    tiers = [("words", _intervals(alignment.words, duration)), ("chars", _intervals(alignment.chars, duration))]
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {duration:g}",
        "tiers? <exists>",
        f"size = {len(tiers)}",
        "item []:",
    ]
    for number, (name, intervals) in enumerate(tiers, start=1):
        lines += [
            f"    item [{number}]:",
            '        class = "IntervalTier"',
            f"        name = {_quote(name)}",
            "        xmin = 0",
            f"        xmax = {duration:g}",
            f"        intervals: size = {len(intervals)}",
        ]
        for index, (start, end, text) in enumerate(intervals, start=1):
            lines += [
                f"        intervals [{index}]:",
                f"            xmin = {start:g}",
                f"            xmax = {end:g}",
                f"            text = {_quote(text)}",
            ]
    return "\n".join(lines) + "\n"


def to_audacity(alignment: Alignment) -> str:
    return "".join(f"{w.start:.6f}\t{w.end:.6f}\t{w.text}\n" for w in alignment.words if w.score is not None)


FORMATS: dict[str, Callable[[Alignment], str]] = {
    "json": to_json,
    "srt": to_srt,
    "vtt": to_vtt,
    "textgrid": to_textgrid,
    "audacity": to_audacity,
}
_SUFFIXES = {
    ".json": "json",
    ".srt": "srt",
    ".vtt": "vtt",
    ".textgrid": "textgrid",
    ".txt": "audacity",
    ".labels": "audacity",
}


def format_for(path: str | os.PathLike) -> str:
    """The format a file name asks for (by its suffix)."""
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{os.fspath(path)}: cannot tell the format from the name; use one of "
            f"{', '.join(sorted(_SUFFIXES))} or pass format= ({', '.join(FORMATS)})"
        )
    return fmt


def write_alignment(
    alignment: Alignment,
    path: str | os.PathLike,
    format: str | None = None,
    words_per_cue: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write ``alignment`` to ``path`` in ``format`` (default: from the name); refuses to replace a file unless
    ``overwrite``. Returns the path."""
    path = Path(path)
    fmt = format or format_for(path)
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: choose one of {', '.join(FORMATS)}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; choose another name or allow overwriting")
    text = FORMATS[fmt](alignment) if fmt not in ("srt", "vtt") else FORMATS[fmt](alignment, words_per_cue)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
