"""benchmarks/ctc_plateau.py on a fake three-clip asterisk workdir: every encoder/input pair runs, the BiLSTM
reference memorizes the three clips' labels (its CTC loss falls), and bad argument combinations are refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from test_bench_lm_asterisk import TEXTS, write_split
from test_pipeline_hf_wav2vec2 import save_model_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import ctc_plateau


@pytest.fixture(autouse=True)
def keep_thread_count():
    threads = torch.get_num_threads()  # main() sets --threads for the whole process
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data(tmp_path):
    for seed, name in enumerate(("train", "test")):
        write_split(tmp_path / "data" / name, TEXTS[name], seed=10 * seed)
    return tmp_path / "data"


def test_bilstm_reference_learns_the_labels(data):
    history = ctc_plateau.main(
        [
            "--data",
            str(data),
            "--inputs",
            "logmel",
            "--encoder",
            "bilstm",
            "--steps",
            "60",
            "--eval_every",
            "20",
            "--batch_size",
            "3",
            "--lr",
            "3e-3",
        ]
    )
    assert [h["update"] for h in history] == [20, 40, 60]
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert all(0.0 <= h["train_cer"] <= 1.0 for h in history)  # a hypothesis is never longer than the frames


def test_minutes_budget_stops_training_and_evaluates_the_last_update(data, tmp_path):
    record = tmp_path / "baseline.jsonl"
    argv = ["--data", str(data), "--inputs", "logmel", "--encoder", "bilstm", "--batch_size", "3"]
    argv += ["--steps", "100000", "--eval_every", "1000", "--minutes", "0.0001", "--json", str(record)]
    history = ctc_plateau.main(argv)
    assert len(history) == 1 and 1 <= history[0]["update"] < 1000  # stopped by the clock, not by --steps
    ctc_plateau.main(argv)
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["args"]["minutes"] == 0.0001  # appended, never overwritten


@pytest.mark.parametrize(
    "inputs,encoder,extra",
    [
        ("conv", "pretrained", []),
        ("conv", "random", ["--pre_ln"]),
        ("logmel", "random", ["--post_ln"]),
    ],
)
def test_wav2vec2_encoders_run_on_fixed_inputs(data, tmp_path, inputs, encoder, extra):
    model = save_model_dir(tmp_path / "model")  # a fine-tuned model: its head is replaced (another vocabulary)
    history = ctc_plateau.main(
        [
            "--data",
            str(data),
            "--inputs",
            inputs,
            "--encoder",
            encoder,
            "--model",
            str(model),
            "--steps",
            "4",
            "--eval_every",
            "2",
            *extra,
        ]
    )
    assert len(history) == 2 and all(h["loss"] > 0 for h in history)


@pytest.mark.parametrize(
    "argv",
    [
        ["--encoder", "pretrained"],  # no --model
        ["--inputs", "conv", "--encoder", "bilstm"],  # conv inputs need a model
        ["--encoder", "bilstm", "--inputs", "logmel", "--pre_ln"],  # LN order only for random wav2vec 2.0
        ["--encoder", "bilstm", "--inputs", "logmel", "--minutes", "0"],
    ],
)
def test_bad_argument_combinations_are_refused(data, argv):
    with pytest.raises(SystemExit):
        ctc_plateau.parse_args(["--data", str(data), *argv])
