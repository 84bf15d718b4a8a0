"""The ``hf-wav2vec2`` command line.

Subcommands::

    hf-wav2vec2 transcribe FILES... --model M [--lm LM.arpa] [--timestamps word|char] [--format text|json|srt|vtt] ...
    hf-wav2vec2 evaluate DATA --model M [--lm LM.arpa] [--max-examples N] [--format text|json] [--show N] ...
    hf-wav2vec2 build-lm TEXT OUT.arpa [--order 3]
    hf-wav2vec2 convert ...     (hf_wav2vec2.convert)
    hf-wav2vec2 push ...        (hf_wav2vec2.hub)
    hf-wav2vec2 finetune ...    (hf_wav2vec2.training.finetune; arguments passed through)
    hf-wav2vec2 pretrain ...    (hf_wav2vec2.training.pretrain; arguments passed through)

Problems are reported as one line on stderr (``hf-wav2vec2: error: ...``), never as a traceback. ``transcribe``
reports each bad file and still transcribes the others; its exit status is 1 when any file failed, 2 for a
usage error.

``evaluate`` scores a model (greedy, or LM beam search with ``--lm``) on labeled audio: WER and CER (jiwer, after
case-folding). DATA is a folder with a ``metadata.csv`` / ``.tsv`` / ``.jsonl`` (columns ``file`` or ``file_name``,
and ``text``; paths relative to the folder: the layout of :func:`hf_wav2vec2.corpora.asterisk.export_prompts` and of
``finetune --train_dir``), one such metadata file itself, or a list with one ``path<TAB>transcript`` per line (paths
relative to the list's folder). Unreadable audio is scored as an empty hypothesis and reported as a warning; the exit
status is 1 only when every file failed (or the data cannot be read), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

PROG = "hf-wav2vec2"
# Subcommands whose own parser reads the rest of the command line: (module, help, whether the command line must
# register the models first; pretrain registers them itself once its arguments are parsed).
PASS_THROUGH = {
    "finetune": ("hf_wav2vec2.training.finetune", "fine-tune a model with CTC (arguments of examples/finetune_ctc.py)",
                 True),
    "pretrain": ("hf_wav2vec2.training.pretrain", "pre-train a model with the wav2vec 2.0 objective", False),
}
# Subcommands whose arguments another module adds: (module, add-arguments function, run function, help).
DELEGATED = {
    "convert": ("hf_wav2vec2.convert", "add_convert_arguments", "run_convert",
                "convert a fairseq / transformers checkpoint"),
    "push": ("hf_wav2vec2.hub", "add_push_arguments", "run_push", "publish a model directory on the Hub"),
}
FORMATS = ("text", "json", "srt", "vtt")
# Subcommands that never load a model: they run without registering the models (which imports torch).
WITHOUT_MODELS = {"build-lm"}


class CommandError(Exception):
    """A problem to report in one line, with the exit status to use."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _print_error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def _print_warning(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- parser


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _add_transcribe(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "transcribe", help="transcribe audio files",
        description="Transcribe audio files (WAV, FLAC, OGG, MP3, anything ffmpeg reads) at any sampling rate.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument("--model", "-m", required=True, help="model directory or Hub id of a CTC model")
    _add_lm_options(p)
    p.add_argument("--timestamps", choices=("word", "char"), default=None, help="also return word or char times")
    p.add_argument("--chunk-length", type=_non_negative_float, default=20.0, metavar="S",
                   help="transcribe in chunks of S seconds (default 20; 0 = whole files at once)")
    p.add_argument("--stride-length", type=_non_negative_float, default=None, metavar="S",
                   help="context on each side of a chunk, in seconds (default: chunk length / 6)")
    p.add_argument("--batch-size", type=_positive_int, default=1, metavar="N", help="files or chunks per model call")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text: the transcript (with several files, FILE<TAB>text lines); json: a list of objects; "
                        "srt/vtt: subtitles from word timestamps")
    p.add_argument("--output", "-o", default=None, metavar="PATH",
                   help="write here instead of stdout; for srt/vtt with several files, a directory with one file each")
    p.add_argument("--max-words-per-cue", type=_positive_int, default=7, metavar="N", help="srt/vtt (default 7)")
    p.add_argument("--max-cue-duration", type=_positive_float, default=5.0, metavar="S", help="srt/vtt (default 5)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ... (default: cpu)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=run_transcribe)


def _add_lm_options(p: argparse.ArgumentParser) -> None:
    lm = p.add_argument_group("language model (CTC beam search; needs flashlight-text)")
    lm.add_argument("--lm", default=None, metavar="LM", help="KenLM model: ARPA file (e.g. from build-lm) or binary")
    lm.add_argument("--alpha", type=float, default=None, help="LM weight (default 0.5)")
    lm.add_argument("--beta", type=float, default=None, help="word insertion bonus (default 1.0)")
    lm.add_argument("--beam-size", type=_positive_int, default=None, help="beam size (default 50)")


def _add_evaluate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="WER and CER of a model on labeled audio",
        description="Transcribe labeled audio and score it: word and character error rates (case-folded, whitespace "
                    "collapsed). DATA is a folder with metadata.csv/.tsv/.jsonl (columns file or file_name, and "
                    "text; paths relative to the folder), such a metadata file, or a file of path<TAB>transcript "
                    "lines (paths relative to its folder). Audio that cannot be read counts as an empty hypothesis.",
    )
    p.add_argument("data", metavar="DATA", help="labeled folder, metadata file, or path<TAB>transcript list")
    p.add_argument("--model", "-m", required=True, help="model directory or Hub id of a CTC model")
    _add_lm_options(p)
    p.add_argument("--batch-size", type=_positive_int, default=1, metavar="N", help="files or chunks per model call")
    p.add_argument("--chunk-length", type=_non_negative_float, default=20.0, metavar="S",
                   help="transcribe in chunks of S seconds (default 20; 0 = whole files at once)")
    p.add_argument("--stride-length", type=_non_negative_float, default=None, metavar="S",
                   help="context on each side of a chunk, in seconds (default: chunk length / 6)")
    p.add_argument("--max-examples", type=_positive_int, default=None, metavar="N", help="only the first N rows")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: a summary line and examples; json: scores and every reference/hypothesis pair")
    p.add_argument("--output", "-o", default=None, metavar="PATH", help="write here instead of stdout")
    p.add_argument("--show", type=int, default=5, metavar="N",
                   help="text format: print the first N utterances with errors, reference and hypothesis "
                        "(default 5; 0 = none)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ... (default: cpu)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=run_evaluate)


def _add_build_lm(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "build-lm", help="build an n-gram LM (ARPA) from a text file",
        description="Estimate an interpolated modified Kneser-Ney n-gram model from TEXT (one sentence per line, "
                    "normalised like the transcripts, e.g. upper case) and write it as an ARPA file for --lm.",
    )
    p.add_argument("text", metavar="TEXT", help="training text, one sentence per line")
    p.add_argument("out", metavar="OUT.arpa", help="ARPA file to write")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.set_defaults(run=run_build_lm)


def _add_delegated(subparsers: Any, name: str) -> None:
    module_name, add_name, run_name, help_text = DELEGATED[name]
    try:
        module = importlib.import_module(module_name)
        add_arguments, run = getattr(module, add_name), getattr(module, run_name)
    except (ImportError, AttributeError) as error:
        p = subparsers.add_parser(name, help=f"{help_text} (unavailable)", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=_unavailable(name, error))
        return
    p = subparsers.add_parser(name, help=help_text)
    add_arguments(p)
    p.set_defaults(run=run)


def _unavailable(name: str, error: BaseException) -> Any:
    def run(args: argparse.Namespace) -> int:
        raise CommandError(f"the {name} command is not available in this installation ({_one_line(error)})") from None

    return run


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``. A delegated subcommand's module (``hub`` imports torch: seconds) is imported only
    when ``argv`` selects that subcommand; the others are listed by name and help only. ``None``: all of them."""
    parser = argparse.ArgumentParser(prog=PROG, description="wav2vec 2.0: transcribe, evaluate, build LMs, convert, "
                                                            "publish, fine-tune, pre-train.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_transcribe(subparsers)
    _add_evaluate(subparsers)
    _add_build_lm(subparsers)
    # The top-level parser has no option but --help, so the subcommand, if any, is the first word.
    selected = argv[0] if argv else None
    for name in DELEGATED:
        if argv is None or name == selected:
            _add_delegated(subparsers, name)
        else:
            subparsers.add_parser(name, help=DELEGATED[name][3], add_help=False)  # never parsed: not selected
    for name, (_, help_text, _) in PASS_THROUGH.items():
        # listed for --help; main() hands their arguments over before argparse sees them
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


# ----------------------------------------------------------------------------------------------- transcribe


def _quiet_libraries() -> None:
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


def _check_output(args: argparse.Namespace) -> None:
    if args.output is None:
        return
    out = Path(args.output)
    several_subtitles = args.format in ("srt", "vtt") and len(args.files) > 1
    if several_subtitles and out.exists() and not out.is_dir():
        raise CommandError(f"{out}: with several files, --output for {args.format} must be a directory", 2)
    if not several_subtitles and out.is_dir():
        raise CommandError(f"{out}: is a directory; --output names a file", 2)


def _format_result(result: Any, args: argparse.Namespace, many: bool) -> str:
    """One file's output in args.format (srt/vtt/text); json is written for all files at once."""
    from .transcribe import format_srt, format_vtt, group_words

    if args.format in ("srt", "vtt"):
        cues = group_words(result.chunks or [], args.max_words_per_cue, args.max_cue_duration)
        return format_srt(cues) if args.format == "srt" else format_vtt(cues)
    prefix = f"{result.source}\t" if many else ""
    lines = [f"{prefix}{result.text}"]
    for chunk in result.chunks or []:
        start, end = chunk["timestamp"]
        lines.append(f"{prefix}{start:.2f}\t{end:.2f}\t{chunk['text']}")
    return "\n".join(lines) + "\n"


def _write_outputs(results: list, args: argparse.Namespace) -> None:
    good = [r for r in results if r.ok]
    many = len(args.files) > 1
    if args.format == "json":
        text = json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False) + "\n"
        _emit(text, args.output)
        return
    if args.format in ("srt", "vtt") and many and args.output is not None:
        directory = Path(args.output)
        directory.mkdir(parents=True, exist_ok=True)
        for result in good:
            target = directory / f"{Path(result.source).stem}.{args.format}"
            target.write_text(_format_result(result, args, many), encoding="utf-8")
        return
    parts = []
    for result in good:
        body = _format_result(result, args, many)
        if args.format in ("srt", "vtt") and many:
            body = f"==> {result.source} <==\n{body}"
        parts.append(body)
    _emit(("\n" if args.format in ("srt", "vtt") else "").join(parts), args.output)


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")


