"""What the subcommands share: one-line error reporting, argparse types, parent parsers for the common flags,
output writing, and the deferred registration of the models.

This module imports nothing heavy (no torch, no transformers): every subcommand module imports it at start-up,
and ``hf-wav2vec2 --help`` must answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

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


def run_training_main(command: str, module: str, argv: list[str]) -> int:
    """A pass-through subcommand: ``hf_wav2vec2.<module>.main`` parses the rest of the command line itself (the
    training scripts' flags, transformers' TrainingArguments among them); its exit status, 0 for a result dict."""
    import importlib

    try:
        # import_module, not `from ..training import`: the package attribute would outlive a sys.modules entry
        training = importlib.import_module(f"..{module}", __package__)
    except ImportError as error:
        raise unavailable(command, error) from None
    result = training.main(argv)
    return result if isinstance(result, int) else 0


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
        raise argparse.ArgumentTypeError(
            f"not a directory: {text}" if os.path.exists(text) else f"no such directory: {text}"
        )
    return text


def existing_path(text: str) -> str:
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"no such file or folder: {text}")
    return text


def add_input(parser: argparse.ArgumentParser, name: str, kind: Any, help: str) -> None:
    """A positional argument for an input that must exist (``kind``: :func:`existing_file`, ... checks it before
    anything loads), shown in the usage in capitals as ``NAME``."""
    parser.add_argument(name, metavar=name.upper(), type=kind, help=help)


# ----------------------------------------------------------------------------------------------- parent parsers
# Shared flags, spelled once. A subcommand lists the ones it takes in its PARENTS.


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def model_options(model_help: str) -> argparse.ArgumentParser:
    """A parent parser for ``-m/--model`` (required; ``model_help`` says which kind of model) and ``--device``."""
    parser = _parent()
    parser.add_argument("--model", "-m", required=True, help=model_help)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ... (default: cpu)")
    return parser


MODEL = model_options("model directory or Hub id of a CTC model")

MMS_LANGUAGE = _parent()
MMS_LANGUAGE.add_argument(
    "--lang",
    default=None,
    metavar="LANG",
    help="language of a multilingual MMS model: loads its adapter.LANG.safetensors, head and vocabulary (e.g. spa)",
)

LM = _parent()
_lm = LM.add_argument_group("language model (CTC beam search; needs flashlight-text)")
_lm.add_argument(
    "--lm", type=existing_file, default=None, metavar="LM", help="KenLM model: ARPA file (e.g. from build-lm) or binary"
)
_lm.add_argument("--alpha", type=float, default=None, help="LM weight (default 0.5)")
_lm.add_argument("--beta", type=float, default=None, help="word insertion bonus (default 1.0)")
_lm.add_argument("--beam_size", type=positive_int, default=None, help="beam size (default 50)")


def lm_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The LM parent's flags as the keyword arguments of the decoding functions (and of the json reports)."""
    return {"lm": args.lm, "alpha": args.alpha, "beta": args.beta, "beam_size": args.beam_size}


CHUNKING = _parent()
CHUNKING.add_argument(
    "--chunk_length",
    type=non_negative_float,
    default=20.0,
    metavar="S",
    help="transcribe in chunks of S seconds (default 20; 0 = whole files at once)",
)
CHUNKING.add_argument(
    "--stride_length",
    type=non_negative_float,
    default=None,
    metavar="S",
    help="context on each side of a chunk, in seconds (default: chunk length / 6)",
)
CHUNKING.add_argument(
    "--batch_size",
    type=positive_int,
    default=1,
    metavar="N",
    help="files or chunks per model call (files are grouped by length to pad less)",
)

PROGRESS = _parent()
PROGRESS.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

# the flags of the commands that transcribe audio with a CTC model (transcribe, evaluate)
CTC_DECODING = (MODEL, MMS_LANGUAGE, LM, CHUNKING)


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


class InputFiles:
    """The files a command reads, so that no output overwrites one: ``path in inputs`` is true for the same resolved
    path and for the same file under another name (a hard link, another case on a case-insensitive disk)."""

    def __init__(self, paths: Iterable[str | os.PathLike]):
        self._paths: set[str] = set()
        self._ids: set[tuple[int, int]] = set()
        for path in paths:
            self._paths.add(self._key(path))
            identity = self._identity(path)
            if identity is not None:
                self._ids.add(identity)

    @staticmethod
    def _key(path: str | os.PathLike) -> str:
        return os.path.normcase(os.path.realpath(path))

    @staticmethod
    def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None  # not there (yet): only its path can match
        return (stat.st_dev, stat.st_ino) if stat.st_ino else None  # some file systems have no inode numbers

    def __contains__(self, path: str | os.PathLike) -> bool:
        identity = self._identity(path)
        return self._key(path) in self._paths or (identity is not None and identity in self._ids)


def refuse_to_overwrite(output: str | os.PathLike | None, inputs: InputFiles, what: str = "an input file") -> None:
    """A usage error when writing ``output`` would replace one of the command's inputs."""
    if output is not None and output in inputs:
        raise CommandError(f"{output}: the output would overwrite {what}; choose another --output", 2)


