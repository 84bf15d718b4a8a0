"""``hf-wav2vec2 transcribe FILES... --model M``: transcripts as text, JSON or subtitles.

Each bad file is reported in one line and the others are still transcribed; the exit status is 1 when any file
failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import common
from .common import CommandError

NAME = "transcribe"
HELP = "transcribe audio files"
DESCRIPTION = "Transcribe audio files (WAV, FLAC, OGG, MP3, anything ffmpeg reads) at any sampling rate."
FORMATS = ("text", "json", "srt", "vtt")
PARENTS = (
    common.MODEL,
    common.LM,
    common.CHUNKING,
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
    parser.add_argument("--max_words_per_cue", type=common.positive_int, default=7, metavar="N",
                        help="srt/vtt (default 7)")
    parser.add_argument("--max_cue_duration", type=common.positive_float, default=5.0, metavar="S",
                        help="srt/vtt (default 5)")


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


def _write_outputs(results: list, args: argparse.Namespace) -> None:
    good = [r for r in results if r.ok]
    many = len(args.files) > 1
    if args.format == "json":
        text = json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False) + "\n"
        common.emit(text, args.output)
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
    common.emit(("\n" if args.format in ("srt", "vtt") else "").join(parts), args.output)


def run(args: argparse.Namespace) -> int:
    _check_output(args)
    common.quiet_libraries()
    from ..transcribe import asr_pipeline, transcribe_files

    timestamps = "word" if args.format in ("srt", "vtt") else args.timestamps
    if args.lm is not None and timestamps == "char":
        raise CommandError("--timestamps char is not available with --lm (the beam search gives word times)", 2)
    pipe = asr_pipeline(args.model, lm=args.lm, alpha=args.alpha, beta=args.beta, beam_size=args.beam_size,
                        device=args.device)

    def report(result: Any) -> None:
        if not result.ok:
            common.print_error(result.error)

    stride = args.stride_length if args.chunk_length else None
    results = transcribe_files(
        pipe, args.files, batch_size=args.batch_size, chunk_length_s=args.chunk_length or None,
        stride_length_s=stride, return_timestamps=timestamps, progress=common.progress_wanted(args),
        on_result=report,
    )
    _write_outputs(results, args)
    failed = sum(not r.ok for r in results)
    if failed:
        common.print_error(f"{failed} of {len(results)} files failed")
    return 1 if failed else 0
