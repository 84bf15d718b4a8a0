"""The typed arguments of CTC fine-tuning: which model (:class:`ModelArguments`), which data and how it is cleaned
(:class:`DataArguments`) and how it is trained (:class:`CTCTrainingArguments`, transformers' ``TrainingArguments``
with the paper's schedule and freezing).

The fields both fine-tuning scripts take (the starting model, where the labeled data is) are spelled once, in
:class:`StartingModelArguments` and :class:`LabeledDataArguments`, which the CTC classes here and those of
:mod:`hf_wav2vec2.training.finetune_classification` extend; :func:`load_raw_splits` reads the data they name.

:func:`hf_wav2vec2.training.finetune.parse_args` reads them from a command line (``HfArgumentParser``) or one JSON
file; a Python caller (``examples/main_job.py``) builds them directly and gets the same checks.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, TrainingArguments

from .allocator import check_mmap_threshold
from .ctc_data import DEFAULT_MAX_BAD_AUDIO_FRACTION, load_labeled_dataset, load_labeled_folder
from .vocab import TextNormalization

CONFIG_PRESETS = ("base", "large")
FOLDER_BUILDERS = ("audiofolder",)  # datasets builders that read a local folder (given by --data_dir)
LOG_POINTS = 50  # default logging: about this many loss points per run
EVAL_POINTS = 10  # default --eval_steps with --eval_strategy steps: about this many evaluations per run


# ------------------------------------------------------------------------------------------------- arguments


def preset_field(presets: tuple[str, ...]):
    """``--config_preset``: the architecture of a model trained from scratch, one of ``presets`` (default base)."""
    return field(default="base", metadata={"help": "Architecture for --from_scratch.", "choices": list(presets)})


def config_name_field(more_help: str = ""):
    """``--config_name``: the config of a model trained from scratch; ``more_help`` tells what else the script
    reads from its folder."""
    text = "Config (directory or config.json) for --from_scratch; overrides the preset."
    return field(default=None, metadata={"help": f"{text} {more_help}" if more_help else text})


def mmap_threshold_field():
    """``--malloc_mmap_threshold_kb`` of both fine-tuning scripts (checked by :func:`~.allocator.check_mmap_threshold`
    in ``__post_init__``, applied by ``run`` before the data and the model exist)."""
    # off by default: on a BASE CTC step (4 x 5 s, frozen conv stack) 1 MiB took the peak RSS from 1.85 to 1.41 GB
    # but cost 0-20 % in time (benchmarks/results/performance_cpu.md, session 19)
    return field(
        default=0,
        metadata={
            "help": "glibc serves blocks of this many KiB and more with mmap and returns them on free (1024: a "
            "BASE CTC step's peak RSS 1.85 -> 1.41 GB, 0-20 %% slower); 0 keeps glibc's dynamic threshold, "
            "MALLOC_MMAP_THRESHOLD_ in the environment wins (hf_wav2vec2.training.allocator)."
        },
    )


@dataclass
class StartingModelArguments:
    """The model fine-tuning starts from: a pre-trained checkpoint, or a fresh one from a preset or a config (the
    fields of both scripts' ModelArguments; field order is the order of ``--help``)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Pre-trained checkpoint: a directory of this package or a transformers wav2vec2 "
            "checkpoint (local or Hub id). Not used with --from_scratch."
        },
    )
    from_scratch: bool = field(default=False, metadata={"help": "Train a randomly initialized model (baseline)."})
    config_preset: str = preset_field(CONFIG_PRESETS)
    config_name: str | None = config_name_field()
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})
    freeze_feature_encoder: bool | None = field(
        default=None, metadata={"help": "Freeze the conv feature encoder (default: yes, unless --from_scratch)."}
    )


def feature_encoder_frozen(model_args: StartingModelArguments) -> bool:
    """``--freeze_feature_encoder``, defaulting to frozen for pre-trained models and trained from scratch."""
    if model_args.freeze_feature_encoder is None:
        return not model_args.from_scratch
    return model_args.freeze_feature_encoder


