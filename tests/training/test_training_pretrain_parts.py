"""The parts of the pre-training loop on their own: typed arguments, per-update statistics, the run log."""

from __future__ import annotations

import json
import math
import tracemalloc
from types import SimpleNamespace

import pytest
import torch

from hf_wav2vec2.training.health import TrainingHealth
from hf_wav2vec2.training.pretrain import UpdateStats
from hf_wav2vec2.training.pretrain_args import PretrainArguments, parse_args
from hf_wav2vec2.training.pretrain_log import RunLog, read_log


def test_arguments_built_in_python_equal_the_parsed_command_line():
    parsed = parse_args(
        [
            "--data",
            "d",
            "--output_dir",
            "o",
            "--preset",
            "tiny",
            "--max_updates",
            "50",
            "--adam_betas",
            "0.9",
            "0.99",
            "--config_overrides",
            "layerdrop=0.1",
            "--pad",
        ]
    )
    built = PretrainArguments(
        data="d",
        output_dir="o",
        preset="tiny",
        max_updates=50,
        adam_betas=(0.9, 0.99),
        config_overrides=["layerdrop=0.1"],
        pad=True,
    )
    assert parsed == built
    assert built.learning_rate == 1e-3  # the preset's default peak lr
    assert PretrainArguments(data="d", output_dir="o").config_overrides == []  # not shared between instances
    with pytest.raises(ValueError, match=r"--gumbel_anneal_fraction must be in \(0, 1\]"):
        PretrainArguments(data="d", output_dir="o", gumbel_anneal_fraction=0.0)
    with pytest.raises(ValueError, match="--resume continues the run .* give one of them"):
        PretrainArguments(data="d", output_dir="o", resume=True, overwrite_output_dir=True)


def _output(n, loss, correct_fraction=0.5):
    return SimpleNamespace(
        num_masked=torch.tensor(n),
        loss=torch.tensor(loss),
        contrastive_loss=torch.tensor(loss),
        diversity_loss=torch.tensor(0.2),
        feature_penalty=torch.tensor(0.1),
        code_perplexity=torch.tensor(30.0),
        prob_perplexity=torch.tensor(40.0),
        accuracy=torch.tensor(correct_fraction),
    )


def test_update_statistics_average_per_masked_frame_and_drop_non_finite_losses():
    stats = UpdateStats()
    stats.add(_output(10, 20.0, 0.5), torch.tensor([1600, 1600]))
    stats.add(_output(30, 30.0, 0.1), torch.tensor([3200]))
    metrics = stats.metrics()
    assert metrics["loss"] == pytest.approx(50.0 / 40) and metrics["accuracy"] == pytest.approx(8.0 / 40)
    assert metrics["diversity_loss"] == pytest.approx(0.2) and metrics["num_masked"] == 40
    assert stats.samples == 6400 and not stats.skipped
    stats.add(_output(5, float("nan")), torch.tensor([800]))
    assert stats.skipped and math.isfinite(stats.metrics()["loss"])  # the NaN is counted, not summed
    assert UpdateStats().skipped  # nothing masked: nothing to learn from


def _record(update):
    return {
        "update": update,
        "epoch": 0,
        "loss": 2.0,
        "contrastive_loss": 2.0,
        "diversity_loss": 0.1,
        "feature_penalty": 0.0,
        "code_perplexity": 50.0,
        "prob_perplexity": 60.0,
        "accuracy": 0.3,
        "num_masked": 100,
        "gumbel_temperature": 1.0,
        "lr": 1e-4,
        "grad_norm": 1.0,
        "audio_seconds_per_second": 10.0,
        "skipped_updates": 0,
        "elapsed": float(update),
    }


def test_run_log_memory_does_not_grow_with_the_number_of_updates(tmp_path):
    # The loop used to append every update's record to a list of which it read only the last element.
    path = tmp_path / "train_log.jsonl"
    with RunLog(path, TrainingHealth(128), log_every=1000) as log:
        for update in range(1, 501):
            log.update(_record(update), skipped=False, emit=False)
        tracemalloc.start()
        start, _ = tracemalloc.get_traced_memory()
        for update in range(501, 20_501):
            log.update(_record(update), skipped=False, emit=False)
        grown = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.stop()
        log.update(_record(20_501), skipped=True, emit=False)  # a skipped update is not the last record
        log.finish()
    # 20,000 kept records of 16 fields would take megabytes
    assert grown < 100_000, grown
    assert log.last["update"] == 20_500
    assert [row["update"] for row in read_log(path)] == [1, *range(1000, 20_001, 1000), 20_500]
    assert json.loads(path.read_text().splitlines()[-1]) == _record(20_500)
    assert log._file is None  # closed by the with block
