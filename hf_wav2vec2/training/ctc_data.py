"""Labeled speech for CTC fine-tuning: loading, featurizing, filtering and batching.

Two kinds of sources give the same thing, a ``datasets.Dataset`` with an ``audio`` and a ``text`` column:

* :func:`load_labeled_folder`: a folder of audio files with a metadata file (``metadata.csv``, ``.tsv`` or
  ``.jsonl``) naming each file (column ``file``, relative to the folder) and its transcript (column ``text``);
  the column names are configurable;
* :func:`load_labeled_dataset`: a ``datasets`` dataset by Hub name (``load_dataset``) or a directory written by
  ``save_to_disk``, with configurable audio and text columns. ``datasets`` 4+ decodes audio only through torchcodec,
  which often does not import beside a given torch build, so the audio column is cast to ``Audio(decode=False)``
  and the encoded bytes or file paths are decoded here with :func:`hf_wav2vec2.audio.load_audio` (soundfile, then
  soxr resampling). ``audiofolder`` (``load_dataset("audiofolder", data_dir=...)``) would need torchcodec even to
  store the file paths; its builder gets an audio feature that stores them without it.

:func:`prepare_ctc_dataset` turns either into model inputs: 16 kHz mono ``input_values`` (normalized by the feature
extractor), ``labels`` (token ids of the normalized transcript) and ``input_length`` (samples, for
``train_sampling_strategy="group_by_length"``). It drops utterances a CTC model cannot align: CTC emits at most one
label per frame and needs a blank between two equal consecutive labels, so an utterance whose label sequence needs
more frames than the feature encoder produces for its audio has zero probability, i.e. an infinite loss (or, with
``ctc_zero_infinity``, a silent zero that wastes the batch). Those are counted and logged, never trained on. Audio
that cannot be decoded is found while featurizing, before training: it is left out with an ``AudioDroppedWarning``,
and more than ``max_bad_audio_fraction`` of a split is an error. :func:`screen_transcripts` warns about (and can
drop) transcripts that would become ``<unk>`` or all-blank targets.

:class:`DataCollatorCTCWithPadding` pads batches dynamically: audio with the feature extractor's padding value (and
an ``attention_mask`` when the extractor returns one, as for layer-norm models), labels with -100, which the CTC loss
ignores.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import DEFAULT_SAMPLING_RATE, AudioError, audio_record_source, decode_record
from ..modeling_hf_wav2vec2 import conv_output_lengths
from .data.selection import AudioDroppedWarning
from .vocab import TextNormalization, TranscriptWarning, check_transcripts, normalize_text

logger = logging.getLogger(__name__)

LABEL_PAD_ID = -100
METADATA_NAMES = ("metadata.csv", "metadata.tsv", "metadata.jsonl")
AUDIO = "audio"
TEXT = "text"
AUDIO_ERROR = "audio_error"  # a featurized row's decoding error ("" when it decoded)
#: Default of --max_bad_audio_fraction: undecodable files are left out up to this fraction of a split, else it fails.
DEFAULT_MAX_BAD_AUDIO_FRACTION = 0.05
_EXAMPLES = 3  # file names a warning or error gives as examples


# ------------------------------------------------------------------------------------------------- sources


class DatasetColumnError(KeyError, ValueError):
    """A split or column the dataset does not have. A ValueError too, so command lines report it in one line; its
    message is not quoted as a plain KeyError's is."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def find_metadata(directory: str | Path) -> Path:
    """The metadata file of a labeled folder: the first of ``metadata.csv``, ``.tsv``, ``.jsonl`` present."""
    directory = Path(directory)
    for name in METADATA_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{directory}: no metadata file ({', '.join(METADATA_NAMES)})")


class MetadataError(ValueError):
    """A metadata file that cannot be used; the message (one line) names the file, the line or row, and the cause."""


def read_text(path: str | Path) -> str:
    """The text of a metadata or list file (UTF-8, a byte-order mark ignored); a :class:`MetadataError` naming the
    line of the first byte that is not UTF-8 (a spreadsheet's export in Latin-1 or UTF-16, say)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise MetadataError(
            f"{path}: line {line} is not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8"
        ) from None


def _metadata_rows(path: Path, text: str) -> list[dict]:
    """The records of a JSONL file, or the rows of a CSV/TSV file under its header."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if suffix in (".csv", ".tsv"):
        return list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","))
    raise MetadataError(f"{path}: metadata must be .csv, .tsv or .jsonl")


