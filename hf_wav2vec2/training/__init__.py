"""Training utilities for hf-wav2vec2.

Pre-training: :mod:`.data` (the data pipeline, a package), :mod:`.pretrain` (the Accelerate training function),
:mod:`.pretrain_update` (one update: statistics, gradients, the logged record),
:mod:`.pretrain_args` (its typed arguments and model config), :mod:`.checkpoints` (atomic, checked checkpoints),
:mod:`.pretrain_log` (log, curves), :mod:`.health` (failure-mode warnings), :mod:`.synthetic` (speech-like test
audio), :mod:`.allocator` (glibc's mmap threshold, which sets how much of a step's peak memory is heap).
Fine-tuning: :mod:`.finetune`, :mod:`.ctc_data`, :mod:`.vocab`, :mod:`.metrics`.

The data pipeline's public names (its ``__all__``) and the synthetic audio generator are re-exported here; other
submodules are imported on their own (``from hf_wav2vec2.training.<module> import ...``). The re-exports are
resolved on first access (PEP 562): importing a submodule such as :mod:`hf_wav2vec2.training.pretrain` to parse
``--help`` must not import torch through this package.
"""

from __future__ import annotations

import importlib
import importlib.util

# The data pipeline's names are the ones its own ``__all__`` lists (one list, in ``data/__init__.py``).
_SYNTHETIC_EXPORTS = ("make_synthetic_corpus", "synthesize_utterance")


def _data_names() -> list[str]:
    return list(importlib.import_module(".data", __name__).__all__)


def __getattr__(name: str):
    if name == "__all__":  # ``from hf_wav2vec2.training import *``
        return sorted({*_data_names(), *_SYNTHETIC_EXPORTS})
    if name in _SYNTHETIC_EXPORTS:
        module_name = "synthetic"
    # a submodule not imported yet (``from hf_wav2vec2.training import pretrain``) is imported by Python itself
    # after this AttributeError: it must not cost an import of the data pipeline
    elif name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    elif name in _data_names():
        module_name = "data"
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_data_names(), *_SYNTHETIC_EXPORTS})
