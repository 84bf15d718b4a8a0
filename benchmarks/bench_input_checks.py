"""Cost of the model-boundary input checks (issue 13): CTC forward with and without them, in one run.

    python benchmarks/bench_input_checks.py [--seconds 10] [--rounds 7] [--sizes tiny,base]

"Without" replaces :func:`hf_wav2vec2.modeling_hf_wav2vec2.prepare_input_values` by a function that returns its
input: no isfinite reduction, no dtype or shape checks. The two variants alternate round by round on the same
model and the same input (random weights: the cost does not depend on them), so the machine's load hits both
alike; the median per variant and their ratio are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import hf_wav2vec2.modeling_hf_wav2vec2 as modeling
from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForCTC

SIZES = {
    # tests/conftest.py's tiny model on the real 7-layer conv stack (20 ms frames)
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        vocab_size=32,
    ),
    "base": dict(vocab_size=32),  # the config's defaults are BASE's (12 x 768, 95M parameters)
}


def time_forward(model, x, repeats: int = 1) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(repeats):
            model(x)
    return (time.perf_counter() - start) / repeats


def measure(size: str, seconds: float, rounds: int) -> dict:
    """Median forward time with and without the checks, alternating the two in every round."""
    torch.manual_seed(0)
    model = HfWav2Vec2ForCTC(HfWav2Vec2Config(**SIZES[size])).eval()
    x = torch.randn(1, int(seconds * 16000)) * 0.1
    repeats = 20 if size == "tiny" else 1  # the tiny forward is milliseconds: average a few per sample
    checked = modeling.prepare_input_values
    times: dict[str, list[float]] = {"with": [], "without": []}
    time_forward(model, x)  # warm-up
    try:
        for round_ in range(rounds):
            for variant in ("with", "without") if round_ % 2 == 0 else ("without", "with"):
                modeling.prepare_input_values = checked if variant == "with" else (lambda values, *_: values)
                times[variant].append(time_forward(model, x, repeats))
    finally:
        modeling.prepare_input_values = checked
    with_, without = statistics.median(times["with"]), statistics.median(times["without"])
    start = time.perf_counter()
    for _ in range(200):  # the checks alone, for a number the forward's noise cannot hide
        checked(x, model.dtype, model.device, model.config.receptive_field)
    alone = (time.perf_counter() - start) / 200
    return {"size": size, "with_s": with_, "without_s": without, "ratio": with_ / without, "checks_s": alone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", default="tiny,base")
    args = parser.parse_args()
    print(f"CTC forward of {args.seconds:g} s, batch 1, {torch.get_num_threads()} threads, median of {args.rounds}")
    print("| model | with checks (s) | without (s) | ratio | the checks alone (ms) |\n|---|---|---|---|---|")
    for size in args.sizes.split(","):
        r = measure(size, args.seconds, args.rounds)
        print(
            f"| {size} | {r['with_s']:.4f} | {r['without_s']:.4f} | {r['ratio']:.3f} | {r['checks_s'] * 1e3:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
