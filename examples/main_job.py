#!/usr/bin/env python3
"""The main job: wav2vec 2.0's recipe end to end on real speech, on a 2-core CPU within an hour.

1. export Debian's asterisk prompts (one speaker, 8 kHz telephone speech; see ``hf_wav2vec2.corpora.asterisk``)
   into the fixed split: 10 minutes labeled, 3.5 minutes of held-out sentences, 20.8 minutes for pre-training;
2. pre-train a small wav2vec 2.0 on the pre-training audio (self-supervised, no transcripts);
3. fine-tune it with CTC on the 10-minute labeled split (the paper's "10 min labeled" setting);
4. evaluate on the held-out split: WER and CER, a few transcripts beside their references;
5. save the model and print how to use it with ``pipeline("automatic-speech-recognition", ...)``.

``--compare_scratch`` also fine-tunes the same architecture from random weights with the same labeled data and
steps, the paper's central comparison, and writes the table to ``benchmarks/results/``.

Scale up with flags: ``--preset base``, more ``--pretrain_minutes`` / ``--finetune_steps``, or a GPU (both
stages use it when torch sees one). ``--quick`` is a minutes-long smoke run (used by the tests).
"""

import argparse
import dataclasses
import json
import logging
import shutil
import sys
import time
from pathlib import Path

try:
    import hf_wav2vec2  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_wav2vec2.corpora import asterisk
from hf_wav2vec2.training import finetune, pretrain
from hf_wav2vec2.training.ctc_data import read_metadata
from hf_wav2vec2.transcribe import evaluate_model

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/main_job", help="where data, checkpoints and logs go")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "base", "large"], help="model size")
    parser.add_argument("--pretrain_minutes", type=float, default=20.0, help="wall-clock budget of pre-training")
    parser.add_argument(
        "--pretrain_updates",
        type=int,
        default=1200,
        help="pre-training updates: the LR schedule spans them, the time budget may stop earlier",
    )
    parser.add_argument(
        "--pretrain_max_tokens", type=int, default=400_000, help="audio samples per pre-training batch (400k = 25 s)"
    )
    parser.add_argument("--finetune_steps", type=int, default=3000, help="CTC fine-tuning updates")
    parser.add_argument("--finetune_lr", type=float, default=1e-3, help="peak learning rate of fine-tuning")
    parser.add_argument("--batch_size", type=int, default=4, help="fine-tuning utterances per update")
    parser.add_argument(
        "--finetune_mask_prob",
        type=float,
        default=0.05,
        help="SpecAugment time masking during fine-tuning (fairseq's 0.65 is tuned for BASE models and "
        "13k+ updates; the recorded 3000-update tiny runs used 0.05)",
    )
    parser.add_argument(
        "--compare_scratch",
        action="store_true",
        help="also fine-tune the same architecture from random weights (the paper's comparison)",
    )
    parser.add_argument(
        "--redo_pretraining",
        action="store_true",
        help="pre-train again even if WORKDIR/pretrained holds a finished run (reused by default)",
    )
    parser.add_argument("--quick", action="store_true", help="a minutes-long smoke run of every stage")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.pretrain_minutes, args.pretrain_updates, args.finetune_steps = 0.5, 10, 10
    return args


def banner(text):
    print(f"\n{'=' * 8} {text} {'=' * max(0, 70 - len(text))}", flush=True)


def export_data(workdir: Path) -> dict:
    if not asterisk.is_installed():
        sys.exit(
            f"main_job: the real-speech corpus is missing: apt-get install {asterisk.DEBIAN_PACKAGE} "
            "(scripts/setup.sh does it)"
        )
    folders = {name: workdir / "data" / name for name in ("train", "test", "pretrain")}
    if not all((folder / "metadata.csv").exists() for folder in folders.values()):
        folders = asterisk.export_all(workdir / "data")
    return folders


#: config fields that make a finished pre-training the model the preset asks for
ARCHITECTURE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "conv_dim",
    "conv_kernel",
    "conv_stride",
    "feat_extract_norm",
    "do_stable_layer_norm",
)


