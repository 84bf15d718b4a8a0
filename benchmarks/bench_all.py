"""Performance of this package against transformers, side by side in one run: the issue-15 table.

    python benchmarks/bench_all.py [--size base|tiny] [--repeats 3] [--skip onnx,pretrain,...]
                                   [--out benchmarks/results/performance_cpu.md]

Same weights (a random BASE transformers ``Wav2Vec2ForCTC`` / ``Wav2Vec2ForPreTraining`` saved once and loaded by
both packages), same inputs, same threads. Every timing is the median of ``--repeats`` interleaved rounds (each
round runs every contender once, after a warm-up), and each round also times a 2048^3 fp32 matmul, so the matmul
peak is measured under the same load as the models: on a shared machine the ratios and the fraction of the peak
are the numbers to read, not the seconds. Sections (``--skip`` any):

* ``forward``: CTC forward, 10 s, batch 1 and 8: transformers fp32, ours fp32, ours ONNX Runtime fp32 and int8
  (``onnx``: exported once, export time reported; int8 as ``export-onnx --int8`` writes it, conv stack fp32, and as
  ``--int8_conv_stack`` does), with the fraction of the matmul peak (analytic FLOPs);
* ``pretrain``: ForPreTraining step (forward + backward), 4 x 5 s, each package in its own subprocess (run twice,
  alternating) for its peak RSS; same masks and distractors count; also (``--pretrain-variants``) each with its
  activation checkpointing, with the BASE recipe's dropouts, and with glibc's mmap threshold fixed at 1 MiB (what
  ``hf-wav2vec2 pretrain`` does), and ours with its conv activations kept and with its other products;
* ``finetune``: ForCTC step with the conv stack frozen, 4 x 5 s;
* ``import``: ``import hf_wav2vec2`` and ``hf-wav2vec2 --help`` against ``from transformers import Wav2Vec2ForCTC``;
* ``scaling``: our forward at 10, 30, 60 s (time, time per audio second, peak RSS, attention's FLOP share), then
  5 min through the pipeline in chunks of 10, 20 and 40 s; plotted to ``performance_cpu.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_all_report import (
    BASE_DROPOUTS,
    CHECKPOINTED,
    CONV_KEPT,
    DNN_CONVS,
    MKL,
    MMAP,
    PRETRAIN_IMPLS,
    PRETRAIN_VARIANTS,
    WITH_DROPOUT,
    accuracy_lines,
    forward_table,
    machine_line,
    plot,
    scaling_tables,
    training_tables,
)

HERE = Path(__file__).resolve().parent
SR = 16000
SIZES = {
    "base": {},
    "tiny": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        # three conv layers of BASE's total stride (320 samples a frame), not its seven: the ONNX export's symbolic
        # lengths, nested once per layer, took 128 s of the smoke test's run with seven, 31 s with three
        conv_dim=(32,) * 3,
        conv_kernel=(10, 8, 8),
        conv_stride=(5, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        codevector_dim=32,
        proj_codevector_dim=32,
        num_codevectors_per_group=16,
    ),
}
NO_DROPOUT = dict(
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    feat_quantizer_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
)
SECTIONS = ("forward", "onnx", "accuracy", "pretrain", "finetune", "import", "scaling")


# ----------------------------------------------------------------------------------------------- measuring


PROBES: list[dict[str, float]] = []  # every matmul probe of the run, both backends (the report's machine lines)


def matmul_rate(n: int = 2048) -> float:
    """GFLOP/s of an n^3 float32 product, the better of torch's matmul (MKL's sgemm on x86) and oneDNN's 1x1
    convolution (``hf_wav2vec2.linear_hf_wav2vec2``: AVX-512 on AMD processors, where MKL keeps to AVX2); both go
    to ``PROBES``."""
    from hf_wav2vec2.linear_hf_wav2vec2 import onednn_linear

    a, b = torch.randn(n, n), torch.randn(n, n)
    rates = {}
    # oneDNN gets b as a contiguous (N, K) weight: a transposed view would be reordered on every call (-25 %)
    for name, product in (("mkl", torch.matmul), ("onednn", onednn_linear)):
        product(a, b)
        start = time.perf_counter()
        product(a, b)
        rates[name] = 2 * n**3 / (time.perf_counter() - start) / 1e9
    PROBES.append(rates)
    return max(rates.values())


def interleaved(fns: dict, repeats: int, n: int = 2048) -> tuple[dict, list[float]]:
    """Warm every function up, then ``repeats`` rounds of all of them plus a matmul probe: (times, peaks GFLOP/s)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    peaks = []
    with torch.no_grad() if all(getattr(f, "no_grad", True) for f in fns.values()) else torch.enable_grad():
        for fn in fns.values():
            fn()
        for _ in range(repeats):
            peaks.append(matmul_rate(n))
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times, peaks


