"""Fine-tuning wav2vec 2.0 for audio classification with transformers' ``Trainer``: the logic behind
``examples/finetune_classification.py``.

A randomly initialized :class:`~hf_wav2vec2.modeling_hf_wav2vec2_classification.HfWav2Vec2ForSequenceClassification`
head (projection, mean pooling over real frames, linear classifier) on a pre-trained encoder, trained with
cross-entropy on one label per clip; accuracy is reported on the evaluation data (or the training data when none is
given). The layout and starting points are those of :mod:`hf_wav2vec2.training.finetune` (CTC):

* data: a folder of audio files with ``metadata.csv`` / ``.tsv`` / ``.jsonl`` (columns ``file`` and ``label``,
  configurable), read by :func:`~hf_wav2vec2.training.ctc_data.load_labeled_folder`, or a ``datasets`` dataset
  (``--dataset_name``; ``ClassLabel`` columns give their names). Audio is decoded with soundfile and resampled
  with soxr (:func:`~hf_wav2vec2.training.ctc_data.decode_audio`), never by torchcodec;
* model: a checkpoint of this package or of transformers (``facebook/wav2vec2-base``, a keyword-spotting model
  whose labels are then replaced, ...), or ``--from_scratch`` with ``--config_preset tiny|base|large`` or
  ``--config_name``;
* freezing: the conv feature encoder frozen unless training from scratch; ``--freeze_base_model`` trains the head
  only (a linear probe); ``--freeze_finetune_updates N`` trains the head alone for the first N updates.

Labels are the sorted distinct training labels (``id2label`` in the saved config, so the pipeline prints names).
Training clips longer than ``--max_length_seconds`` are cropped at a random offset each time they are drawn, as in
transformers' audio-classification example; evaluation clips are used whole. Batches are padded with the attention
mask (the mean pooling must skip padding), and the saved feature extractor returns it, so batched inference masks
too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainingArguments, set_seed

from ..configuration_hf_wav2vec2 import HfWav2Vec2Config
from ..feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from ..modeling_hf_wav2vec2_classification import HfWav2Vec2ForSequenceClassification
from ..pipeline_audio_classification import save_classification_pipeline_code
from .allocator import check_mmap_threshold, set_mmap_threshold
from .ctc_data import AUDIO, TEXT, decode_audio
from .finetune_args import (
    LabeledDataArguments,
    StartingModelArguments,
    config_name_field,
    feature_encoder_frozen,
    load_raw_splits,
    mmap_threshold_field,
    parse_training_args,
    preset_field,
)

logger = logging.getLogger(__name__)

CONFIG_PRESETS = ("tiny", "base", "large")
LABEL = "label"


# ------------------------------------------------------------------------------------------------- arguments


@dataclass
class ModelArguments(StartingModelArguments):
    """Which model to start from and how to configure its classification head."""

    config_preset: str = preset_field(CONFIG_PRESETS)  # "tiny" too: quick runs on a laptop
    config_name: str | None = config_name_field(
        "A directory's preprocessor_config.json, if any, gives the feature extractor."
    )
    freeze_base_model: bool = field(default=False, metadata={"help": "Train the classification head only."})
    use_weighted_layer_sum: bool | None = field(
        default=None, metadata={"help": "Classify a learned weighted sum of all layers (default: the checkpoint's)."}
    )
    classifier_proj_size: int | None = field(
        default=None, metadata={"help": "Width of the projection before pooling (default: the checkpoint's, 256)."}
    )
    # transformers' audio-classification example: light time masking, the checkpoint's dropouts otherwise
    mask_time_prob: float = field(default=0.05, metadata={"help": "SpecAugment time masking probability."})
    mask_time_length: int = field(default=10, metadata={"help": "Length of a time mask span, in frames."})
    mask_feature_prob: float = field(default=0.0, metadata={"help": "Channel masking probability."})
    layerdrop: float | None = field(default=None, metadata={"help": "LayerDrop (default: the checkpoint's)."})
    hidden_dropout: float | None = field(default=None, metadata={"help": "Residual dropout (default: checkpoint's)."})
    attention_dropout: float | None = field(
        default=None, metadata={"help": "Attention dropout (default: checkpoint's)."}
    )


@dataclass
class DataArguments(LabeledDataArguments):
    """Where the labelled clips come from."""

    label_column: str = field(default=LABEL, metadata={"help": "Label column."})
    max_length_seconds: float | None = field(
        default=20.0, metadata={"help": "Crop longer training clips at a random offset (0 or none: never)."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.max_length_seconds is not None and self.max_length_seconds < 0:
            raise ValueError(f"--max_length_seconds must be >= 0, got {self.max_length_seconds}")


@dataclass
class ClassificationTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the classification defaults and head-only warm-up."""

    freeze_finetune_updates: int = field(
        default=0, metadata={"help": "Train only the head for the first N updates (then all but the conv encoder)."}
    )
    # the collator needs the featurized columns Trainer would drop (they are no arguments of forward)
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep dataset columns (needed)."})
    learning_rate: float = field(default=3e-5, metadata={"help": "Peak learning rate (transformers' example)."})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Linear warm-up: updates, or a fraction of them when below 1."}
    )
    malloc_mmap_threshold_kb: int = mmap_threshold_field()

    def __post_init__(self):
        super().__post_init__()
        check_mmap_threshold(self.malloc_mmap_threshold_kb)  # a usage error at parse time, not after featurizing