def architecture_changes(args, data: Path, pretrained: Path) -> list[str]:
    """The architecture fields in which ``pretrained`` differs from what ``--preset`` builds now."""
    saved = json.loads((pretrained / "config.json").read_text())
    wanted = pretrain.build_config(pretraining_arguments(args, data, pretrained))
    wanted = json.loads(json.dumps({key: getattr(wanted, key) for key in ARCHITECTURE_KEYS}))  # tuples -> lists
    return [f"{key}={saved.get(key)!r} (preset: {value!r})" for key, value in wanted.items() if saved.get(key) != value]


def pretraining_arguments(args, data: Path, output: Path) -> pretrain.PretrainArguments:
    return pretrain.PretrainArguments(
        data=str(data),
        output_dir=str(output),
        preset=args.preset,
        max_train_seconds=int(args.pretrain_minutes * 60),
        max_updates=args.pretrain_updates,
        max_tokens=args.pretrain_max_tokens,
        min_sample_size=8000,  # the prompts are short (median about 2 s): keep everything above half a second
        seed=args.seed,
        report_to="none",
    )


def run_pretraining(args, data: Path, output: Path) -> dict:
    return pretrain.training_function(pretraining_arguments(args, data, output))


def run_finetuning(args, model_args: finetune.ModelArguments, folders: dict, output: Path) -> dict:
    """CTC fine-tuning of ``model_args``'s model on the labeled split (the recorded runs' recipe)."""
    model_args = dataclasses.replace(
        model_args, mask_time_prob=args.finetune_mask_prob, mask_feature_prob=0.0, layerdrop=0.0
    )
    quick = {"max_train_samples": 32, "max_eval_samples": 16} if args.quick else {}
    data_args = finetune.DataArguments(
        train_dir=str(folders["train"]), eval_dir=str(folders["test"]), text_case="upper", **quick
    )
    training_args = finetune.CTCTrainingArguments(
        output_dir=str(output),
        max_steps=args.finetune_steps,
        learning_rate=args.finetune_lr,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=8,
        group_by_length=True,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=25,
        report_to="none",
        seed=args.seed,
        dataloader_num_workers=0,
    )
    return finetune.run(model_args, data_args, training_args)


def clip_by_clip(model_dir: Path, test_dir: Path) -> dict:
    """WER/CER as the pipeline gives them, one clip at a time. Trainer's evaluation pads batches, and the group-norm
    conv stack sees the padding, so its numbers differ a little from what users of the saved model get."""
    rows = read_metadata(test_dir / "metadata.csv")
    result = evaluate_model(str(model_dir), [row["audio"] for row in rows], [row["text"] for row in rows])
    return dict(wer=result.wer, cer=result.cer)


def pretrain_stage(args, data: Path, pretrained: Path) -> tuple[dict, float]:
    """Pre-train into ``pretrained``, or reuse the finished run there when it has the preset's architecture;
    returns its final metrics and the minutes it took."""
    t0 = time.time()
    finished = pretrained / "pretrain_results.json"
    reuse = finished.exists() and not args.redo_pretraining
    changed = architecture_changes(args, data, pretrained) if reuse else []
    if changed:
        # e.g. a run made before the tiny preset became pre-LN: fine-tuning it would not test today's recipe
        print(
            f"  the finished pre-training in {pretrained} is another architecture ({', '.join(changed)}): "
            "pre-training again"
        )
    if reuse and not changed:
        # a finished pre-training is kept (e.g. when fine-tuning is re-run with other flags)
        pretrain_metrics = json.loads(finished.read_text())
        minutes = pretrain_metrics.get("elapsed", 0.0) / 60
        print(
            f"  reusing the finished pre-training in {pretrained} ({pretrain_metrics.get('num_updates')} updates, "
            f"{minutes:.1f} min); --redo_pretraining starts it afresh"
        )
        return pretrain_metrics, minutes
    if pretrained.exists():
        shutil.rmtree(pretrained)  # an unfinished run: start over (its checkpoints were made with other flags)
    pretrain_metrics = run_pretraining(args, data, pretrained)
    return pretrain_metrics, (time.time() - t0) / 60


def result_row(metrics: dict, minutes: float, model_dir: Path, test_dir: Path) -> dict:
    """One row of the results table: Trainer's WER and CER, the minutes spent, and the pipeline's clip by clip."""
    return dict(
        wer=metrics["eval_wer"], cer=metrics["eval_cer"], minutes=minutes, pipeline=clip_by_clip(model_dir, test_dir)
    )


