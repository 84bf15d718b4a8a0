"""Issue 13: LM beam search from several threads gives each call the result a sequential run gives (before the
decoder took turns on a lock, 4 threads got ``KeyError: LMState``, "a state is null" and SIGSEGV)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from test_pipeline_hf_wav2vec2 import make_processor, noise, small_config

from hf_wav2vec2 import HfWav2Vec2ForCTC
from hf_wav2vec2.decoding import CTCBeamSearchDecoder, build_arpa, is_flashlight_available

pytestmark = pytest.mark.skipif(not is_flashlight_available(), reason="flashlight-text is not installed")

THREADS = 4
LETTERS = "ETAONIHCK"


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A trigram LM over random words of the test vocabulary's letters, and its words."""
    rng = random.Random(0)
    words = sorted({"".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 4))) for _ in range(150)})
    path = tmp_path_factory.mktemp("lm") / "lm.arpa"
    build_arpa([" ".join(rng.choice(words) for _ in range(6)) for _ in range(200)], path, order=3)
    return str(path), words


def in_threads(function, items):
    """``function`` over ``items`` twice, from THREADS threads at once, in the items' order."""
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(function, items * 2))


def random_logits(count, frames=60):
    rng = np.random.default_rng(0)
    vocab = len(make_vocab())
    return [rng.standard_normal((frames, vocab)).astype(np.float32) * 3 for _ in range(count)]


def make_vocab():
    return {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: 5 + i for i, c in enumerate(LETTERS)}}


# the modes whose LM runs in Python (a search there can be interrupted); the lexicon + KenLM search is one C++ call
@pytest.mark.parametrize("mode", ["lexicon-free", "hotwords", "lexicon+hotwords"])
def test_one_decoder_shared_by_threads_gives_the_sequential_results(lm, mode):
    path, words = lm
    options = {
        "lexicon-free": {},
        "hotwords": {"hotwords": words[:3]},
        "lexicon+hotwords": {"lexicon": words, "hotwords": words[:3]},
    }[mode]
    decoder = CTCBeamSearchDecoder(make_vocab(), path, beam_size=20, **options)
    logits = random_logits(6)
    sequential = [decoder.decode_hypothesis(x) for x in logits]
    assert len({h.text for h in sequential}) > 1  # the clips really differ
    parallel = in_threads(decoder.decode_hypothesis, logits)
    assert [(h.text, h.score) for h in parallel] == [(h.text, h.score) for h in sequential * 2]


def test_asr_pipeline_with_an_lm_from_four_threads(lm, tmp_path):
    from transformers import pipeline

    torch.manual_seed(0)
    model = HfWav2Vec2ForCTC(small_config()).eval()
    processor = make_processor(tmp_path)
    asr = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        lm=lm[0],
        beam_size=20,
    )
    clips = [noise(1.5, seed=seed) for seed in range(6)]
    sequential = [asr(clip, return_timestamps="word") for clip in clips]
    assert len({r["text"] for r in sequential}) == len(clips) and all(r["text"] for r in sequential)
    assert in_threads(lambda clip: asr(clip, return_timestamps="word"), clips) == sequential * 2
