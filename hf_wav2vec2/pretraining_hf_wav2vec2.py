"""The self-supervised objective of wav2vec 2.0 (paper section 3): the Gumbel product quantizer, the contrastive
task over masked frames and its losses, as fairseq's ``Wav2Vec2Model`` and ``wav2vec`` criterion compute them.

:class:`PreTrainingObjective` holds the objective's steps; ``HfWav2Vec2ForPreTraining`` (in the modeling file)
combines them with the encoder. Shapes in comments: B batch, T frames, C conv channels, P projection size,
N masked frames, K distractors, M quantized frames, G codebooks, V entries per codebook.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import ModelOutput

from .configuration_hf_wav2vec2 import HfWav2Vec2Config
from .linear_hf_wav2vec2 import Linear
from .masking_hf_wav2vec2 import compute_mask_indices, sample_negative_indices


class GumbelVectorQuantizer(nn.Module):
    """Product quantizer with G codebooks of V entries, selected by straight-through Gumbel softmax (section 3.2).

    In training the choice is a hard Gumbel sample at ``temperature``; in eval the argmax. Vectors of the G
    chosen entries are concatenated (``codevector_dim``).
    """

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.num_groups = config.num_codevector_groups
        self.num_vars = config.num_codevectors_per_group
        self.codevectors = nn.Parameter(
            torch.empty(1, self.num_groups * self.num_vars, config.codevector_dim // self.num_groups)
        )
        self.weight_proj = Linear(config.conv_dim[-1], self.num_groups * self.num_vars)
        self.temperature = config.max_gumbel_temperature

    def forward(self, x, rows=None):
        """``x`` (N, C) -> quantized (N, codevector_dim), codes (N, G), code perplexity, prob perplexity.

        ``rows``: indices of the rows the perplexities are computed over (all by default; the objective uses the
        masked frames only, as fairseq and transformers, even when distractor frames are quantized too).
        """
        n = x.shape[0]
        logits = self.weight_proj(x).view(n, self.num_groups, self.num_vars)  # (N, G, V)
        best = F.one_hot(logits.argmax(-1), self.num_vars)  # (N, G, V): the noiseless choice, for code perplexity
        if self.training:
            one_hot = F.gumbel_softmax(logits.float(), tau=self.temperature, hard=True).type_as(x)
        else:
            one_hot = best.type_as(x)
        codes = one_hot.argmax(-1)  # (N, G): the codes actually used
        scored_logits, scored_best = (logits, best) if rows is None else (logits[rows], best[rows])
        code_perplexity = self.perplexity(scored_best.float())
        prob_perplexity = self.perplexity(scored_logits.float().softmax(-1))
        books = self.codevectors.view(self.num_groups, self.num_vars, -1)
        quantized = torch.einsum("ngv,gvd->ngd", one_hot, books.to(one_hot.dtype)).reshape(n, -1)
        return quantized, codes, code_perplexity, prob_perplexity

    @staticmethod
    def perplexity(probs):  # (N, G, V) -> sum over groups of exp(entropy of the mean distribution)
        mean = probs.mean(0) if probs.shape[0] else probs.sum(0)
        return torch.exp(-(mean * torch.log(mean + 1e-7)).sum(-1)).sum()


@dataclass
class HfWav2Vec2ForPreTrainingOutput(ModelOutput):
    """Losses and health metrics of the self-supervised objective.

    ``loss`` is summed over the ``num_masked`` masked frames (fairseq's convention): divide it by ``num_masked``
    summed over all processes for a per-frame loss. ``contrastive_loss`` is the summed InfoNCE term,
    ``diversity_loss`` (G*V - prob_perplexity) / (G*V) and ``feature_penalty`` the mean squared conv feature, both
    unweighted and unscaled; ``loss = contrastive_loss + diversity_loss_weight * diversity_loss * num_masked +
    feature_penalty_weight * feature_penalty * num_masked``. ``accuracy`` is the fraction of masked frames whose
    positive outscores every distractor. ``logits`` (N, 1 + K) are the contrastive logits, positive first, float32
    in every dtype and under autocast. Without a mask (eval, not asked to sample one) the loss fields are None and
    the perplexities cover every real frame.

    transformers' fields, same shapes and meaning: ``projected_states`` (B, T, P) the projected context of every
    frame; ``projected_quantized_states`` (B, T, P) the projected (quantized) targets: every frame in eval, in
    training only the frames the objective reads (masked ones and distractors; the other rows are 0, never
    computed); ``codevector_perplexity`` transformers' perplexity: ``prob_perplexity`` in training,
    ``code_perplexity`` in eval.
    """

    loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    diversity_loss: torch.FloatTensor | None = None
    feature_penalty: torch.FloatTensor | None = None
    code_perplexity: torch.FloatTensor | None = None
    prob_perplexity: torch.FloatTensor | None = None
    accuracy: torch.FloatTensor | None = None
    num_masked: torch.LongTensor | None = None
    logits: torch.FloatTensor | None = None
    mask_time_indices: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    projected_states: torch.FloatTensor | None = None
    projected_quantized_states: torch.FloatTensor | None = None
    codevector_perplexity: torch.FloatTensor | None = None


class PreTrainingObjective:
    """The objective's steps, mixed into ``HfWav2Vec2ForPreTraining``, which provides ``config``, ``quantizer``,
    ``dropout_features``, ``project_q`` and ``training``."""

    def _time_mask(self, mask_time_indices, sample, frame_mask, shape, device):
        """The (B, T) bool mask the objective scores, or None; masked padding frames are dropped (no target)."""
        config = self.config
        if mask_time_indices is None:
            if not sample:
                return None
            lengths = None if frame_mask is None else frame_mask.sum(-1)
            return compute_mask_indices(
                shape, config.mask_time_prob, config.mask_time_length, config.mask_time_min_masks, lengths, device
            )
        mask = mask_time_indices.to(device=device, dtype=torch.bool)
        if mask.shape != shape:
            raise ValueError(f"mask_time_indices must be (batch, frames) = {shape}, got {tuple(mask.shape)}")
        return mask if frame_mask is None else mask & frame_mask

    def _objective(self, projected, normed, mask, sampled_negative_indices, frame_mask):
        """Projected targets (B, T, P) and the contrastive logits (N, 1 + K) of the masked frames.

        Distractors may be any frames of the batch. Without ``mask``: no logits, perplexities over the real frames.
        """
        batch, frames, _ = normed.shape
        flat, device = batch * frames, normed.device
        scored = mask if mask is not None else frame_mask
        masked = torch.arange(flat, device=device) if scored is None else scored.view(-1).nonzero().squeeze(1)  # (N,)
        # quantize only what the loss reads in training (masked frames and distractors); every frame in eval
        used = torch.full((flat,), not self.training, dtype=torch.bool, device=device)
        used[masked] = True
        if mask is not None:
            negatives = self._negatives(sampled_negative_indices, mask)[masked]  # (N, K) flat indices
            used[negatives.reshape(-1)] = True
        rows = used.nonzero().squeeze(1)  # (M,) flat frames to quantize
        row_of = torch.full((flat,), -1, dtype=torch.long, device=device)
        row_of[rows] = torch.arange(rows.numel(), device=device)
        target_in = self.dropout_features(normed).reshape(flat, -1)[rows]  # (M, C)
        fields = dict(num_masked=torch.tensor(0 if mask is None else masked.numel(), device=device))
        codes = None
        if self.config.quantize_targets:
            target_in, codes, *fields["perplexities"] = self.quantizer(target_in, row_of[masked])
        targets = self.project_q(target_in.to(self.project_q.weight.dtype))  # (M, P)
        if mask is not None:
            predictions = projected.reshape(flat, -1)[masked]  # (N, P)
            fields["logits"] = self.contrastive_logits(predictions, targets, row_of[masked], row_of[negatives], codes)
        quantized = targets.new_zeros(flat, targets.shape[-1]).index_copy(0, rows, targets)
        return fields, quantized.view(batch, frames, -1)

    def _negatives(self, sampled_negative_indices, mask):
        """Given (checked) or sampled distractors as (B*T, K) flat indices into the batch."""
        batch, frames = mask.shape
        if sampled_negative_indices is None:
            return sample_negative_indices(mask, self.config.num_negatives).view(batch * frames, -1)
        negatives = sampled_negative_indices.to(device=mask.device, dtype=torch.long)
        if negatives.dim() != 3 or tuple(negatives.shape[:2]) != (batch, frames):
            raise ValueError(
                f"sampled_negative_indices must be (batch, frames, K) = ({batch}, {frames}, K), got "
                f"{tuple(negatives.shape)}"
            )
        if ((negatives < 0) | (negatives >= batch * frames)).any():
            raise ValueError(f"sampled_negative_indices must be flat indices into batch * frames = {batch * frames}")
        return negatives.view(batch * frames, -1)

    def _losses(self, logits, features, prob_ppl):
        """Contrastive, diversity and feature-penalty terms, their weighted sum and the accuracy."""
        config = self.config
        num_masked = logits.shape[0]
        targets = torch.zeros(num_masked, dtype=torch.long, device=logits.device)
        contrastive_loss = F.cross_entropy(logits, targets, reduction="sum")
        num_vars = config.num_codevector_groups * config.num_codevectors_per_group
        uses_quantizer = config.quantize_targets or config.quantize_input
        diversity_loss = (num_vars - prob_ppl) / num_vars if uses_quantizer else torch.zeros_like(contrastive_loss)
        feature_penalty = features.float().pow(2).mean()
        loss = (
            contrastive_loss
            + config.diversity_loss_weight * diversity_loss * num_masked
            + config.feature_penalty_weight * feature_penalty * num_masked
        )
        with torch.no_grad():
            best, worst = logits.argmax(-1) == 0, logits.argmin(-1) == 0
            # rows whose logits are all equal count as wrong, as fairseq's criterion
            accuracy = (best & ~worst).sum().float() / max(num_masked, 1)
        return dict(
            loss=loss,
            contrastive_loss=contrastive_loss,
            diversity_loss=diversity_loss,
            feature_penalty=feature_penalty,
            accuracy=accuracy,
        )

    def contrastive_logits(self, predictions, targets, positives, negatives, codes=None):
        """Cosine similarity of each prediction with its target and its K distractors, over the temperature.

        ``predictions`` (N, P); ``targets`` (M, P); ``positives`` (N,) and ``negatives`` (N, K) rows of ``targets``.
        A distractor identical to the positive scores -inf; for quantized targets identity is decided on the codes
        (M, G) (cheaper, and the same).

        The logits are float32 whatever the model's dtype, and autocast is off here: under bf16 autocast the
        distractors' product (a bmm) once ran in bf16 while the positive (a plain product) stayed float32, so the
        two were scored at different precisions, and bf16 logits over a temperature of 0.1 are coarse (steps of
        0.06 near 8) for the loss and the accuracy's ties. The positive and the distractors now come from one
        product (:func:`cosine_scores`).
        """
        with torch.autocast(predictions.device.type, enabled=False):
            p = F.normalize(predictions.float(), dim=-1, eps=1e-8)
            t = F.normalize(targets.float(), dim=-1, eps=1e-8)
            scores = cosine_scores(p, t, torch.cat([positives[:, None], negatives], 1))  # (N, 1 + K)
        keys = targets if codes is None else codes
        same = (keys[negatives] == keys[positives][:, None, :]).all(-1)  # (N, K)
        same = torch.cat([same.new_zeros(same.shape[0], 1), same], 1)  # the positive column stays
        return scores.masked_fill(same, float("-inf")) / self.config.contrastive_logits_temperature


def cosine_scores(p, t, columns, max_block: int = 1 << 22):
    """``p[n] . t[columns[n, j]]`` (N, J) for unit rows ``p`` (N, P) and ``t`` (M, P).

    Gathering the candidates, ``t[columns]``, materializes an (N, J, P) tensor that autograd keeps until backward
    and mirrors with its gradient there (BASE, 4 x 5 s, 100 distractors: 50 MB each). When the (N, M) similarity
    matrix is at most a quarter of that size, it is computed instead as one matrix product per block of rows
    (``max_block`` elements at a time) and the (N, J) scores are gathered from it (the gather keeps that matrix for
    backward: about 1 MB there). Otherwise, for a very large M, the gather is cheaper in arithmetic and is used.
    """
    n, m = columns.shape[0], t.shape[0]
    if 4 * m > columns.shape[1] * t.shape[1]:
        return torch.einsum("np,njp->nj", p, t[columns])
    rows = max(1, max_block // max(1, m))
    return torch.cat([(p[i : i + rows] @ t.T).gather(1, columns[i : i + rows]) for i in range(0, n, rows)])


__all__ = ["GumbelVectorQuantizer", "HfWav2Vec2ForPreTrainingOutput", "PreTrainingObjective", "cosine_scores"]