# ------------------------------------------------------------------------------------------------- data


def _rename_label(dataset):
    """``text`` (what the shared loaders call the second column) -> ``label``, names for ``ClassLabel`` ids."""
    feature = dataset.features[TEXT]
    names = getattr(feature, "names", None)
    if names is not None:
        dataset = dataset.map(lambda row: {"label_name": names[row[TEXT]]}, remove_columns=[TEXT])
        return dataset.rename_column("label_name", LABEL)
    return dataset.rename_column(TEXT, LABEL)


def raw_datasets(data_args: DataArguments, cache_dir: str | None = None) -> tuple:
    """(train, eval or None) with columns ``audio`` (a path or an undecoded record) and ``label`` (a string)."""
    train, evaluation = load_raw_splits(data_args, data_args.label_column, cache_dir)
    return _rename_label(train), None if evaluation is None else _rename_label(evaluation)


def label_mapping(train_labels, eval_labels=None) -> tuple[dict[int, str], dict[str, int]]:
    """``id2label``, ``label2id`` over the sorted distinct training labels; evaluation labels must be among them."""
    names = sorted({str(label) for label in train_labels})
    if len(names) < 2:
        raise ValueError(f"the training data has {len(names)} distinct label(s) ({names}); classification needs 2+")
    unknown = sorted({str(label) for label in eval_labels or []} - set(names))
    if unknown:
        raise ValueError(f"evaluation labels {unknown[:5]} never occur in the training data (labels: {names[:10]})")
    return dict(enumerate(names)), {name: i for i, name in enumerate(names)}


def prepare_classification_dataset(
    dataset, feature_extractor, label2id: dict[str, int], num_proc: int | None = None, description: str = "data"
):
    """Featurize clips: ``input_values`` (at the feature extractor's rate, 16 kHz for every released checkpoint,
    normalized by it), ``labels`` (class id) and ``input_length`` (samples). Clips shorter than the model can read
    are refused by the caller's check."""
    rate = feature_extractor.sampling_rate

    def featurize(example):
        audio = decode_audio(example[AUDIO], rate)
        values = feature_extractor(audio, sampling_rate=rate).input_values[0]
        return {
            "input_values": np.asarray(values, dtype=np.float32),
            "labels": label2id[str(example[LABEL])],
            "input_length": len(values),
        }

    return dataset.map(
        featurize, remove_columns=dataset.column_names, num_proc=num_proc, desc=f"Featurizing {description}"
    )