def read_metadata(path: str | Path, audio_column: str = "file", text_column: str = "text") -> list[dict[str, str]]:
    """Read a CSV (comma), TSV (tab) or JSONL metadata file into ``[{"audio": absolute path, "text": ...}]``.

    Relative audio paths are resolved against the metadata file's folder, so a folder can be moved as a whole. A file
    that is not UTF-8 or lists no utterance is a :class:`MetadataError` (one line naming the file).
    """
    path = Path(path)
    text = read_text(path)
    rows = _metadata_rows(path, text)
    if not rows:
        raise MetadataError(f"{path}: no rows{' (only a header)' if text.strip() else ' (the file is empty)'}")
    entries = []
    for line_number, row in enumerate(rows, start=1):
        missing = [column for column in (audio_column, text_column) if column not in row]
        if missing:
            raise ValueError(f"{path}: row {line_number} has no column(s) {missing}; it has {sorted(row)}")
        if None in row or None in row.values():
            # csv.DictReader files extra fields under the key None and fills missing ones with None: an unquoted
            # comma in a transcript would otherwise silently cut the transcript short
            raise ValueError(
                f"{path}: row {line_number} does not have as many fields as the header (a transcript "
                "with an unquoted comma? quote it)"
            )
        audio_path = Path(row[audio_column])
        if not audio_path.is_absolute():
            audio_path = path.parent / audio_path
        entries.append({AUDIO: str(audio_path), TEXT: row[text_column] or ""})
    return entries


def load_labeled_folder(
    directory: str | Path,
    metadata: str | Path | None = None,
    audio_column: str = "file",
    text_column: str = "text",
):
    """A ``datasets.Dataset`` (columns ``audio``: file path, ``text``) from a folder and its metadata file.

    Args:
        directory: the folder; `metadata` defaults to its ``metadata.csv``/``.tsv``/``.jsonl``.
        metadata: a metadata file name inside `directory`, or a path.
        audio_column / text_column: the metadata's column naming the audio file / holding the transcript.
    """
    import datasets

    directory = Path(directory)
    if metadata is None:
        metadata_path = find_metadata(directory)
    else:
        metadata_path = Path(metadata)
        if not metadata_path.is_absolute() and not metadata_path.exists():
            metadata_path = directory / metadata_path
    entries = read_metadata(metadata_path, audio_column, text_column)
    missing = [entry[AUDIO] for entry in entries if not Path(entry[AUDIO]).is_file()]
    if missing:
        raise FileNotFoundError(f"{metadata_path}: {len(missing)} audio file(s) missing, e.g. {missing[0]}")
    return datasets.Dataset.from_dict({AUDIO: [e[AUDIO] for e in entries], TEXT: [e[TEXT] for e in entries]})


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in ("state.json", "dataset_dict.json"))


def _undecoded_audio_feature():
    """``datasets.Audio(decode=False)`` whose encoding of file paths and bytes does not import torchcodec.

    ``datasets`` (4+) imports torchcodec in ``Audio.encode_example`` even to store a file's path, so building an
    ``audiofolder`` fails where torchcodec is missing or does not load (its PyPI build needs FFmpeg libraries and a
    matching torch). Paths and encoded bytes are stored as they are, which is all ``Audio`` itself does with them.
    """
    import dataclasses

    import datasets

    @dataclasses.dataclass
    class UndecodedAudio(datasets.Audio):
        decode: bool = False

        def encode_example(self, value):
            if isinstance(value, str):
                return {"bytes": None, "path": value}
            if isinstance(value, Path):
                return {"bytes": None, "path": str(value.absolute())}
            if isinstance(value, (bytes, bytearray)):
                return {"bytes": bytes(value), "path": None}
            if isinstance(value, dict) and value.get("array") is None and (value.get("bytes") or value.get("path")):
                return {"bytes": value.get("bytes"), "path": value.get("path")}
            return super().encode_example(value)  # arrays are encoded to WAV by datasets (torchcodec)

    return UndecodedAudio


def _load_hub_or_builder(name_or_path: str, split: str, config_name: str | None, load_kwargs: dict):
    """``datasets.load_dataset(name_or_path, config_name, split=split, **load_kwargs)`` without torchcodec.

    Same steps as ``load_dataset`` (builder, download_and_prepare, as_dataset); a folder-based audio builder
    (``audiofolder``) gets the undecoded audio feature on this one builder instance, so nothing global is patched.
    """
    import datasets

    prepare_keys = ("download_config", "download_mode", "verification_mode", "num_proc", "storage_options")
    prepare = {key: load_kwargs.pop(key) for key in prepare_keys if key in load_kwargs}
    builder = datasets.load_dataset_builder(name_or_path, config_name, **load_kwargs)
    if getattr(builder, "BASE_FEATURE", None) is datasets.Audio:
        builder.BASE_FEATURE = _undecoded_audio_feature()
    builder.download_and_prepare(**prepare)
    splits = sorted(builder.info.splits or {})
    base_split = split.split("[")[0].strip()  # "train[:100]" -> "train"
    if splits and base_split not in splits:
        raise DatasetColumnError(f"{name_or_path}: no split {base_split!r}; its splits are {splits}")
    return builder.as_dataset(split=split)


