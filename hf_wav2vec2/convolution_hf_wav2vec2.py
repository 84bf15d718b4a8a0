"""The conv feature encoder's kernels: its training recomputation (``ActivationThenConv``) and its convolutions
over (B, T, C) memory, either as oneDNN 2-D convolutions or as matrix products of strided frame views.

Why products of frame views: a convolution of ``K`` taps at stride ``S`` over (B, T, C) memory is, for each tap
``j``, the (T', C) view of rows ``j, j + S, j + 2 S, ...`` of a (T, C) matrix (row stride ``S * C``, which BLAS
reads as it is) times that tap's (C, C') weight. So the forward pass, the weight gradient and the input
gradient are each ``K`` products per batch row, with no copy. On a 2-core AMD EPYC with AVX2, BASE's second conv
layer at 4 x 5 s (``benchmarks/results/performance_cpu.md``): forward 475 -> 390 ms, weight gradient 705 -> 414 ms,
input gradient 724 -> 372 ms against oneDNN's (B, C, T) convolutions, whose backward runs at 70 GFLOP/s there
against the products' 120-135.

Shapes: B batch, L samples, T frames, C channels.
"""

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------------------------------
# Convolutions over (B, T, C) memory
# --------------------------------------------------------------------------------------------------------------------


def channels_last_conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # (B, C, L) -> (B, C', L')
    """``F.conv1d`` on (B, L, C) memory as a 2-D convolution over (B, C, 1, L), whose output oneDNN gives in the same
    memory order (a 1-D convolution would give (B, C, L) memory, with copies around it)."""
    weight = weight[:, :, None]  # (C_out, C_in / groups, 1, K)
    return F.conv2d(x[:, :, None], weight, bias, (1, stride), (0, padding), (1, dilation), groups).squeeze(2)


def conv_over(x, conv, channels_last):  # (B, C_in, L) -> (B, C_out, L'): ``conv(x)``, on (B, L, C) memory if asked
    if not channels_last:
        return conv(x)
    return channels_last_conv1d(
        x, conv.weight, conv.bias, conv.stride[0], conv.padding[0], conv.dilation[0], conv.groups
    )


def first_conv_frames(x, conv):  # (B, L) -> (B, T, C)
    """The first layer's convolution (one input channel) as a product of the waveform's patches, (B, T, C)."""
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    out = x.unfold(1, kernel, stride) @ conv.weight.view(conv.out_channels, kernel).T  # (B, T, K) x (K, C)
    return out if conv.bias is None else out + conv.bias


def first_conv_normed_frames(x, conv, norm):  # (B, L) -> (B, T, C): conv then a group norm of one group per channel
    """The first layer's convolution and its norm (BASE's: one group per channel) as one product of the waveform's
    patches. Per row and channel the norm is affine, ``(y - mean) * rstd * gamma + beta``, and ``y`` is linear in
    the patches, so it folds into that row's weights and bias. Its statistics come from the patches' mean and
    K x K covariance (float64), not from passes over the (B, T, C) output: at 1 x 10 s that output is 64 MB."""
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    patches = x.unfold(1, kernel, stride)  # (B, T, K), a view
    weight = conv.weight.view(conv.out_channels, kernel).double()  # (C, K); a conv bias cancels in y - mean
    p = patches.double()
    mean = p.mean(1, keepdim=True)  # (B, 1, K)
    centered = p - mean
    covariance = centered.transpose(1, 2) @ centered / p.shape[1]  # (B, K, K): the norm's variance is biased too
    variance = ((weight @ covariance) * weight).sum(-1)  # (B, C): w_c' cov w_c
    scale = torch.rsqrt(variance + norm.eps) * norm.weight.double()  # (B, C)
    folded = (weight * scale[:, :, None]).transpose(1, 2).to(x.dtype)  # (B, K, C)
    shift = (norm.bias.double() - (mean @ weight.T).squeeze(1) * scale).to(x.dtype)  # (B, C)
    return torch.baddbmm(shift[:, None], patches, folded)