@dataclass
class DataCollatorForAudioClassification:
    """Pad clips into a batch (with the attention mask) and, for training, crop long clips at random offsets.

    ``max_length``: samples; clips longer than that are cropped to it at an offset drawn anew for every batch (a
    cheap augmentation, and it bounds memory). None or 0: no cropping.
    """

    feature_extractor: Any
    max_length: int | None = None
    generator: np.random.Generator | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        clips = [np.asarray(example["input_values"], dtype=np.float32) for example in features]
        if self.max_length:
            rng = self.generator if self.generator is not None else np.random.default_rng()
            clips = [self._crop(clip, rng) for clip in clips]
        batch = self.feature_extractor.pad(
            [{"input_values": clip} for clip in clips], padding=True, return_attention_mask=True, return_tensors="pt"
        )
        batch["input_values"] = batch["input_values"].float()
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([int(example["labels"]) for example in features], dtype=torch.long)
        return batch

    def _crop(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if clip.shape[0] <= self.max_length:
            return clip
        start = int(rng.integers(0, clip.shape[0] - self.max_length + 1))
        return clip[start : start + self.max_length]


def compute_accuracy(eval_prediction) -> dict[str, float]:
    """Accuracy of the argmax label (Trainer's ``compute_metrics``)."""
    logits = eval_prediction.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    labels = np.asarray(eval_prediction.label_ids)
    return {"accuracy": float((np.asarray(logits).argmax(-1) == labels).mean())}


# ---------------------------------------------------------------------------------------------- model building


def _base_config(model_args: ModelArguments) -> HfWav2Vec2Config:
    if not model_args.from_scratch:
        if not model_args.model_name_or_path:
            raise ValueError("give --model_name_or_path (a pre-trained checkpoint) or --from_scratch")
        return HfWav2Vec2Config.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    if model_args.config_name:
        return HfWav2Vec2Config.from_pretrained(model_args.config_name, cache_dir=model_args.cache_dir)
    if model_args.config_preset == "tiny":
        from .pretrain import TINY_PRESET

        return HfWav2Vec2Config(**TINY_PRESET)
    return getattr(HfWav2Vec2Config, model_args.config_preset)()


def build_config(model_args: ModelArguments, id2label: dict[int, str]) -> HfWav2Vec2Config:
    """The checkpoint's (or preset's) config with the labels and the fine-tuning settings."""
    values = _base_config(model_args).to_dict()
    values.update(
        num_labels=len(id2label),
        id2label=id2label,
        label2id={name: i for i, name in id2label.items()},
        problem_type="single_label_classification",
        mask_time_prob=model_args.mask_time_prob,
        mask_time_length=model_args.mask_time_length,
        mask_feature_prob=model_args.mask_feature_prob,
        apply_spec_augment=model_args.mask_time_prob > 0 or model_args.mask_feature_prob > 0,
    )
    for name in ("use_weighted_layer_sum", "classifier_proj_size", "layerdrop", "hidden_dropout", "attention_dropout"):
        if getattr(model_args, name) is not None:
            values[name] = getattr(model_args, name)
    return HfWav2Vec2Config.from_dict(values)  # re-runs the config's validation on the combined values


def build_model(model_args: ModelArguments, config: HfWav2Vec2Config) -> HfWav2Vec2ForSequenceClassification:
    """The classifier from the checkpoint (a fresh head unless it was trained on these very labels) or from scratch."""
    if model_args.from_scratch:
        model = HfWav2Vec2ForSequenceClassification(config)
    else:
        source = HfWav2Vec2Config.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
        model = HfWav2Vec2ForSequenceClassification.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            cache_dir=model_args.cache_dir,
            ignore_mismatched_sizes=True,  # a classification checkpoint's head has its own number of labels
        )
        if {int(k): v for k, v in (source.id2label or {}).items()} != config.id2label:
            # another label set (even of the same size) means another head: start it afresh
            for layer in (model.projector, model.classifier):
                torch.nn.init.normal_(layer.weight, mean=0.0, std=config.initializer_range)
                torch.nn.init.zeros_(layer.bias)
    if model_args.freeze_base_model:
        model.freeze_base_model()
    elif feature_encoder_frozen(model_args):
        model.freeze_feature_encoder()
    return model


