"""``hf-wav2vec2 finetune ...``: :func:`hf_wav2vec2.training.finetune.main` reads the rest of the command line
(``examples/finetune_ctc.py``'s flags, transformers' ``TrainingArguments`` among them)."""

from __future__ import annotations

import importlib

from .common import unavailable

NAME = "finetune"
HELP = "fine-tune a model with CTC (arguments of examples/finetune_ctc.py)"


def main(argv: list[str]) -> int:
    try:
        # import_module, not `from ..training import`: the package attribute would outlive a sys.modules entry
        finetune = importlib.import_module("..training.finetune", __package__)
    except ImportError as error:
        raise unavailable(NAME, error) from None
    result = finetune.main(argv)
    return result if isinstance(result, int) else 0
