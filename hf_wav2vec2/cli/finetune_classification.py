"""``hf-wav2vec2 finetune-classification ...``: :func:`hf_wav2vec2.training.finetune_classification.main` reads the
rest of the command line (``examples/finetune_classification.py``'s flags, transformers' ``TrainingArguments``
among them)."""

from __future__ import annotations

import importlib

from .common import unavailable

NAME = "finetune-classification"
HELP = "fine-tune an audio classifier (arguments of examples/finetune_classification.py)"


def main(argv: list[str]) -> int:
    try:
        # import_module, not `from ..training import`: the package attribute would outlive a sys.modules entry
        training = importlib.import_module("..training.finetune_classification", __package__)
    except ImportError as error:
        raise unavailable(NAME, error) from None
    result = training.main(argv)
    return result if isinstance(result, int) else 0