def load_labeled_dataset(
    name_or_path: str,
    split: str = "train",
    config_name: str | None = None,
    audio_column: str = "audio",
    text_column: str = "text",
    **load_kwargs,
):
    """A ``datasets.Dataset`` with columns ``audio`` (undecoded) and ``text`` from a Hub name or a local path.

    Audio is never decoded by ``datasets`` (whose decoding needs torchcodec): the column is cast to
    ``Audio(decode=False)`` and :func:`decode_audio` reads the bytes or files with soundfile and soxr.

    Args:
        name_or_path: a dataset name or folder for ``datasets.load_dataset`` (e.g. ``"audiofolder"`` with
            ``data_dir=``), or a directory written by ``save_to_disk`` (a ``Dataset`` or a ``DatasetDict``, from
            which `split` is taken).
        split: the split (``load_dataset`` also accepts slices such as ``"train[:100]"``).
        config_name: the dataset configuration (e.g. a language code).
        audio_column / text_column: the columns holding the audio and the transcript.
        load_kwargs: passed to ``load_dataset`` (``data_dir``, ``cache_dir``, ``revision``, ...).
    """
    import datasets

    path = Path(name_or_path)
    if _is_saved_dataset(path):
        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise DatasetColumnError(f"{path} has splits {sorted(dataset)}, not {split!r}")
            dataset = dataset[split]
    else:
        dataset = _load_hub_or_builder(name_or_path, split, config_name, dict(load_kwargs))

    if len(dataset) == 0:  # else: "Column 'input_length' doesn't exist" after featurizing
        raise DatasetColumnError(f"{name_or_path}: split {split!r} has no rows")
    for column in (audio_column, text_column):
        if column not in dataset.column_names:
            raise DatasetColumnError(f"{name_or_path} has no column {column!r}; its columns are {dataset.column_names}")
    if isinstance(dataset.features.get(audio_column), datasets.Audio):
        # decode=False: raw bytes / paths, decoded by load_audio instead of datasets' torchcodec.
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    dataset = dataset.select_columns([audio_column, text_column])
    renames = {old: new for old, new in ((audio_column, AUDIO), (text_column, TEXT)) if old != new}
    return dataset.rename_columns(renames) if renames else dataset


def decode_audio(value: Any, sampling_rate: int = DEFAULT_SAMPLING_RATE) -> np.ndarray:
    """Mono float32 audio at `sampling_rate` from a path, an undecoded ``{"bytes", "path"}`` record of
    ``datasets.Audio(decode=False)``, or a decoded ``{"array", "sampling_rate"}`` record: the package's one record
    decoder, :func:`hf_wav2vec2.audio.decode_record`, with the ffmpeg fallback; empty audio is an ``AudioError``."""
    return decode_record(value, sampling_rate)


# ------------------------------------------------------------------------------------------ featurizing


def ctc_required_frames(labels: Sequence[int]) -> int:
    """Frames a CTC alignment of `labels` needs: one per label, plus a blank between equal neighbours."""
    repeats = sum(1 for previous, current in itertools.pairwise(labels) if previous == current)
    return len(labels) + repeats


def output_frames(num_samples: int, config) -> int:
    """Frames the model's feature encoder produces for `num_samples` samples (0 below its receptive field)."""
    return max(int(conv_output_lengths(int(num_samples), config.conv_kernel, config.conv_stride)), 0)


