"""``hf-wav2vec2 convert SRC OUT``: fairseq -> this package, transformers <-> this package
(:func:`hf_wav2vec2.convert.convert`)."""

from __future__ import annotations

import argparse

from . import common
from .common import unavailable

NAME = "convert"
HELP = "convert a fairseq / transformers checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # light: the converters themselves are imported by run
    from ..convert import SOURCES, TARGETS

    common.add_input(parser, "src", common.existing_path, "fairseq .pt file, or a transformers / hf_wav2vec2 directory")
    parser.add_argument("out", metavar="OUT", help="new output directory")
    parser.add_argument(
        "--from", dest="source", choices=SOURCES, default=None, help="format of SRC (default: detected)"
    )
    parser.add_argument(
        "--to", dest="target", choices=TARGETS, default="hf_wav2vec2", help="format to write (default: hf_wav2vec2)"
    )
    parser.add_argument(
        "--dict",
        dest="dict_path",
        type=common.existing_file,
        default=None,
        metavar="DICT",
        help="fairseq letter dictionary (dict.ltr.txt) of a fine-tuned checkpoint",
    )
    parser.add_argument(
        "--unsafe_load",
        dest="unsafe_load",
        action="store_true",
        help="unpickle arbitrary objects from a fairseq checkpoint or a folder's pytorch_model.bin "
        "(runs code from the file: trusted files only); OUT then holds safetensors",
    )


def run(args: argparse.Namespace) -> int:
    try:
        from ..convert import ConversionError, convert
    except ImportError as error:
        raise unavailable(NAME, error) from None
    common.quiet_transformers()
    with common.library_errors(ConversionError, folder=args.src):
        out = convert(
            args.src,
            args.out,
            source=args.source,
            target=args.target,
            dict_path=args.dict_path,
            allow_unsafe_pickle=args.unsafe_load,
        )
    print(f"wrote {args.target} checkpoint to {out}")
    return 0
