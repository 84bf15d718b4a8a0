"""``hf-wav2vec2 transcribe FILES... --model M``: transcripts as text, JSON or subtitles.

Each bad file is reported in one line and the others are still transcribed; the exit status is 1 when any file
failed, 2 for a usage error.

Outputs never replace an input (``-o x.wav`` for the input ``x.wav`` is refused) and never each other: srt/vtt for
several files go to a directory, one file per input at its path relative to the inputs' common folder
(``a/same.wav b/same.wav -o subs`` writes ``subs/a/same.srt`` and ``subs/b/same.srt``; files of one folder land
side by side), and an input whose name is taken already (``x.wav`` beside ``x.flac``, a file given twice) gets
``-2``, ``-3``, ... before the suffix, with a warning.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import common
from .common import CommandError

NAME = "transcribe"
HELP = "transcribe audio files"
DESCRIPTION = "Transcribe audio files (WAV, FLAC, OGG, MP3, anything ffmpeg reads) at any sampling rate."
FORMATS = ("text", "json", "srt", "vtt")
PARENTS = (
    *common.CTC_DECODING,
    common.output_options(
        FORMATS,
        format_help="text: the transcript (with several files, FILE<TAB>text lines); json: a list of objects; "
        "srt/vtt: subtitles from word timestamps",
        output_help="write here instead of stdout; for srt/vtt with several files, a directory with one file each",
    ),
    common.PROGRESS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    parser.add_argument("--timestamps", choices=("word", "char"), default=None, help="also return word or char times")
    parser.add_argument(
        "--max_words_per_cue", type=common.positive_int, default=7, metavar="N", help="srt/vtt (default 7)"
    )
    parser.add_argument(
        "--max_cue_duration", type=common.positive_float, default=5.0, metavar="S", help="srt/vtt (default 5)"
    )
    runtime = parser.add_mutually_exclusive_group()
    runtime.add_argument(
        "--onnx",
        action="store_true",
        help="run the model with ONNX Runtime (the onnx extra; uses MODEL/model.onnx from "
        "export-onnx, else exports first)",
    )
    runtime.add_argument(
        "--int8",
        action="store_true",
        help="ONNX Runtime with int8 weights (MODEL/model_int8.onnx from export-onnx --int8, else "
        "exported and quantized first)",
    )
    live = parser.add_argument_group("live transcription (hf_wav2vec2.streaming)")
    live.add_argument(
        "--stream",
        action="store_true",
        help="FILE is '-' (stdin) or one file of raw PCM or WAV: print the transcript as it is heard, "
        "the same as without --stream; --chunk_length 4 gives final lines every few seconds",
    )
    live.add_argument(
        "--rate",
        type=common.positive_int,
        default=16000,
        metavar="HZ",
        help="--stream: sampling rate of raw 16-bit PCM (default 16000; a WAV stream has its own)",
    )


def _writes_a_directory(args: argparse.Namespace) -> bool:
    return args.output is not None and args.format in ("srt", "vtt") and len(args.files) > 1


def subtitle_targets(files: list[str], directory: Path, suffix: str) -> list[Path]:
    """One subtitle file in ``directory`` per input (in order, failed inputs too, so the names do not depend on
    which files fail): the input's path relative to the inputs' common folder with ``.suffix``; a target already
    taken by an earlier input gets ``-2``, ``-3``, ... before the suffix."""
    folders = [os.path.dirname(os.path.abspath(file)) for file in files]
    try:
        common_folder = os.path.commonpath(folders)
    except ValueError:  # inputs on different drives (Windows): no common folder, names only
        common_folder = None
    targets, taken = [], set()
    for file in files:
        relative = Path(os.path.relpath(os.path.abspath(file), common_folder)) if common_folder else Path(file).name
        wanted = directory / Path(relative).with_suffix(f".{suffix}")
        target, number = wanted, 1
        while os.path.normcase(target) in taken:
            number += 1
            target = wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
        if target != wanted:
            common.print_warning(f"{file}: {wanted} is the output of another input; writing {target}")
        taken.add(os.path.normcase(target))
        targets.append(target)
    return targets


def _check_output(args: argparse.Namespace) -> list[Path] | None:
    """Usage errors for an --output that cannot be written or would replace an input, before any model loads;
    returns the subtitle files to write when --output is a directory of them."""
    if args.output is None:
        return None
    out = Path(args.output)
    if _writes_a_directory(args) and out.exists() and not out.is_dir():
        raise CommandError(f"{out}: with several files, --output for {args.format} must be a directory", 2)
    if not _writes_a_directory(args) and out.is_dir():
        raise CommandError(f"{out}: is a directory; --output names a file", 2)
    inputs = common.InputFiles(args.files)
    if not _writes_a_directory(args):
        common.refuse_to_overwrite(out, inputs)
        return None
    targets = subtitle_targets(args.files, out, args.format)
    for source, target in zip(args.files, targets, strict=True):
        common.refuse_to_overwrite(target, inputs, f"an input file (the subtitles of {source})")
    return targets


def _format_result(result: Any, args: argparse.Namespace, many: bool) -> str:
    """One file's output in args.format (srt/vtt/text); json is written for all files at once."""
    from ..transcribe import format_srt, format_vtt, group_words

    if args.format in ("srt", "vtt"):
        cues = group_words(result.chunks or [], args.max_words_per_cue, args.max_cue_duration)
        return format_srt(cues) if args.format == "srt" else format_vtt(cues)
    prefix = f"{result.source}\t" if many else ""
    lines = [f"{prefix}{result.text}"]
    for chunk in result.chunks or []:
        start, end = chunk["timestamp"]
        lines.append(f"{prefix}{start:.2f}\t{end:.2f}\t{chunk['text']}")
    return "\n".join(lines) + "\n"


