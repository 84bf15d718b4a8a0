"""Forced alignment: where each word, character and token of a known transcript is spoken in the audio.

:func:`align` runs a CTC model over the audio and finds the best CTC path that spells the transcript (Viterbi in
log space, :func:`ctc_forced_align`): CTC's rules apply, so every token takes at least one frame, blanks may sit
between tokens, and two equal tokens in a row need a blank between them. The result (:class:`Alignment`) gives
start/end seconds and a score for every word, character and token; :mod:`.alignment_formats` writes it as JSON,
SRT/VTT, Praat TextGrid or Audacity labels.

* **Frames and seconds.** One output frame is ``prod(config.conv_stride)`` samples at the feature extractor's
  sampling rate (320 samples at 16 kHz, 20 ms, for every released wav2vec 2.0), computed from the model, never
  assumed. A span ``[start_frame, end_frame)`` is ``[start_frame * d, end_frame * d)`` seconds.
* **Scores.** A token's score is the geometric mean of the model's probability for it over its frames,
  ``exp(mean log p)``; a word's is the same over the frames of all its tokens (blanks and the word delimiter
  excluded). 1 means the model is sure, values near 0 that the transcript and the audio disagree there.
* **Characters the vocabulary lacks** (``unknown=``), handled as MMS's aligner does for text it cannot romanize:
  ``"star"`` (default) makes each such character a wildcard token ``<star>`` whose emission in a frame is the
  model's best non-blank character there (MMS scores its ``<star>`` with probability 1, made for absorbing
  untranscribed speech; inside a word that would swallow the neighbouring letters' frames); ``"unk"`` uses the
  tokenizer's unknown token and the model's own (usually tiny) probability for it; ``"drop"`` leaves the
  characters out (they get the span of nothing, see below); ``"error"`` refuses the transcript. Punctuation that
  the vocabulary lacks is always left out, as in the model's training labels. Case is folded when only the other
  case is in the vocabulary. Romanizing a transcript in another script (MMS uses ``uroman``) is left to the user.
  A character or word that is left out entirely gets a zero-length span at the end of what precedes it and the
  score ``None``.
* **Long audio.** Emissions come from overlapping chunks of ``chunk_length_s`` (as the chunked pipeline computes
  them), and the Viterbi runs over windows of ``window_s``: each window's path may end anywhere in the
  transcript, only words that end more than ``margin_s`` before the window's end are kept, and the next window
  starts right after the last kept word with the next word, so no word is lost or aligned twice at a seam.
  Memory is ``window frames x 2 x window tokens`` bytes of back-pointers, whatever the length of the audio.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .alignment_formats import Alignment, Span, WordSpan
from .chunking import ArrayReader, frame_duration, iter_chunks, receptive_field

__all__ = ["Alignment", "Span", "WordSpan", "align", "ctc_forced_align", "frame_duration"]

UNKNOWN_POLICIES = ("star", "unk", "drop", "error")
STAR_TOKEN = "<star>"
_NEG_INF = float("-inf")


# ----------------------------------------------------------------------------------------------- the Viterbi


def ctc_forced_align(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor | None = None,
    target_lengths: torch.Tensor | None = None,
    blank: int = 0,
    free_end: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best CTC path of each target sequence through its emissions (torchaudio's ``forced_align``, batched).

    Args:
        log_probs: ``(B, T, V)`` log-probabilities (log-softmax of the logits), on any device.
        targets: ``(B, L)`` token ids (padding past ``target_lengths`` is ignored); must not contain ``blank``.
        input_lengths / target_lengths: ``(B,)`` real frames / tokens per item (default: all).
        blank: The CTC blank id.
        free_end: Let the path end in any state (after any prefix of the target) instead of after the whole
            target: the windowed alignment of long audio uses it for every window but the last.

    Returns:
        ``(labels, scores)``, both ``(B, T)`` on the input's device: the token id of every frame on the best path
        (``blank`` past an item's length) and its log-probability there (0 past the length).

    Raises:
        ValueError: an item's audio has too few frames for its target (each token needs a frame, and each pair of
        equal neighbours one more for the blank between them).
    """
    if log_probs.dim() != 3 or targets.dim() != 2 or targets.shape[0] != log_probs.shape[0]:
        raise ValueError(
            f"ctc_forced_align: expected log_probs (B, T, V) and targets (B, L), got "
            f"{tuple(log_probs.shape)} and {tuple(targets.shape)}"
        )
    batch, frames, _ = log_probs.shape
    device = log_probs.device
    targets = targets.to(device=device, dtype=torch.long)
    input_lengths = _lengths(input_lengths, batch, frames, device)
    target_lengths = _lengths(target_lengths, batch, targets.shape[1], device)
    _check_targets(targets, target_lengths, input_lengths, blank, free_end)
    states = 2 * targets.shape[1] + 1
    ext = torch.full((batch, states), blank, dtype=torch.long, device=device)
    ext[:, 1::2] = targets
    real = torch.arange(states, device=device)[None] < (2 * target_lengths + 1)[:, None]
    # From state s-2 a path may skip the blank between two tokens only when they differ (CTC's repeat rule).
    skip = torch.zeros_like(real)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    pad2 = torch.full((batch, 2), _NEG_INF, device=device, dtype=log_probs.dtype)
    alpha = torch.full((batch, states), _NEG_INF, device=device, dtype=log_probs.dtype)
    first = log_probs[:, 0].gather(1, ext[:, :2])
    alpha[:, :2] = torch.where(real[:, :2], first, _NEG_INF)
    # One int8 back-pointer (0: stay, 1: from s-1, 2: from s-2) per frame and state: memory T x (2L + 1) bytes.
    back = torch.zeros((frames, batch, states), dtype=torch.int8, device=device)
    for t in range(1, frames):
        shifted = torch.cat([pad2, alpha], dim=1)
        from_skip = torch.where(skip, shifted[:, :-2], _NEG_INF)
        # Ties go to the earlier option (stay, then s-1), as max() of a list would; torch.max(dim) is slow here.
        from_prev = shifted[:, 1:-1]
        best = torch.maximum(alpha, from_prev)
        arg = (from_prev > alpha).to(torch.int8)
        arg = torch.where(from_skip > best, 2, arg).to(torch.int8)
        best = torch.maximum(best, from_skip)
        new = torch.where(real, best + log_probs[:, t].gather(1, ext), _NEG_INF)
        active = (t < input_lengths)[:, None]
        alpha = torch.where(active, new, alpha)  # an item past its last frame keeps its final scores
        back[t] = arg
    return _backtrack(log_probs, alpha, back, ext, input_lengths, target_lengths, blank, free_end)


