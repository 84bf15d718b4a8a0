"""End-to-end tests of the pre-training script (tiny models, a synthetic corpus, CPU only)."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hf_wav2vec2.training import pretrain
from hf_wav2vec2.training.synthetic import make_synthetic_corpus

ROOT = Path(__file__).resolve().parents[1]
MICRO = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
    "conv_dim": [32, 32, 32], "conv_kernel": [10, 3, 3], "conv_stride": [5, 2, 2],
    "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4, "codevector_dim": 32,
    "proj_codevector_dim": 16, "num_codevectors_per_group": 16, "num_codevector_groups": 2,
    "num_negatives": 10, "mask_time_length": 4, "layerdrop": 0.0,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    make_synthetic_corpus(root / "data", 16, min_seconds=0.6, max_seconds=1.2, sr=16000)
    (root / "micro.json").write_text(json.dumps(MICRO))
    return root


def _args(corpus, out, *extra, updates=20, quiet=True):
    return [
        "--data", str(corpus / "data"), "--output_dir", str(out), "--preset", "tiny",
        "--config", str(corpus / "micro.json"), "--max_updates", str(updates), "--max_tokens", "24000",
        "--max_sample_size", "6000", "--min_sample_size", "6000", "--log_every", "1", "--learning_rate", "2e-3",
        *(["--report_to", "none", "--no_plot"] if quiet else []), *extra,
    ]


def _losses(out):
    rows = [json.loads(line) for line in open(Path(out) / "train_log.jsonl")]
    return {r["update"]: r["loss"] for r in rows if "event" not in r}


def test_short_run_loss_decreases_and_saves_a_loadable_model(corpus, tmp_path):
    out = tmp_path / "run"
    result = pretrain.main(_args(corpus, out, updates=40, quiet=False))  # TensorBoard and the plot on
    losses = [v for _, v in sorted(_losses(out).items())]
    assert len(losses) == 40 and result["num_updates"] == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    print(f"per-frame loss: first 5 mean {first:.3f}, last 5 mean {last:.3f}")
    assert last < 0.8 * first
    assert (out / "training_curves.png").stat().st_size > 0
    assert any((out / "pretrain").rglob("events.out.tfevents*"))
    from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining

    HfWav2Vec2ForPreTraining.from_pretrained(out)
    ctc = HfWav2Vec2ForCTC.from_pretrained(out)
    assert ctc.config.hidden_size == 32
    assert (out / "preprocessor_config.json").exists()
    epochs = [json.loads(l) for l in open(out / "train_log.jsonl") if '"epoch_end"' in l]
    assert epochs and sorted(epochs[0]["examples_per_rank"][0]) == list(range(16))


def test_resume_is_exact(corpus, tmp_path):
    # Multi-threaded CPU reductions may sum in a different order from run to run (seen under load): exactness
    # is asked of the training state, so the kernels are pinned to one deterministic thread here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        _check_resume(corpus, tmp_path)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)


def _check_resume(corpus, tmp_path):
    extra = ("--checkpoint_every", "3", "--config_overrides", "layerdrop=0.2")
    full = tmp_path / "full"
    pretrain.main(_args(corpus, full, *extra, updates=10))
    split = tmp_path / "split"
    first = pretrain.main(_args(corpus, split, *extra, "--stop_after", "6", updates=10))
    assert first["num_updates"] == 6 and Path(first["checkpoint"]).name == "checkpoint-6"
    torch.manual_seed(123)  # resuming must not depend on the caller's RNG
    pretrain.main(_args(corpus, split, *extra, "--resume", updates=10))
    a, b = _losses(full), _losses(split)
    assert [b[u] for u in range(7, 11)] == [a[u] for u in range(7, 11)]
    assert not list((split / "checkpoints").glob(".tmp-*"))


@pytest.mark.parametrize("mode", sorted(pretrain.ABLATIONS))
def test_ablation_modes_run(corpus, tmp_path, mode):
    result = pretrain.main(_args(corpus, tmp_path / mode, "--ablation", mode, updates=2))
    assert result["num_updates"] == 2 and math.isfinite(result["loss"])
    cfg = json.loads((tmp_path / mode / "config.json").read_text())
    assert (cfg["quantize_input"], cfg["quantize_targets"]) == pretrain.ABLATIONS[mode]


def test_nan_loss_is_skipped_and_counted(corpus, tmp_path, monkeypatch):
    from hf_wav2vec2.modeling_hf_wav2vec2 import HfWav2Vec2ForPreTraining

    original = HfWav2Vec2ForPreTraining.forward
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(HfWav2Vec2ForPreTraining, "forward", poisoned)
    with pytest.warns(UserWarning, match="update skipped"):
        result = pretrain.main(_args(corpus, tmp_path / "nan", updates=5))
    assert result["num_skipped_updates"] == 1 and result["num_updates"] == 5
    assert all(math.isfinite(p.float().sum()) for p in HfWav2Vec2ForPreTraining.from_pretrained(
        tmp_path / "nan").state_dict().values())


def test_time_budget_stops_and_saves(corpus, tmp_path):
    out = tmp_path / "budget"
    result = pretrain.main(_args(corpus, out, "--max_train_seconds", "0", updates=1000))
    assert result["stopped_by_time_budget"] and result["num_updates"] == 1
    assert (out / "model.safetensors").exists() and pretrain.latest_checkpoint(out).name == "checkpoint-1"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp(corpus, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(ROOT / "examples" / "pretrain.py"), "--cpu",
           *_args(corpus, out, "--config_overrides", "layerdrop=0.3", updates=16)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "pretrain_results.json").read_text())
    assert result["world_size"] == 2 and result["num_updates"] == 16
    epochs = [json.loads(l) for l in open(out / "train_log.jsonl") if '"epoch_end"' in l]
    assert len(epochs) >= 2
    for epoch in epochs:  # every example exactly once per epoch, split over the two ranks
        per_rank = epoch["examples_per_rank"]
        assert len(per_rank) == 2 and all(per_rank)
        assert sorted(per_rank[0] + per_rank[1]) == list(range(epoch["num_examples"]))
    losses = [v for _, v in sorted(_losses(out).items())]
    single = pretrain.main(_args(corpus, tmp_path / "single", "--config_overrides", "layerdrop=0.3", updates=16))
    assert losses[-1] < losses[0]
    assert abs(sum(losses[-4:]) / 4 - single["loss"]) < 0.5
