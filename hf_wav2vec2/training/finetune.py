"""CTC fine-tuning of wav2vec 2.0 with transformers' ``Trainer``: the logic behind ``examples/finetune_ctc.py``.

The recipe follows the paper's fine-tuning (Section 4.3, fairseq ``finetuning/base_10m.yaml``): a randomly initialized
linear CTC head on top of the pre-trained model, the feature encoder frozen, SpecAugment-like masking of time steps
and channels, LayerDrop, Adam with betas (0.9, 0.98), the tri-stage learning-rate schedule (10% warm-up, 40% hold,
50% exponential decay to 5% of the peak) and optionally the whole pre-trained network frozen for the first
``freeze_finetune_updates`` updates, so the fresh head does not send large gradients into it. Defaults are the
10-minute recipe's values; other amounts of labeled data want less masking (fairseq uses ``mask_prob`` 0.5-0.65 and
``mask_channel_prob`` 0.1-0.5 depending on the subset).

Three starting points:

* a checkpoint of this package (``HfWav2Vec2ForPreTraining`` or ``HfWav2Vec2ForCTC`` directory);
* a transformers checkpoint (``model_type: wav2vec2``, e.g. ``facebook/wav2vec2-base``): the config is translated and
  the weights load as they are;
* ``--from_scratch`` with ``--config_preset base|large`` (or ``--config_name``), for the paper's comparison of
  pre-trained against randomly initialized models. The feature encoder then trains too, since a frozen random
  encoder would be a meaningless baseline (pass ``--freeze_feature_encoder true`` to freeze it anyway).

:func:`main` parses command-line arguments (``HfArgumentParser`` over :class:`ModelArguments`,
:class:`DataArguments` and :class:`CTCTrainingArguments`, or one JSON file holding them) and returns the final
metrics, so a CLI can call ``main(argv)``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from ..configuration_hf_wav2vec2 import HfWav2Vec2Config
from ..feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from ..modeling_hf_wav2vec2 import HfWav2Vec2ForCTC
from ..processing_hf_wav2vec2 import HfWav2Vec2Processor
from ..tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer
from .adapter_finetune import (
    adapter_config_values,
    check_adapter_arguments,
    prepare_adapter_model,
    save_adapter_outputs,
)
from .ctc_data import (
    DataCollatorCTCWithPadding,
    drop_unalignable,
    filter_duration,
    load_labeled_dataset,
    load_labeled_folder,
    prepare_ctc_dataset,
)
from .finetune_outputs import build_card_info, final_evaluation, hub_pusher, push_with_card, save_run_outputs
from .metrics import argmax_logits, make_compute_metrics
from .vocab import TextNormalization, build_vocab, tokenizer_kwargs, write_vocab

logger = logging.getLogger(__name__)

CONFIG_PRESETS = ("base", "large")
FOLDER_BUILDERS = ("audiofolder",)  # datasets builders that read a local folder (given by --data_dir)
LOG_POINTS = 50  # default logging: about this many loss points per run
EVAL_POINTS = 10  # default --eval_steps with --eval_strategy steps: about this many evaluations per run


# ------------------------------------------------------------------------------------------------- arguments


@dataclass
class ModelArguments:
    """Which model to start from and how to configure it for fine-tuning."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pre-trained checkpoint: a directory of this package or a transformers wav2vec2 "
                          "checkpoint (local or Hub id). Not used with --from_scratch."},
    )
    from_scratch: bool = field(default=False, metadata={"help": "Train a randomly initialized model (baseline)."})
    config_preset: str = field(
        default="base", metadata={"help": "Architecture for --from_scratch.", "choices": list(CONFIG_PRESETS)}
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Config (directory or config.json) for --from_scratch; overrides the preset."}
    )
    vocab_file: str | None = field(
        default=None, metadata={"help": "Use this vocab.json instead of building one from the training transcripts."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})
    freeze_feature_encoder: bool | None = field(
        default=None, metadata={"help": "Freeze the conv feature encoder (default: yes, unless --from_scratch)."}
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
        default=None, metadata={"help": "Adapter-only fine-tuning (MMS) for this language id, e.g. 'spa': train only "
                                        "fresh adapters and CTC head; writes adapter.<lang>.safetensors and a "
                                        "multilingual vocab.json (see hf_wav2vec2.training.adapter_finetune)."}
    )
    adapter_attn_dim: int | None = field(
        default=None, metadata={"help": "Adapter width for a base without adapters (default 16, as mms-1b-all)."}
    )
    save_adapter_beside_base: bool = field(
        default=False, metadata={"help": "With --adapter_lang: also add the adapter file and the language's "
                                         "vocabulary to the (local, multilingual) base model's directory."}
    )


