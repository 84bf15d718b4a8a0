"""``hf-wav2vec2 align AUDIO TRANSCRIPT --model M``: where each word of a known transcript is spoken.

The transcript is the second argument or a UTF-8 text file (``--text_file``). The output (JSON, SRT/VTT, Praat
TextGrid or Audacity labels; see :mod:`hf_wav2vec2.alignment_formats`) goes to stdout or ``-o``, whose name also
picks the format when ``--format`` is not given (``.json``, ``.srt``, ``.vtt``, ``.TextGrid``, ``.txt``). An
output never replaces the audio or the transcript file, nor an existing file unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import os

from . import common
from .common import CommandError

NAME = "align"
HELP = "align a known transcript to audio (word, character and token times)"
DESCRIPTION = (
    "Forced alignment: find where each word, character and token of TRANSCRIPT is spoken in AUDIO (CTC Viterbi "
    "over the model's output), with a score per word."
)
FORMATS = ("json", "srt", "vtt", "textgrid", "audacity")
PARENTS = (common.MODEL,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_input(parser, "audio", common.existing_file, "audio file (any format and rate)")
    parser.add_argument(
        "transcript", metavar="TRANSCRIPT", nargs="?", default=None, help="the words spoken (or use --text_file)"
    )
    parser.add_argument(
        "--text_file",
        type=common.existing_file,
        default=None,
        metavar="FILE",
        help="read the transcript from this UTF-8 file instead",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default=None, help="output format (default: from the --output name, else json)"
    )
    parser.add_argument("--output", "-o", default=None, metavar="PATH", help="write here instead of stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument(
        "--words_per_cue",
        type=common.positive_int,
        default=1,
        metavar="N",
        help="srt/vtt: words per subtitle (default 1)",
    )
    parser.add_argument(
        "--unknown",
        choices=("star", "unk", "drop", "error"),
        default="star",
        help="characters the vocabulary lacks: a <star> wildcard each (default), the unknown "
        "token, left out, or an error",
    )
    parser.add_argument(
        "--window",
        type=common.positive_float,
        default=30.0,
        metavar="S",
        help="long audio is aligned in windows of S seconds (default 30)",
    )


def _transcript(args: argparse.Namespace) -> str:
    if (args.transcript is None) == (args.text_file is None):
        raise CommandError("give the transcript either as TRANSCRIPT or with --text_file, not both or neither", 2)
    if args.text_file is None:
        return args.transcript
    try:
        with open(args.text_file, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise CommandError(f"{args.text_file}: not UTF-8 text") from None


def _check_output(args: argparse.Namespace) -> str:
    """The format to write; usage errors for an output that would replace an input or an existing file."""
    from ..alignment_formats import format_for

    if args.output is not None:
        inputs = common.InputFiles([args.audio] + ([args.text_file] if args.text_file else []))
        common.refuse_to_overwrite(args.output, inputs)
        if os.path.isdir(args.output):
            raise CommandError(f"{args.output}: is a directory; --output names a file", 2)
        if os.path.exists(args.output) and not args.overwrite:
            raise CommandError(f"{args.output}: exists; pass --overwrite to replace it", 2)
    if args.format is not None or args.output is None:
        return args.format or "json"
    try:
        return format_for(args.output)
    except ValueError:
        raise CommandError(
            f"{args.output}: cannot tell the format from the name; pass --format ({', '.join(FORMATS)})", 2
        ) from None


def run(args: argparse.Namespace) -> int:
    transcript = _transcript(args)
    fmt = _check_output(args)
    common.quiet_libraries()
    from transformers import AutoModelForCTC

    from ..alignment import align
    from ..alignment_formats import FORMATS as WRITERS
    from ..transcribe import ModelLoadError, asr_pipeline

    try:
        pipe = asr_pipeline(args.model, device=args.device)
    except ModelLoadError:
        common.refuse_mismatched_weights(args.model, AutoModelForCTC)
        raise
    window = args.window
    result = align(pipe, args.audio, transcript, unknown=args.unknown, window_s=window, margin_s=min(5.0, window / 4))
    writer = WRITERS[fmt]
    text = writer(result, args.words_per_cue) if fmt in ("srt", "vtt") else writer(result)
    common.emit(text, args.output)
    return 0