def first_conv_channels_last(x, conv):  # (B, L) -> (B, C, T) over (B, T, C) memory
    return first_conv_frames(x, conv).transpose(1, 2)


def taps_of(weight):  # (C', C, K) -> (K, C', C): each tap's weight, contiguous
    return weight.permute(2, 0, 1).contiguous()


def every(x, first, stride, count):  # (T, C) -> (count, C): rows first, first + stride, ... (a view)
    return x[first::stride][:count]


def conv_frames(x, weight, bias, stride):  # (B, T, C) -> (B, T', C')
    """``F.conv1d`` (no padding, no dilation, one group) over contiguous (B, T, C) memory as products of frames."""
    batch, frames, _ = x.shape
    kernel = weight.shape[2]
    out_frames = (frames - kernel) // stride + 1
    out = x.new_empty(batch, out_frames, weight.shape[0])
    taps = taps_of(weight)
    for b in range(batch):
        rows = every(x[b], 0, stride, out_frames)
        if bias is None:
            torch.mm(rows, taps[0].T, out=out[b])
        else:
            torch.addmm(bias, rows, taps[0].T, out=out[b])
        for j in range(1, kernel):
            out[b].addmm_(every(x[b], j, stride, out_frames), taps[j].T)
    return out


def conv_frames_weight_grad(x, grad, kernel, stride):  # (B, T, C), (B, T', C') -> (C', C, K)
    """The weight gradient of :func:`conv_frames`: per tap, the output gradient's transpose times its frames."""
    batch, out_frames, out_channels = grad.shape
    taps = x.new_empty(kernel, out_channels, x.shape[2])
    for j in range(kernel):
        torch.mm(grad[0].T, every(x[0], j, stride, out_frames), out=taps[j])
        for b in range(1, batch):
            taps[j].addmm_(grad[b].T, every(x[b], j, stride, out_frames))
    return taps.permute(1, 2, 0).contiguous()


def conv_frames_input_grad(grad, weight, frames, stride):  # (B, T', C') -> (B, T, C)
    """The input gradient of :func:`conv_frames` for an input of ``frames`` frames: each tap's product is written
    (or, where an earlier tap wrote, added) straight into the frames it read."""
    batch, out_frames, _ = grad.shape
    kernel = weight.shape[2]
    taps = taps_of(weight)
    covered = kernel >= stride  # taps 0 .. stride - 1 then write every frame before stride * T'
    out = (grad.new_empty if covered else grad.new_zeros)(batch, frames, weight.shape[1])
    if covered:
        out[:, stride * out_frames :].zero_()  # read only by taps >= stride, which add
    for b in range(batch):
        for j in range(kernel):
            rows = every(out[b], j, stride, out_frames)
            if covered and j < stride:
                torch.mm(grad[b], taps[j], out=rows)
            else:
                rows.addmm_(grad[b], taps[j])
    return out


def channel_norm(norm, y):  # (B, T, C) -> (B, T, C), and the mean and 1 / std, (B, 1, C)
    """A GroupNorm of one group per channel (BASE's first layer) over (B, T, C) memory, with its statistics."""
    batch, frames, channels = y.shape
    out, mean, rstd = torch.ops.aten.native_group_norm(
        y.transpose(1, 2)[:, :, None], norm.weight, norm.bias, batch, channels, frames, channels, norm.eps
    )  # over a channels-last (B, C, 1, T) image, whose memory order group norm keeps
    return out.squeeze(2).transpose(1, 2), mean.view(batch, 1, channels), rstd.view(batch, 1, channels)


