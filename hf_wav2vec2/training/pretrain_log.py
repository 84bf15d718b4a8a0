"""What a pre-training run records about itself: ``train_log.jsonl``, TensorBoard, the progress bar, the health
warnings, and at the end ``training_curves.png``.

:class:`RunLog` keeps only the latest record in memory (the file holds the history): a long run's memory does not
grow with its number of updates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .health import TrainingHealth


class RunLog:
    """The log of one process (only the main process writes the file, TensorBoard and the bar).

    ``update(record, skipped)`` once per update: every update goes to :class:`TrainingHealth` (warnings are
    issued by the main process only; the metrics are global, so every rank sees the same ones); a record of an
    applied update becomes :attr:`last`, is written to ``path`` every ``log_every`` updates (and the first) and
    shown on the bar. ``finish`` writes the last record if the period skipped it, so the curves end at the end.
    Use it as a context manager: the file is open between ``__enter__`` and ``__exit__``.
    """

    def __init__(
        self,
        path: Path | None,
        health: TrainingHealth,
        *,
        log_every: int = 10,
        tracker: Callable[[dict[str, float], int], None] | None = None,
        progress: Any = None,
    ):
        self.path = path
        self.health = health
        self.log_every = max(1, int(log_every))
        self.tracker = tracker
        self.progress = progress
        self.last: dict[str, Any] | None = None  # the latest applied update's record: all the summary needs
        self._last_written: int | None = None
        self._file = None

    def __enter__(self) -> RunLog:
        if self.path is not None:
            self._file = open(self.path, "a", encoding="utf-8")  # appended: a resumed run continues the log
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()  # a killed run keeps its curves up to the last update

    def update(self, record: dict[str, Any], skipped: bool, emit: bool = True) -> None:
        """Log one update (``record`` holds its global metrics; ``emit``: issue health warnings here)."""
        self.health.update(
            record["update"],
            code_perplexity=record["code_perplexity"],
            accuracy=record["accuracy"],
            grad_norm=record["grad_norm"],
            contrastive_loss=record["contrastive_loss"],
            finite=not skipped,
            emit=emit,
        )
        if skipped:
            return
        if self.progress is not None:
            self.progress.update(1)
        self.last = record
        update = record["update"]
        if update % self.log_every == 0 or update == 1:
            self.write(record)
            self._last_written = update
            if self.tracker is not None:
                self.tracker(
                    {f"train/{k}": v for k, v in record.items() if k not in ("update", "epoch") and math.isfinite(v)},
                    update,
                )
        if self.progress is not None:
            self.progress.set_postfix(
                loss=f"{record['loss']:.3f}",
                acc=f"{record['accuracy']:.3f}",
                ppl=f"{record['code_perplexity']:.1f}",
                lr=f"{record['lr']:.2e}",
            )

    def finish(self) -> None:
        if self.last is not None and self._last_written != self.last["update"]:
            self.write(self.last)  # the curves end at the last update


def read_log(path: Path) -> list[dict]:
    """The per-update records of ``train_log.jsonl``, one per update (the latest, after a resume), in order."""
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    seen = {}
    for row in rows:  # after a resume the log may repeat updates; keep the latest of each
        if "update" in row and "event" not in row:
            seen[row["update"]] = row
    return [seen[k] for k in sorted(seen)]


def pretraining_panels(records: list[dict]) -> list:
    """Panels of :func:`~hf_wav2vec2.training.metrics.plot_training_curves` from ``train_log.jsonl`` records:
    per-frame losses, contrastive accuracy, codebook perplexities, Gumbel temperature with the lr on the right."""
    from .metrics import Curve

    x = [r["update"] for r in records]

    def curve(key: str, **options) -> Curve:
        # batches differ a lot in length, so per-update values are noisy: Curve adds a running mean
        return Curve(key, x, [r.get(key, float("nan")) for r in records], **options)

    return [
        ("loss per masked frame", [curve("loss"), curve("contrastive_loss")]),
        ("contrastive accuracy", [curve("accuracy")]),
        ("codebook perplexity", [curve("code_perplexity"), curve("prob_perplexity")]),
        (
            "Gumbel temperature (left) / lr (right)",
            [curve("gumbel_temperature", smooth=False), curve("lr", smooth=False, right_axis=True, color="tab:red")],
        ),
    ]


def plot_curves(records: list[dict], path: Path) -> None:
    """Training curves (per-frame loss, accuracy, perplexities, lr / temperature) as a PNG; nothing without records."""
    from .metrics import plot_training_curves

    if records:
        plot_training_curves(pretraining_panels(records), path)