def _lengths(lengths: Any, batch: int, default: int, device: torch.device) -> torch.Tensor:
    if lengths is None:
        return torch.full((batch,), default, dtype=torch.long, device=device)
    return torch.as_tensor(lengths, dtype=torch.long, device=device).reshape(batch)


def _check_targets(
    targets: torch.Tensor, target_lengths: torch.Tensor, input_lengths: torch.Tensor, blank: int, free_end: bool
) -> None:
    for b in range(targets.shape[0]):
        target = targets[b, : int(target_lengths[b])]
        if bool((target == blank).any()):
            raise ValueError(f"ctc_forced_align: target {b} contains the blank id {blank}")
        needed = target.numel() + int((target[1:] == target[:-1]).sum())
        if int(input_lengths[b]) < 1 or (not free_end and needed > int(input_lengths[b])):
            raise ValueError(
                f"item {b}: the transcript needs at least {needed} frames ({target.numel()} tokens and a blank "
                f"between each pair of equal neighbours) but the audio gives {int(input_lengths[b])}"
            )


def _backtrack(log_probs, alpha, back, ext, input_lengths, target_lengths, blank, free_end):
    batch, frames = log_probs.shape[:2]
    if free_end:
        end = alpha.argmax(dim=1)
    else:
        last = 2 * target_lengths  # final blank; the final token is one state before
        pair = torch.stack(
            [alpha.gather(1, last[:, None])[:, 0], alpha.gather(1, (last - 1).clamp(min=0)[:, None])[:, 0]]
        )
        choice = pair.argmax(dim=0)
        choice = torch.where(target_lengths == 0, torch.zeros_like(choice), choice)
        end = last - choice
    states = torch.zeros((batch, frames), dtype=torch.long, device=log_probs.device)
    state = end.clone()
    rows = torch.arange(batch, device=log_probs.device)
    for t in range(frames - 1, -1, -1):
        active = t < input_lengths
        states[:, t] = torch.where(active, state, 0)
        if t > 0:
            step = back[t, rows, state].long()
            state = torch.where(active, state - step, state)
    labels = ext.gather(1, states)
    valid = torch.arange(frames, device=log_probs.device)[None] < input_lengths[:, None]
    labels = torch.where(valid, labels, blank)
    scores = torch.where(valid, log_probs.gather(2, labels[..., None])[..., 0], 0.0)
    return labels, scores


