"""The building blocks of wav2vec 2.0 (paper section 2): conv feature encoder, feature projection, positional
convolution and the transformer (context network), with transformers' parameter names.

Shapes in comments: B batch, L samples, T frames, C conv channels, D hidden size.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import logging

from .configuration_hf_wav2vec2 import HfWav2Vec2Config
from .convolution_hf_wav2vec2 import (
    ActivationThenConv,
    channels_last_conv1d,
    conv_over,
    conv_stack_frames,
    first_conv_channels_last,
    first_conv_frames,
)
from .linear_hf_wav2vec2 import Linear, eager_cpu_float32, onednn_default, onednn_wanted

logger = logging.get_logger(__name__)


def conv_output_lengths(lengths, conv_kernel, conv_stride):
    """Frames produced by the conv feature encoder for inputs of ``lengths`` samples (int or tensor)."""
    for kernel, stride in zip(conv_kernel, conv_stride, strict=True):
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


class ConvLayer(GradientCheckpointingLayer):
    """One temporal convolution of the feature encoder, with optional norm, then the activation (checkpointable:
    its output, (B, C, L') at the highest frame rates of the model, is the largest activation of a training step).

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

    def forward(self, x, channels_last=False):  # (B, C_in, L) -> (B, C_out, L')
        return self.finish(conv_over(x, self.conv, channels_last))

    def normalize(self, x):  # (B, C, L) -> (B, C, L): the norm alone (identity without one)
        if self.norm == "group":  # on (B, L, C) memory as a channels-last image, which group norm keeps
            return self.layer_norm(x) if x.is_contiguous() else self.layer_norm(x[:, :, None]).squeeze(2)
        if self.norm == "layer":
            return self.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        return x

    def finish(self, x):  # (B, C, L) -> (B, C, L): what follows the convolution
        return self.activation(self.normalize(x))

    def norm_parameters(self) -> list:
        return list(self.layer_norm.parameters()) if self.norm is not None else []


class FeatureEncoder(nn.Module):
    """The 7-layer conv encoder f: X -> Z (paper section 2).

    In training it runs its layers through :class:`ActivationThenConv` (a third of the plain activation memory,
    the same gradients, under autocast too) whenever it can: the activation is the exact GELU (every wav2vec 2.0
    checkpoint's), and no layer is checkpointed (leaner still) or compiled (the compiler chooses what to
    recompute). ``recompute_activations = False`` turns it off (for a wrapper that frees parameters between the
    forward and the backward pass, say).
    """

    recompute_activations = True
    # float32 on a CPU, in training's recomputing path and without gradients alike: every layer on (B, T, C) memory,
    # its convolution as products of strided frame views (convolution_hf_wav2vec2.conv_frames), their gradients
    # likewise. Where products run on MKL (AMD EPYC with AVX2), BASE at 4 x 5 s: a pre-training step 11.2 -> 9.3 s
    # (oneDNN's backward convolutions run at about 70 GFLOP/s there, the products at 120-135); the stack's forward
    # at 1 x 10 s 0.71 -> 0.55 s. None: where oneDNN products are not preferred (linear_hf_wav2vec2.onednn_default).
    frame_products: bool | None = None
    # without gradients into it (inference, a frozen encoder in fine-tuning), float32 on a CPU: (B, T, C) memory for
    # every layer as oneDNN 2-D convolutions, which run about 1.4x faster there (AMD EPYC with AVX-512) and give
    # the output in the order the caller wants. True: before frame products too; None: where oneDNN products are
    # preferred (linear_hf_wav2vec2.onednn_default). Not in training: there oneDNN's weight gradient and the group
    # norm's backward on that memory are slower than the time saved.
    channels_last: bool | None = None

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.exact_gelu = config.feat_extract_activation == "gelu"
        dims = [1, *config.conv_dim]
        layers = []
        for i, (kernel, stride) in enumerate(zip(config.conv_kernel, config.conv_stride, strict=True)):
            norm = "layer" if config.feat_extract_norm == "layer" else ("group" if i == 0 else None)
            layers.append(
                ConvLayer(dims[i], dims[i + 1], kernel, stride, config.conv_bias, norm, config.feat_extract_activation)
            )
        self.conv_layers = nn.ModuleList(layers)

    def forward(self, input_values):  # (B, L) -> (B, C, T)
        layers, x = self.conv_layers, input_values[:, None]
        frames = self._frame_products(input_values)
        if self._without_gradients(input_values):  # inference, or a frozen encoder in fine-tuning
            if frames and self.exact_gelu and self.channels_last is not True:  # it applies the GELU in place
                return conv_stack_frames(layers, input_values)
            if onednn_wanted(self.channels_last):
                x = layers[0].finish(first_conv_channels_last(input_values, layers[0].conv))
                for layer in layers[1:]:
                    x = layer(x, True)
                return x
        if not self._recomputes(x):
            for layer in layers:
                x = layer(x)
            return x
        # plain autograd for the first convolution: what it keeps is the one-channel waveform (or its patches)
        x = first_conv_frames(input_values, layers[0].conv) if frames else layers[0].conv(x)
        for layer, following in zip(layers[:-1], layers[1:], strict=True):
            conv = following.conv
            params = [conv.weight] + ([conv.bias] if conv.bias is not None else []) + layer.norm_parameters()
            x = ActivationThenConv.apply(x, layer, conv, frames, *params)
        return layers[-1].finish(x.transpose(1, 2) if frames else x)

    def _without_gradients(self, x) -> bool:  # float32 on a CPU, eager, and no gradient flows into the stack
        if not eager_cpu_float32(x):
            return False
        return not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in self.parameters()))

    def _frame_products(self, x) -> bool:
        if not eager_cpu_float32(x):  # first: a compiler would trace the setting's environment lookup
            return False
        return not onednn_default() if self.frame_products is None else self.frame_products

    def _recomputes(self, x) -> bool:
        return (
            self.recompute_activations
            and self.exact_gelu
            and torch.is_grad_enabled()
            and any(p.requires_grad for p in self.parameters())
            and not any(layer.gradient_checkpointing or layer._compiled_call_impl for layer in self.conv_layers)
        )