@contextlib.contextmanager
def variant_settings(name: str):
    """Runs an implementation named ``..., MKL products`` with ``Linear.onednn = False`` and one named ``...,
    oneDNN convolutions`` with ``FeatureEncoder.frame_products = False``; others as they are."""
    from hf_wav2vec2.linear_hf_wav2vec2 import Linear
    from hf_wav2vec2.modules_hf_wav2vec2 import FeatureEncoder

    saved = Linear.onednn, FeatureEncoder.frame_products
    Linear.onednn = False if name.endswith(MKL) else saved[0]
    FeatureEncoder.frame_products = False if name.endswith(DNN_CONVS) else saved[1]
    try:
        yield
    finally:
        Linear.onednn, FeatureEncoder.frame_products = saved


def with_variant(name: str, fn):
    def run():
        with variant_settings(name):
            return fn()

    run.no_grad = getattr(fn, "no_grad", True)
    return run


def variant_rows() -> list[str]:
    """The suffixes of ours's second row, run where it differs from ours: MKL's products where oneDNN's are the
    default, else the conv stack on oneDNN's convolutions (where products of frame views are the default)."""
    from hf_wav2vec2.linear_hf_wav2vec2 import onednn_default

    return [MKL] if onednn_default() else [DNN_CONVS]


def med(values: list[float]) -> float:
    return statistics.median(values)


def forward_flops(config, samples: int) -> dict[str, float]:
    """Multiply-adds x 2 of one CTC forward on ``samples`` samples: conv stack, transformer, attention part."""
    conv, length, channels = 0.0, samples, 1
    for dim, kernel, stride in zip(config.conv_dim, config.conv_kernel, config.conv_stride, strict=True):
        length = (length - kernel) // stride + 1
        conv += 2.0 * length * dim * channels * kernel
        channels = dim
    frames, d, ff = length, config.hidden_size, config.intermediate_size
    pos = 2.0 * frames * d * (d // config.num_conv_pos_embedding_groups) * config.num_conv_pos_embeddings
    dense = 2.0 * frames * (4 * d * d + 2 * d * ff) * config.num_hidden_layers + 2.0 * frames * channels * d
    attention = 2.0 * 2 * frames * frames * d * config.num_hidden_layers
    return {
        "conv": conv,
        "transformer": dense + pos + attention,
        "attention": attention,
        "total": conv + dense + pos + attention,
        "frames": frames,
    }


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space, which exec replaces; ru_maxrss
    does not do here: a worker started by a 10 GB parent reported the parent's 10 GB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ----------------------------------------------------------------------------------------------- models


def save_checkpoints(root: Path, size: str) -> Path:
    """Random transformers ForPreTraining weights (seed 0) saved once; the CTC models load them with a new head."""
    import transformers

    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        **SIZES[size], **NO_DROPOUT, vocab_size=32, mask_time_prob=0.65, attn_implementation="sdpa"
    )
    transformers.Wav2Vec2ForPreTraining(config).save_pretrained(root / "pretrain")
    torch.manual_seed(0)
    ctc = transformers.Wav2Vec2ForCTC(config).eval()
    ctc.save_pretrained(root / "ctc")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    vocab.update({c: 5 + i for i, c in enumerate("ETAONIHSRDLUMWCFGYPBVK'XJQZ")})
    (root / "ctc" / "vocab.json").write_text(json.dumps(vocab))
    transformers.Wav2Vec2Processor(
        transformers.Wav2Vec2FeatureExtractor(return_attention_mask=False),
        transformers.Wav2Vec2CTCTokenizer(str(root / "ctc" / "vocab.json")),
    ).save_pretrained(root / "ctc")
    return root


def load_ctc(root: Path, impl: str):
    if impl == "transformers":
        import transformers

        return transformers.Wav2Vec2ForCTC.from_pretrained(root / "ctc").eval()
    from hf_wav2vec2 import HfWav2Vec2ForCTC

    return HfWav2Vec2ForCTC.from_pretrained(root / "ctc").eval()


# ----------------------------------------------------------------------------------------------- sections


