"""What a pre-training run records about itself: ``train_log.jsonl``, TensorBoard, the progress bar, the health
warnings, and at the end ``training_curves.png``.

:class:`RunLog` keeps only the latest record in memory (the file holds the history): a long run's memory does not
grow with its number of updates.
"""

from __future__ import annotations

import json
import math
from collections import deque
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

    def __init__(self, path: Path | None, health: TrainingHealth, *, log_every: int = 10,
                 tracker: Callable[[dict[str, float], int], None] | None = None, progress: Any = None):
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
        self.health.update(record["update"], code_perplexity=record["code_perplexity"],
                           accuracy=record["accuracy"], grad_norm=record["grad_norm"],
                           contrastive_loss=record["contrastive_loss"], finite=not skipped, emit=emit)
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
                self.tracker({f"train/{k}": v for k, v in record.items()
                              if k not in ("update", "epoch") and math.isfinite(v)}, update)
        if self.progress is not None:
            self.progress.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}",
                                      ppl=f"{record['code_perplexity']:.1f}", lr=f"{record['lr']:.2e}")

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


def plot_curves(records: list[dict], path: Path) -> None:
    """Training curves (per-frame loss, accuracy, perplexities, lr / temperature) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return
    x = [r["update"] for r in records]
    panels = [
        ("loss per masked frame", ["loss", "contrastive_loss"]),
        ("contrastive accuracy", ["accuracy"]),
        ("codebook perplexity", ["code_perplexity", "prob_perplexity"]),
        ("Gumbel temperature (left) / lr (right)", ["gumbel_temperature"]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (title, keys) in zip(axes.flat, panels):
        for key in keys:
            values = [r.get(key, float("nan")) for r in records]
            smooth = len(values) >= 20 and key != "gumbel_temperature"
            line, = ax.plot(x, values, label=key, alpha=0.45 if smooth else 1.0)
            if smooth:
                # batches differ a lot in length, so per-update values are noisy: add a running mean
                ax.plot(x, running_mean(values, max(5, len(values) // 20)), color=line.get_color(),
                        label=f"{key} (running mean)")
        ax.set_title(title)
        ax.set_xlabel("update")
        ax.legend(fontsize=8)
    lr_axis = axes.flat[3].twinx()
    lr_axis.plot(x, [r.get("lr", float("nan")) for r in records], color="tab:red", label="lr")
    lr_axis.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def running_mean(values: list[float], window: int) -> list[float]:
    """Mean of the last ``window`` finite values at each position (NaN until one is seen)."""
    out, recent = [], deque(maxlen=window)
    for value in values:
        if math.isfinite(value):
            recent.append(value)
        out.append(sum(recent) / len(recent) if recent else float("nan"))
    return out
