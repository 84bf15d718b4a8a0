"""wav2vec 2.0 (Baevski et al., 2020, arXiv:2006.11477) as transformers models.

Parameter names are transformers' (``wav2vec2.encoder.layers.0.attention.q_proj.weight``, ...), so checkpoints
saved by transformers' ``Wav2Vec2*`` classes load here without renaming. The pre-training objective follows
fairseq's ``Wav2Vec2Model`` and ``wav2vec`` criterion; where it deliberately differs from transformers'
``Wav2Vec2ForPreTraining`` the docstring of :class:`HfWav2Vec2ForPreTraining` says so.

Shapes in comments: B batch, L samples, T frames, C conv channels, D hidden size, N masked frames, K distractors.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import CausalLMOutput, ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import logging

from .configuration_hf_wav2vec2 import HfWav2Vec2Config

logger = logging.get_logger(__name__)

# --------------------------------------------------------------------------------------------------------------------
# Masks and distractors (torch, on the model's device)
# --------------------------------------------------------------------------------------------------------------------


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


def conv_output_lengths(lengths, conv_kernel, conv_stride):
    """Frames produced by the conv feature encoder for inputs of ``lengths`` samples (int or tensor)."""
    for kernel, stride in zip(conv_kernel, conv_stride):
        lengths = (lengths - kernel) // stride + 1  # floor division, for ints and tensors alike
    return lengths


class GradMultiply(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``scale`` (fairseq's ``feature_grad_mult``)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


# --------------------------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------------------------


class ConvLayer(nn.Module):
    """One temporal convolution of the feature encoder, with optional norm, then the activation.

    ``norm``: "group" is fairseq's GroupNorm with one group per channel (first layer of the BASE encoder), "layer"
    a LayerNorm over channels (every layer of the LARGE encoder, ``extractor_mode=layer_norm``), None nothing.
    """

    def __init__(self, in_dim, out_dim, kernel, stride, bias, norm, activation):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, stride=stride, bias=bias)
        if norm == "group":
            self.layer_norm = nn.GroupNorm(out_dim, out_dim, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(out_dim, elementwise_affine=True)
        self.norm = norm
        self.activation = ACT2FN[activation]

    def forward(self, x):  # (B, C_in, L) -> (B, C_out, L')
        x = self.conv(x)
        if self.norm == "group":
            x = self.layer_norm(x)
        elif self.norm == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        return self.activation(x)


class FeatureEncoder(nn.Module):
    """The 7-layer conv encoder f: X -> Z (paper section 2)."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        dims = [1, *config.conv_dim]
        layers = []
        for i, (kernel, stride) in enumerate(zip(config.conv_kernel, config.conv_stride)):
            norm = "layer" if config.feat_extract_norm == "layer" else ("group" if i == 0 else None)
            layers.append(
                ConvLayer(dims[i], dims[i + 1], kernel, stride, config.conv_bias, norm, config.feat_extract_activation)
            )
        self.conv_layers = nn.ModuleList(layers)

    def forward(self, input_values):  # (B, L) -> (B, C, T)
        x = input_values[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x


class FeatureProjection(nn.Module):
    """LayerNorm over conv channels, then the projection to the transformer width (fairseq ``post_extract_proj``)."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)
        self.dropout = nn.Dropout(config.feat_proj_dropout)

    def forward(self, features):  # (B, T, C) -> (B, T, D), (B, T, C)
        normed = self.layer_norm(features)
        return self.dropout(self.projection(normed)), normed


class PositionalConvEmbedding(nn.Module):
    """Relative positional information from a grouped, weight-normed convolution over time (fairseq ``pos_conv``)."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        kernel = config.num_conv_pos_embeddings
        conv = nn.Conv1d(
            config.hidden_size, config.hidden_size, kernel, padding=kernel // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        # weight norm over the kernel dimension (dim=2), as fairseq
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if kernel % 2 == 0 else 0  # "same" padding for an even kernel leaves one step too many
        self.activation = ACT2FN[config.feat_extract_activation]

    def forward(self, x):  # (B, T, D) -> (B, T, D)
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[:, :, : -self.trim]
        return self.activation(y).transpose(1, 2)


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """Attention written out, the probabilities returned: (B, H, T, d) each -> (B, T, H, d), (B, H, T, T).

    ``attention_mask``: (B, 1, 1, T) bool, True for keys to attend to (the signature of transformers' interface).
    """
    scores = (query @ key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(-1)
    out = F.dropout(weights, dropout, module.training) @ value
    return out.transpose(1, 2), weights


class Attention(nn.Module):
    """Multi-head self-attention; ``config._attn_implementation`` picks the kernel ("eager" or "sdpa", the default).

    It is read at every call, so ``model.set_attn_implementation`` takes effect at once. ``output_attentions`` needs
    the probabilities: with any other kernel that call falls back to eager, with a warning (transformers 4's
    behaviour; transformers 5 returns no weights then).
    """

    is_causal = False  # read by transformers' sdpa function, which would otherwise apply a causal mask

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x, key_padding_mask=None, output_attentions=False):
        """``key_padding_mask``: (B, T) bool, True for real frames. Returns (B, T, D) and optional (B, H, T, T)."""
        batch, frames, dim = x.shape

        def heads(t):  # (B, T, D) -> (B, H, T, d)
            return t.view(batch, frames, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]  # (B, 1, 1, T)
        implementation = self.config._attn_implementation or "sdpa"
        if output_attentions and implementation != "eager":
            logger.warning_once(f"output_attentions=True needs eager attention: falling back from {implementation} "
                                "for those calls (set attn_implementation='eager' to silence this)")
            implementation = "eager"
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        dropout = self.dropout if self.training else 0.0
        out, weights = attention(self, q, k, v, mask, scaling=self.scaling, dropout=dropout)
        return self.out_proj(out.reshape(batch, frames, dim)), weights if output_attentions else None


class FeedForward(nn.Module):
    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]
        self.intermediate_dropout = nn.Dropout(config.activation_dropout)
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x):
        x = self.intermediate_dropout(self.intermediate_act_fn(self.intermediate_dense(x)))
        return self.output_dropout(self.output_dense(x))


