"""Warnings about known wav2vec 2.0 pre-training failure modes, read off each update's metrics (pure Python)."""

from __future__ import annotations

import math
import statistics
import warnings
from collections import deque


class TrainingHealthWarning(UserWarning):
    """A known pre-training failure mode seen in the logged metrics (see :class:`TrainingHealth`)."""


class TrainingHealth:
    """Checks each update's metrics for known wav2vec 2.0 pre-training failure modes; pure Python, no torch.

    The training loop calls :meth:`update` once per update with the global metrics it logs. Kinds of problem:

    * ``codebook_collapse``: after the lr warm-up, the code perplexity (distinct codewords used in the batch) is
      below ``collapse_fraction`` (10 %) of G*V; with accuracy above ``trivial_accuracy`` (0.95) the message adds
      that the task has become trivial (the model solves it with a handful of codewords).
    * ``grad_norm_explosion``: the (pre-clipping) gradient norm is over ``spike_factor`` (100x) the median of the
      last ``history`` finite norms, once at least ``min_history`` (10) are known.
    * ``contrastive_loss_vanished``: the contrastive loss per masked frame is below ``zero_loss`` (1e-3), i.e. the
      positive gets essentially all the probability mass (identical / collapsed targets).

    Updates whose loss is not finite (skipped updates) are ignored. Each kind is warned (a
    :class:`TrainingHealthWarning`) at most once per ``log_every`` updates; ``counts`` holds, per kind, on how many
    updates the condition held (rate-limited or not) and ``emitted`` how many warnings were issued.
    """

    KINDS = ("codebook_collapse", "grad_norm_explosion", "contrastive_loss_vanished")

    def __init__(
        self,
        num_vars: int,
        *,
        warmup_updates: int = 0,
        log_every: int = 10,
        uses_quantizer: bool = True,
        history: int = 100,
        min_history: int = 10,
        spike_factor: float = 100.0,
        collapse_fraction: float = 0.1,
        trivial_accuracy: float = 0.95,
        zero_loss: float = 1e-3,
    ):
        self.num_vars = num_vars
        self.warmup_updates = warmup_updates
        self.log_every = max(1, int(log_every))
        self.uses_quantizer = uses_quantizer
        self.min_history = min_history
        self.spike_factor = spike_factor
        self.collapse_fraction = collapse_fraction
        self.trivial_accuracy = trivial_accuracy
        self.zero_loss = zero_loss
        self.grad_norms: deque[float] = deque(maxlen=history)
        self.counts = dict.fromkeys(self.KINDS, 0)
        self.emitted = dict.fromkeys(self.KINDS, 0)
        self._last_emitted: dict[str, int] = {}

    def update(
        self,
        update: int,
        *,
        code_perplexity: float,
        accuracy: float,
        grad_norm: float,
        contrastive_loss: float | None = None,
        finite: bool = True,
        emit: bool = True,
    ) -> list[tuple[str, str]]:
        """Check one update; returns the ``(kind, message)`` pairs warned about now (after rate limiting), which
        are also issued with :func:`warnings.warn` unless ``emit`` is false."""
        if not finite:
            return []
        found = []
        if (
            self.uses_quantizer
            and update > self.warmup_updates
            and code_perplexity < self.collapse_fraction * self.num_vars
        ):
            hint = " while accuracy is near 1 (trivial task)" if accuracy > self.trivial_accuracy else ""
            found.append(
                (
                    "codebook_collapse",
                    (
                        f"codebook collapse? code perplexity {code_perplexity:.1f} < "
                        f"{self.collapse_fraction:.0%} of G*V={self.num_vars}{hint} at update {update}"
                    ),
                )
            )
        if math.isfinite(grad_norm):
            if len(self.grad_norms) >= self.min_history:
                median = statistics.median(self.grad_norms)
                if grad_norm > self.spike_factor * median:
                    found.append(
                        (
                            "grad_norm_explosion",
                            (
                                f"gradient norm {grad_norm:.3g} at update {update} is "
                                f"over {self.spike_factor:g}x the running median {median:.3g}"
                            ),
                        )
                    )
            self.grad_norms.append(grad_norm)
        if contrastive_loss is not None and contrastive_loss < self.zero_loss:
            found.append(
                (
                    "contrastive_loss_vanished",
                    (
                        f"contrastive loss {contrastive_loss:.2e} per masked "
                        f"frame at update {update}: the task has become trivial (collapsed targets?)"
                    ),
                )
            )
        issued = []
        for kind, message in found:
            self.counts[kind] += 1
            previous = self._last_emitted.get(kind)
            if previous is not None and update - previous < self.log_every:
                continue
            self._last_emitted[kind] = update
            self.emitted[kind] += 1
            issued.append((kind, message))
            if emit:
                warnings.warn(message, TrainingHealthWarning, stacklevel=2)
        return issued