def prepare_ctc_dataset(
    dataset,
    processor,
    normalization: TextNormalization | None = None,
    num_proc: int | None = None,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    description: str = "data",
    max_bad_audio_fraction: float | None = DEFAULT_MAX_BAD_AUDIO_FRACTION,
):
    """Featurize a dataset with ``audio`` and ``text`` columns for CTC training.

    Each utterance gets ``input_values`` (the feature extractor's output for its 16 kHz audio), ``labels`` (token
    ids of ``normalize_text(text, normalization)``), ``input_length`` (samples) and ``text`` (the normalized
    transcript, handy for printing references). The other columns are removed. Audio that cannot be decoded
    (truncated, corrupt, empty) is found here, before training: it is left out with an ``AudioDroppedWarning``
    unless it is more than `max_bad_audio_fraction` of the files (None: no limit), which is a ``ValueError``.
    """
    feature_extractor = processor.feature_extractor
    tokenizer = processor.tokenizer

    def featurize(example):
        text = normalize_text(example[TEXT], normalization)
        try:
            audio = decode_audio(example[AUDIO], sampling_rate)
        except AudioError as error:  # recorded in a column: map may run in worker processes
            audio, reason = np.zeros(0, dtype=np.float32), str(error)
        else:
            reason = ""
        values = feature_extractor(audio, sampling_rate=sampling_rate).input_values[0] if audio.size else audio
        return {
            "input_values": np.asarray(values, dtype=np.float32),
            "labels": tokenizer(text).input_ids,
            "input_length": len(values),
            TEXT: text,
            AUDIO_ERROR: reason,
        }

    featurized = dataset.map(
        featurize, remove_columns=dataset.column_names, num_proc=num_proc, desc=f"Featurizing {description}"
    )
    return drop_undecodable(featurized, max_bad_audio_fraction, description)


def drop_undecodable(dataset, max_fraction: float | None = DEFAULT_MAX_BAD_AUDIO_FRACTION, description: str = "data"):
    """Remove the featurized utterances whose audio failed to decode (their ``audio_error`` column), with one
    warning; more than `max_fraction` of them is a one-line ``ValueError`` (a corpus that broken wants fixing)."""
    errors = dataset[AUDIO_ERROR]
    dataset = dataset.remove_columns(AUDIO_ERROR)
    bad = [error for error in errors if error]
    if not bad:
        return dataset
    fraction = len(bad) / len(errors)
    summary = (
        f"{description}: {len(bad)} of {len(errors)} audio files ({fraction:.1%}) could not be decoded, "
        f"e.g. {'; '.join(bad[:_EXAMPLES])}"
    )
    if max_fraction is not None and fraction > max_fraction:
        raise ValueError(
            f"{summary}; that is more than --max_bad_audio_fraction {max_fraction:g}: fix or remove "
            "them, or raise the limit"
        )
    warnings.warn(f"{summary}; left out", AudioDroppedWarning, stacklevel=2)
    return dataset.select([index for index, error in enumerate(errors) if not error])


def _example_names(dataset, indices: Sequence[int]) -> str:
    """File names of the first few rows at `indices`, for messages (the row number where a record has none)."""
    names = []
    for index in indices[:_EXAMPLES]:
        _, path = audio_record_source(dataset[int(index)][AUDIO])
        names.append(Path(path).name if path else f"row {index}")
    return ", ".join(names) + (", ..." if len(indices) > _EXAMPLES else "")


def screen_transcripts(
    dataset, vocab, normalization: TextNormalization | None = None, drop: bool = False, description: str = "data"
):
    """Warn once, with counts and example files, about transcripts that would train on ``<unk>`` or all-blank
    targets (:func:`~.vocab.check_transcripts` against the tokenizer's `vocab`); with `drop`, leave them out."""
    check = check_transcripts(dataset[TEXT], vocab, normalization)
    if not check.bad:
        return dataset
    parts = []
    if check.out_of_vocabulary:
        chars = ", ".join(f"{char!r} x{count}" for char, count in check.unknown_chars.most_common(5))
        count = len(check.out_of_vocabulary)
        parts.append(
            f"{count} {'has' if count == 1 else 'have'} characters outside the vocabulary ({chars}), "
            f"which become <unk> targets, e.g. {_example_names(dataset, check.out_of_vocabulary)}"
        )
    if check.empty:
        count = len(check.empty)
        parts.append(
            f"{count} {'is' if count == 1 else 'are'} empty after normalization (all-blank targets), e.g. "
            f"{_example_names(dataset, check.empty)}"
        )
    action = "left out (--drop_bad_transcripts)" if drop else "kept; pass --drop_bad_transcripts to leave them out"
    warnings.warn(
        f"{description}: of {check.num_transcripts} transcripts, {'; '.join(parts)}. They are {action}",
        TranscriptWarning,
        stacklevel=2,
    )
    if not drop:
        return dataset
    bad = set(check.bad)
    return dataset.select([index for index in range(len(dataset)) if index not in bad])


