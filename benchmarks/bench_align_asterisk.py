"""Forced alignment on real speech: do the aligned words of the asterisk prompts lie where the clip has speech?

    python benchmarks/bench_align_asterisk.py --model runs/main_job/finetuned [--split test]
                                              [--out benchmarks/results/alignment_asterisk_cpu.md]
    python benchmarks/bench_align_asterisk.py          # no --model: a random tiny model, as a floor

Each prompt of the split (Debian's asterisk-core-sounds-en-wav, see hf_wav2vec2.corpora.asterisk) is aligned with
its normalized transcript by :func:`hf_wav2vec2.align`. The speech of a clip is found from its energy alone: 20 ms
frames whose RMS is within 35 dB of the clip's loudest frame, pauses under 150 ms closed and the region widened by
40 ms on both sides (a word's first and last sounds are quiet). Reported, over all words:

* **inside the speech span**: the word lies between the clip's first and last speech frame (leading and trailing
  silence is where a bad aligner puts words);
* **mostly on speech**: at least 80 % of the word's frames are speech frames (also catches words placed in a
  pause between phrases);
* the same for two baselines that know no acoustics beyond the energy: words spread over the whole clip, and
  words spread over the speech span, each in proportion to its number of letters.

A model that learned nothing aligns about as well as the first baseline; the second is a strong one for these
short single-phrase prompts (most have no inner pause), so beating it needs a model that hears the letters.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import publish_report, save_random_ctc_model

import hf_wav2vec2
from hf_wav2vec2.alignment import align
from hf_wav2vec2.audio import load_audio
from hf_wav2vec2.corpora import asterisk

FRAME_S = 0.02


def speech_frames(
    samples: np.ndarray, rate: int, floor_db: float = 35.0, close_s: float = 0.15, widen_s: float = 0.04
) -> np.ndarray:
    """Boolean per 20 ms frame: speech by energy (see the module docstring)."""
    hop = round(FRAME_S * rate)
    frames = samples[: samples.shape[0] // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.maximum((frames.astype(np.float64) ** 2).mean(axis=1), 1e-12))
    speech = level > level.max() - floor_db
    gap = round(close_s / FRAME_S)
    on = np.flatnonzero(speech)
    for a, b in itertools.pairwise(on):
        if 1 < b - a <= gap:
            speech[a:b] = True
    widen = round(widen_s / FRAME_S)
    if widen:
        speech = np.convolve(speech.astype(int), np.ones(2 * widen + 1, int), "same") > 0
    return speech


def scores(spans: list[tuple[float, float]], speech: np.ndarray) -> tuple[int, int]:
    """(words inside the speech span, words mostly on speech frames)."""
    on = np.flatnonzero(speech)
    first, last = (on[0], on[-1] + 1) if on.size else (0, 0)
    inside = mostly = 0
    for start, end in spans:
        a, b = round(start / FRAME_S), max(round(end / FRAME_S), round(start / FRAME_S) + 1)
        inside += first <= a and b <= last
        covered = speech[a : min(b, speech.shape[0])]
        mostly += bool(covered.size) and covered.mean() >= 0.8
    return inside, mostly


def spread(words: list[str], start: float, end: float) -> list[tuple[float, float]]:
    """Words laid end to end over [start, end] in proportion to their letters."""
    weights = np.array([len(w) for w in words], dtype=float)
    edges = start + (end - start) * np.concatenate([[0], np.cumsum(weights) / weights.sum()])
    return list(itertools.pairwise(edges))


def random_tiny_model(directory: Path) -> Path:
    """A random model of the tiny preset with the asterisk alphabet: the floor any trained model must beat."""
    from hf_wav2vec2.training.pretrain import TINY_PRESET

    return save_random_ctc_model(directory, TINY_PRESET, alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ'")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="fine-tuned CTC model folder (default: a random tiny model)")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--out", default="benchmarks/results/alignment_asterisk_cpu.md")
    args = parser.parse_args(argv)
    prompts = asterisk.load_split(args.split)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(random_tiny_model(Path(tmp) / "random-tiny"))
        pipe = hf_wav2vec2.asr_pipeline(model)
        rate = pipe.feature_extractor.sampling_rate
        totals = {"aligned": [0, 0], "clip": [0, 0], "span": [0, 0]}
        words = 0
        started = time.perf_counter()
        for prompt in prompts:
            samples = load_audio(str(prompt.path), rate)
            speech = speech_frames(samples, rate)
            result = align(pipe, samples, prompt.text)
            on = np.flatnonzero(speech)
            candidates = {
                "aligned": [(w.start, w.end) for w in result.words],
                "clip": spread(prompt.text.split(), 0.0, samples.shape[0] / rate),
                "span": spread(prompt.text.split(), on[0] * FRAME_S, (on[-1] + 1) * FRAME_S),
            }
            for name, spans in candidates.items():
                inside, mostly = scores(spans, speech)
                totals[name][0] += inside
                totals[name][1] += mostly
            words += len(result.words)
        seconds = time.perf_counter() - started
    audio_s = sum(p.duration for p in prompts)
    label = args.model or "random tiny model (no training: the floor)"
    rows = [
        ("forced alignment", *totals["aligned"]),
        ("baseline: letters spread over the clip", *totals["clip"]),
        ("baseline: letters spread over the speech span", *totals["span"]),
    ]
    lines = [
        (
            f"# Forced alignment on the asterisk prompts ({args.split} split: {len(prompts)} prompts, {words} words, "
            f"{audio_s / 60:.1f} min)"
        ),
        "",
        f"Model: {label}. Command: `python {' '.join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])])}`",
        f"Aligned in {seconds:.1f} s on this CPU (model and Viterbi; RTF {seconds / audio_s:.3f}).",
        "",
        "| words placed by | inside the speech span | mostly (>= 80 %) on speech frames |",
        "|---|---|---|",
        *[f"| {name} | {inside / words:.1%} | {mostly / words:.1%} |" for name, inside, mostly in rows],
        "",
        (
            "Speech frames: 20 ms RMS within 35 dB of the clip's loudest frame, pauses under 150 ms closed, widened by "
            "40 ms (see the script's docstring)."
        ),
    ]
    publish_report(lines, args.out)


if __name__ == "__main__":
    main()