class EncoderLayer(GradientCheckpointingLayer):
    """A transformer block; ``layer_norm_first`` selects pre-LN (LARGE, "stable layer norm") over post-LN (BASE)."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.layer_norm_first = config.do_stable_layer_norm
        self.attention = Attention(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, key_padding_mask=None, output_attentions=False):  # (B, T, D) -> (B, T, D)
        residual = x
        if self.layer_norm_first:
            x, weights = self.attention(self.layer_norm(x), key_padding_mask, output_attentions)
            x = residual + self.dropout(x)
            x = x + self.feed_forward(self.final_layer_norm(x))
        else:
            x, weights = self.attention(x, key_padding_mask, output_attentions)
            x = self.layer_norm(residual + self.dropout(x))
            x = self.final_layer_norm(x + self.feed_forward(x))
        return x, weights


class Encoder(nn.Module):
    """Context network g: positional conv, then the transformer layers, with LayerDrop in training."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.layer_norm_first = config.do_stable_layer_norm
        self.layerdrop = config.layerdrop
        self.pos_conv_embed = PositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x, frame_mask=None, output_hidden_states=False, output_attentions=False):
        """``x`` (B, T, D); ``frame_mask`` (B, T) bool, True for real frames. Returns last, all states, attentions."""
        if frame_mask is not None:
            x = x * frame_mask[:, :, None].to(x.dtype)  # padding must not leak into the positional conv
        x = x + self.pos_conv_embed(x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        all_states, all_weights = [], []
        for layer in self.layers:
            if output_hidden_states:
                all_states.append(x)
            if self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop:
                # A skipped layer still joins the graph with a zero contribution, so DDP sees every parameter
                # used (no "unused parameters" error) and its gradient is an exact zero.
                x = x + sum(p.view(-1)[0] for p in layer.parameters()) * 0.0
                if output_attentions:
                    all_weights.append(None)
                continue
            x, weights = layer(x, frame_mask, output_attentions)
            if output_attentions:
                all_weights.append(weights)
        if output_hidden_states:
            # each layer's own output: for pre-LN models the final layer norm only enters last_hidden_state
            # (as fairseq's layer_results and transformers 5)
            all_states.append(x)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x, (tuple(all_states) if output_hidden_states else None), (
            tuple(all_weights) if output_attentions else None
        )


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
        self.weight_proj = nn.Linear(config.conv_dim[-1], self.num_groups * self.num_vars)
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


# --------------------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class HfWav2Vec2BaseModelOutput(ModelOutput):
    """``last_hidden_state`` (B, T, D); ``extract_features`` (B, T, C): the layer-normed conv features."""

    last_hidden_state: torch.FloatTensor | None = None
    extract_features: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class HfWav2Vec2ForPreTrainingOutput(ModelOutput):
    """Losses and health metrics of the self-supervised objective.

    ``loss`` is summed over the ``num_masked`` masked frames (fairseq's convention): divide it by ``num_masked``
    summed over all processes for a per-frame loss. ``contrastive_loss`` is the summed InfoNCE term,
    ``diversity_loss`` (G*V - prob_perplexity) / (G*V) and ``feature_penalty`` the mean squared conv feature, both
    unweighted and unscaled; ``loss = contrastive_loss + diversity_loss_weight * diversity_loss * num_masked +
    feature_penalty_weight * feature_penalty * num_masked``. ``accuracy`` is the fraction of masked frames whose
    positive outscores every distractor. ``logits`` (N, 1 + K) are the contrastive logits, positive first. Without
    a mask (eval, not asked to sample one) the loss fields are None and the perplexities cover every real frame.

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


class HfWav2Vec2PreTrainedModel(PreTrainedModel):
    config_class = HfWav2Vec2Config
    config: HfWav2Vec2Config
    base_model_prefix = "wav2vec2"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _supports_sdpa = True  # eager and sdpa (see Attention); flash and flex attention are not declared: untested
    _config_checks: tuple[str, ...] = ()  # the parts of config.check_model_consistency this class needs

    def __init__(self, config: HfWav2Vec2Config, *inputs, **kwargs):
        if not hasattr(config, "check_model_consistency"):
            raise TypeError(f"{type(self).__name__} needs an HfWav2Vec2Config, got {type(config).__name__}; convert "
                            "it with HfWav2Vec2Config.from_transformers_config(config)")
        config.check_model_consistency(type(self).__name__, self._config_checks)
        super().__init__(config, *inputs, **kwargs)

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, HfWav2Vec2ForPreTraining):
            # fairseq's final_proj / project_q keep torch's default Linear init
            module.project_hid.reset_parameters()
            module.project_q.reset_parameters()
        elif isinstance(module, GumbelVectorQuantizer):
            init.normal_(module.weight_proj.weight, mean=0.0, std=1.0)
            init.zeros_(module.weight_proj.bias)
            init.uniform_(module.codevectors)
        elif isinstance(module, PositionalConvEmbedding):
            conv = module.conv
            fan = conv.kernel_size[0] * conv.in_channels
            weight = conv.parametrizations.weight
            init.normal_(weight.original1, mean=0.0, std=2 * math.sqrt(1 / fan))
            with torch.no_grad():
                init.copy_(weight.original0, torch.linalg.vector_norm(weight.original1, dim=(0, 1), keepdim=True))
            init.zeros_(conv.bias)
        elif isinstance(module, FeatureProjection):
            bound = math.sqrt(1 / module.projection.in_features)
            init.uniform_(module.projection.weight, a=-bound, b=bound)
            init.uniform_(module.projection.bias, a=-bound, b=bound)
        elif isinstance(module, nn.Conv1d) and not hasattr(module, "parametrizations"):
            init.kaiming_normal_(module.weight)
            if module.bias is not None:
                bound = math.sqrt(module.groups / (module.in_channels * module.kernel_size[0]))
                init.uniform_(module.bias, a=-bound, b=bound)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, HfWav2Vec2Model) and module.masked_spec_embed is not None:
            init.uniform_(module.masked_spec_embed)

    def _get_feat_extract_output_lengths(self, input_lengths, add_adapter=None):
        """Frames out of the feature encoder for ``input_lengths`` samples (transformers' method, no adapters)."""
        return conv_output_lengths(input_lengths, self.config.conv_kernel, self.config.conv_stride)

    def _frame_mask(self, attention_mask, frames):
        """Sample-level attention mask (B, L) -> frame-level (B, T) bool, True for real frames."""
        lengths = self._get_feat_extract_output_lengths(attention_mask.long().sum(-1))
        return torch.arange(frames, device=attention_mask.device)[None, :] < lengths[:, None]

    def _get_feature_vector_attention_mask(self, feature_vector_length, attention_mask, add_adapter=None):
        # transformers' name, called by its pre-training collator (DataCollatorForWav2Vec2Pretraining)
        return self._frame_mask(attention_mask, feature_vector_length)

    def _check_input(self, input_values):
        if input_values.dim() != 2:
            raise ValueError(
                f"input_values must be (batch, samples), got shape {tuple(input_values.shape)}; mix audio to mono "
                "and add a batch dimension"
            )
        if input_values.shape[-1] < self.config.receptive_field:
            raise ValueError(
                f"input is {input_values.shape[-1]} samples; the model needs at least {self.config.receptive_field} "
                "(its receptive field) to produce one frame"
            )


class HfWav2Vec2Model(HfWav2Vec2PreTrainedModel):
    """Feature encoder, feature projection, SpecAugment-style masking and the transformer: the bare wav2vec 2.0."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__(config)
        self.feature_extractor = FeatureEncoder(config)
        self.feature_projection = FeatureProjection(config)
        # learned vector that replaces masked frames (fairseq mask_emb); transformers creates it only when masking
        if config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0:
            self.masked_spec_embed = nn.Parameter(torch.empty(config.hidden_size))
        else:
            self.masked_spec_embed = None
        self.encoder = Encoder(config)
        self.post_init()

    def freeze_feature_encoder(self):
        """Stop gradients into the conv feature encoder (fine-tuning keeps it frozen, as fairseq)."""
        for param in self.feature_extractor.parameters():
            param.requires_grad = False

    def extract_features(self, input_values, attention_mask=None):
        """Run the conv encoder and the projection.

        Returns conv features (B, C, T) (for the feature penalty), normed features (B, T, C), projected features
        (B, T, D) and the frame mask (B, T) (None without ``attention_mask``).
        """
        self._check_input(input_values)
        features = self.feature_extractor(input_values)
        grad_mult = self.config.feature_grad_mult
        if grad_mult == 0:
            features = features.detach()
        elif grad_mult != 1.0 and features.requires_grad:
            features = GradMultiply.apply(features, grad_mult)
        projected, normed = self.feature_projection(features.transpose(1, 2))
        frame_mask = None if attention_mask is None else self._frame_mask(attention_mask, features.shape[-1])
        return features, normed, projected, frame_mask

    def mask_hidden_states(self, hidden_states, mask_time_indices=None, frame_mask=None):
        """SpecAugment-style masking (section 3.1 / 4.4): masked frames become ``masked_spec_embed``, masked channels 0.

        Only with ``apply_spec_augment`` (as transformers). Given ``mask_time_indices`` are always applied; otherwise
        spans are sampled only in training. Channel masks are sampled only in training.
        """
        if not self.config.apply_spec_augment:
            return hidden_states
        batch, frames, _ = hidden_states.shape
        if mask_time_indices is None and self.training and self.config.mask_time_prob > 0:
            lengths = None if frame_mask is None else frame_mask.sum(-1)
            mask_time_indices = compute_mask_indices(
                (batch, frames), self.config.mask_time_prob, self.config.mask_time_length,
                self.config.mask_time_min_masks, lengths, hidden_states.device,
            )
        return self.mask_channels(self.mask_time_steps(hidden_states, mask_time_indices))

    def mask_time_steps(self, hidden_states, mask_time_indices):
        """Replace the frames of ``mask_time_indices`` (B, T) (None: none) by the learned ``masked_spec_embed``."""
        if mask_time_indices is None:
            return hidden_states
        if self.masked_spec_embed is None:
            raise ValueError("mask_time_indices given, but the config has mask_time_prob=0 (no mask embedding)")
        embed = self.masked_spec_embed.to(hidden_states.dtype)
        return torch.where(mask_time_indices[:, :, None].bool(), embed, hidden_states)

    def mask_channels(self, hidden_states):
        """Zero random channel spans (``mask_feature_prob``), in training only."""
        if not (self.training and self.config.mask_feature_prob > 0):
            return hidden_states
        batch, _, dim = hidden_states.shape
        channels = compute_mask_indices(
            (batch, dim), self.config.mask_feature_prob, self.config.mask_feature_length,
            self.config.mask_feature_min_masks, device=hidden_states.device,
        )
        return hidden_states.masked_fill(channels[:, None, :], 0.0)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """``input_values`` (B, L) at 16 kHz; ``attention_mask`` (B, L) 1 for real samples (pass it only to
        layer-norm models: group-norm encoders were trained on zero padding, fairseq #3227)."""
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        _, normed, hidden, frame_mask = self.extract_features(input_values, attention_mask)
        hidden = self.mask_hidden_states(hidden, mask_time_indices, frame_mask)
        last, states, weights = self.encoder(hidden, frame_mask, output_hidden_states, output_attentions)
        output = HfWav2Vec2BaseModelOutput(
            last_hidden_state=last, extract_features=normed, hidden_states=states, attentions=weights
        )
        return output if return_dict is not False else output.to_tuple()


class HfWav2Vec2ForPreTraining(HfWav2Vec2PreTrainedModel):
    """wav2vec 2.0 with the self-supervised objective of fairseq's ``Wav2Vec2Model`` and ``wav2vec`` criterion.

    Masks (p=``mask_time_prob``, M=``mask_time_length``) and distractors are sampled in torch on the model's device
    unless given as ``mask_time_indices`` (B, T) and ``sampled_negative_indices`` (B, T, K) in transformers'
    convention (flat indices into B*T), so the inputs of transformers' ``Wav2Vec2ForPreTraining`` (its collator,
    its ``_sample_negative_indices``, which may draw distractors from every frame) work unchanged.

    * Masks are sampled in training only, as transformers: in eval nothing is masked unless ``mask_time_indices``
      are given or ``sample_masks=True`` (e.g. for a validation loss), so eval outputs are deterministic and
      without a mask there is no loss (fairseq masks in eval too).
    * The time mask is part of the objective, not an augmentation: it is applied even with
      ``apply_spec_augment=False`` (which then only switches channel masking off). Unapplied, the model would
      predict frames it sees: a trivial task. transformers skips it there.
    * Masked padding frames carry no target: they are neither masked, scored nor counted (transformers scores them).

    Deliberate differences from transformers' ``Wav2Vec2ForPreTraining`` (fairseq is followed):

    * in training the quantizer and ``project_q`` run only on the frames the loss reads (masked frames and the
      distractors' frames), in eval on every frame;
    * the diversity loss always uses the softmax ("prob") perplexity, in eval too (transformers uses the hard code
      perplexity in eval), and is reported unscaled; the total loss scales it by the number of masked frames;
    * an L2 penalty on the conv features is added (``feature_penalty_weight``), and gradients into the conv encoder
      are scaled by ``feature_grad_mult``;
    * ablations of the paper's Table 4: ``quantize_targets=False`` (continuous targets) and ``quantize_input=True``
      (the transformer reads quantized features; the quantizer is shared, fairseq's ``same_quantizer``).
    """

    _config_checks = ("quantizer",)

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__(config)
        self.wav2vec2 = HfWav2Vec2Model(config)
        self.dropout_features = nn.Dropout(config.feat_quantizer_dropout)
        self.quantizer = GumbelVectorQuantizer(config)
        self.project_hid = nn.Linear(config.hidden_size, config.proj_codevector_dim)
        target_dim = config.codevector_dim if config.quantize_targets else config.conv_dim[-1]
        self.project_q = nn.Linear(target_dim, config.proj_codevector_dim)
        if config.quantize_input:
            self.project_inp = nn.Linear(config.codevector_dim, config.hidden_size)
        self.post_init()

    def set_gumbel_temperature(self, temperature: float):
        """Set the Gumbel softmax temperature (the training loop anneals it, ``config.gumbel_temperature_at``)."""
        self.quantizer.temperature = float(temperature)

    def freeze_feature_encoder(self):
        self.wav2vec2.freeze_feature_encoder()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        sampled_negative_indices: torch.Tensor | None = None,
        sample_masks: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """``sample_masks``: sample masks when ``mask_time_indices`` is None (default: in training only)."""
        config, base = self.config, self.wav2vec2
        features, normed, hidden, frame_mask = base.extract_features(input_values, attention_mask)
        batch, frames, _ = hidden.shape
        sample = self.training if sample_masks is None else bool(sample_masks)
        mask = self._time_mask(mask_time_indices, sample, frame_mask, (batch, frames), hidden.device)
        in_ppl = None
        if config.quantize_input:
            q_in, _, *in_ppl = self.quantizer(normed.reshape(batch * frames, -1))
            hidden = self.project_inp(q_in.view(batch, frames, -1))
        hidden = base.mask_time_steps(hidden, mask)
        if config.apply_spec_augment:
            hidden = base.mask_channels(hidden)
        output_hidden_states = bool(output_hidden_states or config.output_hidden_states)
        output_attentions = bool(output_attentions or config.output_attentions)
        context, states, weights = base.encoder(hidden, frame_mask, output_hidden_states, output_attentions)
        projected = self.project_hid(context)  # (B, T, P): every frame, as transformers' projected_states
        fields, quantized = self._objective(projected, normed, mask, sampled_negative_indices, frame_mask)
        code_ppl, prob_ppl = fields.pop("perplexities", None) or in_ppl or (torch.zeros((), device=hidden.device),) * 2
        if mask is not None:
            fields.update(self._losses(fields["logits"], features, prob_ppl))
        output = HfWav2Vec2ForPreTrainingOutput(
            **fields, code_perplexity=code_ppl, prob_perplexity=prob_ppl, mask_time_indices=mask,
            hidden_states=states, attentions=weights, projected_states=projected, projected_quantized_states=quantized,
            codevector_perplexity=prob_ppl if self.training else code_ppl,
        )
        return output if return_dict is not False else output.to_tuple()

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
            raise ValueError(f"sampled_negative_indices must be (batch, frames, K) = ({batch}, {frames}, K), got "
                             f"{tuple(negatives.shape)}")
        if ((negatives < 0) | (negatives >= batch * frames)).any():
            raise ValueError(f"sampled_negative_indices must be flat indices into batch * frames = {batch * frames}")
        return negatives.view(batch * frames, -1)

    def _losses(self, logits, features, prob_ppl):
        """Contrastive, diversity and feature-penalty terms, their weighted sum and the accuracy."""
        config = self.config
        num_masked = logits.shape[0]
        targets = torch.zeros(num_masked, dtype=torch.long, device=logits.device)
        contrastive_loss = F.cross_entropy(logits.float(), targets, reduction="sum")
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
        return dict(loss=loss, contrastive_loss=contrastive_loss, diversity_loss=diversity_loss,
                    feature_penalty=feature_penalty, accuracy=accuracy)

    def contrastive_logits(self, predictions, targets, positives, negatives, codes=None):
        """Cosine similarity of each prediction with its target and its K distractors, over the temperature.

        ``predictions`` (N, P); ``targets`` (M, P); ``positives`` (N,) and ``negatives`` (N, K) rows of ``targets``.
        A distractor identical to the positive scores -inf; for quantized targets identity is decided on the codes
        (M, G) (cheaper, and the same).
        """
        p = F.normalize(predictions.float(), dim=-1, eps=1e-8)
        t = F.normalize(targets.float(), dim=-1, eps=1e-8)
        positive = (p * t[positives]).sum(-1, keepdim=True)  # (N, 1)
        distractors = torch.einsum("np,nkp->nk", p, t[negatives])  # (N, K)
        keys = targets if codes is None else codes
        same = (keys[negatives] == keys[positives][:, None, :]).all(-1)
        distractors = distractors.masked_fill(same, float("-inf"))
        logits = torch.cat([positive, distractors], dim=-1) / self.config.contrastive_logits_temperature
        return logits.type_as(targets)


class HfWav2Vec2ForCTC(HfWav2Vec2PreTrainedModel):
    """wav2vec 2.0 with a linear CTC head over the vocabulary; the blank is ``pad_token_id``."""

    _config_checks = ("ctc",)

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__(config)
        self.wav2vec2 = HfWav2Vec2Model(config)
        self.dropout = nn.Dropout(config.final_dropout)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def freeze_feature_encoder(self):
        self.wav2vec2.freeze_feature_encoder()

    def freeze_base_model(self):
        """Freeze everything but the CTC head (fairseq's ``freeze_finetune_updates`` phase)."""
        for param in self.wav2vec2.parameters():
            param.requires_grad = False

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """``labels`` (B, S) token ids, padded with -100 (any negative id is ignored)."""
        outputs = self.wav2vec2(
            input_values, attention_mask=attention_mask, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True,
        )
        logits = self.lm_head(self.dropout(outputs.last_hidden_state))  # (B, T, V)
        loss = None
        if labels is not None:
            loss = self.ctc_loss(logits, labels, attention_mask, input_values.shape[-1])
        output = CausalLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict is not False else output.to_tuple()

    def ctc_loss(self, logits, labels, attention_mask, num_samples):
        if labels.max() >= self.config.vocab_size:
            raise ValueError(f"label ids must be < vocab_size ({self.config.vocab_size}), got {int(labels.max())}")
        if attention_mask is None:
            sample_lengths = torch.full((logits.shape[0],), num_samples, device=logits.device, dtype=torch.long)
        else:
            sample_lengths = attention_mask.long().sum(-1)
        input_lengths = self._get_feat_extract_output_lengths(sample_lengths)
        label_mask = labels >= 0
        target_lengths = label_mask.sum(-1)
        targets = labels.masked_select(label_mask)
        # fp32 log-softmax: CTC in half precision overflows (speechbrain #1803)
        log_probs = F.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)  # (T, B, V)
        with torch.backends.cudnn.flags(enabled=False):
            return F.ctc_loss(
                log_probs, targets, input_lengths, target_lengths, blank=self.config.pad_token_id,
                reduction=self.config.ctc_loss_reduction, zero_infinity=self.config.ctc_zero_infinity,
            )


__all__ = [
    "HfWav2Vec2PreTrainedModel",
    "HfWav2Vec2Model",
    "HfWav2Vec2ForPreTraining",
    "HfWav2Vec2ForCTC",
    "compute_mask_indices",
    "sample_negative_indices",
]