def build_feature_extractor(model_args: ModelArguments, config) -> HfWav2Vec2FeatureExtractor:
    """The feature extractor of the checkpoint (or, from scratch, of ``--config_name``'s folder) when it has one,
    else the one matching the architecture. Its ``sampling_rate`` is the rate the clips are decoded at."""
    source = model_args.config_name if model_args.from_scratch else model_args.model_name_or_path
    if source:
        try:
            return HfWav2Vec2FeatureExtractor.from_pretrained(source, cache_dir=model_args.cache_dir)
        except OSError:
            logger.info("%s has no preprocessor_config.json; using the default for its architecture", source)
    return HfWav2Vec2FeatureExtractor.for_config(config)


def _check_lengths(dataset, config, name: str, rate: int) -> None:
    shortest = min(dataset["input_length"]) if len(dataset) else 0
    if shortest < config.receptive_field:
        raise ValueError(
            f"a {name} clip has {shortest} samples at {rate} Hz; the model needs at least "
            f"{config.receptive_field} (its receptive field)"
        )


def _callbacks(model_args: ModelArguments, training_args: ClassificationTrainingArguments) -> list:
    if training_args.freeze_finetune_updates <= 0 or model_args.freeze_base_model:
        return []
    from .finetune import FreezeFinetuneCallback

    return [
        FreezeFinetuneCallback(
            training_args.freeze_finetune_updates, keep_feature_encoder_frozen=feature_encoder_frozen(model_args)
        )
    ]


# ------------------------------------------------------------------------------------------------- running


def final_evaluation(trainer, dataset, prefix: str, id2label: dict[int, str]) -> dict:
    """Accuracy on `dataset`, overall and per label, printed once; returns the metrics."""
    output = trainer.predict(dataset, metric_key_prefix=prefix)
    metrics = dict(output.metrics, **{f"{prefix}_samples": len(dataset)})
    predicted, labels = np.asarray(output.predictions).argmax(-1), np.asarray(output.label_ids)
    per_label = {id2label[i]: float((predicted[labels == i] == i).mean()) for i in sorted(set(labels.tolist()))}
    metrics[f"{prefix}_accuracy_per_label"] = per_label
    if trainer.is_world_process_zero():
        where = "evaluation set" if prefix == "eval" else "training set (no evaluation data given)"
        print(
            f"\nFinal results on the {where}, {len(dataset)} clips: accuracy {100 * metrics[f'{prefix}_accuracy']:.2f}%"
        )
        print("  per label: " + ", ".join(f"{name} {100 * value:.0f}%" for name, value in per_label.items()))
    trainer.save_metrics(prefix, metrics)
    return metrics