def bench_forward(root: Path, args, results: dict) -> None:
    models = {impl: load_ctc(root, impl) for impl in ("transformers", "hf-wav2vec2")}
    for suffix in variant_rows():
        models[f"hf-wav2vec2{suffix}"] = models["hf-wav2vec2"]  # the same model, run by variant_settings
    if "onnx" not in args.skip:
        from hf_wav2vec2.onnx import OnnxWav2Vec2ForCTC, export_onnx, quantize_onnx

        start = time.perf_counter()
        export_onnx(root / "ctc", root / "onnx", quantize="int8")
        results["onnx_export_s"] = time.perf_counter() - start
        # the faster, less accurate graph of export-onnx --int8 --int8_conv_stack: the same export, requantized
        quantize_onnx(root / "onnx" / "model.onnx", root / "onnx" / "model_int8_conv_stack.onnx", conv_stack=True)
        models["ONNX Runtime fp32"] = OnnxWav2Vec2ForCTC.from_pretrained(root / "onnx")
        models["ONNX Runtime int8"] = OnnxWav2Vec2ForCTC.from_pretrained(root / "onnx", int8=True)
        models[INT8_CONV_STACK] = OnnxWav2Vec2ForCTC.from_pretrained(
            root / "onnx", file_name="model_int8_conv_stack.onnx"
        )
    config = models["hf-wav2vec2"].config
    samples = int(args.seconds * SR)
    rows, all_peaks = [], []
    for batch in args.batches:
        x = torch.randn(batch, samples, generator=torch.Generator().manual_seed(batch))
        fns = {name: with_variant(name, lambda m=m, x=x: m(x).logits) for name, m in models.items()}
        with torch.no_grad():
            reference = models["transformers"](x).logits
            agreement = {
                name: float((fn().argmax(-1) == reference.argmax(-1)).float().mean()) for name, fn in fns.items()
            }
        times, peaks = interleaved(fns, args.repeats)
        all_peaks += peaks
        flops = forward_flops(config, samples)["total"] * batch
        for name in models:
            t = med(times[name])
            # against the best matmul rate of the run: a probe caught in a load spike would flatter the models
            rows.append(
                dict(
                    batch=batch,
                    impl=name,
                    seconds=t,
                    runs=times[name],
                    peak=max(peaks),
                    ratio=med(times["transformers"]) / t,
                    utilization=flops / t / 1e9 / max(peaks),
                    argmax_agreement=agreement[name],
                )
            )
    results["forward"] = rows
    results["forward_peaks"] = all_peaks
    results["clip_seconds"] = args.seconds


INT8_CONV_STACK = "ONNX Runtime int8, conv stack too"


def pretrain_worker(root: Path, impl: str, batch: int, seconds: float, steps: int) -> dict:
    """In a subprocess: ForPreTraining steps; the process's peak RSS is that package's."""
    from hf_wav2vec2.training.allocator import set_mmap_threshold

    # before anything large is allocated, as the pretrain CLI does; 0 leaves glibc's dynamic threshold
    allocator = set_mmap_threshold(1024 if impl.endswith(MMAP) else 0)
    import hf_wav2vec2
    from hf_wav2vec2.training.pretrain import enable_activation_checkpointing

    theirs = impl.startswith("transformers")
    if theirs:
        import transformers

        cls = transformers.Wav2Vec2ForPreTraining
    else:
        cls = hf_wav2vec2.HfWav2Vec2ForPreTraining
    dropouts = BASE_DROPOUTS if impl.endswith(WITH_DROPOUT) else {}
    model = cls.from_pretrained(root / "pretrain", **dropouts)  # config fields: from_pretrained passes them on
    if impl.endswith(CHECKPOINTED):  # each package's leanest setting: theirs every layer, ours the transformer's
        # (our conv stack keeps only its conv outputs already; "all" recomputes the convs for 0.3 % less allocated)
        model.activation_checkpointing_enable() if theirs else enable_activation_checkpointing(model, "transformer")
    if impl.endswith(CONV_KEPT):
        model.wav2vec2.feature_extractor.recompute_activations = False
    model.train()
    torch.manual_seed(0)  # the same masks, distractors and Gumbel noise with and without checkpointing
    x = torch.randn(batch, int(seconds * SR), generator=torch.Generator().manual_seed(0))
    frames = int(model._get_feat_extract_output_lengths(x.shape[1]))
    mask = hf_wav2vec2.compute_mask_indices((batch, frames), 0.65, 10, 2)
    kwargs = {}
    if theirs:  # transformers' model takes its masks and distractors; ours samples them itself
        kwargs = dict(mask_time_indices=mask, sampled_negative_indices=hf_wav2vec2.sample_negative_indices(mask, 100))
    times, losses = [], []
    with variant_settings(impl):  # the MKL-products and oneDNN-convolutions rows
        for _ in range(steps + 1):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            out = model(x, **kwargs)
            out.loss.backward()
            times.append(time.perf_counter() - start)
            losses.append(float(out.loss))
    return {"times": times[1:], "peak_rss_mb": peak_rss_mb(), "loss": losses[-1], "allocator": allocator}


