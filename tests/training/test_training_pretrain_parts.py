"""The parts of the pre-training loop on their own: typed arguments, per-update statistics, the run log."""

from __future__ import annotations

import json
import math
import tracemalloc
from types import SimpleNamespace

import pytest
import torch

from hf_wav2vec2.modules_hf_wav2vec2 import FeatureEncoder
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


def test_gradient_checkpointing_flag_names_what_is_recomputed():
    common = ["--data", "d", "--output_dir", "o"]
    assert parse_args(common).gradient_checkpointing is None
    assert parse_args([*common, "--gradient_checkpointing"]).gradient_checkpointing == "transformer"
    assert parse_args([*common, "--gradient_checkpointing", "conv"]).gradient_checkpointing == "conv"
    with pytest.raises(SystemExit) as exit_info:
        parse_args([*common, "--gradient_checkpointing", "attention"])
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match="--gradient_checkpointing must be one of all, conv, transformer"):
        PretrainArguments(data="d", output_dir="o", gradient_checkpointing=True)


def _pretraining_step(parts):
    """Saved-activation bytes of one pre-training forward and the gradients of its backward, masks fixed."""
    from conftest import NO_DROPOUT, tiny_config

    from hf_wav2vec2 import HfWav2Vec2ForPreTraining
    from hf_wav2vec2.masking_hf_wav2vec2 import compute_mask_indices, sample_negative_indices
    from hf_wav2vec2.training.pretrain import enable_activation_checkpointing

    torch.manual_seed(0)
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT, feature_grad_mult=1.0)).train()
    if parts:
        enable_activation_checkpointing(model, parts)
    x = torch.randn(2, 4000)
    frames = int(model._get_feat_extract_output_lengths(torch.tensor(4000)))
    generator = torch.Generator().manual_seed(1)
    mask = compute_mask_indices((2, frames), 0.5, 2, 2, generator=generator)
    negatives = sample_negative_indices(mask, model.config.num_negatives, generator=generator)
    kept = {}  # storage -> bytes: what the graph keeps for the backward pass, each storage once

    def keep(tensor):
        kept[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    def keep_input(module, args):  # a checkpointed layer keeps its input for the recomputation
        if module.gradient_checkpointing:
            keep(args[0])

    checkpointable = [m for m in model.modules() if hasattr(m, "gradient_checkpointing")]
    hooks = [m.register_forward_pre_hook(keep_input) for m in checkpointable]
    torch.manual_seed(2)  # the same Gumbel noise for every run
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        out = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    for hook in hooks:
        hook.remove()
    out.loss.backward()
    flags = {type(m).__name__: m.gradient_checkpointing for m in checkpointable}
    return sum(kept.values()), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}, out.loss, flags


def test_activation_checkpointing_keeps_less_and_changes_no_gradient(monkeypatch):
    # a checkpointed conv layer runs oneDNN's convolution: so does the plain model's here, for float32-exact sums
    monkeypatch.setattr(FeatureEncoder, "frame_products", False)
    plain_bytes, plain_grads, plain_loss, plain_flags = _pretraining_step(None)
    assert not any(plain_flags.values())
    kept = {}
    for parts in ("conv", "transformer", "all"):
        kept[parts], grads, loss, flags = _pretraining_step(parts)
        assert flags["ConvLayer"] == (parts != "transformer") and flags["EncoderLayer"] == (parts != "conv")
        assert kept[parts] < plain_bytes, parts  # this tiny model: conv 0.87, transformer 0.46, all 0.33 of plain
        assert torch.equal(loss, plain_loss) and grads.keys() == plain_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, plain_grads[name], rtol=1e-5, atol=1e-6, msg=f"{parts}: {name}")
    assert kept["all"] < min(kept["conv"], kept["transformer"])


def test_a_fresh_runs_training_stream_is_not_the_initial_weights_stream():
    from hf_wav2vec2.training.pretrain import training_stream_seed

    seeds = {training_stream_seed(7, rank) for rank in range(4)}
    assert len(seeds) == 4 and 7 not in seeds  # one stream per rank, none replaying the weights' seed 7
    assert training_stream_seed(7, 0) == training_stream_seed(7, 0)  # reproducible
    torch.manual_seed(7)
    weights_first = torch.rand(8)
    torch.manual_seed(training_stream_seed(7, 0))
    assert not torch.equal(torch.rand(8), weights_first)
