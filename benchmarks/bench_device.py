"""Ours against transformers on one device (a GPU when there is one): fp32, bf16 autocast, compiled layers, MFU.

    python benchmarks/bench_device.py [--device cuda] [--size base] [--seconds 5] [--batch 8] [--repeats 5]
                                      [--precisions fp32 bf16] [--compile inductor] [--json F] [--out F.md]

Issue 15's GPU checks in one short run: the same random BASE weights loaded by both packages, the same inputs,
the same span masks and distractors handed to both pre-training models; every time the median of ``--repeats``
interleaved rounds after a warm-up (two with ``--compile``, so that compilation is not timed), with the device
synchronized around each call. For each precision (``bf16``: the model stays fp32 under ``torch.autocast``, as
training runs it):

* CTC forward (no grad) and pre-training step (forward + backward) of each package, and ours with its conv and
  transformer layers compiled (``--compile BACKEND``, the pre-training script's ``--compile``);
* model-FLOPs utilization: analytic FLOPs (``bench_all.forward_flops``; a step counted as 3 forwards) over time,
  against a matmul probe of the same precision on the same device, and against ``--peak_tflops`` when given (a
  card's datasheet number);
* whether SDPA's flash kernel takes our attention (run with only that backend allowed);
* peak device memory per step (CUDA).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_all import SIZES, forward_flops, load_ctc, save_checkpoints

PRECISIONS = ("fp32", "bf16")


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, precision: str, n: int) -> float:
    """Best of 5 timed n^3 matmuls (after a warm-up) in the precision autocast would use, in TFLOP/s."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def autocast(device: str, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def interleaved(fns: dict, device: str, repeats: int, warmups: int) -> dict[str, dict]:
    """Median seconds (and peak CUDA memory in MiB) of each function, in rounds that run all of them."""
    for _ in range(warmups):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    memory: dict[str, float] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
            if device.startswith("cuda"):
                memory[name] = torch.cuda.max_memory_allocated() / 2**20
    return {
        name: {"seconds": statistics.median(t), "runs": t, "peak_mib": memory.get(name)} for name, t in times.items()
    }


def build_models(size: str, device: str, compile_backend: str | None) -> dict:
    """transformers' and our CTC and pre-training models from the same random weights (``bench_all``'s
    checkpoints), on ``device``; with ``compile_backend`` also a second copy of our pre-training model with
    compiled layers."""
    import transformers

    from hf_wav2vec2 import HfWav2Vec2ForPreTraining
    from hf_wav2vec2.training.pretrain import compile_layers

    with tempfile.TemporaryDirectory() as tmp:
        root = save_checkpoints(Path(tmp), size)
        models = {
            "pretrain transformers": transformers.Wav2Vec2ForPreTraining.from_pretrained(root / "pretrain"),
            "pretrain ours": HfWav2Vec2ForPreTraining.from_pretrained(root / "pretrain"),
            "ctc transformers": load_ctc(root, "transformers"),
            "ctc ours": load_ctc(root, "hf-wav2vec2"),
        }
        if compile_backend:
            compiled = HfWav2Vec2ForPreTraining.from_pretrained(root / "pretrain")
            compile_layers(compiled, compile_backend)
            models["pretrain ours compiled"] = compiled
    for name, model in models.items():
        model.to(device).train(name.startswith("pretrain"))
    return models