class FeatureProjection(nn.Module):
    """LayerNorm over conv channels, then the projection to the transformer width (fairseq ``post_extract_proj``)."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = Linear(config.conv_dim[-1], config.hidden_size)
        self.dropout = nn.Dropout(config.feat_proj_dropout)

    def forward(self, features):  # (B, T, C) -> (B, T, D), (B, T, C)
        normed = self.layer_norm(features)
        return self.dropout(self.projection(normed)), normed


class PositionalConvEmbedding(nn.Module):
    """Relative positional information from a grouped, weight-normed convolution over time (fairseq ``pos_conv``).

    In CPU training the convolution runs as :class:`GroupedTimeConv` (a backward pass of two forward convolutions,
    the same gradients); ``conv_backward_as_convs = False`` turns it off, and under autocast or compilation the
    plain convolution runs.
    """

    conv_backward_as_convs = True
    # the convolution on the hidden states' own (B, T, D) memory, as a 2-D oneDNN convolution, float32 on a CPU:
    # BASE at 8 x 10 s 187 -> 79 ms, no transposing copies (AMD EPYC with AVX-512); None: where oneDNN products are
    # preferred (linear_hf_wav2vec2.onednn_default)
    channels_last: bool | None = None

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        kernel = config.num_conv_pos_embeddings
        conv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel,
            padding=kernel // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        # weight norm over the kernel dimension (dim=2), as fairseq
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if kernel % 2 == 0 else 0  # "same" padding for an even kernel leaves one step too many
        self.activation = ACT2FN[config.feat_extract_activation]

    def forward(self, x):  # (B, T, D) -> (B, T, D)
        x, conv = x.transpose(1, 2), self.conv
        channels_last = eager_cpu_float32(x) and onednn_wanted(self.channels_last)
        if self._backward_as_convs(x):
            y = GroupedTimeConv.apply(x, conv.weight, conv.bias, conv.padding[0], conv.groups, channels_last)
        else:
            y = conv_over(x, conv, channels_last)
        if self.trim:
            y = y[:, :, : -self.trim]
        return self.activation(y).transpose(1, 2)

    def _backward_as_convs(self, x) -> bool:
        return (
            self.conv_backward_as_convs
            and x.device.type == "cpu"
            and torch.is_grad_enabled()
            and (x.requires_grad or any(p.requires_grad for p in self.conv.parameters()))
            and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling()
        )


class GroupedTimeConv(torch.autograd.Function):
    """``F.conv1d(x, weight, bias, padding=padding, groups=groups)`` at stride 1, whose backward pass is two forward
    convolutions: (B, C, T) -> (B, C', T + 2 * padding - K + 1).

    oneDNN's backward of the positional conv (BASE: 768 channels, 16 groups, 128 taps) takes about three times its
    forward on the CPU, about 1.5 times what the two convolutions below take. The input gradient is the output
    gradient correlated with the flipped kernel (inputs and outputs swapped within each group); the weight
    gradient is the padded input correlated with the output gradient, the batch as the channels summed over and
    the input channels as the batch.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding, groups, channels_last=False):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.groups, ctx.has_bias, ctx.channels_last = padding, groups, bias is not None, channels_last
        return GroupedTimeConv.conv(x, weight, bias, padding, groups, channels_last)

    @staticmethod
    def conv(x, weight, bias, padding, groups, channels_last):  # stride 1; channels-last: as a 2-D convolution
        if not channels_last:
            return F.conv1d(x, weight, bias, padding=padding, groups=groups)
        return channels_last_conv1d(x, weight, bias, padding=padding, groups=groups)

    @staticmethod
    def backward(ctx, grad):  # grad (B, C', T')
        x, weight = ctx.saved_tensors
        pad, groups = ctx.padding, ctx.groups
        out_channels, per_group_in, kernel = weight.shape
        per_group_out, (batch, _, frames) = out_channels // groups, grad.shape
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            flipped = weight.view(groups, per_group_out, per_group_in, kernel).transpose(1, 2).flip(-1)
            flipped = flipped.reshape(groups * per_group_in, per_group_out, kernel)
            grad_x = GroupedTimeConv.conv(grad, flipped, None, kernel - 1 - pad, groups, ctx.channels_last)  # (B, C, T)
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (pad, pad)).view(batch, groups, per_group_in, -1)
            inputs = padded.permute(2, 1, 0, 3).reshape(per_group_in, groups * batch, -1)  # (C/g, g*B, T + 2 pad)
            kernels = grad.reshape(batch, groups, per_group_out, frames).permute(1, 2, 0, 3)
            kernels = kernels.reshape(out_channels, batch, frames)  # (C', B, T')
            grad_weight = F.conv1d(inputs, kernels, groups=groups)  # (C/g, C', K)
            grad_weight = grad_weight.view(per_group_in, groups, per_group_out, kernel).permute(1, 2, 0, 3)
            grad_weight = grad_weight.reshape(weight.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2))
        return grad_x, grad_weight, grad_bias, None, None, None


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """Attention written out, the probabilities returned: (B, H, T, d) each -> (B, T, H, d), (B, H, T, T).

    ``attention_mask``: (B, 1, 1, T) bool, True for keys to attend to (the signature of transformers' interface).
    """
    weights = attention_probabilities(query, key, attention_mask, scaling)
    out = F.dropout(weights, dropout, module.training) @ value
    return out.transpose(1, 2), weights


