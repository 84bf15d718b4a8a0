"""int8 inference for CTC models: :func:`quantize` and :func:`from_pretrained` return an ONNX Runtime model with int8
weights (:class:`~hf_wav2vec2.onnx.OnnxWav2Vec2ForCTC`) that the pipeline and the CLI run like the PyTorch one.

Why ONNX Runtime: on a CPU it is the maintained int8 path that is fast here. ``torch.ao.quantization.
quantize_dynamic`` is deprecated; torchao's int8 dynamic-activation config (0.18, torch 2.13) runs eagerly on the
CPU through a reference kernel, 15x slower than fp32 on a BASE-size feed-forward block (measured), and needs
``torch.compile`` to be fast. onnxruntime's dynamic quantization reaches the conv feature encoder as well, a third
of a BASE forward, because :func:`~hf_wav2vec2.onnx.export_onnx` writes the convolutions as MatMuls.

Needs the ``onnx`` extra (``pip install -e ".[onnx]"``). Quantizing exports the model first (a minute or more for
BASE on a small CPU): to pay that once, ``hf-wav2vec2 export-onnx MODEL OUT --int8`` (or ``export_onnx(MODEL, OUT,
quantize="int8")``) and load ``OUT`` afterwards, which :func:`from_pretrained` does without exporting again.
"""

from __future__ import annotations

import os
from typing import Any

from .onnx import OnnxWav2Vec2ForCTC, export_onnx, onnx_model

__all__ = ["QUANTIZE_MODES", "export_onnx", "from_pretrained", "quantize"]

QUANTIZE_MODES = ("int8",)


def _check_mode(mode: Any, argument: str) -> None:
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, QUANTIZE_MODES))}, got {mode!r}")


def quantize(
    model: Any, mode: str = "int8", *, cache_dir: str | os.PathLike | None = None, num_threads: int | None = None
) -> OnnxWav2Vec2ForCTC:
    """An int8 ONNX Runtime copy of a CTC model.

    Args:
        model: ``HfWav2Vec2ForCTC`` (or transformers' ``Wav2Vec2ForCTC``), a model directory or a Hub id. A folder
            written by ``export_onnx(..., quantize="int8")`` is loaded as it is; one with only ``model.onnx`` is
            quantized from it (into ``cache_dir``, never into that folder).
        mode: ``"int8"`` (the only mode).
        cache_dir: Folder to write the exported files to (kept); default a temporary folder removed with the model.
        num_threads: onnxruntime's intra-op threads (default: ``torch.get_num_threads()``).
    """
    _check_mode(mode, "quantize: mode")
    return onnx_model(model, int8=True, cache_dir=cache_dir, num_threads=num_threads)


_quantize_model = quantize  # from_pretrained's argument is called quantize too (transformers' loader style)


def from_pretrained(source: str | os.PathLike, quantize: str = "int8", **kwargs: Any) -> OnnxWav2Vec2ForCTC:
    """``HfWav2Vec2ForCTC.from_pretrained(source)`` quantized (:func:`quantize`): the ``quantize="int8"`` loader."""
    _check_mode(quantize, "from_pretrained: quantize")
    return _quantize_model(source, quantize, **kwargs)