# ----------------------------------------------------------------------------------------------- transcript -> tokens


@dataclass
class _Target:
    """Model tokens for a transcript and what each stands for."""

    words: list[str]
    ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    word_of: list[int] = field(default_factory=list)  # word index per token, -1 for a delimiter
    chars_of: list[tuple[int, int]] = field(default_factory=list)  # character range within the word per token


def _vocabulary(tokenizer: Any) -> tuple[dict[str, int], int, int | None, int | None]:
    """(spelling tokens -> id, blank id, word delimiter id, unknown id) of a CTC tokenizer."""
    vocab = dict(tokenizer.get_vocab())
    blank = vocab.get(str(tokenizer.pad_token))
    if blank is None:
        raise ValueError(f"the tokenizer's pad token {tokenizer.pad_token!r} (the CTC blank) is not in its vocabulary")
    delimiter_token = getattr(tokenizer, "word_delimiter_token", None) or "|"
    delimiter = vocab.get(str(delimiter_token))
    unk = vocab.get(str(tokenizer.unk_token)) if getattr(tokenizer, "unk_token", None) else None
    special = {str(t) for t in getattr(tokenizer, "all_special_tokens", [])} | {str(tokenizer.pad_token)}
    spelling = {t: i for t, i in vocab.items() if t not in special and i != delimiter and t.strip()}
    return spelling, blank, delimiter, unk


def _spell_word(word: str, spelling: dict[str, int], longest: int) -> list[tuple[int | None, int, int]]:
    """``(token id or None, start, end)`` covering ``word``: vocabulary tokens (longest match, either case when
    only the other one is known) and ``None`` for each character that has none."""
    pieces, pos = [], 0
    while pos < len(word):
        for size in range(min(longest, len(word) - pos), 0, -1):
            piece = word[pos : pos + size]
            found = next((spelling[v] for v in (piece, piece.upper(), piece.lower()) if v in spelling), None)
            if found is not None:
                pieces.append((found, pos, pos + size))
                pos += size
                break
        else:
            pieces.append((None, pos, pos + 1))
            pos += 1
    return pieces


def _build_target(transcript: str, tokenizer: Any, unknown: str, star_id: int) -> _Target:
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown={unknown!r}: choose one of {', '.join(UNKNOWN_POLICIES)}")
    spelling, _, delimiter, unk = _vocabulary(tokenizer)
    if unknown == "unk" and unk is None:
        raise ValueError("unknown='unk': the tokenizer has no unknown token; use 'star' or 'drop'")
    longest = max((len(t) for t in spelling), default=1)
    target = _Target(words=transcript.split())
    for w, word in enumerate(target.words):
        pieces = []
        for token, start, end in _spell_word(word, spelling, longest):
            if token is not None:
                pieces.append((token, start, end))
                continue
            char = word[start]
            if unicodedata.category(char).startswith("P") or unknown == "drop":
                continue
            if unknown == "error":
                raise ValueError(
                    f"transcript: the character {char!r} (in the word {word!r}) is not in the model's "
                    "vocabulary; pass unknown='star', 'unk' or 'drop', or romanize the text"
                )
            pieces.append((star_id if unknown == "star" else unk, start, end))
        if pieces and target.ids and delimiter is not None:
            target.ids.append(delimiter)
            target.texts.append("|")
            target.word_of.append(-1)
            target.chars_of.append((0, 0))
        for token, start, end in pieces:
            target.ids.append(token)
            target.texts.append(word[start:end])
            target.word_of.append(w)
            target.chars_of.append((start, end))
    return target


# ----------------------------------------------------------------------------------------------- model side