def flash_attention_takes_ours(model, x, device: str) -> bool | str:
    """Whether our CTC forward under bf16 autocast (flash wants 16-bit inputs on a GPU) runs with SDPA restricted to
    its flash kernel; else the reason, one line."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        with torch.no_grad(), autocast(device, "bf16"), sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            model(x)
        return True
    except RuntimeError as error:
        return str(error).strip().splitlines()[0][:200]


def measure(args) -> dict:
    import hf_wav2vec2

    device = args.device
    models = build_models(args.size, device, args.compile)
    samples = int(args.seconds * 16000)
    x = torch.randn(args.batch, samples, generator=torch.Generator().manual_seed(1)).to(device)
    ours = models["pretrain ours"]
    frames = int(ours._get_feat_extract_output_lengths(samples))
    generator = torch.Generator(device=device).manual_seed(2)
    mask = hf_wav2vec2.compute_mask_indices((args.batch, frames), 0.65, 10, 2, device=device, generator=generator)
    negatives = hf_wav2vec2.sample_negative_indices(mask, ours.config.num_negatives, generator=generator)
    flops = forward_flops(ours.config, samples)
    forward_flop, step_flop = args.batch * flops["total"], 3 * args.batch * flops["total"]

    def forward(model):
        def run():
            with torch.no_grad(), autocast(device, precision):
                model(x)

        return run

    def step(model):
        def run():
            model.zero_grad(set_to_none=True)
            torch.manual_seed(3)  # the same Gumbel noise in every call: ours and ours compiled give the same loss
            with autocast(device, precision):
                loss = model(x, mask_time_indices=mask, sampled_negative_indices=negatives).loss
            loss.backward()
            losses[name_of[id(model)]] = loss.item()

        return run

    name_of = {id(model): name for name, model in models.items()}
    results = {"device": device_name(device), "size": args.size, "batch": args.batch, "seconds": args.seconds}
    results["torch"], results["flops"] = torch.__version__, flops
    results["flash_attention"] = flash_attention_takes_ours(models["ctc ours"], x, device)
    warmups = 2 if args.compile else 1
    for precision in args.precisions:
        losses: dict[str, float] = {}
        peak = matmul_peak(device, precision, args.probe_size)
        fns = {name: forward(m) for name, m in models.items() if name.startswith("ctc")}
        fns.update({name: step(m) for name, m in models.items() if name.startswith("pretrain")})
        timed = interleaved(fns, device, args.repeats, warmups)
        for name, row in timed.items():
            row["tflops"] = (step_flop if name.startswith("pretrain") else forward_flop) / row["seconds"] / 1e12
            row["of_probe"] = row["tflops"] / peak
            if args.peak_tflops:
                row["of_datasheet"] = row["tflops"] / args.peak_tflops
            row["loss"] = losses.get(name)
        results[precision] = {"probe_tflops": peak, "rows": timed}
    return results


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({torch.get_num_threads()} threads)"


def report(results: dict) -> list[str]:
    lines = [
        f"# Ours against transformers on {results['device']}",
        "",
        f"{results['size']} model, batch {results['batch']} x {results['seconds']:g} s, torch {results['torch']}; "
        f"SDPA's flash kernel takes our attention: {results['flash_attention']}.",
        "",
        "| precision | what | transformers (s) | ours (s) | speed-up | ours compiled (s) | speed-up | "
        "ours TFLOP/s | of the matmul probe | peak MiB transformers / ours |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for precision in PRECISIONS:
        if precision not in results:
            continue
        rows = results[precision]["rows"]
        for what in ("ctc", "pretrain"):
            theirs, ours = rows[f"{what} transformers"], rows[f"{what} ours"]
            compiled = rows.get(f"{what} ours compiled")
            best = min((r for r in (ours, compiled) if r), key=lambda r: r["seconds"])
            compiled_cells = (
                f"{compiled['seconds']:.4f} | {theirs['seconds'] / compiled['seconds']:.2f}x | " if compiled else "| | "
            )
            memory = f"{theirs['peak_mib']:.0f} / {ours['peak_mib']:.0f}" if ours["peak_mib"] else "n/a"
            lines.append(
                f"| {precision} | {'CTC forward' if what == 'ctc' else 'pre-training step'} | "
                f"{theirs['seconds']:.4f} | {ours['seconds']:.4f} | {theirs['seconds'] / ours['seconds']:.2f}x | "
                + compiled_cells
                + f"{best['tflops']:.3g} | {best['of_probe']:.0%} | {memory} |"
            )
        lines.append(f"| {precision} | matmul probe | | | | | | {results[precision]['probe_tflops']:.3g} | 100% | |")
    for precision in PRECISIONS:
        if precision in results:
            rows = results[precision]["rows"]
            losses = ", ".join(f"{name[9:]} {row['loss']:.4f}" for name, row in rows.items() if row["loss"] is not None)
            lines.append(f"\n{precision} pre-training losses: {losses}")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=SIZES, default="base")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--compile", nargs="?", const="inductor", metavar="BACKEND", help="also ours compiled")
    parser.add_argument("--probe_size", type=int, default=None, help="matmul probe n (default 8192 GPU, 2048 CPU)")
    parser.add_argument("--peak_tflops", type=float, help="the card's datasheet peak for the precision, if known")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.probe_size is None:
        args.probe_size = 8192 if args.device.startswith("cuda") else 2048
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    results = measure(args)
    text = "\n".join(report(results)) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