def attention_probabilities(query, key, attention_mask, scaling):  # (B, H, T, d) x 2 -> (B, H, T, T)
    """The softmax over the keys of the scaled scores, masked keys at the dtype's minimum (in place on the fresh
    scores: neither product needs them for its backward)."""
    scores = torch.matmul(query, key.transpose(-1, -2)).mul_(scaling)
    if attention_mask is not None:
        scores.masked_fill_(~attention_mask, torch.finfo(scores.dtype).min)
    return scores.softmax(-1)


class Attention(nn.Module):
    """Multi-head self-attention; ``config._attn_implementation`` picks the kernel ("eager" or "sdpa", the default).

    It is read at every call, so ``model.set_attn_implementation`` takes effect at once. ``output_attentions`` needs
    the probabilities: with any other kernel that call falls back to eager, with a warning (transformers 4's
    behaviour; transformers 5 returns no weights then).

    In CPU training with attention dropout, sdpa has no fused kernel and its math fallback keeps three (B, H, T, T)
    float tensors for backward (the probabilities, the dropout mask, their product: 36 of the 49 MB a BASE layer
    keeps at 4 x 5 s). There :class:`DropoutAttention` runs the core instead, keeping a one-byte mask, checkpointed
    layer or not, so that checkpointing leaves the dropout masks as they were (``recompute_cpu_dropout = False``
    turns it off; under autocast the plain path runs).
    """

    is_causal = False  # read by transformers' sdpa function, which would otherwise apply a causal mask
    recompute_cpu_dropout = True

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.q_proj = Linear(config.hidden_size, config.hidden_size)
        self.k_proj = Linear(config.hidden_size, config.hidden_size)
        self.v_proj = Linear(config.hidden_size, config.hidden_size)
        self.out_proj = Linear(config.hidden_size, config.hidden_size)

    def forward(self, x, key_padding_mask=None, output_attentions=False):
        """``key_padding_mask``: (B, T) bool, True for real frames. Returns (B, T, D) and optional (B, H, T, T)."""
        batch, frames, dim = x.shape

        def heads(t):  # (B, T, D) -> (B, H, T, d)
            return t.view(batch, frames, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]  # (B, 1, 1, T)
        implementation = self.config._attn_implementation or "sdpa"
        if output_attentions and implementation != "eager":
            logger.warning_once(
                f"output_attentions=True needs eager attention: falling back from {implementation} "
                "for those calls (set attn_implementation='eager' to silence this)"
            )
            implementation = "eager"
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        dropout = self.dropout if self.training else 0.0
        if self._recomputes(implementation, dropout, q):
            out, weights = DropoutAttention.apply(q, k, v, mask, self.scaling, dropout).transpose(1, 2), None
        else:
            out, weights = attention(self, q, k, v, mask, scaling=self.scaling, dropout=dropout)
        return self.out_proj(out.reshape(batch, frames, dim)), weights if output_attentions else None

    def _recomputes(self, implementation, dropout, q) -> bool:
        return (
            self.recompute_cpu_dropout
            and implementation == "sdpa"
            and 0 < dropout < 1  # (1 drops everything: F.dropout's zeros)
            and q.device.type == "cpu"
            and torch.is_grad_enabled()
            and q.requires_grad
            and not torch.is_autocast_enabled("cpu")
        )


