"""Real-time factor of transcription: this package's pipeline against transformers' own, same weights, same run.

    python benchmarks/bench_transcribe.py [--seconds 60] [--chunk-length 20] [--stride-length 4] [--repeats 3]
                                          [--batch-size 1] [--device cpu] [--out benchmarks/results/transcribe_cpu.md]

Both pipelines transcribe the same `--seconds` of 16 kHz audio (a synthetic signal) in chunks, with random
BASE-size weights: transformers' ``Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=32))`` is saved with its tokenizer and
feature extractor, then loaded by transformers (``pipeline("automatic-speech-recognition")``, transformers' class)
and by this package (``HfWav2Vec2ForCTC`` + ``HfWav2Vec2Processor`` in this package's pipeline). The runs alternate
(ours, theirs, ours, ...) after one warm-up each, and the median is reported. RTF = wall time / audio duration
(< 1 is faster than real time). Prints a Markdown table and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers
from common import publish_report, synthetic_audio, write_character_vocab
from machine import cpu_name

import hf_wav2vec2
from hf_wav2vec2 import HfWav2Vec2AutomaticSpeechRecognitionPipeline, HfWav2Vec2ForCTC, HfWav2Vec2Processor

SR = 16000


def save_transformers_checkpoint(directory: Path) -> None:
    """Random BASE-size transformers Wav2Vec2ForCTC with a 32-token character vocabulary."""
    vocab_file = write_character_vocab(directory)
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=32)).eval()
    model.save_pretrained(directory)
    transformers.Wav2Vec2Processor(
        transformers.Wav2Vec2FeatureExtractor(return_attention_mask=False),
        transformers.Wav2Vec2CTCTokenizer(str(vocab_file)),
    ).save_pretrained(directory)


def without_special_tokens(text: str) -> str:
    """transformers' CTC pipeline decodes with skip_special_tokens=False, so a random model's <s>, </s> and <unk>
    frames appear in its text; ours never writes them. Drop them to compare the rest."""
    for token in ("<s>", "</s>", "<unk>"):
        text = text.replace(token, "")
    return " ".join(text.split())


def build_pipelines(directory: Path, device: str) -> dict:
    theirs = transformers.pipeline(
        "automatic-speech-recognition",
        model=str(directory),
        device=device,
        pipeline_class=transformers.AutomaticSpeechRecognitionPipeline,
    )
    model = HfWav2Vec2ForCTC.from_pretrained(directory).eval()
    processor = HfWav2Vec2Processor.from_pretrained(directory)
    ours = HfWav2Vec2AutomaticSpeechRecognitionPipeline(
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        device=device,
    )
    assert type(theirs.model).__module__.startswith("transformers.models.wav2vec2")
    return {"hf-wav2vec2": ours, "transformers": theirs}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chunk-length", type=float, default=20.0)
    parser.add_argument("--stride-length", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "transcribe_cpu.md"))
    args = parser.parse_args(argv)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    audio = synthetic_audio(args.seconds)
    call = dict(chunk_length_s=args.chunk_length, stride_length_s=args.stride_length, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        save_transformers_checkpoint(Path(tmp) / "base")
        pipes = build_pipelines(Path(tmp) / "base", args.device)
        texts = {name: pipe(audio, **call)["text"] for name, pipe in pipes.items()}  # warm-up
        times: dict[str, list[float]] = {name: [] for name in pipes}
        for _ in range(args.repeats):
            for name, pipe in pipes.items():
                start = time.perf_counter()
                pipe(audio, **call)
                times[name].append(time.perf_counter() - start)

    rtf = {name: statistics.median(t) / args.seconds for name, t in times.items()}
    lines = [
        f"# Transcription speed, CPU ({args.seconds:g} s of 16 kHz audio, BASE-size random weights)",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
        f"hf-wav2vec2 {hf_wav2vec2.__version__}.",
        f"Pipeline call: chunk_length_s={args.chunk_length:g}, stride_length_s={args.stride_length:g}, "
        f"batch_size={args.batch_size}; median of {args.repeats} alternating runs after a warm-up; "
        "RTF = wall time / audio duration.",
        "",
        "| pipeline | RTF | wall time (s) | runs (s) |",
        "|---|---|---|---|",
    ]
    for name in pipes:
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        lines.append(f"| {name} | {rtf[name]:.3f} | {statistics.median(times[name]):.2f} | {runs} |")
    same = texts["hf-wav2vec2"] == without_special_tokens(texts["transformers"])
    lines += [
        "",
        f"Ratio transformers / hf-wav2vec2: **{rtf['transformers'] / rtf['hf-wav2vec2']:.2f}** (> 1: ours is faster).",
        "Transcripts identical (after dropping the `<s>`/`</s>`/`<unk>` that transformers' tokenizer writes out "
        f"and ours does not): {'yes' if same else 'no'}.",
    ]
    publish_report(lines, args.out)


if __name__ == "__main__":
    main()
