"""Live transcription on this machine: latency from a sample's arrival to its committed text, and real-time factor.

    python benchmarks/bench_streaming.py [--seconds 30] [--sizes tiny base] [--geometries 4:1 2:0.5]
                                         [--block 0.1] [--out benchmarks/results/streaming_cpu.md]

For each model size (random weights: the package's ``tiny`` preset and BASE, 32-character vocabulary; the weights
do not change the cost) and each chunk geometry (``chunk_s:context_s``):

* **paced run**: the audio (a synthetic signal) arrives in ``--block`` pieces at real-time pace (the script sleeps
  until a block's last sample would have been recorded, as a microphone delivers it) and each block is pushed
  into :class:`hf_wav2vec2.StreamingTranscriber` at once. A sample's *committed latency* is the wall time from its
  arrival until a ``push`` returns with ``committed_s`` past it; its *partial latency* is the same for the first
  partial decoding that covers it (``partial_s`` = 0.5). Reported over every block's last sample: median, 95th
  percentile and maximum;
* **throughput run**: the same audio pushed as fast as possible, without partial decoding: RTF = wall time / audio
  duration (what the chunks cost; the chunks overlap by twice the context, so it is higher than the offline
  pipeline's for the same model).

By construction a sample waits for the rest of its chunk: between ``context_s`` (right context) and ``chunk_s -
context_s`` seconds, plus one forward pass; the table shows what this CPU adds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import publish_report, save_random_ctc_model, synthetic_audio
from machine import cpu_name

import hf_wav2vec2
from hf_wav2vec2.streaming import StreamingTranscriber

SR = 16000


def save_model(directory: Path, size: str) -> Path:
    from hf_wav2vec2.training.pretrain import TINY_PRESET

    return save_random_ctc_model(directory, dict(TINY_PRESET) if size == "tiny" else {})


def paced_run(transcriber: StreamingTranscriber, audio: np.ndarray, block: int) -> dict:
    """Push blocks at real-time pace; latencies (s) of every block's last sample."""
    ends = [min(end, audio.shape[0]) for end in range(block, audio.shape[0] + block, block)]
    committed_at: list[float] = []  # wall time at which ends[i] was committed, in order
    partial_at: list[float] = []
    behind = 0.0
    start = time.perf_counter()
    previous = 0
    for end in ends:
        pause = start + end / SR - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        behind = max(behind, -pause)
        update = transcriber.push(audio[previous:end])
        previous = end
        now = time.perf_counter()
        if transcriber._since_partial == 0:  # a partial decoding of everything received ran in this push
            partial_at += [now] * (ends.index(end) + 1 - len(partial_at))
        while len(committed_at) < len(ends) and ends[len(committed_at)] <= round(update.committed_s * SR):
            committed_at.append(now)
    final = transcriber.finish()
    now = time.perf_counter()
    committed_at += [now] * (len(ends) - len(committed_at))
    partial_at += [now] * (len(ends) - len(partial_at))
    assert round(final.committed_s * SR) == audio.shape[0]
    arrivals = [start + end / SR for end in ends]
    return {
        "committed": [c - a for c, a in zip(committed_at, arrivals, strict=True)],
        "partial": [min(p, c) - a for p, c, a in zip(partial_at, committed_at, arrivals, strict=True)],
        "behind": behind,
    }


def throughput(transcriber: StreamingTranscriber, audio: np.ndarray, block: int) -> float:
    start = time.perf_counter()
    for i in range(0, audio.shape[0], block):
        transcriber.push(audio[i : i + block])
    transcriber.finish()
    return (time.perf_counter() - start) / (audio.shape[0] / SR)


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.2f} / {p95:.2f} / {ordered[-1]:.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "base"])
    parser.add_argument("--geometries", nargs="+", default=["4:1", "2:0.5"], help="chunk_s:context_s")
    parser.add_argument("--block", type=float, default=0.1, help="seconds of audio per push (a microphone buffer)")
    parser.add_argument("--out", default="benchmarks/results/streaming_cpu.md")
    args = parser.parse_args(argv)
    audio = synthetic_audio(args.seconds)
    block = round(args.block * SR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            directory = save_model(Path(tmp) / size, size)
            for geometry in args.geometries:
                chunk_s, context_s = (float(x) for x in geometry.split(":"))
                transcriber = StreamingTranscriber(str(directory), chunk_s=chunk_s, context_s=context_s, partial_s=0.5)
                transcriber.push(audio[: 2 * SR])  # warm-up
                transcriber.reset()
                paced = paced_run(transcriber, audio, block)
                fast = StreamingTranscriber(transcriber.pipe, chunk_s=chunk_s, context_s=context_s, partial_s=None)
                rtf = throughput(fast, audio, block)
                row = (
                    size,
                    chunk_s,
                    context_s,
                    summary(paced["committed"]),
                    summary(paced["partial"]),
                    rtf,
                    paced["behind"],
                )
                print(row, flush=True)
                rows.append(row)
    load = os.getloadavg()
    lines = [
        f"# Live transcription, CPU ({args.seconds:g} s of 16 kHz audio pushed in {args.block:g} s blocks)",
        "",
        (
            f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} "
            f"threads), hf-wav2vec2 {hf_wav2vec2.__version__}; load average at the end {load[0]:.1f} / {load[1]:.1f} / "
            f"{load[2]:.1f} (1 / 5 / 15 min; this run's own threads count, so about {torch.get_num_threads()} means "
            "nothing else ran)."
        ),
        f"Command: `python {' '.join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])])}`",
        "",
        (
            "Latency: seconds from a sample's arrival (real-time pace) to the push that returns its committed text, or"
            " the first partial text covering it (partial_s = 0.5), as median / 95th percentile / max over every"
            " block's"
            " last sample. RTF: the same audio pushed as fast as possible, wall time / audio duration. Behind: how far"
            " the paced run fell behind real time at worst (0 = kept up)."
        ),
        "",
        "| model | chunk_s | context_s | committed latency (s) | partial latency (s) | RTF | behind (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r[0]} | {r[1]:g} | {r[2]:g} | {r[3]} | {r[4]} | {r[5]:.3f} | {r[6]:.2f} |" for r in rows]
    lines += [
        "",
        (
            "By construction the committed latency lies between context_s and chunk_s - context_s plus one "
            "forward pass of a chunk; a model whose RTF approaches 1 falls behind and the latency grows."
        ),
    ]
    publish_report(lines, args.out)


if __name__ == "__main__":
    main()
