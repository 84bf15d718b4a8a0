"""``hf-wav2vec2 finetune ...``: :func:`hf_wav2vec2.training.finetune.main` reads the rest of the command line
(``examples/finetune_ctc.py``'s flags, transformers' ``TrainingArguments`` among them)."""

from __future__ import annotations

from .common import run_training_main

NAME = "finetune"
HELP = "fine-tune a model with CTC (arguments of examples/finetune_ctc.py)"


def main(argv: list[str]) -> int:
    return run_training_main(NAME, "training.finetune", argv)
