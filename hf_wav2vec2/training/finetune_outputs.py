"""What a fine-tuning run reports and leaves beside the model, besides the weights and the processor.

:func:`final_evaluation` prints the final WER / CER (once, on the main process) with a few transcripts; then
:func:`save_run_outputs` writes

* ``text_normalization.json`` (:meth:`~hf_wav2vec2.training.vocab.TextNormalization.save_pretrained`): the
  transcript cleaning the model was trained with, which ``hf-wav2vec2 evaluate`` applies to references and
  hypotheses, so that it reports the WER / CER fine-tuning reported;
* the pipeline code (:func:`hf_wav2vec2.pipeline_hf_wav2vec2.save_pipeline_code`), so that
  ``pipeline(model=dir, trust_remote_code=True)`` builds this package's pipeline without the package;
* ``card_info.json`` (:meth:`hf_wav2vec2.hub.CardInfo.save`): the model card fields the run knows (language, base
  model, training data, final results), which publishing uses;
* ``training_curves.png``: train and eval loss, WER / CER, learning rate and gradient norm over the updates.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..audio import DEFAULT_SAMPLING_RATE
from .metrics import decode_predictions, finetuning_panels, plot_training_curves
from .vocab import TextNormalization

logger = logging.getLogger(__name__)

# datasets builders that are not Hub datasets (a card's `datasets:` lists Hub ids only)
_LOCAL_BUILDERS = ("audiofolder", "arrow", "csv", "json", "parquet", "text", "webdataset")


def print_examples(hypotheses, references, count: int, file=None) -> None:
    """Print `count` hypotheses under their references."""
    file = file or sys.stdout  # looked up at call time, so redirected output is honoured
    for hyp, ref in list(zip(hypotheses, references, strict=True))[:count]:
        print(f"  REF: {ref}\n  HYP: {hyp}", file=file)


def final_evaluation(trainer, processor, dataset, prefix: str, num_examples: int) -> dict:
    """WER/CER on `dataset`, printed with a few transcripts beside their references; returns the metrics."""
    output = trainer.predict(dataset, metric_key_prefix=prefix)  # WER/CER come from compute_metrics
    hypotheses, references = decode_predictions(processor, output.predictions, output.label_ids)
    metrics = dict(output.metrics)
    metrics[f"{prefix}_samples"] = len(dataset)
    where = "evaluation set" if prefix == "eval" else "training set (no evaluation data given)"
    if trainer.is_world_process_zero():  # every DDP rank runs this; the results are printed once
        print(
            f"\nFinal results on the {where}, {len(dataset)} utterances: "
            f"WER {100 * metrics[f'{prefix}_wer']:.2f}%  CER {100 * metrics[f'{prefix}_cer']:.2f}%"
        )
        print_examples(hypotheses, references, num_examples)
    trainer.save_metrics(prefix, metrics)
    return metrics


def _format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} hours"
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.1f} seconds"


def _hub_dataset_id(name: str | None) -> str | None:
    """`name` when it can be a Hub dataset id: not a local path and not a builder such as audiofolder or csv."""
    if not name or Path(name).exists():
        return None
    try:
        from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES as builders
    except ImportError:  # a private name of datasets: fall back to the common builders
        builders = _LOCAL_BUILDERS
    return None if name in builders else name


def _training_data_text(model_args, data_args, train_dataset, normalization: TextNormalization) -> str:
    """The card's "Training data" section: where the clips came from, how many, how long, how cleaned."""
    seconds = sum(train_dataset["input_length"]) / DEFAULT_SAMPLING_RATE
    amount = f"{len(train_dataset)} transcribed clips, {_format_duration(seconds)}"
    if data_args.dataset_name:
        name = data_args.dataset_name
        if data_args.data_dir:
            where = f"the folder `{Path(data_args.data_dir).name}` ({name})"
        else:
            where = f"`{Path(name).name if Path(name).exists() else name}`"  # no local parent folders in a card
        config = f", configuration `{data_args.dataset_config_name}`" if data_args.dataset_config_name else ""
        source = f"the `{data_args.train_split_name}` split of {where}{config}"
    else:
        source = f"the folder `{Path(data_args.train_dir).name}`"
    if model_args.from_scratch:
        start = "Trained from scratch (random initialization, no pre-training)"
    elif Path(model_args.model_name_or_path).exists():
        start = f"Fine-tuned from the local checkpoint `{Path(model_args.model_name_or_path).name}`"
    else:
        start = f"Fine-tuned from `{model_args.model_name_or_path}`"
    punctuation = "kept"
    if normalization.strip_punctuation:
        kept = " ".join(normalization.keep_punctuation)
        punctuation = f"removed except {kept}" if kept else "removed"
    return (
        f"{start} with CTC on {amount} from {source} (after filtering). Transcripts were normalized before "
        f"training and scoring (case: {normalization.case}; punctuation: {punctuation}; digits: "
        f"{normalization.digits}); `text_normalization.json` holds the options."
    )