def _emissions(
    model: Any, feature_extractor: Any, audio: np.ndarray, chunk_length_s: float, stride_length_s: float
) -> torch.Tensor:
    """``(T, V)`` float32 log-probabilities on the model's device; long audio in overlapping chunks, stitched with
    the chunked pipeline's stride arithmetic."""
    rate = feature_extractor.sampling_rate
    align_to = round(frame_duration(model.config, rate) * rate)  # samples per output frame
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    min_len = receptive_field(model.config) or 1

    def forward(samples: np.ndarray) -> torch.Tensor:
        inputs = feature_extractor(samples, sampling_rate=rate, return_tensors="pt")
        values = inputs["input_values"].to(device=device, dtype=dtype)
        with torch.inference_mode():
            logits = model(values).logits[0]
        return torch.log_softmax(logits.float(), dim=-1)

    if chunk_length_s is None or audio.shape[0] <= chunk_length_s * rate:
        return forward(audio)
    chunk = round(chunk_length_s * rate / align_to) * align_to
    stride = round(stride_length_s * rate / align_to) * align_to
    if chunk <= 2 * stride or chunk < min_len:
        raise ValueError(
            f"chunk_length_s={chunk_length_s} must be longer than twice stride_length_s="
            f"{stride_length_s} and than the model's receptive field"
        )
    reader = ArrayReader(audio)
    pieces = []
    for samples, left, right, is_last in iter_chunks(reader.read, chunk, stride, stride, min_len, align_to):
        out = forward(samples)
        frames = round(samples.shape[0] / align_to)
        if not is_last and out.shape[0] < frames:  # a chunk ending on a frame boundary lacks its last frame
            out = torch.cat([out, out[-1:].expand(frames - out.shape[0], -1)])
        start = round(left / samples.shape[0] * frames)
        stop = frames - round(right / samples.shape[0] * frames)
        pieces.append(out[start:stop])
    return torch.cat(pieces)


def _with_star(log_probs: torch.Tensor, spelling_ids: list[int]) -> torch.Tensor:
    """Append the ``<star>`` column: each frame's best spelling-token log-probability (a character wildcard)."""
    star = log_probs[:, spelling_ids].max(dim=1, keepdim=True).values
    return torch.cat([log_probs, star], dim=1)


# ----------------------------------------------------------------------------------------------- frames -> spans


def _runs(labels: torch.Tensor, blank: int) -> list[tuple[int, int]]:
    """``[start, end)`` of every token emission on a path: a run of one non-blank label (equal tokens in a row
    are always split by a blank, so a run is one token)."""
    values = labels.tolist()
    runs: list[tuple[int, int]] = []
    for t, label in enumerate(values):
        if label == blank:
            continue
        if runs and runs[-1][1] == t and values[t - 1] == label:
            runs[-1] = (runs[-1][0], t + 1)
        else:
            runs.append((t, t + 1))
    return runs


@dataclass
class _Path:
    """Frame ranges of the target's tokens (None: not emitted) and the path's per-frame log-probabilities."""

    spans: list[tuple[int, int] | None]
    frame_scores: torch.Tensor


def _word_final(ids: list[int], word_of: list[int], k: int) -> bool:
    return word_of[k] >= 0 and (k + 1 == len(ids) or word_of[k + 1] != word_of[k])


def _windowed_path(log_probs: torch.Tensor, target: _Target, blank: int, window: int, margin: int) -> _Path:
    """Viterbi over windows of ``window`` frames, keeping whole words that end ``margin`` frames before a window's
    end (see the module docstring); the last window aligns the rest of the transcript exactly."""
    ids, total = target.ids, log_probs.shape[0]
    spans: list[tuple[int, int] | None] = [None] * len(ids)
    frame_scores = torch.zeros(total, device=log_probs.device)
    if not ids:  # nothing to align: the all-blank path
        return _Path(spans, log_probs[:, blank].clone())
    pos = k = 0
    while k < len(ids):
        end = min(total, pos + window)
        final = end == total
        piece = ids[k:] if final else ids[k : k + (end - pos)]
        try:
            labels, scores = ctc_forced_align(
                log_probs[None, pos:end], torch.tensor([piece]), blank=blank, free_end=not final
            )
        except ValueError as error:
            raise ValueError(
                f"the audio from {pos} frames on is too short for the rest of the transcript "
                f"({str(error).split(': ', 1)[1]})"
            ) from None
        runs = _runs(labels[0], blank)
        if final:
            kept, new_pos = len(runs), total
        else:
            kept, new_pos = _kept_runs(runs, ids, target.word_of, k, end - pos - margin)
            if kept == 0:  # no whole word fits: a pause (or one very long word), move on past most of the window
                new_pos = runs[0][0] + pos if runs and runs[0][0] > 0 else end - margin
            else:
                new_pos += pos
        for j in range(kept):
            spans[k + j] = (runs[j][0] + pos, runs[j][1] + pos)
        frame_scores[pos:new_pos] = scores[0, : new_pos - pos]
        k += kept
        if not final and kept and k < len(ids) and target.word_of[k] < 0:
            k += 1  # the delimiter after the kept words was not emitted before the cut: the next window starts anew
        pos = new_pos
        if final:
            break
    return _Path(spans, frame_scores)


