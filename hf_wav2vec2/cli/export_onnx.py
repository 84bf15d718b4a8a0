"""``hf-wav2vec2 export-onnx MODEL OUT [--int8]``: a CTC model as ONNX (dynamic batch and length) for ONNX Runtime.

OUT gets ``model.onnx`` (and ``model_int8.onnx`` with ``--int8``), the config and the processor: ``hf-wav2vec2
transcribe FILES --model MODEL --onnx`` (or ``--int8``) uses the graphs when they are in MODEL's own folder, and
:class:`hf_wav2vec2.onnx.OnnxWav2Vec2ForCTC` loads OUT. Needs the ``onnx`` extra (``pip install -e ".[onnx]"``).
"""

from __future__ import annotations

import argparse

from . import common
from .common import CommandError, one_line

NAME = "export-onnx"
HELP = "export a CTC model to ONNX (fp32, optionally int8) for ONNX Runtime"
DESCRIPTION = (
    "Export MODEL (a model directory or Hub id of a CTC model, ours or transformers') to OUT/model.onnx with dynamic "
    "batch and length axes, plus its config and processor. --int8 also writes OUT/model_int8.onnx (onnxruntime's "
    "dynamic int8 quantization). OUT may be MODEL's own folder: transcribe --onnx/--int8 then finds the graphs there."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model directory or Hub id of a CTC model")
    parser.add_argument("out", metavar="OUT", help="folder to write (created)")
    parser.add_argument("--int8", action="store_true", help="also write the int8 graph model_int8.onnx")
    parser.add_argument(
        "--int8_conv_stack",
        action="store_true",
        help="with --int8: quantize the conv feature encoder too (faster; it is fp32 by default because int8 there "
        "cost a fine-tuned model 6 CER points, benchmarks/results/performance_cpu.md)",
    )
    parser.add_argument("--opset", type=common.positive_int, default=None, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--overwrite", action="store_true", help="replace ONNX files already in OUT")


def run(args: argparse.Namespace) -> int:
    if args.int8_conv_stack and not args.int8:
        raise CommandError("--int8_conv_stack needs --int8", 2)
    common.quiet_libraries()
    try:
        from ..onnx import ONNX_FILE, ONNX_INT8_FILE, OnnxExportError, export_onnx
    except ImportError as error:
        raise common.unavailable(NAME, error) from None
    try:
        out = export_onnx(
            args.model,
            args.out,
            quantize="int8" if args.int8 else None,
            opset=args.opset,
            overwrite=args.overwrite,
            int8_conv_stack=args.int8_conv_stack,
        )
    except OnnxExportError as error:
        raise CommandError(one_line(error)) from None
    except ImportError as error:  # onnx / onnxscript / onnxruntime missing: the extra says what to install
        raise CommandError(one_line(error)) from None
    written = [out / ONNX_FILE] + ([out / ONNX_INT8_FILE] if args.int8 else [])
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
