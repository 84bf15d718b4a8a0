#!/usr/bin/env python
"""Adapter-only (MMS recipe) against full CTC fine-tuning for a new language, on real Spanish speech, CPU.

Both runs start from the same pre-trained pre-LN model (the main job's ``WORKDIR/pretrained``: English asterisk
prompts, tiny preset), fine-tune on the same 10 minutes of Spanish asterisk prompts (Debian
``asterisk-core-sounds-es-wav`` + ``asterisk-core-sounds-es`` for the transcripts; one speaker, 8 kHz,
CC-BY-SA 3.0) for the same number of updates, and are scored on held-out Spanish prompts:

* adapter-only: ``--adapter_lang spa`` (fresh adapters of width ``--adapter_attn_dim`` in every layer and a fresh
  CTC head; everything else frozen), which writes ``adapter.spa.safetensors``;
* full: the usual recipe (a fresh head, the whole transformer trained, the conv feature encoder frozen).

Reported: CER / WER (Trainer's evaluation on the held-out prompts), trainable parameters, seconds per update,
and the size of what each run adds to a base model (adapter file vs a whole model.safetensors). Writes a markdown
report (``--report``) with the command that produced it.

    python examples/main_job.py                       # once: its WORKDIR/pretrained is the base
    python benchmarks/bench_mms_adapters.py --base runs/main_job/pretrained --steps 600
    python benchmarks/bench_mms_adapters.py --quick   # seconds-long smoke run (random base), for the tests
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SPANISH_SOUNDS = Path("/usr/share/asterisk/sounds/es_MX_f_Allison")
SPANISH_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="pre-trained pre-LN model directory (the main job's WORKDIR/pretrained)")
    parser.add_argument("--workdir", default="runs/bench_mms_adapters", help="data and the two runs go here")
    parser.add_argument("--steps", type=int, default=600, help="fine-tuning updates of each run")
    parser.add_argument("--adapter_lr", type=float, default=1e-3, help="peak learning rate, adapter-only run")
    parser.add_argument("--full_lr", type=float, default=1e-3, help="peak learning rate, full fine-tuning run")
    parser.add_argument("--adapter_attn_dim", type=int, default=16, help="adapter width")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--train_minutes", type=float, default=10.0, help="labeled Spanish audio")
    parser.add_argument("--test_minutes", type=float, default=2.5, help="held-out Spanish audio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", default=None, help="markdown report to write (default: none)")
    parser.add_argument("--quick", action="store_true", help="random tiny base, 32 clips, 4 updates: a smoke run")
    args = parser.parse_args(argv)
    if not args.quick and not args.base:
        parser.error("--base is required (a pre-trained pre-LN model directory), or --quick")
    if args.quick:
        args.steps = 4
    return args


def export_spanish(workdir: Path, train_minutes: float, test_minutes: float) -> dict:
    from hf_wav2vec2.corpora import asterisk

    if not (SPANISH_SOUNDS.is_dir() and SPANISH_TRANSCRIPTS.is_file()):
        raise SystemExit(
            "bench_mms_adapters: needs the Spanish asterisk prompts and their transcripts: "
            "apt-get install asterisk-core-sounds-es-wav asterisk-core-sounds-es"
        )
    prompts = asterisk.load_prompts(SPANISH_SOUNDS, SPANISH_TRANSCRIPTS)
    splits = asterisk.split_prompts(prompts, train_seconds=train_minutes * 60, test_seconds=test_minutes * 60)
    folders = {name: asterisk.export_prompts(splits[name], workdir / "data" / name) for name in ("train", "test")}
    return {"folders": folders, "summary": asterisk.summarize({k: splits[k] for k in ("train", "test")})}


def quick_base(workdir: Path) -> Path:
    """A random pre-LN tiny-preset pre-training model (the smoke run has no time to pre-train)."""
    from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForPreTraining
    from hf_wav2vec2.training.pretrain import TINY_PRESET

    base = workdir / "random_base"
    HfWav2Vec2ForPreTraining(HfWav2Vec2Config(**TINY_PRESET)).save_pretrained(base)
    return base


def finetune(args, base: Path, folders: dict, output: Path, adapter: bool) -> dict:
    from hf_wav2vec2.training import finetune as ft

    argv = [
        "--model_name_or_path",
        str(base),
        "--train_dir",
        str(folders["train"]),
        "--eval_dir",
        str(folders["test"]),
        "--output_dir",
        str(output),
        "--text_case",
        "upper",
        "--max_steps",
        str(args.steps),
        "--learning_rate",
        str(args.adapter_lr if adapter else args.full_lr),
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--per_device_eval_batch_size",
        "8",
        "--group_by_length",
        "true",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--logging_steps",
        "25",
        "--report_to",
        "none",
        "--seed",
        str(args.seed),
        "--dataloader_num_workers",
        "0",
        "--plot_curves",
        "false",
        "--mask_time_prob",
        "0.05",
        "--mask_feature_prob",
        "0.0",
        "--layerdrop",
        "0.0",
        "--language",
        "es",
    ]
    if adapter:
        argv += ["--adapter_lang", "spa", "--adapter_attn_dim", str(args.adapter_attn_dim)]
    if args.quick:
        argv += ["--max_train_samples", "32", "--max_eval_samples", "8"]
    started = time.perf_counter()
    metrics = ft.main(argv)
    return dict(metrics, wall_seconds=time.perf_counter() - started)


def trainable_parameters(output: Path, adapter: bool) -> tuple[int, int]:
    """(trainable, total) parameters of the fine-tuned model as each recipe trains it."""
    from hf_wav2vec2 import HfWav2Vec2ForCTC

    model = HfWav2Vec2ForCTC.from_pretrained(output)
    total = sum(p.numel() for p in model.parameters())
    if adapter:
        return sum(p.numel() for p in model._get_adapters().values()), total
    frozen = sum(p.numel() for p in model.wav2vec2.feature_extractor.parameters())  # frozen in fine-tuning
    return total - frozen, total


def row(name: str, metrics: dict, params: tuple[int, int], saved: Path, steps: int) -> dict:
    return {
        "run": name,
        "cer": metrics["eval_cer"],
        "wer": metrics["eval_wer"],
        "trainable": params[0],
        "total": params[1],
        "seconds_per_update": metrics["train_runtime"] / steps,
        "saved_file": saved.name,
        "saved_mib": saved.stat().st_size / 2**20,
        "wall_seconds": metrics["wall_seconds"],
    }


def report(args, argv, data: dict, rows: list) -> str:
    from machine import cpu_name

    command = "python benchmarks/bench_mms_adapters.py " + " ".join(shlex.quote(a) for a in argv)
    lines = [
        "# Adapter-only (MMS) vs full CTC fine-tuning, Spanish asterisk prompts, CPU",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {cpu_name()}, torch threads as set by the environment (a shared 2-core machine).",
        "",
        f"Data: Spanish asterisk prompts (es_MX_f_Allison, 8 kHz resampled to 16 kHz), train "
        f"{data['summary']['train']['minutes']:.1f} min / {data['summary']['train']['prompts']} prompts, held-out test "
        f"{data['summary']['test']['minutes']:.1f} min / {data['summary']['test']['prompts']} prompts. "
        f"{args.steps} updates per run, batch {args.batch_size}, base `{args.base or 'random (--quick)'}`."
        + (" --quick: only the first 32 training and 8 test clips are used." if args.quick else ""),
        "",
        "| run | CER | WER | trainable params | of total | s / update | what it adds to the base | size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = 100 * r["trainable"] / r["total"]
        lines.append(
            f"| {r['run']} | {100 * r['cer']:.1f} % | {100 * r['wer']:.1f} % | {r['trainable']:,} | "
            f"{share:.1f} % | {r['seconds_per_update']:.3f} | `{r['saved_file']}` | "
            f"{r['saved_mib']:.2f} MiB |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> list:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = export_spanish(workdir, args.train_minutes, args.test_minutes)
    base = Path(args.base) if args.base else quick_base(workdir)
    rows = []
    for name, adapter in (("adapter-only", True), ("full", False)):
        output = workdir / name
        metrics = finetune(args, base, data["folders"], output, adapter)
        saved = output / ("adapter.spa.safetensors" if adapter else "model.safetensors")
        rows.append(row(name, metrics, trainable_parameters(output, adapter), saved, args.steps))
    (workdir / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = report(args, argv, data, rows)
    print(text)
    if args.report:
        Path(args.report).write_text(text, encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
