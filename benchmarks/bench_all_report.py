"""The report of benchmarks/bench_all.py: the machine line, the markdown tables of each section and the scaling
plot, written from the results dict the sections fill (``bench_all.write_report`` puts them together)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

# the pre-training rows: both packages plain, then with each one's activation checkpointing (bench_all.pretrain_worker),
# then ours with plain autograd in the conv stack (what recomputing its norms and GELUs saves, and costs), then both
# with the BASE recipe's dropouts (the step a real pre-training run takes; the other rows have every dropout off)
CHECKPOINTED = ", checkpointed"
CONV_KEPT = ", conv activations kept"
WITH_DROPOUT = ", BASE dropouts"
MKL = ", MKL products"  # ours with linear_hf_wav2vec2.Linear.onednn = False: what the oneDNN products give
# ours with FeatureEncoder.frame_products = False: what the conv stack as products of frame views gives
DNN_CONVS = ", oneDNN convolutions"
# both with glibc's mmap threshold fixed at 1 MiB before the model exists, as `hf-wav2vec2 pretrain` runs by default
# (hf_wav2vec2.training.allocator); the other rows keep glibc's dynamic threshold
MMAP = ", 1 MiB mmap threshold"
PRETRAIN_IMPLS = (
    "transformers",
    "hf-wav2vec2",
    f"transformers{CHECKPOINTED}",
    f"hf-wav2vec2{CHECKPOINTED}",
    f"hf-wav2vec2{CONV_KEPT}",
    f"transformers{WITH_DROPOUT}",
    f"hf-wav2vec2{WITH_DROPOUT}",
    f"hf-wav2vec2{MKL}",  # each of these two where it differs from ours (bench_all.variant_rows)
    f"hf-wav2vec2{DNN_CONVS}",
    f"transformers{MMAP}",
    f"hf-wav2vec2{MMAP}",
)
# the names --pretrain-variants takes: which rows beside the two plain ones a run measures
PRETRAIN_VARIANTS = {
    "checkpointed": CHECKPOINTED,
    "conv_kept": CONV_KEPT,
    "dropouts": WITH_DROPOUT,
    "products": (MKL, DNN_CONVS),  # whichever of the two differs from ours here
    "mmap": MMAP,
}
# fairseq's BASE pre-training recipe: dropout, attention_dropout, dropout_input, dropout_features 0.1 (LayerDrop stays
# 0, so that every step does the same work)
BASE_DROPOUTS = dict(hidden_dropout=0.1, attention_dropout=0.1, feat_proj_dropout=0.1, feat_quantizer_dropout=0.1)


def machine_line() -> str:
    import transformers

    sys.path.insert(0, str(HERE))
    from machine import cpu_description

    try:
        import onnxruntime

        ort = f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        ort = ""
    return (
        f"{cpu_description()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}{ort}"
    )


def runs_text(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def forward_table(results: dict) -> list[str]:
    lines = [
        "## CTC forward (inference, no grad)",
        "",
        f"| batch x {results['clip_seconds']:g} s | implementation | median (s) | vs transformers fp32 | "
        "matmul peak used | "
        "argmax = transformers' | runs (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["forward"]:
        lines.append(
            f"| {r['batch']} | {r['impl']} | {r['seconds']:.2f} | **{r['ratio']:.2f}x** | "
            f"{100 * r['utilization']:.0f} % | {100 * r['argmax_agreement']:.1f} % | {runs_text(r['runs'])} |"
        )
    if "onnx_export_s" in results:
        lines += ["", f"ONNX export + int8 quantization of the model took {results['onnx_export_s']:.0f} s (once)."]
    return lines


def accuracy_lines(results: dict) -> list[str]:
    a = results.get("accuracy")
    if not a:
        return []
    if "skipped" in a:
        return ["## int8 accuracy on real speech", "", f"Skipped: {a['skipped']}.", ""]
    return [
        "## int8 accuracy on real speech (asterisk test split, held out)",
        "",
        f"Model: {a['model']}; {a['clips']} clips, {a['audio_seconds']:.0f} s; greedy decoding.",
        "",
        "| CER fp32 vs references | CER int8 vs references | change | CER int8 vs fp32 transcripts | "
        "frames whose token changed |",
        "|---|---|---|---|---|",
        f"| {a['cer_fp32']:.1f} % | {a['cer_int8']:.1f} % | {a['cer_int8'] - a['cer_fp32']:+.1f} points | "
        f"{a['cer_int8_vs_fp32']:.1f} % | {a['frames_changed']:.1f} % |",
        "",
    ]


def training_tables(results: dict) -> list[str]:
    lines = []
    if "pretrain" in results:
        p = results["pretrain"]
        t, o = p["transformers"], p["hf-wav2vec2"]
        lines += [
            "## Pre-training step (ForPreTraining forward + backward, fp32, each in its own process)",
            "",
            "| implementation | median step (s) | peak RSS (MB) | last loss | runs (s) |",
            "|---|---|---|---|---|",
        ]
        for name, r in p.items():
            lines.append(
                f"| {name} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} | {r['loss']:.3f} | {runs_text(r['runs'])} |"
            )
        lines += [
            "",
            f"Speed-up **{t['seconds'] / o['seconds']:.2f}x**, peak memory ratio ours / transformers "
            f"**{o['peak_rss_mb'] / t['peak_rss_mb']:.2f}**; matmul peak {results['pretrain_peak']:.0f} "
            "GFLOP/s (losses differ by design: ours samples its own masks and distractors).",
            "",
        ]
        tc, oc = p.get(f"transformers{CHECKPOINTED}"), p.get(f"hf-wav2vec2{CHECKPOINTED}")
        if tc and oc:
            lines += [
                "With activation checkpointing (transformers: its conv and transformer layers; ours: the transformer "
                "layers, `--gradient_checkpointing` alone, its conv stack recomputing norms and GELUs anyway; last "
                "loss ours "
                f"{oc['loss']:.3f}, transformers {tc['loss']:.3f}, as without): ours against transformers' plain step "
                f"**{t['seconds'] / oc['seconds']:.2f}x** at **{oc['peak_rss_mb'] / t['peak_rss_mb']:.2f}** of its "
                f"peak memory; against transformers checkpointed **{tc['seconds'] / oc['seconds']:.2f}x** at "
                f"**{oc['peak_rss_mb'] / tc['peak_rss_mb']:.2f}**.",
                "",
            ]
        kept = p.get(f"hf-wav2vec2{CONV_KEPT}")
        if kept:
            lines += [
                "Without recomputing the conv stack's norms and GELUs (`FeatureEncoder.recompute_activations = "
                f"False`, plain autograd; last loss {kept['loss']:.3f}): {kept['seconds']:.2f} s, "
                f"{kept['peak_rss_mb']:.0f} MB, so the default path runs at **{kept['seconds'] / o['seconds']:.2f}x** "
                f"its speed with **{o['peak_rss_mb'] / kept['peak_rss_mb']:.2f}** of its peak memory.",
                "",
            ]
        td, od = p.get(f"transformers{WITH_DROPOUT}"), p.get(f"hf-wav2vec2{WITH_DROPOUT}")
        if td and od:
            lines += [
                "With the BASE recipe's dropouts (hidden, attention, feature-projection and quantizer-input 0.1; "
                "LayerDrop 0; on a CPU our attention then keeps a one-byte dropout mask where sdpa's math path keeps "
                f"three float tensors of the attention's size): ours {od['seconds']:.2f} s, "
                f"{od['peak_rss_mb']:.0f} MB, transformers {td['seconds']:.2f} s, {td['peak_rss_mb']:.0f} MB: "
                f"**{td['seconds'] / od['seconds']:.2f}x** at **{od['peak_rss_mb'] / td['peak_rss_mb']:.2f}** of its "
                "peak memory.",
                "",
            ]
        tm, om = p.get(f"transformers{MMAP}"), p.get(f"hf-wav2vec2{MMAP}")
        if tm and om:
            lines += [
                "With glibc's mmap threshold fixed at 1 MiB in both processes (what `hf-wav2vec2 pretrain` does by "
                f'default, `--malloc_mmap_threshold_kb 1024`; the worker: "{om["allocator"]}"): '
                f"ours {om['seconds']:.2f} s, "
                f"{om['peak_rss_mb']:.0f} MB, transformers {tm['seconds']:.2f} s, {tm['peak_rss_mb']:.0f} MB: "
                f"**{tm['seconds'] / om['seconds']:.2f}x** at **{om['peak_rss_mb'] / tm['peak_rss_mb']:.2f}** of its "
                f"peak memory; against transformers' plain step **{t['seconds'] / om['seconds']:.2f}x** at "
                f"**{om['peak_rss_mb'] / t['peak_rss_mb']:.2f}**.",
                "",
            ]
        mkl = p.get(f"hf-wav2vec2{MKL}")
        if mkl:
            lines += [
                "Ours with every `Linear` on torch's matmul (MKL; `HF_WAV2VEC2_ONEDNN_LINEAR=0`): "
                f"{mkl['seconds']:.2f} s, "
                f"so its products on oneDNN give **{mkl['seconds'] / o['seconds']:.2f}x** here (on by default: "
                f"{results.get('onednn_default')}).",
                "",
            ]
        dnn = p.get(f"hf-wav2vec2{DNN_CONVS}")
        if dnn:
            lines += [
                "Ours with the conv stack on oneDNN's convolutions (`FeatureEncoder.frame_products = False`): "
                f"{dnn['seconds']:.2f} s, {dnn['peak_rss_mb']:.0f} MB, so its products of frame views give "
                f"**{dnn['seconds'] / o['seconds']:.2f}x** here (on by default: {not results.get('onednn_default')}).",
                "",
            ]
    if "finetune" in results:
        f = results["finetune"]
        lines += [
            "## Fine-tuning step (ForCTC, conv stack frozen, fp32)",
            "",
            "| implementation | median step (s) | runs (s) |",
            "|---|---|---|",
        ]
        for name, r in f.items():
            lines.append(f"| {name} | {r['seconds']:.2f} | {runs_text(r['runs'])} |")
        lines += ["", f"Speed-up **{f['transformers']['seconds'] / f['hf-wav2vec2']['seconds']:.2f}x**.", ""]
    if "import" in results:
        lines += ["## Start-up (fresh process)", "", "| command | median (s) | runs (s) |", "|---|---|---|"]
        for name, r in results["import"].items():
            lines.append(f"| `{name}` | {r['seconds']:.2f} | {runs_text(r['runs'])} |")
        lines.append("")
    return lines


def scaling_tables(results: dict) -> list[str]:
    lines = [
        "## Scaling with audio length (hf-wav2vec2 fp32, batch 1)",
        "",
        "| audio (s) | forward (s) | s per audio s | attention's FLOP share | matmul peak used | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["scaling"]:
        lines.append(
            f"| {r['seconds']:g} | {r['time']:.2f} | {r['per_second']:.3f} | "
            f"{100 * r['attention_share']:.0f} % | {100 * r['utilization']:.0f} % | {r['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "Long audio through the pipeline (chunked, stride = chunk / 6 each side):",
        "",
        "| chunk (s) | wall (s) | RTF | peak RSS so far (MB) |",
        "|---|---|---|---|",
    ]
    for r in results["chunked"]:
        lines.append(f"| {r['chunk']:g} | {r['time']:.1f} | {r['rtf']:.3f} | {r['peak_rss_mb']:.0f} |")
    best = min(results["chunked"], key=lambda r: r["rtf"])
    lines += ["", f"Fastest chunk length here: {best['chunk']:g} s.", ""]
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["scaling"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    seconds = [r["seconds"] for r in rows]
    ax1.plot(seconds, [r["per_second"] for r in rows], "o-", label="full-length forward")
    for r in results["chunked"]:
        ax1.axhline(r["rtf"], linestyle="--", linewidth=0.8, color="gray")
        ax1.annotate(f"{r['chunk']:g} s chunks", (seconds[0], r["rtf"]), fontsize=8)
    ax1.set_xlabel("audio length (s)")
    ax1.set_ylabel("seconds per second of audio")
    ax1.set_title("forward time per audio second")
    ax1.legend()
    ax2.plot(seconds, [100 * r["attention_share"] for r in rows], "s-")
    ax2.set_xlabel("audio length (s)")
    ax2.set_ylabel("attention's share of the FLOPs (%)")
    ax2.set_title("where the quadratic term grows")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