class DropoutAttention(torch.autograd.Function):
    """``dropout(softmax(q k^T * scaling)) v`` keeping q, k, v and the dropout mask as bytes for backward:
    (B, H, T, d) each -> (B, H, T, d); ``key_mask`` (B, 1, 1, T) bool, True for keys to attend to, or None.

    Autograd (sdpa's math path or the eager one) keeps the probabilities, the mask and the dropped probabilities as
    floats. Here the scores and the softmax are recomputed when backward reaches the core (one more (T, d) x
    (d, T) product per head, a few percent of the layer) and the mask is drawn as ``uniform < p`` (dropped),
    cheaper on CPU than ``F.dropout``'s Bernoulli draw.
    """

    @staticmethod
    def forward(ctx, q, k, v, key_mask, scaling, p):
        probs = attention_probabilities(q, k, key_mask, scaling)
        dropped = torch.rand_like(probs) < p  # (B, H, T, T) bool; masked_fill, unlike a product, casts no mask
        out = torch.matmul(probs.masked_fill_(dropped, 0.0).mul_(1.0 / (1.0 - p)), v)
        ctx.save_for_backward(q, k, v, dropped, key_mask)
        ctx.scaling, ctx.p = scaling, p
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, dropped, key_mask = ctx.saved_tensors
        scale = 1.0 / (1.0 - ctx.p)
        probs = attention_probabilities(q, k, key_mask, ctx.scaling)
        grad_v = torch.matmul(probs.masked_fill(dropped, 0.0).mul_(scale).transpose(-1, -2), grad_out)
        grad_kept = torch.matmul(grad_out, v.transpose(-1, -2)).masked_fill_(dropped, 0.0).mul_(scale)
        grad_scores = torch._softmax_backward_data(grad_kept, probs, -1, probs.dtype)
        del probs, grad_kept
        if key_mask is not None:
            grad_scores.masked_fill_(~key_mask, 0.0)  # masked_fill's gradient: none through the filled scores
        grad_scores.mul_(ctx.scaling)
        grad_q = torch.matmul(grad_scores, k)
        grad_k = torch.matmul(grad_scores.transpose(-1, -2), q)
        return grad_q, grad_k, grad_v, None, None, None