def channel_norm_backward(grad, y, mean, rstd, weight):  # (B, T, C) x 2 -> grad_y (over grad), grad_weight, grad_bias
    """The gradients of :func:`channel_norm`, ``grad`` overwritten with the input's. On (B, T, C) memory group
    norm's own backward takes about 8x this (BASE's first layer at 4 x 5 s, AVX2: 476 against 55 ms)."""
    frames = y.shape[1]
    scale = rstd * weight  # d normed / d y along the normalized direction
    grad_sum = grad.sum(1, keepdim=True)
    grad_dot_y = sum((g * x).sum(1, keepdim=True) for g, x in zip(grad.split(2048, 1), y.split(2048, 1), strict=True))
    grad_dot_normed = rstd * (grad_dot_y - mean * grad_sum)  # sum over frames of grad * (y - mean) * rstd
    grad_weight, grad_bias = grad_dot_normed.sum((0, 1)), grad_sum.sum((0, 1))
    # grad_y = scale * (grad - mean_t(grad) - normed * mean_t(grad * normed)), as scale * grad + c_y * y + c_0
    c_y = -scale * rstd * grad_dot_normed / frames
    c_0 = -scale * grad_sum / frames - c_y * mean
    return grad.mul_(scale).add_(c_0).addcmul_(y, c_y), grad_weight, grad_bias


def conv_stack_frames(layers, x):  # (B, L) -> (B, C, T) over (B, T, C) memory, without gradients
    """A conv stack's layers (``ConvLayer``) run as products of frame views: inference, or a frozen encoder."""
    first = layers[0]
    if first.norm == "group":  # folded into the first product: what is left of the layer is its GELU
        y = torch.ops.aten.gelu_(first_conv_normed_frames(x, first.conv, first.layer_norm))
    else:
        y = ActivationThenConv.finish(first, first_conv_frames(x, first.conv), True, in_place=True)
    for layer in layers[1:]:
        conv = layer.conv
        y = conv_frames(y, conv.weight, conv.bias, conv.stride[0])
        y = ActivationThenConv.finish(layer, y, True, in_place=True)
    return y.transpose(1, 2)


# --------------------------------------------------------------------------------------------------------------------
# Training: norms and GELUs recomputed
# --------------------------------------------------------------------------------------------------------------------


