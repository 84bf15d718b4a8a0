"""Span masks and distractors of wav2vec 2.0 pre-training, sampled in torch on the model's device.

fairseq samples both in numpy on the CPU (``compute_mask_indices``, ``sample_negatives``) and transformers in its
data collator; here they are vectorized torch functions, so the model samples them itself on its device.
"""

import torch


def compute_mask_indices(
    shape: tuple[int, int],
    mask_prob: float,
    mask_length: int,
    min_masks: int = 0,
    lengths: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.BoolTensor:
    """Sample span masks as fairseq's ``compute_mask_indices`` (``mask_type=static``, overlaps allowed).

    Each row of true length ``l`` gets ``max(min_masks, int(mask_prob * l / mask_length + u))`` spans, ``u ~ U[0, 1)``,
    whose starts are drawn without replacement from the ``l - span + 1`` valid positions, so no span reaches padding.
    When ``l < mask_length`` the span shrinks to ``l`` (the whole row is masked) instead of failing, and a row of
    length 0 gets no mask. Returns a (batch, frames) bool tensor.
    """
    batch, frames = shape
    if lengths is None:
        lengths = torch.full((batch,), frames, dtype=torch.long, device=device)
    lengths = lengths.to(device=device, dtype=torch.long).clamp(0, frames)
    if mask_prob <= 0 and min_masks <= 0:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    span = lengths.clamp(max=mask_length)  # (B,)
    num_starts = (lengths - span + 1).clamp(min=0)  # (B,)
    noise = torch.rand(batch, device=device, generator=generator)
    num_spans = (mask_prob * lengths.float() / mask_length + noise).long().clamp(min=min_masks)
    num_spans = torch.minimum(num_spans, num_starts)  # never more spans than distinct starts
    max_spans = int(num_spans.max()) if batch else 0
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    if max_spans == 0:
        return mask
    # A uniformly random subset of valid starts per row: the top-k of i.i.d. scores over the valid positions.
    scores = torch.rand(batch, frames, device=device, generator=generator)
    positions = torch.arange(frames, device=device)
    scores = scores.masked_fill(positions[None, :] >= num_starts[:, None], -1.0)
    starts = scores.topk(max_spans, dim=1).indices  # (B, S)
    keep = torch.arange(max_spans, device=device)[None, :] < num_spans[:, None]  # (B, S)
    offsets = torch.arange(mask_length, device=device)  # (M,)
    steps = starts[:, :, None] + offsets  # (B, S, M)
    keep = keep[:, :, None] & (offsets[None, None, :] < span[:, None, None])
    rows = torch.arange(batch, device=device)[:, None, None].expand_as(steps)
    mask[rows[keep], steps[keep]] = True
    return mask


def sample_negative_indices(
    mask_time_indices: torch.BoolTensor,
    num_negatives: int,
    generator: torch.Generator | None = None,
) -> torch.LongTensor:
    """Draw ``num_negatives`` distractors per masked frame, uniformly from the OTHER masked frames of its utterance.

    Returns a (batch, frames, K) long tensor in transformers' convention: indices into the flattened
    (batch * frames) sequence; rows of unmasked frames hold ``b * frames`` and are never read. An utterance with a
    single masked frame has no other frame to draw from: its distractors point at the positive itself, which the
    loss then scores as -inf (as fairseq does for distractors identical to the positive).
    """
    mask = mask_time_indices.bool()
    batch, frames = mask.shape
    device = mask.device
    num_masked = mask.sum(1)  # (B,)
    rank = mask.long().cumsum(1) - 1  # (B, T): index of a masked frame among its utterance's masked frames
    # positions of masked frames first, in time order (stable sort of the "unmasked" flag)
    order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices  # (B, T)
    draws = torch.rand(batch, frames, num_negatives, device=device, generator=generator)
    high = (num_masked - 1).clamp(min=1)[:, None, None]  # draw among M - 1 others
    idx = (draws * high).long().clamp(max=high - 1)  # (B, T, K) in [0, M - 2]
    idx = idx + (idx >= rank[:, :, None]).long()  # skip the positive
    alone = (num_masked <= 1)[:, None, None]
    idx = torch.where(alone, rank.clamp(min=0)[:, :, None].expand_as(idx), idx)
    negatives = torch.gather(order, 1, idx.view(batch, -1)).view(batch, frames, num_negatives)
    negatives = negatives.masked_fill(~mask[:, :, None], 0)
    return negatives + torch.arange(batch, device=device)[:, None, None] * frames


__all__ = ["compute_mask_indices", "sample_negative_indices"]
