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
:class:`DataArguments` and :class:`CTCTrainingArguments`, defined in :mod:`.finetune_args`, or one JSON file holding
them) and returns the final metrics, so a CLI can call ``main(argv)``.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import torch
from transformers import (
    Trainer,
    TrainerCallback,
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
from .allocator import set_mmap_threshold
from .ctc_data import (
    DataCollatorCTCWithPadding,
    drop_unalignable,
    filter_duration,
    prepare_ctc_dataset,
    screen_transcripts,
)
from .finetune_args import (
    CTCTrainingArguments,
    DataArguments,
    ModelArguments,
    feature_encoder_frozen,
    load_raw_splits,
    parse_phase_ratios,
    parse_training_args,
)
from .finetune_outputs import build_card_info, final_evaluation, hub_pusher, push_with_card, save_run_outputs
from .metrics import argmax_logits, make_compute_metrics
from .vocab import TextNormalization, build_vocab, tokenizer_kwargs, write_vocab

logger = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------------- schedule


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
    return load_raw_splits(data_args, data_args.text_column, cache_dir)


def build_tokenizer(
    transcripts, output_dir: str | Path, normalization: TextNormalization, vocab_file=None, min_count: int = 1
) -> HfWav2Vec2CTCTokenizer:
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
            logger.info(
                "%s has no preprocessor_config.json; using the default for its architecture",
                model_args.model_name_or_path,
            )
    return HfWav2Vec2FeatureExtractor.for_config(config)


def build_model(model_args: ModelArguments, config: HfWav2Vec2Config) -> HfWav2Vec2ForCTC:
    """``HfWav2Vec2ForCTC`` from the checkpoint (new CTC head) or from scratch, feature encoder frozen as asked."""
    if model_args.from_scratch:
        model = HfWav2Vec2ForCTC(config)
    else:
        model = HfWav2Vec2ForCTC.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            cache_dir=model_args.cache_dir,
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


def _resume_target(value):
    """``--resume_from_checkpoint``: a checkpoint path, or "true"/"last" for the output directory's latest one."""
    if isinstance(value, str) and value.lower() in ("true", "last"):
        return True
    return value


def _prepare(dataset, name: str, processor, normalization, config, data_args: DataArguments):
    """Featurized, duration-filtered, CTC-alignable utterances of `dataset` (None stays None), bad transcripts and
    undecodable audio reported (and left out as ``--drop_bad_transcripts`` / ``--max_bad_audio_fraction`` say)."""
    if dataset is None:
        return None
    dataset = screen_transcripts(
        dataset, processor.tokenizer.get_vocab(), normalization, data_args.drop_bad_transcripts, name
    )
    dataset = prepare_ctc_dataset(
        dataset,
        processor,
        normalization,
        num_proc=data_args.preprocessing_num_workers,
        description=name,
        max_bad_audio_fraction=data_args.max_bad_audio_fraction,
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
    return [
        FreezeFinetuneCallback(
            training_args.freeze_finetune_updates, keep_feature_encoder_frozen=feature_encoder_frozen(model_args)
        )
    ]


def run(model_args: ModelArguments, data_args: DataArguments, training_args: CTCTrainingArguments) -> dict:
    """Fine-tune and evaluate; returns the final metrics (``train_loss``, ``eval_wer``, ``eval_cer``, ...)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level()
    )
    check_adapter_arguments(model_args, training_args)
    logger.info(set_mmap_threshold(training_args.malloc_mmap_threshold_kb))  # before the data and the model exist
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
    return parse_training_args((ModelArguments, DataArguments, CTCTrainingArguments), argv)


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