def filter_duration(
    dataset, min_seconds: float = 0.0, max_seconds: float | None = None, sampling_rate: int = DEFAULT_SAMPLING_RATE
):
    """Keep utterances with ``min_seconds <= duration <= max_seconds`` (memory: attention is quadratic in length)."""
    low = int(min_seconds * sampling_rate)
    high = None if max_seconds is None else int(max_seconds * sampling_rate)
    before = len(dataset)
    dataset = dataset.filter(
        lambda length: length >= low and (high is None or length <= high), input_columns=["input_length"]
    )
    if len(dataset) < before:
        logger.warning(
            "dropped %d utterances outside [%s, %s] seconds", before - len(dataset), min_seconds, max_seconds
        )
    return dataset


def drop_unalignable(dataset, config, description: str = "data"):
    """Remove utterances whose labels need more CTC frames than their audio yields; returns ``(dataset, n)``.

    Audio shorter than the model's receptive field (no frame at all) is removed as well, and logged separately.
    """
    keep, too_long, no_frames = [], 0, 0
    for index, (length, labels) in enumerate(zip(dataset["input_length"], dataset["labels"], strict=True)):
        available = output_frames(length, config)
        if available < 1:
            no_frames += 1
        elif ctc_required_frames(labels) > available:
            too_long += 1
        else:
            keep.append(index)
    if no_frames:
        logger.warning("%s: dropped %d utterances shorter than the model's receptive field", description, no_frames)
    if too_long:
        logger.warning(
            "%s: dropped %d utterances whose transcripts are longer than their audio allows", description, too_long
        )
    if len(keep) < len(dataset):
        dataset = dataset.select(keep)
    return dataset, too_long


# ---------------------------------------------------------------------------------------------- batching


@dataclass
class DataCollatorCTCWithPadding:
    """Pad a list of featurized examples into a batch for ``HfWav2Vec2ForCTC``.

    Args:
        processor: an ``HfWav2Vec2Processor`` (or anything with ``.feature_extractor``), or the feature extractor.
        padding: passed to the feature extractor's ``pad`` (True: to the longest clip of the batch).
        pad_to_multiple_of: round the padded audio length up to a multiple of this (tensor cores like multiples
            of 8 frames, i.e. 2560 samples).
        return_attention_mask: True by default, whatever the feature extractor's own setting: the encoder must not
            attend to padding. transformers leaves it out for group-norm (BASE) checkpoints; with the very uneven
            lengths of small real corpora (0.6 s next to 19 s) an unmasked tiny model never left the CTC
            plateau even when asked to memorize 16 clips, while the masked one memorized them in 100 updates.
            ``False`` drops the mask, ``None`` follows the feature extractor.

    Returns ``input_values`` (B, L) float32, ``attention_mask`` (B, L) when enabled and ``labels`` (B, S) int64
    padded with -100. Other keys of the examples (``input_length``, ``text``) are ignored.
    """

    processor: Any
    padding: bool | str = True
    pad_to_multiple_of: int | None = None
    return_attention_mask: bool | None = True

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        feature_extractor = getattr(self.processor, "feature_extractor", self.processor)
        batch = feature_extractor.pad(
            [{"input_values": example["input_values"]} for example in features],
            padding=self.padding,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_attention_mask=self.return_attention_mask,
            return_tensors="pt",
        )
        batch["input_values"] = batch["input_values"].float()
        if "labels" in features[0]:
            batch["labels"] = pad_labels([example["labels"] for example in features])
        return batch


def pad_labels(labels: Sequence[Sequence[int]], pad_id: int = LABEL_PAD_ID) -> torch.Tensor:
    """Stack label id sequences into a (B, S) int64 tensor, padding with `pad_id` (-100: ignored by the loss)."""
    longest = max((len(sequence) for sequence in labels), default=0)
    out = torch.full((len(labels), longest), pad_id, dtype=torch.long)
    for row, sequence in enumerate(labels):
        out[row, : len(sequence)] = torch.as_tensor(list(sequence), dtype=torch.long)
    return out


__all__ = [
    "LABEL_PAD_ID",
    "DEFAULT_MAX_BAD_AUDIO_FRACTION",
    "DataCollatorCTCWithPadding",
    "DatasetColumnError",
    "MetadataError",
    "ctc_required_frames",
    "decode_audio",
    "drop_undecodable",
    "drop_unalignable",
    "filter_duration",
    "find_metadata",
    "load_labeled_dataset",
    "load_labeled_folder",
    "output_frames",
    "pad_labels",
    "prepare_ctc_dataset",
    "read_metadata",
    "read_text",
    "screen_transcripts",
]