class ActivationThenConv(torch.autograd.Function):
    """``next_conv(layer.finish(y))`` keeping only ``y`` for the backward pass (a conv stack's memory in training).

    Plain autograd keeps three tensors of the size of a conv output per layer: the conv output (for the norm or the
    GELU), the norm's output (for the GELU) and the GELU's output (for the next conv's weight gradient). Here the
    norm and the exact GELU are recomputed from ``y`` when the backward pass reaches them, one layer at a time,
    which costs two elementwise passes and gives bit-identical gradients. ``frames``: ``y`` is (B, T, C) memory and
    the convolution runs as products of frame views (:func:`conv_frames`), its gradients likewise; else (B, C, T)
    and oneDNN's. ``params``: the next conv's weight (and bias), then the layer's norm parameters, so that autograd
    routes their gradients.
    """

    @staticmethod
    def forward(ctx, y, layer, next_conv, frames, *params):  # (B, C, L) -> (B, C', L'), or (B, L, C) -> (B, L', C')
        device = y.device.type
        ctx.layer, ctx.next_conv, ctx.frames = layer, next_conv, frames
        ctx.autocast = dict(  # replayed in the backward pass, so the recomputed tensors get the forward's dtypes
            device_type=device,
            enabled=torch.is_autocast_enabled(device),
            dtype=torch.get_autocast_dtype(device),
            cache_enabled=torch.is_autocast_cache_enabled(),
        )
        ctx.save_for_backward(y)
        with torch.no_grad():
            finished = ActivationThenConv.finish(layer, y, frames)
            if frames:
                out = conv_frames(finished, next_conv.weight, next_conv.bias, next_conv.stride[0])
            else:
                out = next_conv(finished)
        ctx.conv_dtype = out.dtype  # what the convolution computed in (bfloat16 under autocast, say)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        layer, conv, frames = ctx.layer, ctx.next_conv, ctx.frames
        with torch.no_grad(), torch.autocast(**ctx.autocast):
            finished = ActivationThenConv.finish(layer, y, frames)  # the next conv's input, for its weight gradient
        act_dtype = finished.dtype
        wanted = (ctx.needs_input_grad[4], conv.bias is not None and ctx.needs_input_grad[5])
        conv_grads, grad_in = ActivationThenConv.conv_backward(conv, grad_out, finished, y, wanted, ctx)
        # autocast's casts, undone as their backward would: each gradient in its tensor's own dtype
        grad_in = grad_in.to(act_dtype)
        params = conv.parameters()
        conv_grads = [g.to(p.dtype) if g is not None else None for g, p in zip(conv_grads, params, strict=True)]
        if frames and layer.norm == "group":
            grad_y, *norm_grads = ActivationThenConv.channel_norm_backward(layer, y, grad_in)
            return (grad_y, None, None, None, *conv_grads, *norm_grads)
        norm_params = layer.norm_parameters()
        with torch.enable_grad(), torch.autocast(**ctx.autocast):
            y_ = y.detach().requires_grad_(True)
            normed = ActivationThenConv.normalize(layer, y_, frames)
        # written over grad_in: at BASE's first layers every new tensor of this size is fresh pages from the OS
        grad_normed = torch.ops.aten.gelu_backward.grad_input(
            grad_in, normed.detach().to(act_dtype), grad_input=grad_in
        )
        grad_normed = grad_normed.to(normed.dtype)
        del grad_in
        if layer.norm is None:
            grads = (grad_normed,)
        else:
            grads = torch.autograd.grad(normed, [y_, *norm_params], grad_normed)
        return (grads[0], None, None, None, *conv_grads, *grads[1:])

    @staticmethod
    def conv_backward(conv, grad_out, finished, y, wanted, ctx):  # -> [grad weight, (grad bias)], grad of finished
        """The next conv's parameter gradients (from the rebuilt input ``finished``, which is freed before the input
        gradient, whose kernel allocates two tensors of its size) and its input gradient."""
        has_bias = conv.bias is not None
        if ctx.frames:
            grad_out = grad_out.contiguous()
            kernel, stride = conv.kernel_size[0], conv.stride[0]
            grad_weight = conv_frames_weight_grad(finished, grad_out, kernel, stride) if wanted[0] else None
            grads = [grad_weight] + [grad_out.sum((0, 1)) if wanted[1] else None] * has_bias
            del finished
            return grads, conv_frames_input_grad(grad_out, conv.weight, y.shape[1], stride)
        weight, dtype = conv.weight, ctx.conv_dtype
        conv_args = (conv.stride, conv.padding, conv.dilation, False, [0], conv.groups)
        _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad_out,
            finished.to(dtype),
            weight.to(dtype),
            [weight.shape[0]] if has_bias else None,
            *conv_args,
            [False, wanted[0], wanted[1]],
        )
        del finished
        # the input gradient reads only the input's shape (y's), not its values
        grad_in = torch.ops.aten.convolution_backward(
            grad_out, y.to(dtype), weight.to(dtype), None, *conv_args, [True, False, False]
        )[0]
        return [grad_weight] + [grad_bias] * has_bias, grad_in

    @staticmethod
    def channel_norm_backward(layer, y, grad_in):  # -> grad_y, grad_weight, grad_bias: GELU's, then the norm's
        with torch.no_grad():
            normed, mean, rstd = channel_norm(layer.layer_norm, y)
            grad_normed = torch.ops.aten.gelu_backward.grad_input(grad_in, normed, grad_input=grad_in)
            del normed
            return channel_norm_backward(grad_normed, y, mean, rstd, layer.layer_norm.weight)

    @staticmethod
    def normalize(layer, y, frames):  # ``layer.normalize`` on (B, C, L), or on (B, L, C) memory with frames
        if not frames:
            return layer.normalize(y)
        if layer.norm == "group":
            return channel_norm(layer.layer_norm, y)[0]
        return layer.normalize(y.transpose(1, 2)).transpose(1, 2)

    @staticmethod
    def finish(layer, y, frames=False, in_place=False):  # no grad: ``layer.finish(y)``, the GELU in place
        if layer.norm is None:  # on the norm's new output, or on y itself only if asked (training keeps y)
            return torch.ops.aten.gelu_(y) if in_place else F.gelu(y)
        return torch.ops.aten.gelu_(ActivationThenConv.normalize(layer, y, frames))
