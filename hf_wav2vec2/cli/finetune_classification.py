"""``hf-wav2vec2 finetune-classification ...``: :func:`hf_wav2vec2.training.finetune_classification.main` reads the
rest of the command line (``examples/finetune_classification.py``'s flags, transformers' ``TrainingArguments``
among them)."""

from __future__ import annotations

from .common import run_training_main

NAME = "finetune-classification"
HELP = "fine-tune an audio classifier (arguments of examples/finetune_classification.py)"


def main(argv: list[str]) -> int:
    return run_training_main(NAME, "training.finetune_classification", argv)
