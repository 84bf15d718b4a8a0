"""Many files at once: ``hf-wav2vec2 transcribe FILES --batch_size N`` (files grouped by length) against transformers'
ASR pipeline with the same batch size (files in the order given), same random weights, same run.

    python benchmarks/bench_batch_files.py [--size base] [--files 64] [--batch_size 8] [--repeats 2]
                                           [--out benchmarks/results/batch_files_cpu.md]

The files are the held-out asterisk prompts (real lengths, about 1-14 s; `asterisk-core-sounds-en-wav`), resampled to
16 kHz WAV once. Four ways through them, interleaved, with a 2048^3 fp32 matmul probe in every round:
transformers' pipeline at ``--batch_size``; ours at ``--batch_size`` grouped by length (the default); ours at
``--batch_size`` in the files' order (grouping switched off, to show what it buys); ours one file at a time.
Reported: files per second, the speed-up over transformers, the share of the computed audio that was padding.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_all import SIZES, interleaved, load_average, machine_line, med, save_checkpoints  # noqa: E402
from common import publish_report  # noqa: E402

SR = 16000


def export_clips(directory: Path, count: int) -> list[str]:
    """The first ``count`` held-out asterisk prompts as 16 kHz WAV files, in the split's (alphabetical) order."""
    import csv

    from hf_wav2vec2.audio import load_audio
    from hf_wav2vec2.corpora import asterisk

    if not asterisk.is_installed():
        sys.exit(f"bench_batch_files: {asterisk.DEBIAN_PACKAGE} is not installed (bash scripts/setup.sh)")
    split = asterisk.export_split("test", directory / "split")
    with (split / "metadata.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:count]
    files = []
    for row in rows:
        files.append(str(directory / Path(row["file"]).with_suffix(".wav").name))
        sf.write(files[-1], load_audio(str(split / row["file"]), SR), SR)
    return files


def padding_share(seconds: list[float], groups: list[list[int]]) -> float:
    """Of the audio a batched forward computes (each batch padded to its longest file), the share that is padding."""
    computed = sum(max(seconds[i] for i in group) * len(group) for group in groups)
    return 1 - sum(seconds) / computed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="base")
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "batch_files_cpu.md")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    """Interleaved rounds of transformers' pipeline and three ways of ours over the same files: their times, the
    matmul probes, each way's transcripts, the files' durations and the two batchings."""
    import transformers

    from hf_wav2vec2 import transcribe as ours
    from hf_wav2vec2.transcribe import asr_pipeline, length_groups, transcribe_files

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    root = save_checkpoints(tmp, args.size)
    files = export_clips(tmp, args.files)
    seconds = [sf.info(f).duration for f in files]
    processor = transformers.Wav2Vec2Processor.from_pretrained(root / "ctc")
    # transformers' class itself: with hf_wav2vec2 imported, pipeline() would route a wav2vec2 model to ours
    theirs = transformers.AutomaticSpeechRecognitionPipeline(
        model=transformers.Wav2Vec2ForCTC.from_pretrained(root / "ctc").eval(),
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )
    pipe = asr_pipeline(str(root / "ctc"))
    in_order = [list(range(i, min(i + args.batch_size, len(files)))) for i in range(0, len(files), args.batch_size)]
    texts = {}

    def run_ours(name, batch_size, groups=None):
        def fn():
            original = ours.length_groups
            if groups is not None:  # grouping off: the batches in the files' order
                ours.length_groups = lambda durations, size: groups
            try:
                texts[name] = [r.text for r in transcribe_files(pipe, files, batch_size=batch_size)]
            finally:
                ours.length_groups = original

        return fn

    def run_theirs():
        texts["transformers"] = [out["text"] for out in theirs(files, batch_size=args.batch_size)]

    fns = {
        "transformers": run_theirs,
        "hf-wav2vec2 grouped by length": run_ours("grouped", args.batch_size),
        "hf-wav2vec2 in the files' order": run_ours("in order", args.batch_size, in_order),
        "hf-wav2vec2 one at a time": run_ours("one", 1),
    }
    times, peaks = interleaved(fns, args.repeats)
    grouped = length_groups(seconds, args.batch_size)
    return dict(times=times, peaks=peaks, texts=texts, seconds=seconds, in_order=in_order, grouped=grouped)


def report_lines(args: argparse.Namespace, argv: list[str] | None, m: dict, load_before: str) -> list[str]:
    """The markdown report of one :func:`measure`."""
    times, peaks, seconds = m["times"], m["peaks"], m["seconds"]
    same = {name: m["texts"][name] == m["texts"]["grouped"] for name in m["texts"]}
    share = {
        "transformers": padding_share(seconds, m["in_order"]),
        "hf-wav2vec2 grouped by length": padding_share(seconds, m["grouped"]),
        "hf-wav2vec2 in the files' order": padding_share(seconds, m["in_order"]),
        "hf-wav2vec2 one at a time": 0.0,
    }
    base, n = med(times["transformers"]), len(seconds)
    lines = [
        f"# Many files: batches grouped by length ({args.size.upper()} size, random weights, CPU)",
        "",
        f"Machine: {machine_line()}; load average before {load_before}, after {load_average()}.",
        f"Command: `python benchmarks/bench_batch_files.py {' '.join(sys.argv[1:] if argv is None else argv)}`.",
        f"{n} held-out asterisk prompts, {sum(seconds):.0f} s of audio ({min(seconds):.1f}-"
        f"{max(seconds):.1f} s each), batch size {args.batch_size}; medians of {args.repeats} interleaved rounds "
        f"after a warm-up. fp32 matmul probe: best {max(peaks):.0f}, median {med(peaks):.0f} GFLOP/s.",
        "",
        "| way | median (s) | files / s | vs transformers | padding computed | runs (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in times.items():
        t = med(runs)
        lines.append(
            f"| {name} | {t:.2f} | {n / t:.1f} | {base / t:.2f}x | {100 * share[name]:.0f} % | "
            f"{', '.join(f'{r:.2f}' for r in runs)} |"
        )
    lines += [
        "",
        "Transcripts equal to the grouped run's: "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in same.items())
        + " (a BASE-style model takes no "
        "attention mask, so padding is audio it hears: a batch can change a transcript, a reason to pad less).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(args, Path(tmp))
    return publish_report(report_lines(args, argv, measured, load_before), args.out)


if __name__ == "__main__":
    print(main())