def _kept_runs(runs: list[tuple[int, int]], ids: list[int], word_of: list[int], k: int, cutoff: int) -> tuple[int, int]:
    """(how many leading runs to keep, the window frame after them): whole words ending by ``cutoff``, with the
    delimiter after the last one when it too ends by then."""
    kept = end = 0
    for j, (_, stop) in enumerate(runs):
        if stop > cutoff:
            break
        if _word_final(ids, word_of, k + j):
            kept, end = j + 1, stop
    if kept and kept < len(runs) and k + kept < len(ids) and word_of[k + kept] < 0 and runs[kept][1] <= cutoff:
        kept, end = kept + 1, runs[kept][1]
    return kept, end


def _to_alignment(transcript: str, target: _Target, path: _Path, seconds: float, duration: float) -> Alignment:
    scores = path.frame_scores.float().cpu()

    def span(text: str, frames: tuple[int, int] | None, at: int, frame_ranges: list[tuple[int, int]]) -> Span:
        if frames is None:
            return Span(text, at * seconds, at * seconds, None, at, at)
        values = torch.cat([scores[a:b] for a, b in frame_ranges])
        return Span(text, frames[0] * seconds, frames[1] * seconds, float(values.mean().exp()), *frames)

    per_word: dict[int, list[int]] = {}
    for k, w in enumerate(target.word_of):
        if path.spans[k] is not None:
            per_word.setdefault(w, []).append(k)
    tokens, at = [], 0
    for k, text in enumerate(target.texts):
        frames = path.spans[k]
        tokens.append(span(text, frames, at, [frames] if frames else []))
        at = frames[1] if frames else at
    words, at = [], 0
    for w, word in enumerate(target.words):
        mine = per_word.get(w, [])
        if not mine:
            base = span(word, None, at, [])
            words.append(WordSpan(**asdict(base), chars=[Span(c, base.start, base.end, None, at, at) for c in word]))
            continue
        ranges = [path.spans[k] for k in mine]
        base = span(word, (ranges[0][0], ranges[-1][1]), at, ranges)
        chars, char_at = [], ranges[0][0]
        for c, char in enumerate(word):
            owner = next((k for k in mine if target.chars_of[k][0] <= c < target.chars_of[k][1]), None)
            frames = path.spans[owner] if owner is not None else None
            chars.append(span(char, frames, char_at, [frames] if frames else []))
            char_at = frames[1] if frames else char_at
        words.append(WordSpan(**asdict(base), chars=chars))
        at = base.end_frame
    return Alignment(transcript, words, tokens, float(scores.sum()), seconds, duration)


def _paths(items: list[tuple[torch.Tensor, _Target]], blank: int, window: int, margin: int) -> list[_Path]:
    """One :class:`_Path` per ``(log_probs, target)``: clips that fit in one window share one batched Viterbi,
    longer ones go window by window."""
    paths: list[_Path | None] = [None] * len(items)
    short = [i for i, (lp, target) in enumerate(items) if lp.shape[0] <= window and target.ids]
    if len(short) > 1:
        frames = [items[i][0].shape[0] for i in short]
        lengths = [len(items[i][1].ids) for i in short]
        first = items[short[0]][0]
        log_probs = torch.zeros((len(short), max(frames), first.shape[1]), device=first.device)
        targets = torch.ones((len(short), max(lengths)), dtype=torch.long)
        for row, i in enumerate(short):
            log_probs[row, : frames[row]] = items[i][0]
            targets[row, : lengths[row]] = torch.tensor(items[i][1].ids)
        # padding ids only fill the target tensor; a blank there would trip the check, so the first token is used
        targets = torch.where(
            torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None], targets, targets[:, :1]
        )
        labels, scores = ctc_forced_align(log_probs, targets, torch.tensor(frames), torch.tensor(lengths), blank)
        for row, i in enumerate(short):
            runs = _runs(labels[row, : frames[row]], blank)
            paths[i] = _Path(list(runs), scores[row, : frames[row]])
    for i, (lp, target) in enumerate(items):
        if paths[i] is None:
            paths[i] = _windowed_path(lp, target, blank, window, margin)
    return paths


