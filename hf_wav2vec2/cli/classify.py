"""``hf-wav2vec2 classify FILES... --model M``: the labels of audio clips, from a classification model.

Each file is read and resampled by this package (any format libsndfile or ffmpeg reads, any rate; soxr) and
labelled by ``pipeline("audio-classification")``: the ``--top_k`` best labels with their scores (softmax, or
sigmoid for multi-label models). A file that cannot be read is reported in one line and the others are still
labelled; the exit status is 1 when any file failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json

from . import common

NAME = "classify"
HELP = "label audio files with a classification model"
DESCRIPTION = (
    "Label audio files (keyword spotting, emotion, language or speaker identification, ...) with an "
    "audio-classification model: this package's, or transformers' Wav2Vec2ForSequenceClassification."
)
PARENTS = (
    common.model_options("model directory or Hub id of a classification model"),
    common.output_options(
        ("text", "json"),
        format_help="text: FILE<TAB>label score, label score, ...; json: a list of {file, labels: [{label, score}]}",
        output_help="write here instead of stdout",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    parser.add_argument(
        "--top_k",
        type=common.non_negative_int,
        default=5,
        metavar="K",
        help="labels per file, best first (default 5; 0 = every label)",
    )


def _format_text(results: list[dict]) -> str:
    lines = []
    for result in results:
        shown = ", ".join(f"{item['label']} {item['score']:.3f}" for item in result["labels"])
        lines.append(f"{result['file']}\t{shown}\n")
    return "".join(lines)


def run(args: argparse.Namespace) -> int:
    common.refuse_to_overwrite(args.output, common.InputFiles(args.files))
    common.quiet_libraries()
    from transformers import pipeline

    from ..pipeline_audio_classification import STOCK_TASK, classify_files

    classifier = pipeline(STOCK_TASK, model=args.model, device=args.device)
    failed = []

    def report(path: str, error: Exception) -> None:
        failed.append(path)
        common.print_error(common.one_line(error))

    results = classify_files(classifier, args.files, top_k=args.top_k or None, on_error=report)
    if args.format == "json":
        common.emit(json.dumps(results, indent=2, ensure_ascii=False) + "\n", args.output)
    else:
        common.emit(_format_text(results), args.output)
    if failed:
        common.print_error(f"{len(failed)} of {len(args.files)} files failed")
    return 1 if failed else 0