@dataclass
class ModelArguments(StartingModelArguments):
    """Which model to start from and how to configure it for fine-tuning."""

    vocab_file: str | None = field(
        default=None, metadata={"help": "Use this vocab.json instead of building one from the training transcripts."}
    )
    mask_time_prob: float = field(default=0.65, metadata={"help": "SpecAugment time masking (fairseq mask_prob)."})
    mask_time_length: int = field(default=10, metadata={"help": "Length of a time mask span, in frames."})
    mask_feature_prob: float = field(
        default=0.25, metadata={"help": "Channel masking probability (fairseq mask_channel_prob)."}
    )
    mask_feature_length: int = field(default=64, metadata={"help": "Length of a channel mask span."})
    layerdrop: float = field(default=0.1, metadata={"help": "Probability of skipping a transformer layer."})
    activation_dropout: float = field(default=0.1, metadata={"help": "Dropout after the feed-forward activation."})
    # fairseq's fine-tuning overrides the pre-training dropouts with these (Wav2Vec2AsrConfig defaults)
    hidden_dropout: float = field(default=0.0, metadata={"help": "Dropout on residual branches."})
    attention_dropout: float = field(default=0.0, metadata={"help": "Dropout on attention probabilities."})
    feat_proj_dropout: float = field(default=0.0, metadata={"help": "Dropout after the feature projection."})
    final_dropout: float = field(default=0.0, metadata={"help": "Dropout before the CTC head."})
    ctc_loss_reduction: str = field(
        default="mean", metadata={"help": "CTC loss reduction.", "choices": ["mean", "sum"]}
    )
    ctc_zero_infinity: bool = field(default=True, metadata={"help": "Zero infinite CTC losses."})
    adapter_lang: str | None = field(
        default=None,
        metadata={
            "help": "Adapter-only fine-tuning (MMS) for this language id, e.g. 'spa': train only "
            "fresh adapters and CTC head; writes adapter.<lang>.safetensors and a "
            "multilingual vocab.json (see hf_wav2vec2.training.adapter_finetune)."
        },
    )
    adapter_attn_dim: int | None = field(
        default=None, metadata={"help": "Adapter width for a base without adapters (default 16, as mms-1b-all)."}
    )
    save_adapter_beside_base: bool = field(
        default=False,
        metadata={
            "help": "With --adapter_lang: also add the adapter file and the language's "
            "vocabulary to the (local, multilingual) base model's directory."
        },
    )


