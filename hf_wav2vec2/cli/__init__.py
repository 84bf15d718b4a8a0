"""The ``hf-wav2vec2`` command line: one module per subcommand, listed in :data:`COMMANDS`.

Subcommands::

    hf-wav2vec2 transcribe FILES... --model M [--lm LM.arpa] [--timestamps word|char] [--format text|json|srt|vtt]
    hf-wav2vec2 transcribe - --stream --model M [--rate HZ] [--chunk_length S]   (raw PCM or WAV from stdin)
    hf-wav2vec2 align AUDIO TRANSCRIPT|--text_file F --model M [--format json|srt|vtt|textgrid|audacity]
    hf-wav2vec2 evaluate DATA --model M [--lm LM.arpa] [--max_examples N] [--format text|json] [--show N]
    hf-wav2vec2 classify FILES... --model M [--top_k K] [--format text|json]
    hf-wav2vec2 build-lm TEXT OUT.arpa [--order 3]
    hf-wav2vec2 export-onnx MODEL OUT [--int8]   (ONNX Runtime: then transcribe --onnx / --int8)
    hf-wav2vec2 convert SRC OUT [--from F] [--to T] [--dict DICT]
    hf-wav2vec2 push MODEL_DIR REPO_ID [--dry_run DIR] [--wer X | --accuracy X ...] [--adapter_lang LANG]
    hf-wav2vec2 finetune ...    (hf_wav2vec2.training.finetune; the rest of the line is its own)
    hf-wav2vec2 finetune-classification ...    (hf_wav2vec2.training.finetune_classification, likewise)
    hf-wav2vec2 pretrain ...    (hf_wav2vec2.training.pretrain; the rest of the line is its own)

Problems are reported as one line on stderr (``hf-wav2vec2: error: ...``, details if any on the lines below),
never as a traceback; the exit status is 1 for a failed command and 2 for a usage error. Flags are spelled with
underscores, as the training scripts' (``--batch_size``). No command writes over its inputs
(:func:`.common.refuse_to_overwrite`), and a model folder whose config.json disagrees with its weights is reported
with the tensors that differ (:func:`.common.refuse_mismatched_weights`).

Adding a subcommand, e.g. ``align``, is one module and one line:

1. ``hf_wav2vec2/cli/align.py`` defines

   * ``NAME = "align"`` and ``HELP`` (its line in ``hf-wav2vec2 --help``); optionally ``DESCRIPTION`` (the top of
     ``hf-wav2vec2 align --help``) and ``PARENTS``, the shared flags it takes from :mod:`.common` (``MODEL``:
     ``--model/--device``, or ``model_options(help)`` for another kind of model, ``MMS_LANGUAGE``: ``--lang``,
     ``LM``: ``--lm/--alpha/--beta/--beam_size``, ``CHUNKING``, ``CTC_DECODING``: these four, ``PROGRESS``:
     ``--quiet``, ``output_options(...)``: ``--format`` and ``-o/--output``);
   * ``add_arguments(parser)``: its own arguments, validated by argparse types (``common.positive_int``, ...,
     ``choices``; ``common.add_input`` for an input file or folder) so that bad values are argparse's usage
     errors;
   * ``run(args) -> int``: the work, returning the exit status; raise :class:`.common.CommandError` for a problem
     to report. Check ``--output`` against the inputs (``common.refuse_to_overwrite(output,
     common.InputFiles(files))``) before loading a model.
   * ``NEEDS_MODELS = False`` when it never loads a model (otherwise :func:`hf_wav2vec2.register` runs before
     ``run``); a command whose own parser reads the rest of the line defines ``main(argv) -> int`` instead of
     ``add_arguments`` and ``run``.

   At module level it imports only the standard library and :mod:`.common`: the library it drives (torch,
   transformers) is imported inside ``add_arguments``/``run``, so ``hf-wav2vec2 --help`` and usage errors answer
   in a tenth of a second. Only the selected subcommand's ``add_arguments`` runs.
2. ``from . import align`` below and ``align`` in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from types import ModuleType

from . import (
    align,
    build_lm,
    classify,
    common,
    convert,
    evaluate,
    export_onnx,
    finetune,
    finetune_classification,
    pretrain,
    push,
    transcribe,
)
from .common import CommandError

PROG = common.PROG
# The order of hf-wav2vec2 --help.
COMMANDS: tuple[ModuleType, ...] = (
    transcribe,
    align,
    evaluate,
    classify,
    build_lm,
    convert,
    export_onnx,
    push,
    finetune,
    finetune_classification,
    pretrain,
)


def _passes_through(module: ModuleType) -> bool:
    return hasattr(module, "main")


def _add_command(subparsers: argparse._SubParsersAction, module: ModuleType) -> None:
    parser = subparsers.add_parser(
        module.NAME,
        help=module.HELP,
        description=getattr(module, "DESCRIPTION", None),
        parents=getattr(module, "PARENTS", ()),
    )
    module.add_arguments(parser)
    parser.set_defaults(run=module.run)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the subcommand ``argv`` selects gets its arguments (its ``add_arguments`` may
    import a part of the library); the others are listed by name and help. ``None``: all of them."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="wav2vec 2.0: transcribe, evaluate, build LMs, convert, publish, fine-tune, pre-train."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    # The top-level parser has no option but --help, so the subcommand, if any, is the first word.
    selected = argv[0] if argv else None
    for module in COMMANDS:
        if not _passes_through(module) and (argv is None or module.NAME == selected):
            _add_command(subparsers, module)
        else:  # listed for --help; never parsed (a pass-through command gets its argv in main)
            subparsers.add_parser(module.NAME, help=module.HELP, add_help=False)
    return parser


def _command(name: str) -> ModuleType | None:
    return next((module for module in COMMANDS if module.NAME == name), None)


def _run(argv: list[str]) -> int:
    module = _command(argv[0]) if argv else None
    if module is not None and _passes_through(module):
        if getattr(module, "NEEDS_MODELS", True) and not common.asks_for_help(argv[1:]):
            common.register_models()
        return int(module.main(argv[1:]) or 0)
    try:
        parser = build_parser(argv)
    except ImportError as error:  # the selected command's add_arguments needs a part of the library missing here
        raise common.unavailable(argv[0], error) from None
    args = parser.parse_args(argv)
    if getattr(_command(args.command), "NEEDS_MODELS", True):
        common.register_models()
    return int(args.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hf-wav2vec2`` console script; returns the exit status (argparse's usage errors and
    ``--help`` exit through ``SystemExit``, as usual)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except CommandError as error:
        first, *details = str(error).splitlines() or [""]
        common.print_error(first)
        for line in details:
            print(line, file=sys.stderr, flush=True)
        return error.status
    except KeyboardInterrupt:
        common.print_error("interrupted")
        return 130
    except pickle.UnpicklingError as error:  # e.g. a pytorch_model.bin that weights-only loading refuses
        common.print_error(common.unpickling_error(error))
        return 1
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        # AudioError and ModelLoadError are ValueErrors whose message already names the file or model
        common.print_error(common.one_line(error))
        return 1


__all__ = ["COMMANDS", "CommandError", "build_parser", "main"]