def finetune_stage(args, folders: dict, pretrained: Path, model_dir: Path, pretrain_minutes: float) -> dict:
    """CTC fine-tuning of the pre-trained model into ``model_dir``; its row counts pre-training's minutes too."""
    t0 = time.time()
    metrics = run_finetuning(args, finetune.ModelArguments(model_name_or_path=str(pretrained)), folders, model_dir)
    minutes = pretrain_minutes + (time.time() - t0) / 60
    return result_row(metrics, minutes, model_dir, folders["test"])


def scratch_stage(args, folders: dict, pretrained: Path, model_dir: Path) -> dict:
    """The same architecture fine-tuned from random weights with the same data and steps (``--compare_scratch``)."""
    t0 = time.time()
    scratch = run_finetuning(
        args,
        finetune.ModelArguments(from_scratch=True, config_name=str(pretrained)),
        folders,
        model_dir,
    )
    return result_row(scratch, (time.time() - t0) / 60, model_dir, folders["test"])


def print_results(pretrain_metrics: dict, results: dict) -> None:
    """Pre-training's final accuracy and code perplexity, then the markdown table of WER and CER per model."""
    print(
        f"  pre-training: {pretrain_metrics.get('num_updates', '?')} updates, final contrastive accuracy "
        f"{pretrain_metrics.get('accuracy', float('nan')):.3f}, code perplexity "
        f"{pretrain_metrics.get('code_perplexity', float('nan')):.1f}"
    )
    print("\n| model | WER | CER | WER, CER clip by clip (pipeline) | minutes |\n|---|---|---|---|---|")
    for name, row in results.items():
        clip = row["pipeline"]
        print(
            f"| {name} | {100 * row['wer']:.1f}% | {100 * row['cer']:.1f}% | {100 * clip['wer']:.1f}%, "
            f"{100 * clip['cer']:.1f}% | {row['minutes']:.1f} |"
        )


def print_usage(model_dir: Path, summary_path: Path, total_minutes: float) -> None:
    """How to use the saved model (pipeline and command line), and where the run's summary is."""
    print(f"\nSaved the fine-tuned model and processor in {model_dir.resolve()}. Use it with:\n")
    print("    import hf_wav2vec2")
    print("    from transformers import pipeline")
    print(f"    asr = pipeline('automatic-speech-recognition', model='{model_dir.resolve()}')")
    print("    print(asr('speech.wav')['text'])")
    print(f"\nor: hf-wav2vec2 transcribe speech.wav --model {model_dir.resolve()}")
    print(f"\nTotal: {total_minutes:.1f} minutes. Summary: {summary_path}")


def main(argv=None) -> dict:
    """The four stages in order; returns the summary written to ``WORKDIR/main_job_results.json``."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()

    banner("1/4 real speech: exporting the asterisk prompts (fixed split)")
    folders = export_data(workdir)
    for name, folder in folders.items():
        print(f"  {name:9s} {folder}")

    banner(f"2/4 self-supervised pre-training ({args.preset} model, up to {args.pretrain_minutes:g} min)")
    pretrained = workdir / "pretrained"
    pretrain_metrics, pretrain_minutes = pretrain_stage(args, folders["pretrain"], pretrained)

    banner(f"3/4 CTC fine-tuning on the 10-minute labeled split ({args.finetune_steps} updates)")
    model_dir = workdir / "ctc"
    results = {"pretrained": finetune_stage(args, folders, pretrained, model_dir, pretrain_minutes)}
    if args.compare_scratch:
        banner("extra: the same architecture fine-tuned from random weights (no pre-training)")
        results["scratch"] = scratch_stage(args, folders, pretrained, workdir / "ctc_scratch")

    banner("4/4 results on the held-out split (sentences never heard in fine-tuning)")
    print_results(pretrain_metrics, results)
    summary = dict(
        args=vars(args), pretrain=pretrain_metrics, results=results, total_minutes=(time.time() - started) / 60
    )
    summary_path = workdir / "main_job_results.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    print_usage(model_dir, summary_path, summary["total_minutes"])
    return summary


if __name__ == "__main__":
    main()
