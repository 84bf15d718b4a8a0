"""One pre-training update: forward and backward over its micro-batches, one all-reduce of the statistics
(:class:`UpdateStats`), the gradients rescaled, clipped and applied (or the update skipped), and the record logged.

:func:`train_update` is the step :func:`~hf_wav2vec2.training.pretrain.training_function` repeats; the
:class:`~hf_wav2vec2.training.pretrain.Run` it works on is made by :func:`~hf_wav2vec2.training.pretrain.set_up`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..audio import DEFAULT_SAMPLING_RATE

if TYPE_CHECKING:
    from .pretrain import Run

__all__ = ["UpdateStats", "accumulate_gradients", "apply_gradients", "should_stop", "train_update", "update_record"]


@dataclass
class UpdateStats:
    """One update's sums over its micro-batches (this process's, then, after :meth:`reduce`, every process's).

    One all-reduce of these numbers gives every rank the global masked-frame count (fairseq's ``sample_size``),
    the NaN verdict and the stop decision, so all ranks take identical decisions.
    """

    num_masked: float = 0.0  # masked frames: the loss is normalized by their global count
    loss: float = 0.0  # summed over masked frames, finite micro-batches only
    contrastive: float = 0.0
    diversity: float = 0.0  # the per-micro-batch values below are summed, averaged in metrics()
    feature_penalty: float = 0.0
    code_ppl: float = 0.0
    prob_ppl: float = 0.0
    correct: float = 0.0  # accuracy x masked frames
    micro_batches: float = 0.0
    nonfinite: float = 0.0  # micro-batches whose loss is NaN or infinite
    samples: float = 0.0  # audio samples in the batches (throughput)
    over_budget: float = 0.0  # 1 where this process is past --max_train_seconds

    def add(self, out, lengths) -> None:
        """Add one micro-batch's model output (the loss only when it is finite)."""
        n = int(out.num_masked)
        loss = float(out.loss.detach())
        finite = math.isfinite(loss)
        self.num_masked += n
        self.loss += loss if finite else 0.0
        self.contrastive += float(out.contrastive_loss.detach()) if finite else 0.0
        self.diversity += float(out.diversity_loss.detach())
        self.feature_penalty += float(out.feature_penalty.detach())
        self.code_ppl += float(out.code_perplexity.detach())
        self.prob_ppl += float(out.prob_perplexity.detach())
        self.correct += float(out.accuracy) * n
        self.micro_batches += 1.0
        self.nonfinite += 0.0 if finite else 1.0
        self.samples += float(lengths.sum())

    def reduce(self, accelerator) -> UpdateStats:
        import torch

        values = torch.tensor(dataclasses.astuple(self), dtype=torch.float64)
        return UpdateStats(*accelerator.reduce(values.to(accelerator.device), reduction="sum").cpu().tolist())

    @property
    def skipped(self) -> bool:
        return self.nonfinite > 0 or self.num_masked == 0

    def metrics(self) -> dict[str, float]:
        """Per masked frame (losses, accuracy) and per micro-batch (the rest) averages."""
        frames, mbs = max(1.0, self.num_masked), max(1.0, self.micro_batches)
        return {
            "loss": self.loss / frames,
            "contrastive_loss": self.contrastive / frames,
            "diversity_loss": self.diversity / mbs,
            "feature_penalty": self.feature_penalty / mbs,
            "code_perplexity": self.code_ppl / mbs,
            "prob_perplexity": self.prob_ppl / mbs,
            "accuracy": self.correct / frames,
            "num_masked": int(self.num_masked),
        }


# ------------------------------------------------------------------------------------------------------ one update


def accumulate_gradients(run: Run, micro: list[dict]) -> tuple[UpdateStats, float]:
    """Forward and backward over the micro-batches (gradients synced on the last one); returns this process's
    sums and the constant the losses were scaled by (keeps the summed loss's gradients O(1), fp16's range)."""
    accelerator, stats, grad_scale = run.accelerator, UpdateStats(), None
    for i, batch in enumerate(micro):
        inputs = batch["input_values"].to(accelerator.device)
        mask = batch.get("attention_mask")
        mask = mask.to(accelerator.device) if mask is not None else None
        sync = accelerator.no_sync(run.model) if i < len(micro) - 1 else contextlib.nullcontext()
        with sync, accelerator.autocast():
            out = run.model(inputs, attention_mask=mask)
            if grad_scale is None:
                grad_scale = 1.0 / max(1, int(out.num_masked) * len(micro) * accelerator.num_processes)
            accelerator.backward(out.loss * grad_scale)
        stats.add(out, batch["lengths"])
    return stats, grad_scale


def apply_gradients(run: Run, stats: UpdateStats, grad_scale: float) -> tuple[bool, float]:
    """Rescale, clip and step, or skip a non-finite update; returns (skipped, pre-clipping gradient norm)."""
    accelerator, args, skipped, grad_norm = run.accelerator, run.args, stats.skipped, float("nan")
    if not skipped:
        # DDP averaged the gradients of (loss * grad_scale) over ranks; rescale to sum(loss) / sum(masked).
        factor = accelerator.num_processes / (stats.num_masked * grad_scale)
        for param in run.model.parameters():
            if param.grad is not None:
                param.grad.mul_(factor)
        max_norm = args.max_grad_norm if args.max_grad_norm and args.max_grad_norm > 0 else float("inf")
        grad_norm = float(accelerator.clip_grad_norm_(run.model.parameters(), max_norm))
        if not math.isfinite(grad_norm) and run.scaler is None:
            skipped = True  # fp16's scaler handles overflow itself (skips and lowers the scale)
    if skipped:
        run.state.num_skipped_updates += 1
        if accelerator.is_main_process:  # every rank takes the same decision: say it once
            warnings.warn(
                f"non-finite loss or gradient at update {run.state.num_updates}: update skipped "
                f"({run.state.num_skipped_updates} so far)",
                stacklevel=2,
            )
    else:
        run.optimizer.step()
        if not accelerator.optimizer_step_was_skipped:
            run.scheduler.step()
        run.state.num_updates += 1
    run.optimizer.zero_grad(set_to_none=True)
    return skipped, grad_norm


def train_update(run: Run, micro: list[dict]) -> tuple[UpdateStats, float, bool]:
    """One update over the micro-batches: the global statistics, the gradient norm, and whether it was skipped."""
    run.unwrapped.set_gumbel_temperature(run.config.gumbel_temperature_at(run.state.num_updates))
    run.model.train()
    stats, grad_scale = accumulate_gradients(run, micro)
    stats.over_budget = float(run.over_time_budget())
    stats = stats.reduce(run.accelerator)
    skipped, grad_norm = apply_gradients(run, stats, grad_scale)
    return stats, grad_norm, skipped


def update_record(run: Run, stats: UpdateStats, grad_norm: float, seconds: float) -> dict[str, Any]:
    """The logged metrics of one update (global per-frame averages)."""
    audio_seconds = stats.samples / DEFAULT_SAMPLING_RATE  # the data pipeline's lengths are counted at this rate
    return {
        "update": run.state.num_updates,
        "epoch": run.state.epoch,
        **stats.metrics(),
        "gumbel_temperature": run.unwrapped.quantizer.temperature,
        "lr": run.scheduler.get_last_lr()[0],
        "grad_norm": grad_norm,
        "audio_seconds_per_second": audio_seconds / max(1e-9, seconds),
        "skipped_updates": run.state.num_skipped_updates,
        "elapsed": time.time() - run.start_time,
    }


def should_stop(run: Run, stats: UpdateStats) -> bool:
    """Whether the run ends after this update: the last update reached, or any process past its time budget."""
    if stats.over_budget > 0:  # any process past the budget: all stop at this update
        run.stopped_by_budget = True
        run.accelerator.print(f"time budget of {run.args.max_train_seconds}s reached at update {run.state.num_updates}")
    return run.stopped_by_budget or run.state.num_updates >= run.last_update()
