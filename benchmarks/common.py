"""What several benchmarks build the same way: random CTC models with a character vocabulary, synthetic audio,
and the Markdown report they print and write.

torch and this package are imported inside the functions: a benchmark's child process that measures its own
memory (``bench_long_audio.py``) imports them when it chooses to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SR = 16000
#: 27 characters by English letter frequency; with the 5 specials a 32-token vocabulary.
LETTERS_BY_FREQUENCY = "ETAONIHSRDLUMWCFGYPBVK'XJQZ"


def write_character_vocab(directory: Path, alphabet: str = LETTERS_BY_FREQUENCY) -> Path:
    """``directory/vocab.json``: <pad>, <s>, </s>, <unk>, the word delimiter |, then ``alphabet`` in order."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    for char in alphabet:
        vocab[char] = len(vocab)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "vocab.json"
    path.write_text(json.dumps(vocab))
    return path


def save_random_ctc_model(
    directory: Path,
    config: dict | None = None,
    alphabet: str = LETTERS_BY_FREQUENCY,
    return_attention_mask: bool = True,
) -> Path:
    """A random (seed 0) HfWav2Vec2ForCTC with ``config``'s overrides and its processor, saved in ``directory``;
    the weights do not change what a forward pass costs."""
    import torch

    from hf_wav2vec2 import (
        HfWav2Vec2Config,
        HfWav2Vec2CTCTokenizer,
        HfWav2Vec2FeatureExtractor,
        HfWav2Vec2ForCTC,
        HfWav2Vec2Processor,
    )

    vocab_file = write_character_vocab(directory, alphabet)
    vocab_size = len(json.loads(vocab_file.read_text()))
    torch.manual_seed(0)
    HfWav2Vec2ForCTC(HfWav2Vec2Config(vocab_size=vocab_size, **(config or {}))).eval().save_pretrained(directory)
    HfWav2Vec2Processor(
        HfWav2Vec2FeatureExtractor(return_attention_mask=return_attention_mask), HfWav2Vec2CTCTokenizer(str(vocab_file))
    ).save_pretrained(directory)
    return directory


def synthetic_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise with a speech-like envelope (syllable-rate modulation) at 16 kHz: content does not change the cost."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    return (0.1 * envelope * rng.standard_normal(t.shape[0])).astype(np.float32)


def publish_report(lines: list[str], out: str | Path) -> str:
    """Print the report and write it to ``out`` (its folder made if needed); returns the text."""
    text = "\n".join(lines) + "\n"
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    return text