class FeedForward(nn.Module):
    """A transformer block's position-wise feed-forward network, D -> intermediate -> D.

    Without gradients (float32, eager, CPU) it runs ``chunk_rows`` positions at a time. A whole batch's
    intermediate is a fresh block each layer (BASE at 8 x 10 s: 49 MB, above glibc's largest mmap threshold, so
    the kernel faults in and zeroes its pages every time); a chunk's (6 MB) is reused from the heap and stays in
    the cache. BASE's twelve feed-forwards at 8 x 10 s, 2-core AVX2 EPYC: 3.75 -> 3.16 s, 288 000 -> 0 page
    faults, the same outputs (``benchmarks/results/performance_cpu.md``, session 21). None: whole batches.
    """

    chunk_rows: int | None = 512

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.intermediate_dense = Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]
        self.intermediate_dropout = nn.Dropout(config.activation_dropout)
        self.output_dense = Linear(config.intermediate_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x):  # (B, T, D) -> (B, T, D)
        rows = self.chunk_rows
        if rows is None or torch.is_grad_enabled() or not eager_cpu_float32(x) or x.shape[:-1].numel() <= rows:
            return self._rows(x)
        flat = x.reshape(-1, x.shape[-1])  # (B T, D)
        out = torch.empty_like(flat)
        for start in range(0, flat.shape[0], rows):
            out[start : start + rows] = self._rows(flat[start : start + rows])
        return out.view(x.shape)

    def _rows(self, x):  # (..., D) -> (..., D)
        x = self.intermediate_dropout(self.intermediate_act_fn(self.intermediate_dense(x)))
        return self.output_dropout(self.output_dense(x))


class AttnAdapterLayer(nn.Module):
    """MMS's per-language bottleneck adapter (Pratap et al., 2023), transformers' ``Wav2Vec2AttnAdapterLayer``:
    LayerNorm -> Linear(D -> ``adapter_attn_dim``) -> ReLU -> Linear(-> D), added to a layer's output.

    The norm keeps torch's default epsilon (1e-5), not ``layer_norm_eps``: so do transformers and fairseq's
    ``AdapterFast``, whose MMS weights this must reproduce.
    """

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size)
        self.linear_1 = Linear(config.hidden_size, config.adapter_attn_dim)
        self.act_fn = nn.ReLU()
        self.linear_2 = Linear(config.adapter_attn_dim, config.hidden_size)

    def forward(self, x):  # (B, T, D) -> (B, T, D)
        return self.linear_2(self.act_fn(self.linear_1(self.norm(x))))


class EncoderLayer(GradientCheckpointingLayer):
    """A transformer block; ``layer_norm_first`` selects pre-LN (LARGE, "stable layer norm") over post-LN (BASE).

    With ``config.adapter_attn_dim`` (MMS; pre-LN only) the block ends with ``x + adapter_layer(x)``.
    """

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__()
        self.layer_norm_first = config.do_stable_layer_norm
        self.attention = Attention(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        adapter = getattr(config, "adapter_attn_dim", None) is not None and self.layer_norm_first
        self.adapter_layer = AttnAdapterLayer(config) if adapter else None

    def forward(self, x, key_padding_mask=None, output_attentions=False):  # (B, T, D) -> (B, T, D)
        residual = x
        if self.layer_norm_first:
            x, weights = self.attention(self.layer_norm(x), key_padding_mask, output_attentions)
            x = residual + self.dropout(x)
            x = x + self.feed_forward(self.final_layer_norm(x))
            if self.adapter_layer is not None:
                x = x + self.adapter_layer(x)
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
        return (
            x,
            (tuple(all_states) if output_hidden_states else None),
            (tuple(all_weights) if output_attentions else None),
        )


__all__ = [
    "conv_output_lengths",
    "GradMultiply",
    "ConvLayer",
    "ActivationThenConv",
    "FeatureEncoder",
    "FeatureProjection",
    "PositionalConvEmbedding",
    "eager_attention_forward",
    "Attention",
    "FeedForward",
    "AttnAdapterLayer",
    "EncoderLayer",
    "Encoder",
]