def run_transcribe(args: argparse.Namespace) -> int:
    _check_output(args)
    if args.lm is not None and not os.path.isfile(args.lm):
        raise CommandError(f"{args.lm}: no such language model file")
    _quiet_libraries()
    from .transcribe import asr_pipeline, transcribe_files

    timestamps = "word" if args.format in ("srt", "vtt") else args.timestamps
    if args.lm is not None and timestamps == "char":
        raise CommandError("--timestamps char is not available with --lm (the beam search gives word times)", 2)
    pipe = asr_pipeline(args.model, lm=args.lm, alpha=args.alpha, beta=args.beta, beam_size=args.beam_size,
                        device=args.device)
    progress = not args.quiet and sys.stderr.isatty()

    def report(result: Any) -> None:
        if not result.ok:
            _print_error(result.error)

    stride = args.stride_length if args.chunk_length else None
    results = transcribe_files(
        pipe, args.files, batch_size=args.batch_size, chunk_length_s=args.chunk_length or None,
        stride_length_s=stride, return_timestamps=timestamps, progress=progress, on_result=report,
    )
    _write_outputs(results, args)
    failed = sum(not r.ok for r in results)
    if failed:
        _print_error(f"{failed} of {len(results)} files failed")
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------- evaluate

AUDIO_COLUMNS = ("file", "file_name")  # ours (corpora exports, finetune --train_dir) and the Hub's audiofolder
METADATA_SUFFIXES = (".csv", ".jsonl", ".json")  # always with a header / keys; a .tsv may be a plain list


