"""What the subcommands share: one-line error reporting, argparse types, parent parsers for the common flags,
output writing, and the deferred registration of the models.

This module imports nothing heavy (no torch, no transformers): every subcommand module imports it at start-up,
and ``hf-wav2vec2 --help`` must answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterable

PROG = "hf-wav2vec2"


class CommandError(Exception):
    """A problem to report, with the exit status to use (2: a usage error). The first line of the message is
    printed as ``hf-wav2vec2: error: ...``; further lines (a list of details) are printed under it."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def one_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors may carry a traceback or a table)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def print_error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def print_warning(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def unavailable(command: str, error: BaseException) -> CommandError:
    """The error for a subcommand whose module (or a dependency of it) cannot be imported."""
    return CommandError(f"the {command} command is not available in this installation ({one_line(error)})")


# ----------------------------------------------------------------------------------------------- argparse types
# argparse turns an ArgumentTypeError into its own one-line usage error (exit status 2) naming the flag.


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def int_at_least(minimum: int, why: str = ""):
    """An argparse type: an int of at least ``minimum`` (``why``, if given, is said in the error)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{f' ({why})' if why else ''}, got {text}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value: 'x'"
    return parse


def existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"not a file: {text}" if os.path.exists(text) else f"no such file: {text}")
    return text


def existing_directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"not a directory: {text}" if os.path.exists(text)
                                         else f"no such directory: {text}")
    return text


def existing_path(text: str) -> str:
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"no such file or folder: {text}")
    return text


# ----------------------------------------------------------------------------------------------- parent parsers
# Shared flags, spelled once. A subcommand lists the ones it takes in its PARENTS.


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


MODEL = _parent()
MODEL.add_argument("--model", "-m", required=True, help="model directory or Hub id of a CTC model")
MODEL.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ... (default: cpu)")

LM = _parent()
_lm = LM.add_argument_group("language model (CTC beam search; needs flashlight-text)")
_lm.add_argument("--lm", type=existing_file, default=None, metavar="LM", help="KenLM model: ARPA file (e.g. from build-lm) or binary")
_lm.add_argument("--alpha", type=float, default=None, help="LM weight (default 0.5)")
_lm.add_argument("--beta", type=float, default=None, help="word insertion bonus (default 1.0)")
_lm.add_argument("--beam_size", type=positive_int, default=None, help="beam size (default 50)")

CHUNKING = _parent()
CHUNKING.add_argument("--chunk_length", type=non_negative_float, default=20.0, metavar="S",
                      help="transcribe in chunks of S seconds (default 20; 0 = whole files at once)")
CHUNKING.add_argument("--stride_length", type=non_negative_float, default=None, metavar="S",
                      help="context on each side of a chunk, in seconds (default: chunk length / 6)")
CHUNKING.add_argument("--batch_size", type=positive_int, default=1, metavar="N", help="files or chunks per model call")

PROGRESS = _parent()
PROGRESS.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def output_options(formats: Iterable[str], format_help: str, output_help: str) -> argparse.ArgumentParser:
    """A parent parser for ``--format`` (the first of ``formats`` is the default) and ``-o/--output``."""
    formats = tuple(formats)
    parser = _parent()
    parser.add_argument("--format", choices=formats, default=formats[0], help=format_help)
    parser.add_argument("--output", "-o", default=None, metavar="PATH", help=output_help)
    return parser


# ----------------------------------------------------------------------------------------------- outputs


def emit(text: str, output: str | None) -> None:
    """Write ``text`` to the file ``output`` (its folder is created), or to stdout when None."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------------------------- models


def register_models() -> None:
    """Let transformers' Auto classes and pipeline() know this package's models (deferred in the console script
    so that --help and usage errors answer without importing torch; see hf_wav2vec2.register)."""
    import hf_wav2vec2

    hf_wav2vec2.register()


def quiet_libraries() -> None:
    """transformers' and the Hub's own progress bars and warnings would drown the output on stderr."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars
        from huggingface_hub.utils import logging as hub_logging

        disable_progress_bars()
        hub_logging.set_verbosity_error()  # e.g. a warning per failed Hub request before our own one-line error
    except ImportError:
        pass


def asks_for_help(argv: list[str]) -> bool:
    return any(arg in ("-h", "--help") for arg in argv)


def progress_wanted(args: argparse.Namespace) -> bool:
    """A progress bar only for a person watching (stderr is a terminal) who did not pass --quiet."""
    return not args.quiet and sys.stderr.isatty()
