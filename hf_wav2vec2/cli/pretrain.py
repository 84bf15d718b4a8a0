"""``hf-wav2vec2 pretrain ...``: :func:`hf_wav2vec2.training.pretrain.main` reads the rest of the command line
(``examples/pretrain.py``'s flags)."""

from __future__ import annotations

from .common import run_training_main

NAME = "pretrain"
HELP = "pre-train a model with the wav2vec 2.0 objective"
# The training function registers the models itself once its arguments are parsed, so that --help and a bad flag
# answer without importing torch.
NEEDS_MODELS = False


def main(argv: list[str]) -> int:
    return run_training_main(NAME, "training.pretrain", argv)