# ----------------------------------------------------------------------------------------------- the entry point


def _components(model: Any, processor: Any, device: Any) -> tuple[Any, Any, Any]:
    """(model, tokenizer, feature extractor) from a path / Hub id, a pipeline, or a model with its processor."""
    if isinstance(model, (str, os.PathLike)):
        from .transcribe import asr_pipeline

        model = asr_pipeline(model, device=device)
    if hasattr(model, "model") and hasattr(model, "feature_extractor"):  # a pipeline
        return model.model, model.tokenizer, model.feature_extractor
    if processor is None or not hasattr(processor, "tokenizer") or not hasattr(processor, "feature_extractor"):
        raise ValueError(
            "align: with a loaded model, pass processor= (its tokenizer and feature extractor), or "
            "pass the model's directory / Hub id instead"
        )
    if device is not None:
        model = model.to(device)
    return model, processor.tokenizer, processor.feature_extractor


def align(
    model: Any,
    audio: Any,
    transcript: str | list[str],
    *,
    processor: Any = None,
    sampling_rate: float | None = None,
    unknown: str = "star",
    window_s: float = 30.0,
    margin_s: float = 5.0,
    chunk_length_s: float = 30.0,
    stride_length_s: float = 5.0,
    device: Any = None,
) -> Alignment | list[Alignment]:
    """Align a known transcript to audio (see the module docstring for the method, scores and options).

    Args:
        model: A CTC model directory or Hub id, an ASR pipeline, or a loaded CTC model (then ``processor=``).
        audio: What :func:`hf_wav2vec2.audio.load_audio` reads (path, bytes, array at ``sampling_rate``, ...), or
            a list of them with a list of transcripts of the same length.
        transcript: The words spoken, as plain text.
        unknown: What to do with characters the vocabulary lacks: ``"star"``, ``"unk"``, ``"drop"`` or ``"error"``.
        window_s / margin_s: Viterbi window over long audio and the part of each window's end that is aligned
            again by the next one.
        chunk_length_s / stride_length_s: Model chunks (and their overlap) for audio longer than one chunk.
        device: Where to run a model loaded from a path (a loaded model stays where it is unless given).

    Returns:
        An :class:`Alignment`, or a list of them for a list of clips.
    """
    from .audio import load_audio

    many = isinstance(audio, (list, tuple)) and not _is_sample_tuple(audio)
    clips, texts = (list(audio), transcript) if many else ([audio], [transcript])
    if isinstance(texts, str) or len(texts) != len(clips):
        raise ValueError(
            f"align: {len(clips)} clips need as many transcripts (a list), got "
            f"{'a string' if isinstance(texts, str) else len(texts)}"
        )
    if not 0 < margin_s < window_s:
        raise ValueError(f"align: margin_s ({margin_s}) must be positive and shorter than window_s ({window_s})")
    model, tokenizer, feature_extractor = _components(model, processor, device)
    rate = feature_extractor.sampling_rate
    seconds = frame_duration(model.config, rate)
    spelling, blank, _, _ = _vocabulary(tokenizer)
    was_training = model.training
    model.eval()
    try:
        items, durations = [], []
        for clip, text in zip(clips, texts, strict=True):
            samples = load_audio(clip, rate, sampling_rate=sampling_rate, min_samples=receptive_field(model.config))
            log_probs = _emissions(model, feature_extractor, samples, chunk_length_s, stride_length_s)
            log_probs = _with_star(log_probs, sorted(spelling.values()))
            items.append((log_probs, _build_target(text, tokenizer, unknown, star_id=log_probs.shape[1] - 1)))
            durations.append(samples.shape[0] / rate)
    finally:
        model.train(was_training)
    paths = _paths(items, blank, max(1, round(window_s / seconds)), max(1, round(margin_s / seconds)))
    results = [
        _to_alignment(text, target, path, seconds, duration)
        for text, (_, target), path, duration in zip(texts, items, paths, durations, strict=True)
    ]
    return results if many else results[0]


def _is_sample_tuple(audio: Any) -> bool:
    """``(samples, rate)`` is one clip, not two."""
    return (
        isinstance(audio, tuple)
        and len(audio) == 2
        and isinstance(audio[1], (int, float))
        and not isinstance(audio[1], bool)
    )