def run_worker(root: Path, worker: str, argv: list[str]) -> dict:
    """Run this script as ``--worker WORKER`` in a fresh process (its own peak RSS); returns its JSON answer."""
    command = [sys.executable, __file__, *argv, "--worker", worker, "--root", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {worker} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pretrain_rows(chosen: set[str]) -> list[str]:
    """The pre-training rows a run measures: both packages plain, then those of the ``chosen`` variants
    (``PRETRAIN_VARIANTS`` names); of ours's two other-products rows only the one that differs from ours here."""
    products = tuple(f"hf-wav2vec2{suffix}" for suffix in variant_rows())
    rows = []
    for impl in PRETRAIN_IMPLS:
        if impl.endswith((MKL, DNN_CONVS)) and impl not in products:
            continue
        if impl in ("transformers", "hf-wav2vec2") or any(impl.endswith(PRETRAIN_VARIANTS[name]) for name in chosen):
            rows.append(impl)
    return rows


def bench_pretrain(root: Path, args, results: dict) -> None:
    impls = pretrain_rows(args.pretrain_variants)
    runs: dict[str, list[dict]] = {impl: [] for impl in impls}
    peaks = []
    for _ in range(args.pretrain_rounds):  # alternate whole processes, so the load falls on both alike
        for impl in runs:
            peaks.append(matmul_rate())
            runs[impl].append(run_worker(root, impl, args.argv))
    results["pretrain"] = {
        impl: {
            "seconds": med([t for r in rs for t in r["times"]]),
            "runs": [t for r in rs for t in r["times"]],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "loss": rs[-1]["loss"],
            "allocator": rs[-1]["allocator"],
        }
        for impl, rs in runs.items()
    }
    results["pretrain_peak"] = med(peaks)


def bench_finetune(root: Path, args, results: dict) -> None:
    models = {impl: load_ctc(root, impl) for impl in ("transformers", "hf-wav2vec2")}
    for suffix in variant_rows():
        models[f"hf-wav2vec2{suffix}"] = models["hf-wav2vec2"]
    x = torch.randn(args.train_batch, int(args.train_seconds * SR), generator=torch.Generator().manual_seed(1))
    labels = torch.randint(
        5, 32, (args.train_batch, int(args.train_seconds * 12)), generator=torch.Generator().manual_seed(2)
    )

    def step(model):
        def run():
            model.zero_grad(set_to_none=True)
            model(x, labels=labels).loss.backward()

        run.no_grad = False
        return run

    for model in models.values():
        model.train()
        model.freeze_feature_encoder()
    times, peaks = interleaved({name: with_variant(name, step(m)) for name, m in models.items()}, args.repeats)
    results["finetune"] = {name: {"seconds": med(t), "runs": t} for name, t in times.items()}
    results["finetune_peak"] = med(peaks)


def bench_import(args, results: dict) -> None:
    commands = {
        "import hf_wav2vec2": [sys.executable, "-c", "import hf_wav2vec2"],
        "from transformers import Wav2Vec2ForCTC": [sys.executable, "-c", "from transformers import Wav2Vec2ForCTC"],
        "hf-wav2vec2 --help": [sys.executable, "-m", "hf_wav2vec2.cli", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(max(2, args.repeats)):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    results["import"] = {name: {"seconds": med(t), "runs": t} for name, t in times.items()}


def transcribe_clips(model, processor, clips: list) -> tuple[list[str], list]:
    texts, frames = [], []
    for audio in clips:
        inputs = processor.feature_extractor(audio, sampling_rate=SR, return_tensors="pt")
        with torch.no_grad():
            ids = model(inputs.input_values).logits.argmax(-1)
        frames.append(ids[0])
        texts.append(processor.tokenizer.batch_decode(ids)[0])
    return texts, frames


def bench_accuracy(root: Path, args, results: dict) -> None:
    """int8 against fp32 on held-out real speech (the asterisk test split): the CER of each against the references
    (meaningful for a fine-tuned ``--ctc-model``), of int8 against fp32, and the frames whose token changed."""
    import csv

    import jiwer

    from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2Processor
    from hf_wav2vec2.audio import load_audio
    from hf_wav2vec2.corpora import asterisk
    from hf_wav2vec2.onnx import onnx_model

    if not asterisk.is_installed():
        results["accuracy"] = {"skipped": f"{asterisk.DEBIAN_PACKAGE} is not installed"}
        return
    split = asterisk.export_split("test", root / "test")
    with (split / "metadata.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["text"]][: args.accuracy_clips]
    clips = [load_audio(str(split / r["file"]), SR) for r in rows]
    references = [r["text"].upper() for r in rows]
    source = args.ctc_model or root / "ctc"
    processor = HfWav2Vec2Processor.from_pretrained(source)
    fp32 = HfWav2Vec2ForCTC.from_pretrained(source).eval()
    int8 = onnx_model(root / "onnx" if args.ctc_model is None and (root / "onnx").is_dir() else fp32, int8=True)
    hyp32, frames32 = transcribe_clips(fp32, processor, clips)
    hyp8, frames8 = transcribe_clips(int8, processor, clips)
    changed = sum(int((a != b).sum()) for a, b in zip(frames32, frames8, strict=True))
    changed /= sum(a.numel() for a in frames32)

    def cer(truth, hypothesis):
        pairs = [(t, h) for t, h in zip(truth, hypothesis, strict=True) if t.strip()]
        return 100 * jiwer.cer([t for t, _ in pairs], [h.upper() or " " for _, h in pairs]) if pairs else float("nan")

    results["accuracy"] = dict(
        model=str(args.ctc_model or f"random {args.size.upper()} weights (transformers')"),
        clips=len(clips),
        audio_seconds=sum(len(c) for c in clips) / SR,
        cer_fp32=cer(references, hyp32),
        cer_int8=cer(references, hyp8),
        cer_int8_vs_fp32=cer([h.upper() for h in hyp32], hyp8),
        frames_changed=100 * changed,
    )


def bench_scaling(root: Path, args, results: dict) -> None:
    results.update(run_worker(root, "scaling", args.argv))


def scaling_worker(root: Path, args) -> dict:
    """In a subprocess: our forward at growing lengths (the peak RSS after each is that length's, as lengths only
    grow), then long audio through the pipeline in chunks (the peak can only be read as "so far" there)."""
    from hf_wav2vec2 import HfWav2Vec2AutomaticSpeechRecognitionPipeline, HfWav2Vec2Processor

    model = load_ctc(root, "hf-wav2vec2")
    rows = []
    for seconds in args.scaling_seconds:
        x = torch.randn(1, int(seconds * SR), generator=torch.Generator().manual_seed(3))
        times, peaks = interleaved({"ours": lambda x=x: model(x).logits}, max(1, args.repeats - 1))
        flops = forward_flops(model.config, x.shape[1])
        rows.append(
            dict(
                seconds=seconds,
                time=med(times["ours"]),
                per_second=med(times["ours"]) / seconds,
                peak_rss_mb=peak_rss_mb(),
                attention_share=flops["attention"] / flops["total"],
                utilization=flops["total"] / med(times["ours"]) / 1e9 / max(peaks),
            )
        )
    processor = HfWav2Vec2Processor.from_pretrained(root / "ctc")
    pipe = HfWav2Vec2AutomaticSpeechRecognitionPipeline(
        model=model, tokenizer=processor.tokenizer, feature_extractor=processor.feature_extractor
    )
    audio = torch.randn(int(args.long_seconds * SR), generator=torch.Generator().manual_seed(4)).numpy() * 0.1
    chunked = []
    for chunk in args.chunk_lengths:
        start = time.perf_counter()
        pipe(audio, chunk_length_s=chunk, stride_length_s=chunk / 6)
        elapsed = time.perf_counter() - start
        chunked.append(dict(chunk=chunk, time=elapsed, rtf=elapsed / args.long_seconds, peak_rss_mb=peak_rss_mb()))
    return {"scaling": rows, "chunked": chunked}


# ----------------------------------------------------------------------------------------------- report


def write_report(results: dict, args, out: Path) -> str:
    """The whole report (header, each section's tables, the plot) written to ``out``, the results beside it as JSON."""
    lines = [
        f"# Performance on CPU: hf-wav2vec2 against transformers ({args.size.upper()} size, random weights)",
        "",
        f"Machine: {machine_line()}.",
        f"Load average (1/5/15 min) before: {results['load_before']}, after: "
        f"{load_average()}; wall time of the whole run {time.perf_counter() - results['start']:.0f} s.",
        f"Command: `python benchmarks/bench_all.py {' '.join(sys.argv[1:])}`. Medians of {args.repeats} "
        "interleaved rounds after a warm-up; each round also times a 2048^3 fp32 matmul (MKL and oneDNN, the better "
        "counts), and the fractions of "
        "the peak below are of the best matmul rate seen in the section (analytic FLOPs).",
        "",
    ]
    if results.get("forward_peaks"):
        peaks = results["forward_peaks"]
        lines += [
            f"fp32 matmul rate during the forward rounds: best {max(peaks):.0f} GFLOP/s, median "
            f"{med(peaks):.0f}, worst {min(peaks):.0f} (2 threads).",
            "",
        ]
    if PROBES:
        lines += [
            "Median of every probe of the run, by backend: "
            + ", ".join(f"{name} {med([p[name] for p in PROBES]):.0f} GFLOP/s" for name in PROBES[0])
            + " (torch's matmul is MKL's sgemm; oneDNN runs it as a 1x1 convolution; the peak is the better one).",
            "",
        ]
    if "forward" in results:
        lines += forward_table(results) + [""]
    lines += accuracy_lines(results)
    lines += training_tables(results)
    if "scaling" in results:
        lines += scaling_tables(results)
        plot(results, out.with_suffix(".png"))
        lines += [f"![time against audio length]({out.with_suffix('.png').name})", ""]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    return text


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="base")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length of the forward section")
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--train-seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=1, help="timed pre-training steps per worker process")
    parser.add_argument("--pretrain-rounds", type=int, default=2)
    parser.add_argument(
        "--pretrain-variants",
        type=lambda s: set(filter(None, s.split(","))),
        default=set(PRETRAIN_VARIANTS),
        help=f"pre-training rows beside the plain two (default all): {','.join(PRETRAIN_VARIANTS)}",
    )
    parser.add_argument("--scaling-seconds", type=lambda s: [float(x) for x in s.split(",")], default=[10, 30, 60])
    parser.add_argument("--long-seconds", type=float, default=300.0)
    parser.add_argument("--chunk-lengths", type=lambda s: [float(x) for x in s.split(",")], default=[10, 20, 40])
    parser.add_argument("--ctc-model", type=Path, help="fine-tuned CTC model (with processor) for the int8 CER check")
    parser.add_argument("--accuracy-clips", type=int, default=1000, help="at most this many test clips")
    parser.add_argument("--skip", type=lambda s: set(filter(None, s.split(","))), default=set())
    parser.add_argument("--out", type=Path, default=HERE / "results" / "performance_cpu.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # passed on to the worker processes
    unknown = args.skip - set(SECTIONS)
    if unknown:
        parser.error(f"--skip: unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    unknown = args.pretrain_variants - set(PRETRAIN_VARIANTS)
    if unknown:
        parser.error(
            f"--pretrain-variants: unknown variant(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(PRETRAIN_VARIANTS)}"
        )
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.worker == "scaling":
        print(json.dumps(scaling_worker(args.root, args)))
        return
    if args.worker:
        print(json.dumps(pretrain_worker(args.root, args.worker, args.train_batch, args.train_seconds, args.steps)))
        return
    results = {"start": time.perf_counter(), "load_before": load_average(), "size": args.size}
    results["onednn_default"] = variant_rows() == [MKL]
    with tempfile.TemporaryDirectory() as tmp:
        root = save_checkpoints(Path(tmp), args.size)
        for name, section in (
            ("forward", bench_forward),
            ("accuracy", bench_accuracy),
            ("pretrain", bench_pretrain),
            ("finetune", bench_finetune),
            ("scaling", bench_scaling),
        ):
            if name not in args.skip:
                print(f"[bench_all] {name} ...", file=sys.stderr, flush=True)
                section(root, args, results)
        if "import" not in args.skip:
            bench_import(args, results)
    print(write_report(results, args, args.out))


if __name__ == "__main__":
    main()
