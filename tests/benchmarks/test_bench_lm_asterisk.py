"""benchmarks/bench_lm_asterisk.py end to end on a tiny random model and a fake three-clip-per-split asterisk workdir:
the report has the greedy and LM rows, the LM rows equal what evaluate_model's own LM decoding gives, and a test
sentence in the LM text is refused before anything is loaded."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest
import soundfile as sf
from test_pipeline_hf_wav2vec2 import SR, noise, requires_flashlight, save_model_dir

from hf_wav2vec2 import evaluate_model
from hf_wav2vec2.transcribe import ModelLoadError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_lm_asterisk

TEXTS = {
    "train": ["THE CAT", "A HAT ON THE CAT", "NOT THE HAT"],
    "test": ["THE HAT", "A CAT ON", "TEN"],
    # pretrain = train + the rest; an unreliable prompt has an empty transcript
    "pretrain": ["THE CAT", "A HAT ON THE CAT", "NOT THE HAT", "THAT CAT", "NO HAT ON", ""],
}


def write_split(folder: Path, texts: list[str], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(texts):
        name = f"{folder.name}-{i}.wav" if folder.name != "pretrain" or i >= 3 else f"train-{i}.wav"
        sf.write(folder / name, noise(0.6 + 0.2 * i, seed=seed + i), SR, subtype="PCM_16")
        rows.append({"file": name, "text": text, "duration": f"{0.6 + 0.2 * i:.3f}"})
    with (folder / "metadata.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "text", "duration"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def workdir(tmp_path):
    for seed, (name, texts) in enumerate(TEXTS.items()):
        write_split(tmp_path / "data" / name, texts, seed=10 * seed)
    return tmp_path / "data"


@requires_flashlight
def test_benchmark_end_to_end_on_a_tiny_model(workdir, tmp_path):
    model = save_model_dir(tmp_path / "model")
    out = tmp_path / "report.md"
    summary = bench_lm_asterisk.main(
        [
            "--model",
            str(model),
            "--data",
            str(workdir),
            "--order",
            "2",
            "--alphas",
            "0.5",
            "--betas",
            "1",
            "--beam_size",
            "8",
            "--lm_dir",
            str(tmp_path / "lm"),
            "--output",
            str(out),
        ]
    )
    report = out.read_text()
    assert report == summary["report"]
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    assert "greedy" in rows and "LM (weights chosen on train)" in rows
    for name in ("greedy", "LM (weights chosen on train)"):
        wer = float(re.findall(r"\| ([0-9.]+)% \|", rows[name])[0])
        assert 0.0 <= wer < float("inf")
    assert "Test sentences in the LM text: none" in report and "bench_lm_asterisk.py --model" in report
    # LM text: every transcribed non-test prompt once (train's three are also in pretrain), upper case like VOCAB
    lm_lines = (tmp_path / "lm" / "lm.txt").read_text().splitlines()
    assert lm_lines == ["THE CAT", "A HAT ON THE CAT", "NOT THE HAT", "THAT CAT", "NO HAT ON"]
    assert summary["lm"]["sentences"] == 5 and summary["lm"]["case"] == "upper"
    assert summary["oov_rate"] == pytest.approx(1 / 6)  # TEN, of 6 test words
    # the beam search on the kept logits is exactly evaluate_model's own LM decoding of the same clips
    test_dir = workdir / "test"
    files = [str(test_dir / f"test-{i}.wav") for i in range(3)]
    direct = evaluate_model(model, files, TEXTS["test"], lm=summary["lm"]["arpa"], alpha=0.5, beta=1.0, beam_size=8)
    assert summary["chosen"]["test"]["hypotheses"] == direct.hypotheses
    assert summary["chosen"]["test"]["wer"] == direct.wer and summary["chosen"]["test"]["cer"] == direct.cer
    # and the greedy row is what evaluate_model (hf-wav2vec2 evaluate without --lm) reports
    stock = evaluate_model(model, files, TEXTS["test"])
    assert summary["greedy"]["test"]["hypotheses"] == stock.hypotheses and summary["greedy"]["test"]["wer"] == stock.wer


def test_a_test_sentence_in_the_lm_text_is_refused_before_loading_anything(workdir, tmp_path):
    write_split(workdir / "pretrain", [*TEXTS["pretrain"], "a  cat on"], seed=50)  # a test sentence, other case
    argv = ["--model", str(tmp_path / "no-such-model"), "--data", str(workdir), "--alphas", "0.5", "--betas", "1"]
    with pytest.raises(bench_lm_asterisk.LMTextLeak, match="1 of the 3 test sentences are in the LM text"):
        bench_lm_asterisk.main(argv)
    # with --lm_text train the pretrain prompts are not used: the check passes and the missing model is next
    # (or, without flashlight-text, the install hint)
    with pytest.raises((ModelLoadError, SystemExit), match="no-such-model|flashlight"):
        bench_lm_asterisk.main([*argv, "--lm_text", "train"])
