"""Keyword spotting on real speech: the asterisk digit prompts (0-9, English and Spanish) with augmentation.

    python benchmarks/bench_kws_asterisk.py [--copies 30] [--test_copies 10] [--max_steps 1200] [--batch_size 8] \\
        [--workdir runs/kws_asterisk] [--output benchmarks/results/kws_asterisk_cpu.md]

Data: ``digits/0.wav`` ... ``digits/9.wav`` of Debian's ``asterisk-core-sounds-en-wav`` (``en_US_f_Allison``) and,
when installed, ``asterisk-core-sounds-es-wav`` (``es_MX_f_Allison``): one speaker, 8 kHz, CC-BY-SA 3.0. Ten
labels, the digits; a digit's English and Spanish words ("seven", "siete") share its label. Each recording is
resampled to 16 kHz with soxr and augmented into ``--copies`` training clips and ``--test_copies`` held-out clips
(other random draws of the same augmentations, never trained on):

* speed: soxr resampling by a factor in [0.85, 1.15] (tempo and pitch change together, like a faster speaker);
* gain: -12 to +6 dB;
* placement: the word at a random offset in a 1 s window (cut to it when sped down past it);
* noise: white noise at 5-30 dB SNR (relative to the word's power).

A second held-out set uses noise at 0-5 dB SNR, harder than anything in training. The model is a small wav2vec 2.0
trained from scratch (no pre-trained checkpoint is assumed to be on the machine) by
``hf_wav2vec2.training.finetune_classification`` (the code of ``examples/finetune_classification.py``) on folders
written here, then scored clip by clip through ``pipeline("audio-classification")``.

What it shows and what it does not: the pipeline, the head, the fine-tuning code and the augmentation work end to end
on real speech within minutes of CPU. With one speaker and one recording per word, a held-out clip is a new
augmentation of a recording the model was trained on: it measures robustness to speed, gain, placement and noise,
not recognition of new speakers.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

try:
    import hf_wav2vec2  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_name

SOUNDS = Path("/usr/share/asterisk/sounds")
VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison"}
PACKAGES = {"en": "asterisk-core-sounds-en-wav", "es": "asterisk-core-sounds-es-wav"}
DIGITS = [str(d) for d in range(10)]
RATE = 16000
WINDOW_SECONDS = 1.0
# A small wav2vec 2.0 on the real conv geometry (20 ms frames, 49 per clip), sized for a few minutes of a shared
# 2-core CPU: on raw audio the conv stack is most of the cost, so it has 32 channels and BASE's group norm (one
# norm layer, not seven).
MODEL = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    conv_dim=(32,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    feat_extract_norm="group",
    conv_bias=False,
    do_stable_layer_norm=True,
    hidden_dropout=0.1,
    attention_dropout=0.1,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,
    final_dropout=0.0,
    classifier_proj_size=32,
)


def source_clips() -> tuple[dict[tuple[str, str], np.ndarray], list[str]]:
    """{(language, digit): 16 kHz mono float32} for every installed voice, and the missing packages."""
    from hf_wav2vec2.audio import load_audio

    clips, missing = {}, []
    for language, voice in VOICES.items():
        folder = SOUNDS / voice / "digits"
        if not all((folder / f"{d}.wav").is_file() for d in DIGITS):
            missing.append(PACKAGES[language])
            continue
        for digit in DIGITS:
            clips[(language, digit)] = load_audio(str(folder / f"{digit}.wav"), RATE)
    if "en" not in {language for language, _ in clips}:
        raise SystemExit(
            f"bench_kws_asterisk: {SOUNDS / VOICES['en'] / 'digits'} is missing: apt-get install "
            f"{PACKAGES['en']} (scripts/setup.sh does)"
        )
    return clips, missing


def augment(clip: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = (5.0, 30.0)) -> np.ndarray:
    """One augmented copy of a 16 kHz word: speed, gain, placement in a fixed window, white noise."""
    import soxr

    speed = rng.uniform(0.85, 1.15)
    # read as if recorded at RATE * speed and played at RATE: `speed` times faster (pitch moves with it)
    word = soxr.resample(clip, RATE * speed, RATE).astype(np.float32)
    word *= 10 ** (rng.uniform(-12.0, 6.0) / 20)
    window = int(WINDOW_SECONDS * RATE)
    word = word[:window]
    out = np.zeros(window, dtype=np.float32)
    start = int(rng.integers(0, window - word.shape[0] + 1))
    out[start : start + word.shape[0]] = word
    power = float(np.mean(word**2)) + 1e-12
    noise_power = power / 10 ** (rng.uniform(*snr_db) / 10)
    out += rng.normal(0.0, np.sqrt(noise_power), window).astype(np.float32)
    return np.clip(out, -1.0, 1.0)


def write_split(folder: Path, clips: dict, copies: int, seed: int, snr_db=(5.0, 30.0)) -> list[tuple[str, str]]:
    """Augmented copies as WAV files with metadata.csv (file,label,language); returns [(path, label)]."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, written = ["file,label,language"], []
    for (language, digit), clip in sorted(clips.items()):
        for i in range(copies):
            name = f"{language}_{digit}_{i:03d}.wav"
            sf.write(folder / name, augment(clip, rng, snr_db), RATE, subtype="PCM_16")
            rows.append(f"{name},{digit},{language}")
            written.append((str(folder / name), digit))
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return written


