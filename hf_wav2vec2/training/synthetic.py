"""Synthetic speech-like audio for tests, demos and smoke-test pre-training runs.

The signals are not speech, but they share the structure a wav2vec 2.0 model exploits: a
harmonic source with a slowly moving pitch, vowel-like spectral envelopes (formants) that
change from "syllable" to "syllable", noise bursts standing in for fricatives, pauses, and a
low noise floor. Each speaker folder gets its own pitch range so there is also some
utterance-level structure. A tiny model can learn to predict masked frames of such audio,
which makes it useful for checking that a pre-training loop actually reduces its loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["make_synthetic_corpus", "synthesize_utterance"]

# (F1, F2, F3) in Hz of a few English vowels (Peterson & Barney averages, rounded).
_VOWEL_FORMANTS = np.array(
    [
        (730, 1090, 2440),  # a
        (270, 2290, 3010),  # i
        (300, 870, 2240),  # u
        (530, 1840, 2480),  # e
        (570, 840, 2410),  # o
        (660, 1720, 2410),  # ae
        (440, 1020, 2240),  # uh
    ],
    dtype=np.float64,
)
_FORMANT_BANDWIDTHS = np.array([110.0, 140.0, 200.0])
_FORMANT_GAINS = np.array([1.0, 0.55, 0.3])

_N_SPEAKERS = 4


def _formant_gain(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Spectral envelope at ``freqs`` (K, n) for per-sample formant frequencies ``formants`` (n, 3)."""
    gain = np.zeros_like(freqs)
    for j in range(3):
        gain += _FORMANT_GAINS[j] * np.exp(-0.5 * ((freqs - formants[:, j]) / _FORMANT_BANDWIDTHS[j]) ** 2)
    # A gentle spectral tilt keeps some energy between formants, as a real glottal source does.
    return gain + 0.05 / (1.0 + freqs / 500.0)


def _voiced_segment(n: int, sr: int, f0_base: float, rng: np.random.Generator) -> np.ndarray:
    """A syllable: harmonics of a gliding pitch shaped by formants moving between two vowels."""
    t = np.arange(n) / n
    f0_start, f0_end = f0_base * rng.uniform(0.85, 1.2, size=2)
    f0 = f0_start + (f0_end - f0_start) * t
    f0 *= 1.0 + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n)  # slow jitter
    phase = 2.0 * np.pi * np.cumsum(f0) / sr

    vowel_a, vowel_b = _VOWEL_FORMANTS[rng.integers(len(_VOWEL_FORMANTS), size=2)]
    blend = (3 * t**2 - 2 * t**3)[:, None]  # smoothstep: coarticulation from one vowel to the next
    formants = vowel_a + (vowel_b - vowel_a) * blend  # (n, 3)

    # Below Nyquist, and below 4 kHz: past F3 the envelope is ~0 and harmonics only cost time.
    n_harmonics = max(1, int(min(0.45 * sr, 4000.0) / f0.max()))
    k = np.arange(1, n_harmonics + 1)[:, None]  # (K, 1)
    # The envelope moves slowly, so evaluate it every 2.5 ms and interpolate: ~50x cheaper.
    hop = max(1, sr // 400)
    frames = np.arange(0, n + hop, hop).clip(max=n - 1)
    gains = _formant_gain(k * f0[None, frames], formants[frames])  # (K, frames)
    pos = np.arange(n) / hop
    left = pos.astype(np.int64)
    frac = pos - left
    amplitudes = gains[:, left] * (1.0 - frac) + gains[:, left + 1] * frac  # (K, n)
    signal = (amplitudes * np.sin(k * phase[None, :])).sum(axis=0)
    envelope = np.sin(np.pi * t) ** 0.6
    return signal * envelope


def _fricative_segment(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A noise burst with energy in a random high band (like /s/, /sh/, /f/)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, d=1.0 / sr)
    centre = rng.uniform(0.25, 0.42) * sr
    width = rng.uniform(0.04, 0.1) * sr
    spectrum *= np.exp(-0.5 * ((freqs - centre) / width) ** 2)
    noise = np.fft.irfft(spectrum, n=n)
    noise /= np.abs(noise).max() + 1e-9
    return 0.35 * noise * np.hanning(n)


def synthesize_utterance(
    num_samples: int, sr: int, rng: np.random.Generator, f0_base: float | None = None
) -> np.ndarray:
    """Return ``num_samples`` of speech-like float32 audio at rate ``sr`` (peak below 1)."""
    f0_base = float(rng.uniform(90, 220)) if f0_base is None else f0_base
    out = np.zeros(num_samples, dtype=np.float64)
    pos = int(rng.uniform(0.02, 0.2) * sr)  # leading silence
    while pos < num_samples:
        choice = rng.random()
        if choice < 0.12:
            pos += int(rng.uniform(0.05, 0.25) * sr)  # pause
            continue
        if choice < 0.32:
            n = int(rng.uniform(0.06, 0.15) * sr)
            segment = _fricative_segment(n, sr, rng)
        else:
            n = int(rng.uniform(0.12, 0.35) * sr)
            segment = _voiced_segment(n, sr, f0_base, rng)
            segment /= np.abs(segment).max() + 1e-9
        segment = segment[: num_samples - pos] * rng.uniform(0.4, 1.0)
        out[pos : pos + len(segment)] += segment
        pos += len(segment)
    noise_level = 10 ** (rng.uniform(-45, -30) / 20)
    out += noise_level * rng.standard_normal(num_samples)
    out *= rng.uniform(0.3, 0.9) / (np.abs(out).max() + 1e-9)
    return out.astype(np.float32)


def make_synthetic_corpus(
    directory: str | Path,
    n_files: int = 32,
    min_seconds: float = 2.0,
    max_seconds: float = 6.0,
    sr: int | Sequence[int] = (8000, 16000, 22050),
    seed: int = 0,
    *,
    formats: Sequence[str] = ("wav",),
) -> list[Path]:
    """Write ``n_files`` speech-like recordings under ``directory`` and return their paths.

    Files go to ``directory/spk{k}/utt{i:05d}.{ext}`` (4 "speakers" with distinct pitch ranges),
    so the corpus also exercises recursive folder scanning. Durations are uniform in
    ``[min_seconds, max_seconds]``. ``sr`` is one sampling rate or a sequence cycled over files;
    ``formats`` (any of "wav", "flac", "ogg", "mp3") is cycled the same way, which is handy
    for testing decoders. Output is deterministic given ``seed``.
    """
    if n_files < 0 or min_seconds <= 0 or max_seconds < min_seconds:
        raise ValueError("need n_files >= 0 and 0 < min_seconds <= max_seconds")
    rates = [int(sr)] if isinstance(sr, (int, np.integer)) else [int(r) for r in sr]
    rng = np.random.default_rng(seed)
    speaker_f0 = rng.uniform(90, 220, size=_N_SPEAKERS)
    root = Path(directory)
    paths = []
    for i in range(n_files):
        rate = rates[i % len(rates)]
        ext = formats[i % len(formats)].lstrip(".").lower()
        speaker = i % _N_SPEAKERS
        seconds = rng.uniform(min_seconds, max_seconds)
        f0 = speaker_f0[speaker] * rng.uniform(0.9, 1.1)
        audio = synthesize_utterance(round(seconds * rate), rate, rng, f0_base=f0)
        path = root / f"spk{speaker}" / f"utt{i:05d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        # PCM_16 for the lossless containers mirrors real corpora; lossy ones use their codec default.
        subtype = "PCM_16" if ext in ("wav", "flac") else None
        sf.write(str(path), audio, rate, subtype=subtype)
        paths.append(path)
    return paths