@dataclass
class DataArguments:
    """Where the labeled data comes from and how transcripts are normalized."""

    train_dir: str | None = field(default=None, metadata={"help": "Folder with audio and a metadata file."})
    eval_dir: str | None = field(default=None, metadata={"help": "Evaluation folder (same layout)."})
    metadata_name: str | None = field(
        default=None, metadata={"help": "Metadata file in the folders (default: metadata.csv/.tsv/.jsonl)."}
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A datasets name or path (load_dataset or save_to_disk) instead of folders; "
                                        "'audiofolder' with --data_dir. Audio is decoded by soundfile, not torchcodec."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    data_dir: str | None = field(
        default=None, metadata={"help": "load_dataset's data_dir: the folder of --dataset_name audiofolder (audio "
                                        "and metadata.csv with file_name,text; train/, test/ subfolders are splits)."}
    )
    train_split_name: str = field(default="train", metadata={"help": "Training split of --dataset_name."})
    eval_split_name: str | None = field(default=None, metadata={"help": "Evaluation split of --dataset_name."})
    audio_column: str | None = field(
        default=None, metadata={"help": "Audio column (default: 'file' in folder metadata, 'audio' in datasets)."}
    )
    text_column: str = field(default="text", metadata={"help": "Transcript column."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training items."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation items."})
    min_duration_in_seconds: float = field(default=0.0, metadata={"help": "Drop shorter utterances."})
    max_duration_in_seconds: float | None = field(default=None, metadata={"help": "Drop longer utterances."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for featurizing."})
    text_case: str = field(default="lower", metadata={"help": "Transcript case.", "choices": ["lower", "upper", "keep"]})
    unicode_form: str | None = field(
        default="NFC", metadata={"help": "Unicode normalization of transcripts (NFC, NFKC, ... or '' for none)."}
    )
    strip_punctuation: bool = field(default=True, metadata={"help": "Remove Unicode punctuation (P* categories)."})
    keep_punctuation: str = field(default="'", metadata={"help": "Punctuation kept when stripping."})
    digits: str = field(default="keep", metadata={"help": "Keep or drop digits.", "choices": ["keep", "drop"]})
    drop_chars: str = field(default="", metadata={"help": "Characters deleted from transcripts."})
    vocab_min_count: int = field(default=1, metadata={"help": "Characters seen fewer times become <unk>."})
    num_examples_to_print: int = field(default=5, metadata={"help": "Transcripts printed beside references."})
    language: str | None = field(
        default=None, metadata={"help": "ISO 639 code of the speech, e.g. 'es' (model card; default: unknown)."}
    )

    def __post_init__(self):
        if self.dataset_name and self.train_dir:
            raise ValueError("--dataset_name and --train_dir both name the training data: give one of them")
        if self.data_dir and not self.dataset_name:
            raise ValueError("--data_dir is the folder of --dataset_name (e.g. audiofolder); --train_dir needs none")
        if self.dataset_name in FOLDER_BUILDERS and not self.data_dir:
            # load_dataset would otherwise scan the current directory
            raise ValueError(f"--dataset_name {self.dataset_name} needs --data_dir (the folder with the audio files "
                             "and their metadata.csv)")
        if self.language is not None and not re.fullmatch(r"[a-z]{2,3}", self.language):
            raise ValueError(f"--language must be an ISO 639 code such as 'es' or 'en', got {self.language!r}")

    def normalization(self) -> TextNormalization:
        return TextNormalization(
            case=self.text_case, unicode_form=self.unicode_form or None, strip_punctuation=self.strip_punctuation,
            keep_punctuation=self.keep_punctuation, digits=self.digits, drop_chars=self.drop_chars,
        )


@dataclass
class CTCTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with fine-tuning defaults (Adam beta2 0.98) and the paper's schedule and freezing."""

    lr_scheduler: str | None = field(
        default=None,
        metadata={"help": "'tri_stage' (the paper's; the default without --lr_scheduler_type) or 'trainer' (Trainer's "
                          "--lr_scheduler_type, the default when that is given).", "choices": ["tri_stage", "trainer"]},
    )
    # None, not Trainer's "linear", so that a given --lr_scheduler_type can be told apart from the default
    lr_scheduler_type: str | None = field(
        default=None, metadata={"help": "Trainer's scheduler (linear, constant, cosine, ...); implies --lr_scheduler "
                                        "trainer. Default: tri_stage."}
    )
    logging_steps: float | None = field(
        default=None, metadata={"help": f"Log every N updates (a float < 1: a fraction of the run). Default: "
                                        f"{LOG_POINTS} points per run, and with --eval_strategy steps but no "
                                        f"--eval_steps, {EVAL_POINTS} evaluations."}
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

    def _resolve_scheduler(self):
        """tri_stage unless Trainer's scheduler is asked for; both at once is an error, not a silent choice."""
        if self.lr_scheduler not in (None, "tri_stage", "trainer"):
            raise ValueError(f"--lr_scheduler must be tri_stage or trainer, got {self.lr_scheduler!r}")
        default = self.lr_scheduler is None
        if default:
            self.lr_scheduler = "trainer" if self.lr_scheduler_type is not None else "tri_stage"
        if self.lr_scheduler == "tri_stage":
            given = [f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}" for name, value in (
                ("lr_scheduler_type", self.lr_scheduler_type), ("warmup_steps", self.warmup_steps or None),
                ("lr_scheduler_kwargs", self.lr_scheduler_kwargs or None)) if value is not None]
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


# -------------------------------------------------------------------------------------------- schedule


def parse_phase_ratios(ratios: str | tuple[float, ...]) -> tuple[float, float, float]:
    """``"0.1,0.4,0.5"`` -> (0.1, 0.4, 0.5); three non-negative fractions summing to 1."""
    values = tuple(float(v) for v in (ratios.split(",") if isinstance(ratios, str) else ratios))
    if len(values) != 3 or min(values) < 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ValueError(f"tri-stage phase ratios must be three non-negative numbers summing to 1, got {ratios!r}")
    return values


def tri_stage_lambda(
    total_steps: int,
    phase_ratios: tuple[float, float, float] = (0.1, 0.4, 0.5),
    init_lr_scale: float = 0.01,
    final_lr_scale: float = 0.05,
):
    """LR multiplier of fairseq's ``tri_stage`` schedule at each update, for ``torch.optim.lr_scheduler.LambdaLR``.

    Linear warm-up from ``init_lr_scale`` to 1 over the first phase, 1 during the hold phase, exponential decay to
    ``final_lr_scale`` over the last phase, then ``final_lr_scale``. Phase lengths are ``int(total * ratio)``
    updates, as in fairseq.
    """
    warmup_ratio, hold_ratio, decay_ratio = parse_phase_ratios(phase_ratios)
    warmup = int(total_steps * warmup_ratio)
    hold = int(total_steps * hold_ratio)
    decay = int(total_steps * decay_ratio)
    log_final = math.log(final_lr_scale)

    def multiplier(step: int) -> float:
        if step < warmup:
            return init_lr_scale + (1.0 - init_lr_scale) * step / warmup
        step -= warmup
        if step < hold:
            return 1.0
        step -= hold
        if step < decay:
            return math.exp(log_final * step / decay)
        return final_lr_scale

    return multiplier


def tri_stage_scheduler(optimizer, total_steps: int, **kwargs) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`tri_stage_lambda` (keyword arguments are passed on to it)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, tri_stage_lambda(total_steps, **kwargs))


class CTCTrainer(Trainer):
    """``Trainer`` whose scheduler is the tri-stage one when ``args.lr_scheduler == "tri_stage"``."""

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if getattr(self.args, "lr_scheduler", "trainer") != "tri_stage":
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            self.lr_scheduler = tri_stage_scheduler(
                optimizer if optimizer is not None else self.optimizer,
                num_training_steps,
                phase_ratios=parse_phase_ratios(self.args.tri_stage_ratios),
                init_lr_scale=self.args.init_lr_scale,
                final_lr_scale=self.args.final_lr_scale,
            )
            self._created_lr_scheduler = True  # lets Trainer rebuild it on a later train() call, as its own
        return self.lr_scheduler


# --------------------------------------------------------------------------------------------- freezing


class FreezeFinetuneCallback(TrainerCallback):
    """Train only the CTC head for the first `updates` updates, then the whole model but the feature encoder.

    fairseq's ``freeze_finetune_updates``: the head starts random, and its early gradients would otherwise disturb
    the pre-trained representations. The freeze happens at ``on_train_begin``, after the optimizer was built over
    all trainable parameters, so the unfrozen parameters are optimized later (their gradients are None meanwhile,
    which Adam skips, weight decay included).
    """

    def __init__(self, updates: int, keep_feature_encoder_frozen: bool = True):
        self.updates = int(updates)
        self.keep_feature_encoder_frozen = keep_feature_encoder_frozen
        self.frozen = False

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step < self.updates:
            model.freeze_base_model()
            self.frozen = True
            logger.info("pre-trained network frozen for the first %d updates", self.updates)

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if self.frozen and state.global_step >= self.updates:
            for param in model.wav2vec2.parameters():
                param.requires_grad = True
            if self.keep_feature_encoder_frozen:
                model.freeze_feature_encoder()
            self.frozen = False
            logger.info("update %d: pre-trained network unfrozen", state.global_step)


# ---------------------------------------------------------------------------------------- model building


def _raw_datasets(data_args: DataArguments, cache_dir: str | None = None) -> tuple:
    """(train, eval or None) as datasets with ``audio`` and ``text`` columns."""
    if data_args.dataset_name:
        audio_column = data_args.audio_column or "audio"
        load = {
            "config_name": data_args.dataset_config_name, "audio_column": audio_column,
            "text_column": data_args.text_column,
        }
        load.update({key: value for key, value in (("data_dir", data_args.data_dir), ("cache_dir", cache_dir))
                     if value is not None})
        train = load_labeled_dataset(data_args.dataset_name, split=data_args.train_split_name, **load)
        evaluation = None
        if data_args.eval_split_name:
            evaluation = load_labeled_dataset(data_args.dataset_name, split=data_args.eval_split_name, **load)
    elif data_args.train_dir:
        audio_column = data_args.audio_column or "file"
        load = {
            "metadata": data_args.metadata_name, "audio_column": audio_column, "text_column": data_args.text_column,
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


def build_tokenizer(transcripts, output_dir: str | Path, normalization: TextNormalization, vocab_file=None,
                    min_count: int = 1) -> HfWav2Vec2CTCTokenizer:
    """The CTC tokenizer over `vocab_file`, or over a vocabulary built from `transcripts` (written to output_dir)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / "vocab.json"
    if vocab_file:
        if Path(vocab_file).resolve() != target.resolve():
            shutil.copyfile(vocab_file, target)
    else:
        vocab = build_vocab(transcripts, normalization, min_count=min_count)
        write_vocab(vocab, output_dir)
        logger.info("vocabulary of %d tokens: %s", len(vocab), "".join(list(vocab)[5:]))
    return HfWav2Vec2CTCTokenizer(str(target), **tokenizer_kwargs())


def _fine_tuning_overrides(model_args: ModelArguments, tokenizer) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "mask_time_prob": model_args.mask_time_prob,
        "mask_time_length": model_args.mask_time_length,
        "mask_feature_prob": model_args.mask_feature_prob,
        "mask_feature_length": model_args.mask_feature_length,
        "layerdrop": model_args.layerdrop,
        "hidden_dropout": model_args.hidden_dropout,
        "activation_dropout": model_args.activation_dropout,
        "attention_dropout": model_args.attention_dropout,
        "feat_proj_dropout": model_args.feat_proj_dropout,
        "final_dropout": model_args.final_dropout,
        "ctc_loss_reduction": model_args.ctc_loss_reduction,
        "ctc_zero_infinity": model_args.ctc_zero_infinity,
        "apply_spec_augment": model_args.mask_time_prob > 0 or model_args.mask_feature_prob > 0,
    }


def build_config(model_args: ModelArguments, tokenizer) -> HfWav2Vec2Config:
    """The checkpoint's (or preset's) config with the fine-tuning settings and the tokenizer's vocabulary."""
    overrides = _fine_tuning_overrides(model_args, tokenizer)
    if model_args.from_scratch:
        if model_args.config_name:
            base = HfWav2Vec2Config.from_pretrained(model_args.config_name, cache_dir=model_args.cache_dir)
        else:
            base = getattr(HfWav2Vec2Config, model_args.config_preset)()
    else:
        if not model_args.model_name_or_path:
            raise ValueError("give --model_name_or_path (a pre-trained checkpoint) or --from_scratch")
        base = HfWav2Vec2Config.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    values = base.to_dict()
    values.update(overrides, **adapter_config_values(model_args, base))
    # from_dict re-runs the config's validation on the combined values
    return HfWav2Vec2Config.from_dict(values)


def build_feature_extractor(model_args: ModelArguments, config) -> HfWav2Vec2FeatureExtractor:
    """The checkpoint's feature extractor when it has one, else the one matching the architecture."""
    if not model_args.from_scratch and model_args.model_name_or_path:
        try:
            return HfWav2Vec2FeatureExtractor.from_pretrained(
                model_args.model_name_or_path, cache_dir=model_args.cache_dir
            )
        except OSError:
            logger.info("%s has no preprocessor_config.json; using the default for its architecture",
                        model_args.model_name_or_path)
    return HfWav2Vec2FeatureExtractor.for_config(config)


def build_model(model_args: ModelArguments, config: HfWav2Vec2Config) -> HfWav2Vec2ForCTC:
    """``HfWav2Vec2ForCTC`` from the checkpoint (new CTC head) or from scratch, feature encoder frozen as asked."""
    if model_args.from_scratch:
        model = HfWav2Vec2ForCTC(config)
    else:
        model = HfWav2Vec2ForCTC.from_pretrained(
            model_args.model_name_or_path, config=config, cache_dir=model_args.cache_dir,
            ignore_mismatched_sizes=True,  # a CTC checkpoint's head has its own vocabulary size
        )
        if not model_args.vocab_file:
            # The vocabulary was built from this data, so a CTC checkpoint's head (even one of the same size) maps
            # other characters: start the head afresh, as from a pre-training checkpoint.
            torch.nn.init.normal_(model.lm_head.weight, mean=0.0, std=config.initializer_range)
            torch.nn.init.zeros_(model.lm_head.bias)
    if model_args.adapter_lang is not None:
        return prepare_adapter_model(model, model_args.adapter_lang)
    if feature_encoder_frozen(model_args):
        model.freeze_feature_encoder()
    return model


def feature_encoder_frozen(model_args: ModelArguments) -> bool:
    """``--freeze_feature_encoder``, defaulting to frozen for pre-trained models and trained from scratch."""
    if model_args.freeze_feature_encoder is None:
        return not model_args.from_scratch
    return model_args.freeze_feature_encoder


# ------------------------------------------------------------------------------------------------- running


def _resume_target(value):
    """``--resume_from_checkpoint``: a checkpoint path, or "true"/"last" for the output directory's latest one."""
    if isinstance(value, str) and value.lower() in ("true", "last"):
        return True
    return value


def _prepare(dataset, name: str, processor, normalization, config, data_args: DataArguments):
    """Featurized, duration-filtered, CTC-alignable utterances of `dataset` (None stays None)."""
    if dataset is None:
        return None
    dataset = prepare_ctc_dataset(
        dataset, processor, normalization, num_proc=data_args.preprocessing_num_workers, description=name
    )
    dataset = filter_duration(dataset, data_args.min_duration_in_seconds, data_args.max_duration_in_seconds)
    dataset, _ = drop_unalignable(dataset, config, description=name)
    if len(dataset) == 0:
        raise ValueError(f"no {name} utterance is left after filtering (see the warnings above)")
    return dataset


def _callbacks(model_args: ModelArguments, training_args: CTCTrainingArguments) -> list:
    if training_args.freeze_finetune_updates <= 0:
        return []
    if model_args.from_scratch:
        logger.warning("--freeze_finetune_updates ignored with --from_scratch: there is no pre-trained network")
        return []
    return [FreezeFinetuneCallback(
        training_args.freeze_finetune_updates, keep_feature_encoder_frozen=feature_encoder_frozen(model_args)
    )]


def run(model_args: ModelArguments, data_args: DataArguments, training_args: CTCTrainingArguments) -> dict:
    """Fine-tune and evaluate; returns the final metrics (``train_loss``, ``eval_wer``, ``eval_cer``, ...)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level()
    )
    check_adapter_arguments(model_args, training_args)
    push_to_hub = hub_pusher() if training_args.push_to_hub else None
    training_args.push_to_hub = False  # the Trainer's own uploading is replaced by hf_wav2vec2.hub
    set_seed(training_args.seed)
    output_dir = training_args.output_dir

    normalization = data_args.normalization()
    raw_train, raw_eval = _raw_datasets(data_args, model_args.cache_dir)
    tokenizer = build_tokenizer(
        raw_train["text"], output_dir, normalization, model_args.vocab_file, data_args.vocab_min_count
    )
    config = build_config(model_args, tokenizer)
    feature_extractor = build_feature_extractor(model_args, config)
    # trained with padding masked (see DataCollatorCTCWithPadding), so batched inference must mask it too
    feature_extractor.return_attention_mask = True
    processor = HfWav2Vec2Processor(feature_extractor, tokenizer)
    processor.save_pretrained(output_dir)
    train_dataset = _prepare(raw_train, "training", processor, normalization, config, data_args)
    eval_dataset = _prepare(raw_eval, "evaluation", processor, normalization, config, data_args)

    trainer = CTCTrainer(
        model=build_model(model_args, config),
        args=training_args,
        data_collator=DataCollatorCTCWithPadding(processor),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        # references are normalized labels; hypotheses get the same normalization, as evaluate_model applies it
        compute_metrics=make_compute_metrics(processor, normalizer=normalization.normalize),
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=_callbacks(model_args, training_args),
    )

    # Always trains: TrainingArguments' do_train/do_eval flags are not used (do_eval is switched on by any
    # eval_strategy, so it cannot mean "evaluate only").
    train_result = trainer.train(resume_from_checkpoint=_resume_target(training_args.resume_from_checkpoint))
    trainer.save_model()
    if trainer.is_world_process_zero():
        processor.save_pretrained(output_dir)
        if model_args.adapter_lang is not None:
            save_adapter_outputs(trainer.model, processor, output_dir, model_args)
    metrics = dict(train_result.metrics, train_samples=len(train_dataset))
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    if eval_dataset is not None:
        final = final_evaluation(trainer, processor, eval_dataset, "eval", data_args.num_examples_to_print)
    else:
        final = final_evaluation(trainer, processor, train_dataset, "train_eval", data_args.num_examples_to_print)
    metrics.update(final)
    trainer.save_metrics("all", metrics)
    card = build_card_info(model_args, data_args, train_dataset, normalization, metrics)
    if trainer.is_world_process_zero():
        save_run_outputs(output_dir, trainer, normalization, card, final)
        if push_to_hub is not None:
            push_with_card(push_to_hub, output_dir, training_args, card)
    return metrics


def parse_args(argv=None) -> tuple[ModelArguments, DataArguments, CTCTrainingArguments]:
    """Parse command-line arguments, or a single ``.json`` file holding them."""
    parser = HfArgumentParser((ModelArguments, DataArguments, CTCTrainingArguments))
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=str(Path(argv[0]).resolve()))
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv=None) -> dict:
    """Entry point of ``examples/finetune_ctc.py`` (and of a CLI): parse `argv`, fine-tune, return the metrics."""
    return run(*parse_args(argv))


__all__ = [
    "CTCTrainer",
    "CTCTrainingArguments",
    "DataArguments",
    "FreezeFinetuneCallback",
    "ModelArguments",
    "build_config",
    "build_feature_extractor",
    "build_model",
    "build_tokenizer",
    "feature_encoder_frozen",
    "final_evaluation",
    "main",
    "parse_args",
    "parse_phase_ratios",
    "run",
    "tri_stage_lambda",
    "tri_stage_scheduler",
]