def _read_labeled_metadata(path: Path) -> list[tuple[str, str]]:
    """(audio path, transcript) rows of a metadata file, read by ctc_data.read_metadata, in one-line errors."""
    from .training.ctc_data import read_metadata

    first_error: Exception | None = None
    for column in AUDIO_COLUMNS:
        try:
            entries = read_metadata(path, audio_column=column, text_column="text")
        except UnicodeDecodeError:
            raise CommandError(f"{path}: not UTF-8 text") from None
        except (ValueError, TypeError, KeyError, AttributeError, csv.Error) as error:
            first_error = first_error or error
            continue
        break
    else:
        message = _one_line(first_error)
        if isinstance(first_error, json.JSONDecodeError):
            message = f"{path}: line {_first_bad_json_line(path)} is not a JSON object"
        elif not message.startswith(str(path)):
            message = f"{path}: malformed metadata ({message})"
        if "has no column" in message:
            message += f" (the audio column may be {' or '.join(AUDIO_COLUMNS)})"
        raise CommandError(message)
    rows = []
    for number, entry in enumerate(entries, start=1):
        if entry["audio"] == str(path.parent):  # an empty file name, resolved against the folder
            raise CommandError(f"{path}: row {number} names no audio file")
        if not isinstance(entry["text"], str):
            raise CommandError(f"{path}: row {number}: the transcript is not text ({entry['text']!r})")
        rows.append((entry["audio"], entry["text"]))
    return rows