def build_card_info(model_args, data_args, train_dataset, normalization: TextNormalization, metrics: dict):
    """The model card fields this run knows: language, base model, training data and the final WER / CER; None
    (with a warning) in an installation without ``hf_wav2vec2.hub``."""
    try:
        from ..hub import CardInfo, Result
    except ImportError as error:
        logger.warning("no card_info.json: %s", error)
        return None

    prefix = "eval" if "eval_wer" in metrics else "train_eval"
    wer, cer = 100 * metrics[f"{prefix}_wer"], 100 * metrics[f"{prefix}_cer"]
    dataset_id = _hub_dataset_id(data_args.dataset_name)
    results, note = [], None
    if dataset_id and prefix == "eval":
        results.append(
            Result(
                dataset_type=dataset_id,
                config=data_args.dataset_config_name,
                split=data_args.eval_split_name,
                wer=wer,
                cer=cer,
                decoding="greedy CTC, no LM",
            )
        )
    elif prefix == "eval":
        where = Path(data_args.eval_dir).name if data_args.eval_dir else f"the `{data_args.eval_split_name}` split"
        note = (
            f"Greedy CTC decoding, no LM: WER {wer:.2f} %, CER {cer:.2f} % on {metrics['eval_samples']} held-out "
            f"clips ({where}), after the transcript normalization of the training data."
        )
    else:
        note = (
            f"No held-out data was evaluated. On its own training clips: WER {wer:.2f} %, CER {cer:.2f} % "
            "(greedy CTC), which says little about new speech."
        )
    local_start = model_args.from_scratch or Path(model_args.model_name_or_path).exists()
    return CardInfo(
        language=data_args.language,
        datasets=[dataset_id] if dataset_id else [],
        results=results,
        results_note=note,
        training_data=_training_data_text(model_args, data_args, train_dataset, normalization),
        base_model=None if local_start else model_args.model_name_or_path,  # a Hub id; a local path is none
    )


def hub_pusher():
    """``hf_wav2vec2.hub.push_to_hub``, or a clear error before any training if this installation lacks it."""
    try:
        from ..hub import push_to_hub
    except ImportError as error:
        raise RuntimeError(
            "--push_to_hub needs the hf_wav2vec2.hub module, which this installation does not have; train without "
            "it and upload the output directory yourself"
        ) from error
    return push_to_hub


def push_with_card(push_to_hub, output_dir: str, training_args, card) -> None:
    """Upload the fine-tuned model with the model card of this run."""
    push_to_hub(
        output_dir,
        training_args.hub_model_id or Path(output_dir).name,
        card=card,
        token=training_args.hub_token,
        private=bool(training_args.hub_private_repo),
        commit_message="Fine-tuned with hf_wav2vec2 (CTC)",
    )


def save_run_outputs(output_dir, trainer, normalization: TextNormalization, card, final: dict) -> None:
    """Beside the model: the text normalization, the pipeline code, the card fields and the training curves."""
    from ..pipeline_hf_wav2vec2 import save_pipeline_code

    normalization.save_pretrained(output_dir)
    # a process without this package gets this package's pipeline through trust_remote_code
    save_pipeline_code(output_dir)
    if card is not None:
        card.save(output_dir)
    if getattr(trainer.args, "plot_curves", True):
        try:
            plot_training_curves(
                finetuning_panels(trainer.state.log_history, final, trainer.state.global_step),
                Path(output_dir) / "training_curves.png",
            )
        except ImportError as error:
            logger.warning("no training_curves.png: %s (pip install matplotlib)", error)


__all__ = ["build_card_info", "final_evaluation", "hub_pusher", "print_examples", "push_with_card", "save_run_outputs"]