def score(classifier, items: list[tuple[str, str]]) -> dict:
    """Accuracy overall, per language (from the file name) and the confusions, clip by clip through the pipeline."""
    correct, per_language, confusions = 0, {}, {}
    for path, label in items:
        predicted = classifier(path, top_k=1)[0]["label"]
        language = Path(path).name.split("_")[0]
        hits = per_language.setdefault(language, [0, 0])
        hits[1] += 1
        if predicted == label:
            correct += 1
            hits[0] += 1
        else:
            confusions[f"{label}->{predicted}"] = confusions.get(f"{label}->{predicted}", 0) + 1
    return {
        "accuracy": correct / len(items),
        "clips": len(items),
        "per_language": {k: v[0] / v[1] for k, v in sorted(per_language.items())},
        "confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])),
    }


def train(workdir: Path, args) -> tuple[dict, float]:
    from hf_wav2vec2 import HfWav2Vec2Config
    from hf_wav2vec2.training.finetune_classification import main as finetune

    HfWav2Vec2Config(**MODEL).save_pretrained(workdir / "config")
    argv = [
        "--from_scratch",
        "--config_name",
        str(workdir / "config"),
        "--train_dir",
        str(workdir / "train"),
        "--eval_dir",
        str(workdir / "test"),
        "--output_dir",
        str(workdir / "model"),
        "--max_steps",
        str(args.max_steps),
        "--learning_rate",
        str(args.learning_rate),
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--warmup_steps",
        "0.1",
        "--mask_time_prob",
        "0.05",
        "--mask_time_length",
        "5",
        "--logging_steps",
        "100",
        "--save_strategy",
        "no",
        "--seed",
        str(args.seed),
        "--dataloader_pin_memory",
        "false",
        "--disable_tqdm",
        "true",
    ]
    started, cpu_started = time.perf_counter(), time.process_time()
    metrics = finetune(argv)
    return metrics, (time.perf_counter() - started, time.process_time() - cpu_started)


