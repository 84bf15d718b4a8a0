"""``hf-wav2vec2 pretrain ...``: :func:`hf_wav2vec2.training.pretrain.main` reads the rest of the command line
(``examples/pretrain.py``'s flags)."""

from __future__ import annotations

import importlib

from .common import unavailable

NAME = "pretrain"
HELP = "pre-train a model with the wav2vec 2.0 objective"
# The training function registers the models itself once its arguments are parsed, so that --help and a bad flag
# answer without importing torch.
NEEDS_MODELS = False


def main(argv: list[str]) -> int:
    try:
        # import_module, not `from ..training import`: the package attribute would outlive a sys.modules entry
        pretrain = importlib.import_module("..training.pretrain", __package__)
    except ImportError as error:
        raise unavailable(NAME, error) from None
    result = pretrain.main(argv)
    return result if isinstance(result, int) else 0
