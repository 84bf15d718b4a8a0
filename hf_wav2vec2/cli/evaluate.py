"""``hf-wav2vec2 evaluate DATA --model M``: WER and CER of a model on labeled audio.

Scores a model (greedy, or LM beam search with ``--lm``) with jiwer, after the normalization the model was
fine-tuned with (``text_normalization.json``) or case-folding. DATA is a folder with a ``metadata.csv`` / ``.tsv`` /
``.jsonl`` (columns ``file`` or ``file_name``, and ``text``; paths relative to the folder: the layout of
:func:`hf_wav2vec2.corpora.asterisk.export_prompts` and of ``finetune --train_dir``), one such metadata file itself,
or a list with one ``path<TAB>transcript`` per line (paths relative to the list's folder). Unreadable audio is scored
as an empty hypothesis and reported as a warning; the exit status is 1 only when every file failed (or the data
cannot be read), 2 for a usage error. ``-o`` may not name the listing, a listed audio file, or an existing file of
the evaluated folder, nor a new ``metadata.*`` in it (the folder would list something else next time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path
from typing import Any

from . import common
from .common import CommandError, one_line

NAME = "evaluate"
HELP = "WER and CER of a model on labeled audio"
DESCRIPTION = (
    "Transcribe labeled audio and score it: word and character error rates (case-folded, whitespace collapsed). "
    "DATA is a folder with metadata.csv/.tsv/.jsonl (columns file or file_name, and text; paths relative to the "
    "folder), such a metadata file, or a file of path<TAB>transcript lines (paths relative to its folder). Audio "
    "that cannot be read counts as an empty hypothesis."
)
PARENTS = (
    *common.CTC_DECODING,
    common.output_options(
        ("text", "json"),
        format_help="text: a summary line and examples; json: scores and every reference/hypothesis pair",
        output_help="write here instead of stdout",
    ),
    common.PROGRESS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_input(parser, "data", common.existing_path, "labeled folder, metadata file, or path<TAB>transcript list")
    parser.add_argument(
        "--max_examples", type=common.positive_int, default=None, metavar="N", help="only the first N rows"
    )
    parser.add_argument(
        "--show",
        type=common.non_negative_int,
        default=5,
        metavar="N",
        help="text format: print the first N utterances with errors, reference and hypothesis (default 5; 0 = none)",
    )


# ----------------------------------------------------------------------------------------------- labeled data

AUDIO_COLUMNS = ("file", "file_name")  # ours (corpora exports, finetune --train_dir) and the Hub's audiofolder
METADATA_SUFFIXES = (".csv", ".jsonl", ".json")  # always with a header / keys; a .tsv may be a plain list


def _read_labeled_metadata(path: Path) -> list[tuple[str, str]]:
    """(audio path, transcript) rows of a metadata file, read by ctc_data.read_metadata, in one-line errors."""
    from ..training.ctc_data import MetadataError, read_metadata

    first_error: Exception | None = None
    for column in AUDIO_COLUMNS:
        try:
            entries = read_metadata(path, audio_column=column, text_column="text")
        except MetadataError as error:  # not UTF-8, no rows: the same whatever the audio column
            raise CommandError(one_line(error)) from None
        except (ValueError, TypeError, KeyError, AttributeError, csv.Error) as error:
            first_error = first_error or error
            continue
        break
    else:
        message = one_line(first_error)
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
    from ..training.ctc_data import MetadataError, read_text

    try:
        lines = read_text(path).splitlines()
    except MetadataError as error:
        raise CommandError(one_line(error)) from None
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
        from ..training.ctc_data import find_metadata

        try:
            listing = find_metadata(path)
        except FileNotFoundError as error:
            raise CommandError(one_line(error)) from None
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
        given = [f"--{name}" for name in ("alpha", "beta", "beam_size") if getattr(args, name) is not None]
        if given:
            raise CommandError(f"{', '.join(given)} configure the LM beam search: pass --lm as well", 2)
    if args.output is not None and Path(args.output).is_dir():
        raise CommandError(f"{args.output}: is a directory; --output names a file", 2)


# ----------------------------------------------------------------------------------------------- report


def _evaluation_text(result: Any, files: list[str], decoder: str, show: int) -> str:
    summary = (
        f"WER {100 * result.wer:.2f}%  CER {100 * result.cer:.2f}%  "
        f"({result.num_utterances} utterances, decoder: {decoder})"
    )
    lines = [summary]
    wrong = [i for i, (ref, hyp) in enumerate(zip(result.references, result.hypotheses, strict=True)) if ref != hyp]
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
        **common.lm_settings(args),
        "utterances": [
            {"file": file, "reference": ref, "hypothesis": hyp, "error": result.failed.get(file)}
            for file, ref, hyp in zip(files, result.references, result.hypotheses, strict=True)
        ],
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _refuse_overwriting_the_data(output: str | None, data: str, listing: Path, rows: list[tuple[str, str]]) -> None:
    """-o must not replace the listing, a listed audio file, or any file of the evaluated folder; nor put a new
    ``metadata.*`` there, which would change what the folder lists."""
    if output is None:
        return
    common.refuse_to_overwrite(
        output,
        common.InputFiles([listing, *(file for file, _ in rows)]),
        f"the evaluated data ({listing} or a file it lists)",
    )
    if not os.path.isdir(data):
        return
    folder, target = os.path.realpath(data), os.path.realpath(output)
    try:
        inside = os.path.commonpath([folder, target]) == folder
    except ValueError:  # another drive
        inside = False
    if inside and (os.path.exists(target) or Path(target).name.lower().startswith("metadata.")):
        raise CommandError(
            f"{output}: the output would overwrite a file of the evaluated folder {data}; choose another --output", 2
        )


def run(args: argparse.Namespace) -> int:
    _check_evaluate_arguments(args)
    listing, rows = read_labeled_data(args.data)
    _refuse_overwriting_the_data(args.output, args.data, listing, rows)
    if args.max_examples is not None:
        rows = rows[: args.max_examples]
    empty = [number for number, (_, text) in enumerate(rows, start=1) if not (text or "").strip()]
    if empty:
        raise CommandError(
            f"{listing}: {len(empty)} of {len(rows)} transcripts are empty (e.g. row {empty[0]}, "
            f"{rows[empty[0] - 1][0]}); WER needs a reference for every file"
        )
    files = [file for file, _ in rows]
    if not any(os.path.isfile(file) for file in files):
        raise CommandError(f"{listing}: none of the {len(files)} listed audio files exists (e.g. {files[0]})")
    common.quiet_libraries()
    from transformers import AutoModelForCTC

    from ..transcribe import ModelLoadError, evaluate_model

    try:
        result = evaluate_model(
            args.model,
            files,
            [text for _, text in rows],
            **common.lm_settings(args),
            batch_size=args.batch_size,
            chunk_length_s=args.chunk_length or None,
            stride_length_s=args.stride_length if args.chunk_length else None,
            device=args.device,
            progress=common.progress_wanted(args),
            target_lang=args.lang,
        )
    except ModelLoadError:
        common.refuse_mismatched_weights(args.model, AutoModelForCTC)
        raise
    decoder = "greedy" if args.lm is None else "LM beam search"
    if args.format == "json":
        common.emit(_evaluation_json(result, files, decoder, args), args.output)
    else:
        common.emit(_evaluation_text(result, files, decoder, args.show), args.output)
    for message in result.failed.values():
        common.print_warning(f"{message} (scored as an empty hypothesis)")
    failed = sum(file in result.failed for file in files)
    if failed == len(files):
        common.print_error(f"all {len(files)} files failed")
        return 1
    if failed:
        common.print_warning(f"{failed} of {len(files)} files failed")
    return 0