# ----------------------------------------------------------------------------------------------- models


def register_models() -> None:
    """Let transformers' Auto classes and pipeline() know this package's models (deferred in the console script
    so that --help and usage errors answer without importing torch; see hf_wav2vec2.register)."""
    import hf_wav2vec2

    hf_wav2vec2.register()


def quiet_transformers() -> None:
    """transformers' progress bars and warnings (a bar per weight load) would drown the command's own lines."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def quiet_libraries() -> None:
    """transformers' and the Hub's own progress bars and warnings would drown the output on stderr."""
    quiet_transformers()
    try:
        from huggingface_hub.utils import disable_progress_bars
        from huggingface_hub.utils import logging as hub_logging

        disable_progress_bars()
        hub_logging.set_verbosity_error()  # e.g. a warning per failed Hub request before our own one-line error
    except ImportError:
        pass


MISMATCH_LIST_LIMIT = 20  # tensors listed; a wrong hidden_size touches every layer, and the first ones tell the story


def weight_mismatch(directory: Any, model_class: Any = None) -> str | None:
    """Why the model folder ``directory`` failed to load, when its config.json disagrees with its weights: a message
    whose first line says so and whose next lines list the tensors with their shape in the weights and the shape
    the config asks for. None when ``directory`` is no local folder or shapes are not the problem. ``model_class``
    loads it (default: the class ``hf-wav2vec2 convert`` and ``push`` load the folder with).

    transformers builds the load report behind "Could not load model ... with any of the following classes" (the
    pipeline) and "You set `ignore_mismatched_sizes` to `False`" (from_pretrained), as a logged table that the CLI
    keeps quiet; loading once more with ``ignore_mismatched_sizes=True`` returns the same facts as data.
    """
    if not isinstance(directory, (str, os.PathLike)) or not os.path.isfile(os.path.join(directory, "config.json")):
        return None
    import transformers

    if model_class is None:
        from ..convert import model_class_for_directory

        try:
            model_class = model_class_for_directory(directory)
        except Exception:  # noqa: BLE001 - an unknown architecture: the caller reports the original error
            return None
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()  # the report would print the table we summarize
    try:
        _, info = model_class.from_pretrained(directory, ignore_mismatched_sizes=True, output_loading_info=True)
    except Exception:  # noqa: BLE001 - another problem: the caller reports the original error
        return None
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    mismatched = sorted(info.get("mismatched_keys") or [])
    if not mismatched:
        return None
    lines = [
        f"{directory}: config.json does not match the weights: {len(mismatched)} tensors have other shapes "
        f"(name: shape in the weights, shape config.json asks for)"
    ]
    shown = mismatched[:MISMATCH_LIST_LIMIT]
    lines += [f"  {name}: {tuple(stored)}, {tuple(wanted)}" for name, stored, wanted in shown]
    if len(mismatched) > MISMATCH_LIST_LIMIT:
        lines.append(f"  ... and {len(mismatched) - MISMATCH_LIST_LIMIT} more")
    return "\n".join(lines)


def refuse_mismatched_weights(directory: Any, model_class: Any = None) -> None:
    """Raise the :func:`weight_mismatch` report as a CommandError when that is why ``directory`` did not load
    (call it while handling the loading error, which is re-raised otherwise)."""
    report = weight_mismatch(directory, model_class)
    if report is not None:
        raise CommandError(report) from None


@contextlib.contextmanager
def library_errors(expected: type[BaseException], folder: Any = None) -> Iterator[None]:
    """Around a library call: its own ``expected`` error (a message for the user) becomes a CommandError, and a
    RuntimeError while loading the model folder ``folder`` the :func:`weight_mismatch` report when that is the
    cause (from_pretrained's "ignore_mismatched_sizes" error hides which tensors differ)."""
    try:
        yield
    except expected as error:
        raise CommandError(str(error)) from None
    except RuntimeError:
        if folder is not None:
            refuse_mismatched_weights(folder)
        raise


def unpickling_error(error: BaseException) -> str:
    """The one line for a ``pickle.UnpicklingError`` that reached a command. torch's weights-only refusal (a
    ``pytorch_model.bin`` that pickles Python objects) names the file, what it pickles and how to convert a trusted
    one; any other (a corrupt file) names the file and the cause."""
    from ..convert import is_weights_only_refusal, unreadable_pickle_message, unsafe_pickle_message

    if is_weights_only_refusal(error):
        return unsafe_pickle_message(
            error,
            "if you trust its source, convert it once to safetensors with "
            f"{PROG} convert --unsafe_load {{folder}} NEW_FOLDER",
        )
    return unreadable_pickle_message(error)


def asks_for_help(argv: list[str]) -> bool:
    return any(arg in ("-h", "--help") for arg in argv)


def progress_wanted(args: argparse.Namespace) -> bool:
    """A progress bar only for a person watching (stderr is a terminal) who did not pass --quiet."""
    return not args.quiet and sys.stderr.isatty()