def _first_bad_json_line(path: Path) -> int | str:
    """read_metadata parses JSONL line by line, so its JSONDecodeError counts lines within one line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    return number
    return "?"


def _read_list(path: Path) -> list[tuple[str, str]]:
    """``path<TAB>transcript`` lines (no header); relative paths are resolved against the list's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip():
            raise CommandError(f"{path}: line {number} is not 'path<TAB>transcript'")
        audio = Path(fields[0].strip())
        rows.append((str(audio if audio.is_absolute() else path.parent / audio), fields[1]))
    return rows


def _is_tsv_with_header(path: Path) -> bool:
    if path.suffix.lower() != ".tsv":
        return False
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
    return "text" in header and any(column in header for column in AUDIO_COLUMNS)


def read_labeled_data(data: str | os.PathLike) -> tuple[Path, list[tuple[str, str]]]:
    """The file that lists DATA's utterances, and its (audio path, transcript) rows; CommandError when unusable."""
    path = Path(data)
    if path.is_dir():
        from .training.ctc_data import find_metadata

        try:
            listing = find_metadata(path)
        except FileNotFoundError as error:
            raise CommandError(_one_line(error)) from None
        rows = _read_labeled_metadata(listing)
    elif path.is_file():
        listing = path
        if path.suffix.lower() in METADATA_SUFFIXES or _is_tsv_with_header(path):
            rows = _read_labeled_metadata(path)
        else:
            rows = _read_list(path)
    else:
        raise CommandError(f"{data}: no such folder or file")
    if not rows:
        raise CommandError(f"{listing}: no utterances listed")
    return listing, rows


def _check_evaluate_arguments(args: argparse.Namespace) -> None:
    if args.lm is None:
        given = [f"--{name.replace('_', '-')}" for name in ("alpha", "beta", "beam_size")
                 if getattr(args, name) is not None]
        if given:
            raise CommandError(f"{', '.join(given)} configure the LM beam search: pass --lm as well", 2)
    elif not os.path.isfile(args.lm):
        raise CommandError(f"{args.lm}: no such language model file")
    if args.show < 0:
        raise CommandError(f"--show must not be negative, got {args.show}", 2)
    if args.output is not None and Path(args.output).is_dir():
        raise CommandError(f"{args.output}: is a directory; --output names a file", 2)


def _evaluation_text(result: Any, files: list[str], decoder: str, show: int) -> str:
    summary = (f"WER {100 * result.wer:.2f}%  CER {100 * result.cer:.2f}%  "
               f"({result.num_utterances} utterances, decoder: {decoder})")
    lines = [summary]
    wrong = [i for i, (ref, hyp) in enumerate(zip(result.references, result.hypotheses)) if ref != hyp]
    for i in wrong[:show]:
        lines += [files[i], f"  REF: {result.references[i]}", f"  HYP: {result.hypotheses[i]}"]
    if 0 < show < len(wrong):
        lines.append(f"... {len(wrong) - show} more utterances with errors")
    return "\n".join(lines) + "\n"