def report(args, clips, missing, results, metrics, seconds, parameters) -> str:
    """The Markdown report; ``seconds`` is (wall-clock, CPU) time of the training."""
    languages = sorted({language for language, _ in clips})
    root = Path(__file__).resolve().parents[1]
    where = os.path.relpath(Path.cwd(), root) if Path.cwd().resolve().is_relative_to(root) else str(Path.cwd())
    command = ("" if where == "." else f"cd {where} && ") + shlex.join(["python", sys.argv[0], *sys.argv[1:]])
    import torch
    import transformers

    lines = [
        "# Keyword spotting on the asterisk digit prompts (CPU)",
        "",
        "Command:",
        "",
        f"    {command.strip()}",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), transformers {transformers.__version__}.",
        "",
        f"Data: digits 0-9 of the asterisk prompts in {', '.join(languages)} "
        f"({', '.join(VOICES[lang] for lang in languages)}"
        f"; one speaker, 8 kHz, resampled to 16 kHz with soxr): {len(clips)} recordings, 10 labels (a digit's words "
        "in both languages share its label)." + (f" Not installed: {', '.join(missing)}." if missing else ""),
        f"Training: {args.copies} augmented copies per recording ({args.copies * len(clips)} clips of "
        f"{WINDOW_SECONDS} s: speed 0.85-1.15 via soxr, gain -12..+6 dB, random placement, white noise 5-30 dB SNR). "
        f"Held out: {args.test_copies} other copies per recording, same augmentations (seed {args.seed + 1}), and "
        f"{args.test_copies} per recording at 0-5 dB SNR (noisier than anything trained on, seed {args.seed + 2}).",
        "",
        f"Model: wav2vec 2.0 from scratch, {parameters / 1e6:.2f}M parameters ({MODEL['num_hidden_layers']} x "
        f"{MODEL['hidden_size']} pre-LN transformer, seven {MODEL['conv_dim'][0]}-channel conv layers "
        f"({MODEL['feat_extract_norm']} norm), mean pooling over frames, {MODEL['classifier_proj_size']}-d "
        "projection, 10-way classifier); "
        f"{args.max_steps} updates of batch {args.batch_size}, AdamW lr {args.learning_rate} with 10 % warm-up "
        f"and linear decay, by `hf_wav2vec2.training.finetune_classification` (examples/finetune_classification.py); "
        f"training took {seconds[0] / 60:.1f} min wall-clock, {seconds[1] / 60:.1f} min of CPU time on a machine "
        f"shared with other jobs (load average {os.getloadavg()[0]:.1f} at the end); mean train loss "
        f"{metrics.get('train_loss', float('nan')):.3f}, evaluation accuracy (Trainer, whole clips) "
        f"{100 * metrics.get('eval_accuracy', float('nan')):.1f}%.",
        "",
        'Scored clip by clip through `pipeline("audio-classification", model=...)` (this package\'s pipeline: files '
        "decoded with soundfile, resampled with soxr):",
        "",
        "| held-out set | clips | accuracy | " + " | ".join(f"accuracy ({lang})" for lang in languages) + " |",
        "|---|---|---|" + "---|" * len(languages),
    ]
    for name, result in results.items():
        per = " | ".join(f"{100 * result['per_language'].get(lang, float('nan')):.1f}%" for lang in languages)
        lines.append(f"| {name} | {result['clips']} | {100 * result['accuracy']:.1f}% | {per} |")
    lines += ["", "Most frequent confusions (label->predicted: count): "]
    for name, result in results.items():
        shown = ", ".join(f"{k}: {v}" for k, v in list(result["confusions"].items())[:8]) or "none"
        lines.append(f"* {name}: {shown}")
    lines += [
        "",
        "Chance is 10 %. One speaker and one recording per word: a held-out clip is a new augmentation of a "
        "recording seen in training, so this measures robustness to speed, gain, placement and noise, not "
        "recognition of unseen speakers (that needs a corpus such as Speech Commands and a pre-trained encoder).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=30, help="augmented training copies per recording")
    parser.add_argument("--test_copies", type=int, default=10, help="held-out copies per recording and set")
    parser.add_argument("--max_steps", type=int, default=1200)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="runs/kws_asterisk")
    parser.add_argument("--output", default=None, help="write the Markdown report here")
    args = parser.parse_args(argv)

    from transformers import pipeline

    workdir = Path(args.workdir)
    clips, missing = source_clips()
    write_split(workdir / "train", clips, args.copies, args.seed)
    held_out = {
        "augmented (5-30 dB SNR)": write_split(workdir / "test", clips, args.test_copies, args.seed + 1),
        "noisier (0-5 dB SNR)": write_split(
            workdir / "test_noisy", clips, args.test_copies, args.seed + 2, snr_db=(0.0, 5.0)
        ),
    }
    metrics, seconds = train(workdir, args)
    classifier = pipeline("audio-classification", model=str(workdir / "model"))
    parameters = sum(p.numel() for p in classifier.model.parameters())
    results = {name: score(classifier, items) for name, items in held_out.items()}
    (workdir / "kws_results.json").write_text(json.dumps({"train": metrics, "held_out": results}, indent=2))
    text = report(args, clips, missing, results, metrics, seconds, parameters)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