@dataclass
class LabeledDataArguments:
    """Where the labeled data comes from: folders with a metadata file, or a ``datasets`` dataset (the fields of
    both scripts' DataArguments; each adds its label column)."""

    train_dir: str | None = field(default=None, metadata={"help": "Folder with audio and a metadata file."})
    eval_dir: str | None = field(default=None, metadata={"help": "Evaluation folder (same layout)."})
    metadata_name: str | None = field(
        default=None, metadata={"help": "Metadata file in the folders (default: metadata.csv/.tsv/.jsonl)."}
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A datasets name or path (load_dataset or save_to_disk) instead of folders."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    data_dir: str | None = field(default=None, metadata={"help": "load_dataset's data_dir (e.g. for audiofolder)."})
    train_split_name: str = field(default="train", metadata={"help": "Training split of --dataset_name."})
    eval_split_name: str | None = field(default=None, metadata={"help": "Evaluation split of --dataset_name."})
    audio_column: str | None = field(
        default=None, metadata={"help": "Audio column (default: 'file' in folder metadata, 'audio' in datasets)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training items."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation items."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for featurizing."})

    def __post_init__(self):
        if self.dataset_name and self.train_dir:
            raise ValueError("--dataset_name and --train_dir both name the training data: give one of them")


def load_raw_splits(data_args: LabeledDataArguments, text_column: str, cache_dir: str | None = None) -> tuple:
    """(train, eval or None) as datasets with ``audio`` and ``text`` columns, ``text`` read from ``text_column``
    (the transcript or the label), cut to ``--max_train_samples`` / ``--max_eval_samples``."""
    if data_args.dataset_name:
        load = {
            "config_name": data_args.dataset_config_name,
            "audio_column": data_args.audio_column or "audio",
            "text_column": text_column,
        }
        load.update({k: v for k, v in (("data_dir", data_args.data_dir), ("cache_dir", cache_dir)) if v is not None})
        train = load_labeled_dataset(data_args.dataset_name, split=data_args.train_split_name, **load)
        evaluation = None
        if data_args.eval_split_name:
            evaluation = load_labeled_dataset(data_args.dataset_name, split=data_args.eval_split_name, **load)
    elif data_args.train_dir:
        load = {
            "metadata": data_args.metadata_name,
            "audio_column": data_args.audio_column or "file",
            "text_column": text_column,
        }
        train = load_labeled_folder(data_args.train_dir, **load)
        evaluation = load_labeled_folder(data_args.eval_dir, **load) if data_args.eval_dir else None
    else:
        raise ValueError("give the training data: --train_dir (a folder with metadata) or --dataset_name")
    if data_args.max_train_samples is not None:
        train = train.select(range(min(data_args.max_train_samples, len(train))))
    if evaluation is not None and data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    return train, evaluation


@dataclass
class DataArguments(LabeledDataArguments):
    """Where the labeled data comes from and how transcripts are normalized."""

    # the CTC script's own help for two inherited fields (they keep their place in --help)
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A datasets name or path (load_dataset or save_to_disk) instead of folders; "
            "'audiofolder' with --data_dir. Audio is decoded by soundfile, not torchcodec."
        },
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "load_dataset's data_dir: the folder of --dataset_name audiofolder (audio "
            "and metadata.csv with file_name,text; train/, test/ subfolders are splits)."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Transcript column."})
    min_duration_in_seconds: float = field(default=0.0, metadata={"help": "Drop shorter utterances."})
    max_duration_in_seconds: float | None = field(default=None, metadata={"help": "Drop longer utterances."})
    text_case: str = field(
        default="lower", metadata={"help": "Transcript case.", "choices": ["lower", "upper", "keep"]}
    )
    unicode_form: str | None = field(
        default="NFC", metadata={"help": "Unicode normalization of transcripts (NFC, NFKC, ... or '' for none)."}
    )
    strip_punctuation: bool = field(default=True, metadata={"help": "Remove Unicode punctuation (P* categories)."})
    keep_punctuation: str = field(default="'", metadata={"help": "Punctuation kept when stripping."})
    digits: str = field(default="keep", metadata={"help": "Keep or drop digits.", "choices": ["keep", "drop"]})
    drop_chars: str = field(default="", metadata={"help": "Characters deleted from transcripts."})
    vocab_min_count: int = field(default=1, metadata={"help": "Characters seen fewer times become <unk>."})
    drop_bad_transcripts: bool = field(
        default=False,
        metadata={
            "help": "Leave out utterances whose normalized transcript is empty (an all-blank "
            "target) or has characters outside the vocabulary (<unk> targets, e.g. "
            "with --vocab_file). Default: keep them; a warning counts them either way."
        },
    )
    max_bad_audio_fraction: float = field(
        default=DEFAULT_MAX_BAD_AUDIO_FRACTION,
        metadata={
            "help": "Audio files that cannot be decoded (truncated, corrupt) are left out with a warning; "
            "more than this fraction of a split stops the run before training (1: never)."
        },
    )
    num_examples_to_print: int = field(default=5, metadata={"help": "Transcripts printed beside references."})
    language: str | None = field(
        default=None, metadata={"help": "ISO 639 code of the speech, e.g. 'es' (model card; default: unknown)."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.data_dir and not self.dataset_name:
            raise ValueError("--data_dir is the folder of --dataset_name (e.g. audiofolder); --train_dir needs none")
        if self.dataset_name in FOLDER_BUILDERS and not self.data_dir:
            # load_dataset would otherwise scan the current directory
            raise ValueError(
                f"--dataset_name {self.dataset_name} needs --data_dir (the folder with the audio files "
                "and their metadata.csv)"
            )
        if not 0.0 <= self.max_bad_audio_fraction <= 1.0:
            raise ValueError(f"--max_bad_audio_fraction must be between 0 and 1, got {self.max_bad_audio_fraction}")
        if self.language is not None and not re.fullmatch(r"[a-z]{2,3}", self.language):
            raise ValueError(f"--language must be an ISO 639 code such as 'es' or 'en', got {self.language!r}")

    def normalization(self) -> TextNormalization:
        return TextNormalization(
            case=self.text_case,
            unicode_form=self.unicode_form or None,
            strip_punctuation=self.strip_punctuation,
            keep_punctuation=self.keep_punctuation,
            digits=self.digits,
            drop_chars=self.drop_chars,
        )


@dataclass
class CTCTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with fine-tuning defaults (Adam beta2 0.98) and the paper's schedule and freezing."""

    lr_scheduler: str | None = field(
        default=None,
        metadata={
            "help": "'tri_stage' (the paper's; the default without --lr_scheduler_type) or 'trainer' (Trainer's "
            "--lr_scheduler_type, the default when that is given).",
            "choices": ["tri_stage", "trainer"],
        },
    )
    # None, not Trainer's "linear", so that a given --lr_scheduler_type can be told apart from the default
    lr_scheduler_type: str | None = field(
        default=None,
        metadata={
            "help": "Trainer's scheduler (linear, constant, cosine, ...); implies --lr_scheduler "
            "trainer. Default: tri_stage."
        },
    )
    logging_steps: float | None = field(
        default=None,
        metadata={
            "help": f"Log every N updates (a float < 1: a fraction of the run). Default: "
            f"{LOG_POINTS} points per run, and with --eval_strategy steps but no "
            f"--eval_steps, {EVAL_POINTS} evaluations."
        },
    )
    plot_curves: bool = field(default=True, metadata={"help": "Write training_curves.png at the end."})
    tri_stage_ratios: str = field(
        default="0.1,0.4,0.5", metadata={"help": "Warm-up, hold and decay fractions of the updates (sum to 1)."}
    )
    init_lr_scale: float = field(default=0.01, metadata={"help": "Tri-stage: LR at update 0, times the peak."})
    final_lr_scale: float = field(default=0.05, metadata={"help": "Tri-stage: LR at the end, times the peak."})
    freeze_finetune_updates: int = field(
        default=0, metadata={"help": "Train only the CTC head for the first N updates."}
    )
    group_by_length: bool = field(
        default=False, metadata={"help": "Batch utterances of similar length (train_sampling_strategy)."}
    )
    adam_beta2: float = field(default=0.98, metadata={"help": "Adam beta2 (fairseq fine-tuning: 0.98)."})
    malloc_mmap_threshold_kb: int = mmap_threshold_field()
    length_column_name: str = field(default="input_length", metadata={"help": "Column of utterance lengths."})
    # The collator picks the columns it needs; removing the others would also remove input_length, which the
    # length-grouped sampler reads after the removal.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Drop columns forward() does not take."})

    def __post_init__(self):
        self._resolve_scheduler()
        if self.logging_steps is None:
            # Trainer's 500 shows no loss at all in a short run
            self.logging_steps = max(1, self.max_steps // LOG_POINTS) if self.max_steps > 0 else 1 / LOG_POINTS
            if self.eval_steps is None and self.eval_strategy == "steps":
                self.eval_steps = max(1, self.max_steps // EVAL_POINTS) if self.max_steps > 0 else 1 / EVAL_POINTS
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _has_accelerator():
            # torchrun on a CPU machine: without use_cpu Trainer does not wrap the model in DDP, and every process
            # trains on its own (and prints its own results)
            self.use_cpu = True
        if self.ddp_find_unused_parameters is None:
            # LayerDrop keeps every parameter in the graph (skipped layers add zero), so DDP need not search
            self.ddp_find_unused_parameters = False
        super().__post_init__()
        if not _has_accelerator():
            self.dataloader_pin_memory = False  # pinning needs an accelerator; torch warns once per data loader
        if self.group_by_length:
            self.train_sampling_strategy = "group_by_length"
        parse_phase_ratios(self.tri_stage_ratios)  # fail at parse time, not after featurizing
        check_mmap_threshold(self.malloc_mmap_threshold_kb)

    def _resolve_scheduler(self):
        """tri_stage unless Trainer's scheduler is asked for; both at once is an error, not a silent choice."""
        if self.lr_scheduler not in (None, "tri_stage", "trainer"):
            raise ValueError(f"--lr_scheduler must be tri_stage or trainer, got {self.lr_scheduler!r}")
        default = self.lr_scheduler is None
        if default:
            self.lr_scheduler = "trainer" if self.lr_scheduler_type is not None else "tri_stage"
        if self.lr_scheduler == "tri_stage":
            given = [
                f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}"
                for name, value in (
                    ("lr_scheduler_type", self.lr_scheduler_type),
                    ("warmup_steps", self.warmup_steps or None),
                    ("lr_scheduler_kwargs", self.lr_scheduler_kwargs or None),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"--lr_scheduler tri_stage{' (the default)' if default else ''} and {' and '.join(given)} "
                    "conflict: tri_stage is a schedule of its own (warm-up and decay from --tri_stage_ratios); "
                    f"pass --lr_scheduler trainer to use Trainer's, or drop {'them' if len(given) > 1 else 'it'}"
                )
        if self.lr_scheduler_type is None:
            self.lr_scheduler_type = "linear"


def _has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6: CUDA, MPS, XPU, ...
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


def parse_phase_ratios(ratios: str | tuple[float, ...]) -> tuple[float, float, float]:
    """``"0.1,0.4,0.5"`` -> (0.1, 0.4, 0.5); three non-negative fractions summing to 1."""
    values = tuple(float(v) for v in (ratios.split(",") if isinstance(ratios, str) else ratios))
    if len(values) != 3 or min(values) < 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ValueError(f"tri-stage phase ratios must be three non-negative numbers summing to 1, got {ratios!r}")
    return values


def parse_training_args(dataclasses: tuple[type, ...], argv=None) -> tuple:
    """The fine-tuning scripts' command line (``argv``, default ``sys.argv[1:]``) parsed into ``dataclasses``, or a
    single ``.json`` file holding the same fields."""
    parser = HfArgumentParser(dataclasses)
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=str(Path(argv[0]).resolve()))
    return parser.parse_args_into_dataclasses(args=argv)


__all__ = [
    "CONFIG_PRESETS",
    "CTCTrainingArguments",
    "DataArguments",
    "LabeledDataArguments",
    "ModelArguments",
    "StartingModelArguments",
    "feature_encoder_frozen",
    "load_raw_splits",
    "parse_phase_ratios",
    "config_name_field",
    "parse_training_args",
    "preset_field",
]