def _evaluation_json(result: Any, files: list[str], decoder: str, args: argparse.Namespace) -> str:
    report = {
        "wer": result.wer,
        "cer": result.cer,
        "num_utterances": result.num_utterances,
        "num_failed": len(result.failed),
        "decoder": decoder,
        "model": str(args.model),
        "lm": args.lm,
        "alpha": args.alpha,
        "beta": args.beta,
        "beam_size": args.beam_size,
        "utterances": [
            {"file": file, "reference": ref, "hypothesis": hyp, "error": result.failed.get(file)}
            for file, ref, hyp in zip(files, result.references, result.hypotheses)
        ],
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def run_evaluate(args: argparse.Namespace) -> int:
    _check_evaluate_arguments(args)
    listing, rows = read_labeled_data(args.data)
    if args.max_examples is not None:
        rows = rows[: args.max_examples]
    empty = [number for number, (_, text) in enumerate(rows, start=1) if not (text or "").strip()]
    if empty:
        raise CommandError(f"{listing}: {len(empty)} of {len(rows)} transcripts are empty (e.g. row {empty[0]}, "
                           f"{rows[empty[0] - 1][0]}); WER needs a reference for every file")
    files = [file for file, _ in rows]
    if not any(os.path.isfile(file) for file in files):
        raise CommandError(f"{listing}: none of the {len(files)} listed audio files exists (e.g. {files[0]})")
    _quiet_libraries()
    from .transcribe import evaluate_model

    result = evaluate_model(
        args.model, files, [text for _, text in rows], lm=args.lm, alpha=args.alpha, beta=args.beta,
        beam_size=args.beam_size, batch_size=args.batch_size, chunk_length_s=args.chunk_length or None,
        stride_length_s=args.stride_length if args.chunk_length else None, device=args.device,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    decoder = "greedy" if args.lm is None else "LM beam search"
    if args.format == "json":
        _emit(_evaluation_json(result, files, decoder, args), args.output)
    else:
        _emit(_evaluation_text(result, files, decoder, args.show), args.output)
    for message in result.failed.values():
        _print_warning(f"{message} (scored as an empty hypothesis)")
    failed = sum(file in result.failed for file in files)
    if failed == len(files):
        _print_error(f"all {len(files)} files failed")
        return 1
    if failed:
        _print_warning(f"{failed} of {len(files)} files failed")
    return 0


# ----------------------------------------------------------------------------------------------- build-lm


def run_build_lm(args: argparse.Namespace) -> int:
    from .decoding import build_arpa

    if not os.path.isfile(args.text):
        raise CommandError(f"{args.text}: no such text file")
    if args.order < 2:
        raise CommandError(f"--order must be at least 2 (KenLM loads nothing smaller), got {args.order}", 2)
    try:
        stats = build_arpa(args.text, args.out, order=args.order)
    except UnicodeDecodeError:
        raise CommandError(f"{args.text}: not UTF-8 text") from None
    except ValueError as error:
        raise CommandError(f"{args.text}: {_one_line(error)}") from None
    counts = ", ".join(f"{n}-grams: {c}" for n, c in enumerate(stats.counts, start=1))
    print(f"wrote {stats.path} ({counts})")
    return 0


# ----------------------------------------------------------------------------------------------- main


def _register_models() -> None:
    """Let transformers' Auto classes and pipeline() know this package's models (deferred in the console script
    so that --help and usage errors answer without importing torch; see hf_wav2vec2.register)."""
    import hf_wav2vec2

    hf_wav2vec2.register()


def _asks_for_help(argv: list[str]) -> bool:
    return any(arg in ("-h", "--help") for arg in argv)


def _run_pass_through(name: str, argv: list[str]) -> int:
    module_name, _, register_first = PASS_THROUGH[name]
    if register_first and not _asks_for_help(argv):
        _register_models()
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CommandError(f"the {name} command is not available in this installation ({_one_line(error)})") from None
    result = module.main(argv)
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hf-wav2vec2`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in PASS_THROUGH:
            return _run_pass_through(argv[0], argv[1:])
        args = build_parser(argv).parse_args(argv)
        if args.command not in WITHOUT_MODELS:
            _register_models()
        return int(args.run(args) or 0)
    except CommandError as error:
        _print_error(str(error))
        return error.status
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        # AudioError and ModelLoadError are ValueErrors whose message already names the file or model
        _print_error(_one_line(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