def _write_outputs(results: list, args: argparse.Namespace, targets: list[Path] | None) -> None:
    good = [r for r in results if r.ok]
    many = len(args.files) > 1
    if args.format == "json":
        text = json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False) + "\n"
        common.emit(text, args.output)
        return
    if targets is not None:  # results come in the order of args.files
        for result, target in zip(results, targets, strict=True):
            if result.ok:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_format_result(result, args, many), encoding="utf-8")
        return
    parts = []
    for result in good:
        body = _format_result(result, args, many)
        if args.format in ("srt", "vtt") and many:
            body = f"==> {result.source} <==\n{body}"
        parts.append(body)
    common.emit(("\n" if args.format in ("srt", "vtt") else "").join(parts), args.output)


def _run_stream(args: argparse.Namespace) -> int:
    """--stream: one stream of raw PCM or WAV (stdin or a file), transcribed and printed as it arrives."""
    if len(args.files) != 1:
        raise CommandError("--stream reads one stream: '-' for stdin, or one file", 2)
    refused = [
        flag
        for flag, given in (
            ("--lm", args.lm),
            ("--timestamps", args.timestamps),
            ("--lang", args.lang),
            ("--onnx", args.onnx),
            ("--int8", args.int8),
            ("--output", args.output),
            ("--format", args.format != "text"),
        )
        if given
    ]
    if refused:
        raise CommandError(f"--stream prints plain text as it is heard; it does not take {', '.join(refused)}", 2)
    if not args.chunk_length:
        raise CommandError("--stream needs a --chunk_length above 0", 2)
    common.quiet_libraries()
    from ..streaming import StreamingTranscriber, print_stream, read_pcm_stream

    name = args.files[0]
    with sys.stdin.buffer if name == "-" else open(name, "rb") as source:
        rate, blocks = read_pcm_stream(source, args.rate, name="<stdin>" if name == "-" else name)
        transcriber = StreamingTranscriber(
            args.model, chunk_s=args.chunk_length, context_s=args.stride_length, sampling_rate=rate, device=args.device
        )
        print_stream(transcriber, blocks)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.stream:
        return _run_stream(args)
    targets = _check_output(args)
    common.quiet_libraries()
    from transformers import AutoModelForCTC

    from ..transcribe import ModelLoadError, asr_pipeline, transcribe_files

    timestamps = "word" if args.format in ("srt", "vtt") else args.timestamps
    if args.lm is not None and timestamps == "char":
        raise CommandError("--timestamps char is not available with --lm (the beam search gives word times)", 2)
    runtime = "onnx-int8" if args.int8 else ("onnx" if args.onnx else None)
    if runtime and args.lang:  # a graph in MODEL's folder was exported for whichever language was loaded then
        raise CommandError("--lang is not available with --onnx/--int8: load the language, then export-onnx it", 2)
    extra = {"runtime": runtime} if runtime else {}
    try:
        pipe = asr_pipeline(
            args.model,
            **common.lm_settings(args),
            device=args.device,
            target_lang=args.lang,
            **extra,
        )
    except ModelLoadError:
        common.refuse_mismatched_weights(args.model, AutoModelForCTC)
        raise

    def report(result: Any) -> None:
        if not result.ok:
            common.print_error(result.error)

    stride = args.stride_length if args.chunk_length else None
    results = transcribe_files(
        pipe,
        args.files,
        batch_size=args.batch_size,
        chunk_length_s=args.chunk_length or None,
        stride_length_s=stride,
        return_timestamps=timestamps,
        progress=common.progress_wanted(args),
        on_result=report,
    )
    _write_outputs(results, args, targets)
    failed = sum(not r.ok for r in results)
    if failed:
        common.print_error(f"{failed} of {len(results)} files failed")
    return 1 if failed else 0
