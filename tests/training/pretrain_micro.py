"""What the pre-training tests share: a micro model config, a synthetic corpus folder, the common flags."""

from __future__ import annotations

import json
from pathlib import Path

from hf_wav2vec2.training.synthetic import make_synthetic_corpus

#: A wav2vec 2.0 small enough for a CPU test run of tens of updates (overrides of the ``tiny`` preset).
MICRO = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "conv_dim": [32, 32, 32],
    "conv_kernel": [10, 3, 3],
    "conv_stride": [5, 2, 2],
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "codevector_dim": 32,
    "proj_codevector_dim": 16,
    "num_codevectors_per_group": 16,
    "num_codevector_groups": 2,
    "num_negatives": 10,
    "mask_time_length": 4,
    "layerdrop": 0.0,
}


def write_corpus(root: Path, num_files: int, max_seconds: float, **config) -> Path:
    """``root/data`` (16 kHz speech-like clips of 0.6 s to ``max_seconds``) and ``root/micro.json`` (MICRO with
    ``config``'s overrides); returns ``root``."""
    make_synthetic_corpus(root / "data", num_files, min_seconds=0.6, max_seconds=max_seconds, sr=16000)
    (root / "micro.json").write_text(json.dumps({**MICRO, **config}))
    return root


def pretrain_argv(corpus: Path, out: Path, updates: int, *extra: str) -> list[str]:
    """Flags of a micro run on ``corpus`` (see :func:`write_corpus`): 6000-sample crops, a log line per update."""
    return [
        "--data",
        str(corpus / "data"),
        "--output_dir",
        str(out),
        "--preset",
        "tiny",
        "--config",
        str(corpus / "micro.json"),
        "--max_updates",
        str(updates),
        "--max_tokens",
        "24000",
        "--max_sample_size",
        "6000",
        "--min_sample_size",
        "6000",
        "--log_every",
        "1",
        *extra,
    ]


def log_rows(out: Path) -> list[dict]:
    """Every record of a run's ``train_log.jsonl``, in file order."""
    with open(Path(out) / "train_log.jsonl", encoding="utf-8") as log:
        return [json.loads(line) for line in log]


def logged_losses(out: Path) -> dict[int, float]:
    """The per-frame loss of every logged update (events left out)."""
    return {row["update"]: row["loss"] for row in log_rows(out) if "event" not in row}


def epoch_ends(out: Path) -> list[dict]:
    """The ``epoch_end`` events of a run's log."""
    return [row for row in log_rows(out) if row.get("event") == "epoch_end"]
