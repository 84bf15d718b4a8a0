"""``hf-wav2vec2 build-lm TEXT OUT.arpa``: an n-gram LM for ``--lm``, in pure Python (no KenLM tools needed)."""

from __future__ import annotations

import argparse

from . import common
from .common import CommandError, one_line

NAME = "build-lm"
HELP = "build an n-gram LM (ARPA) from a text file"
DESCRIPTION = (
    "Estimate an interpolated modified Kneser-Ney n-gram model from TEXT (one sentence per line, normalised like "
    "the transcripts, e.g. upper case) and write it as an ARPA file for --lm."
)
NEEDS_MODELS = False  # no model is loaded: the command runs without importing torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_input(parser, "text", common.existing_file, "training text, one sentence per line")
    parser.add_argument("out", metavar="OUT.arpa", help="ARPA file to write")
    parser.add_argument(
        "--order",
        type=common.int_at_least(2, "KenLM loads nothing smaller"),
        default=3,
        help="n-gram order (default 3)",
    )


def run(args: argparse.Namespace) -> int:
    from ..decoding import build_arpa

    common.refuse_to_overwrite(args.out, common.InputFiles([args.text]), f"the training text {args.text}")
    try:
        stats = build_arpa(args.text, args.out, order=args.order)
    except UnicodeDecodeError:
        raise CommandError(f"{args.text}: not UTF-8 text") from None
    except ValueError as error:
        raise CommandError(f"{args.text}: {one_line(error)}") from None
    counts = ", ".join(f"{n}-grams: {c}" for n, c in enumerate(stats.counts, start=1))
    print(f"wrote {stats.path} ({counts})")
    return 0