def run(model_args: ModelArguments, data_args: DataArguments, training_args: ClassificationTrainingArguments) -> dict:
    """Fine-tune and evaluate; returns the final metrics (``train_loss``, ``eval_accuracy``, ...)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level()
    )
    logger.info(set_mmap_threshold(training_args.malloc_mmap_threshold_kb))  # before the data and the model exist
    set_seed(training_args.seed)
    raw_train, raw_eval = raw_datasets(data_args, model_args.cache_dir)
    id2label, label2id = label_mapping(raw_train[LABEL], None if raw_eval is None else raw_eval[LABEL])
    config = build_config(model_args, id2label)
    feature_extractor = build_feature_extractor(model_args, config)
    feature_extractor.return_attention_mask = True  # trained with padding masked: batched inference masks too
    num_proc = data_args.preprocessing_num_workers
    train = prepare_classification_dataset(raw_train, feature_extractor, label2id, num_proc, "training")
    evaluation = None
    if raw_eval is not None:
        evaluation = prepare_classification_dataset(raw_eval, feature_extractor, label2id, num_proc, "evaluation")
    for dataset, name in ((train, "training"), (evaluation, "evaluation")):
        if dataset is not None:
            _check_lengths(dataset, config, name, feature_extractor.sampling_rate)

    max_length = int((data_args.max_length_seconds or 0) * feature_extractor.sampling_rate) or None
    trainer = _ClassificationTrainer(
        model=build_model(model_args, config),
        args=training_args,
        data_collator=DataCollatorForAudioClassification(
            feature_extractor, max_length, np.random.default_rng(training_args.seed)
        ),
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=feature_extractor,
        compute_metrics=compute_accuracy,
        callbacks=_callbacks(model_args, training_args),
    )
    trainer.eval_collator = DataCollatorForAudioClassification(feature_extractor)  # whole clips
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    if trainer.is_world_process_zero():
        feature_extractor.save_pretrained(training_args.output_dir)
        # remote-code users (no hf_wav2vec2) get this package's pipeline: files and any rate, soxr resampling
        save_classification_pipeline_code(training_args.output_dir)
    metrics = dict(train_result.metrics, train_samples=len(train))
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()
    prefix = "eval" if evaluation is not None else "train_eval"
    metrics.update(final_evaluation(trainer, evaluation if evaluation is not None else train, prefix, id2label))
    trainer.save_metrics("all", metrics)
    if trainer.is_world_process_zero():
        save_card_info(model_args, data_args, metrics, prefix, training_args.output_dir)
    return metrics


def save_card_info(
    model_args: ModelArguments, data_args: DataArguments, metrics: dict, prefix: str, output_dir: str
) -> None:
    """``card_info.json`` for ``hf-wav2vec2 push``: the final accuracy (a held-out result, or a note that only the
    training clips were scored) and the base model's Hub id; skipped (warning) without ``hf_wav2vec2.hub``."""
    try:
        from ..hub import CardInfo, Result
    except ImportError as error:
        logger.warning("no card_info.json: %s", error)
        return
    accuracy, clips = 100 * metrics[f"{prefix}_accuracy"], metrics[f"{prefix}_samples"]
    results, note = [], None
    if prefix == "eval":
        local = data_args.dataset_name is None or Path(data_args.dataset_name).exists()
        name = Path(data_args.eval_dir).name if data_args.eval_dir else data_args.dataset_name
        results.append(
            Result(
                dataset_type=None if local else data_args.dataset_name,
                dataset_name=name,
                config=data_args.dataset_config_name,
                split=data_args.eval_split_name or "eval",
                accuracy=round(accuracy, 2),
            )
        )
        note = f"Accuracy on {clips} held-out clips, whole clips (no cropping)."
    else:
        note = (
            f"No held-out data was evaluated. On its own {clips} training clips: accuracy {accuracy:.2f} %, which "
            "says little about new audio."
        )
    base = model_args.model_name_or_path
    local_start = model_args.from_scratch or not base or Path(base).exists()
    CardInfo(results=results, results_note=note, base_model=None if local_start else base).save(output_dir)


class _ClassificationTrainer(Trainer):
    """``Trainer`` whose evaluation batches use whole clips (``eval_collator``), the training batches crops."""

    eval_collator: Any = None

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)

    def _with_eval_collator(self, build, dataset):
        if self.eval_collator is None:
            return build(dataset)
        training_collator, self.data_collator = self.data_collator, self.eval_collator
        try:
            return build(dataset)
        finally:
            self.data_collator = training_collator


def parse_args(argv=None) -> tuple[ModelArguments, DataArguments, ClassificationTrainingArguments]:
    """Parse command-line arguments, or a single ``.json`` file holding them."""
    return parse_training_args((ModelArguments, DataArguments, ClassificationTrainingArguments), argv)


def main(argv=None) -> dict:
    """Entry point of ``examples/finetune_classification.py``: parse `argv`, fine-tune, return the metrics."""
    return run(*parse_args(argv))


__all__ = [
    "ClassificationTrainingArguments",
    "DataArguments",
    "DataCollatorForAudioClassification",
    "ModelArguments",
    "build_config",
    "build_feature_extractor",
    "build_model",
    "compute_accuracy",
    "label_mapping",
    "main",
    "parse_args",
    "prepare_classification_dataset",
    "raw_datasets",
    "run",
]
