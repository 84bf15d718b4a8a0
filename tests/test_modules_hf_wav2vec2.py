"""The training paths that recompute instead of keeping: the conv feature encoder's norms and GELUs
(convolution_hf_wav2vec2.ActivationThenConv) and the attention core under CPU dropout
(Attention.recompute_cpu_dropout); the conv stack as products of frame views (FeatureEncoder.frame_products); and
the positional conv's backward pass as two forward convolutions (GroupedTimeConv)."""

import functools

import pytest
import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from conftest import tiny_config

from hf_wav2vec2 import HfWav2Vec2Model, convolution_hf_wav2vec2
from hf_wav2vec2.convolution_hf_wav2vec2 import (
    channel_norm,
    channel_norm_backward,
    conv_frames,
    conv_frames_input_grad,
    conv_frames_weight_grad,
    first_conv_normed_frames,
)
from hf_wav2vec2.modules_hf_wav2vec2 import (
    Attention,
    DropoutAttention,
    EncoderLayer,
    FeatureEncoder,
    FeedForward,
    GroupedTimeConv,
    PositionalConvEmbedding,
)

FOUR_LAYERS = dict(conv_dim=(16, 24, 24, 16), conv_kernel=(10, 3, 3, 2), conv_stride=(5, 2, 2, 2))


@pytest.fixture
def onednn_convs(monkeypatch):
    """The recomputing path with oneDNN's (B, C, T) convolutions, whatever this CPU's default."""
    monkeypatch.setattr(FeatureEncoder, "frame_products", False)


def graph_ops(tensor) -> set[str]:
    """Names of every backward node that produced ``tensor``."""
    names, todo, seen = set(), [tensor.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return names


def recomputes(encoder, x) -> bool:
    return "ActivationThenConvBackward" in graph_ops(encoder(x))


def saved_bytes(encoder, x) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass of ``encoder(x)``, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in encoder.parameters()}
    storages = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in params:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        encoder(x)
    return sum(storages.values())


def gradients(encoder, x, weights, recompute, autocast):
    encoder.recompute_activations = recompute
    encoder.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = encoder(x)
        assert recomputes(encoder, x) == recompute
    (out.float() * weights).sum().backward()
    return out.detach(), x.grad, {name: p.grad for name, p in encoder.named_parameters()}


# group norm on the first layer and no biases / layer norms and biases; float32, and bfloat16 autocast (whose casts
# the recomputation replays: the conv outputs it keeps are bfloat16, the norms run in float32)
@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("variant", ["base", "large"])
def test_recomputing_the_conv_stack_gives_the_plain_gradients_bit_for_bit(variant, autocast, onednn_convs):
    encoder = FeatureEncoder(tiny_config(variant, **FOUR_LAYERS)).train()
    x = torch.randn(3, 1600)
    weights = torch.randn(encoder(x).shape)
    out, x_grad, grads = gradients(encoder, x, weights, recompute=True, autocast=autocast)
    plain_out, plain_x_grad, plain_grads = gradients(encoder, x, weights, recompute=False, autocast=autocast)
    assert out.dtype == (torch.bfloat16 if autocast else torch.float32)
    assert torch.equal(out, plain_out)
    assert torch.equal(x_grad, plain_x_grad)
    assert grads.keys() == plain_grads.keys()
    for name, grad in grads.items():
        assert grad.dtype == torch.float32, name
        assert torch.equal(grad, plain_grads[name]), name
    assert any("layer_norm" in name for name in grads)  # the norm's parameters got their gradients too


def test_recomputing_keeps_only_the_conv_outputs(onednn_convs):
    config = tiny_config("base", **FOUR_LAYERS)
    encoder = FeatureEncoder(config).train()
    x = torch.randn(2, 16000)
    kept = {}
    for recompute in (True, False):
        encoder.recompute_activations = recompute
        kept[recompute] = saved_bytes(encoder, x)
    sizes, length = [], x.shape[1]  # float32 bytes of each layer's (B, C, L') output
    for channels, kernel, stride in zip(config.conv_dim, config.conv_kernel, config.conv_stride, strict=True):
        length = (length - kernel) // stride + 1
        sizes.append(4 * x.shape[0] * channels * length)
    # plain autograd also keeps the first layer's group-norm output and statistics (mean and 1/std per row and
    # channel) and every GELU output but the last
    statistics = 2 * 4 * x.shape[0] * config.conv_dim[0]
    assert kept[False] - kept[True] == 2 * sizes[0] + statistics + sum(sizes[1:-1])
    assert kept[True] < 0.5 * kept[False]


def test_the_plain_path_runs_where_recomputing_cannot_or_need_not():
    config = tiny_config("base", **FOUR_LAYERS)
    encoder = FeatureEncoder(config).train()
    x = torch.randn(2, 1600)
    with torch.no_grad():
        assert encoder(x).grad_fn is None
    for p in encoder.parameters():  # a frozen encoder (fine-tuning) builds no graph at all
        p.requires_grad_(False)
    assert encoder(x).grad_fn is None
    for p in encoder.parameters():
        p.requires_grad_(True)
    encoder.recompute_activations = False
    assert not recomputes(encoder, x)
    encoder.recompute_activations = True
    model = HfWav2Vec2Model(config).train()
    model.activation_checkpointing_enable()  # checkpointed layers recompute everything themselves
    assert not recomputes(model.feature_extractor, x)
    relu = FeatureEncoder(tiny_config("base", **FOUR_LAYERS, feat_extract_activation="relu")).train()
    assert not recomputes(relu, x)  # the backward pass is written for the exact GELU only


def channels_last_runs(encoder, x, monkeypatch, on) -> torch.Tensor:
    monkeypatch.setattr(FeatureEncoder, "channels_last", on)
    return encoder(x)


@pytest.mark.parametrize("variant", ["base", "large"])
def test_channels_last_inference_equals_the_plain_conv_stack(variant, monkeypatch, onednn_convs):
    """(B, T, C) memory throughout: the same features to float32 rounding, already in the order the caller's
    transpose wants; the first layer's conv as a product of the waveform's patches."""
    encoder = FeatureEncoder(tiny_config(variant, **FOUR_LAYERS)).eval()
    x = torch.randn(3, 1600)
    with torch.no_grad():
        plain = channels_last_runs(encoder, x, monkeypatch, False)
        ours = channels_last_runs(encoder, x, monkeypatch, True)
    assert ours.transpose(1, 2).is_contiguous()
    assert plain.is_contiguous() is (variant == "base")  # the layer norms' transposes leave LARGE's in (B, T, C)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)


def test_channels_last_only_where_no_gradient_flows_into_the_conv_stack(monkeypatch, onednn_convs):
    encoder = FeatureEncoder(tiny_config("base", **FOUR_LAYERS)).train()
    x = torch.randn(2, 1600)
    monkeypatch.setattr(FeatureEncoder, "channels_last", True)
    assert encoder(x).is_contiguous()  # training: the recomputing path, in (B, C, T) memory
    assert encoder(x.detach().requires_grad_(True)).is_contiguous()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        assert encoder(x).is_contiguous()  # autocast's own kernels
    for p in encoder.parameters():  # a frozen encoder in fine-tuning
        p.requires_grad_(False)
    frozen = encoder(x)
    assert frozen.grad_fn is None and not frozen.is_contiguous()
    with torch.no_grad():
        monkeypatch.setattr(FeatureEncoder, "channels_last", False)
        assert encoder(x).is_contiguous()


def test_channels_last_follows_the_onednn_default(monkeypatch, onednn_convs):
    encoder = FeatureEncoder(tiny_config("base", **FOUR_LAYERS)).eval()
    x = torch.randn(2, 1600)
    for value, expected_contiguous in (("1", False), ("0", True)):
        monkeypatch.setenv("HF_WAV2VEC2_ONEDNN_LINEAR", value)
        with torch.no_grad():
            assert encoder(x).is_contiguous() is expected_contiguous


# -------------------------------------------------------------------- the conv stack as products of frame views


# BASE's (3, 2) and (2, 2) layers with either parity of length, the first layer's (10, 5), and kernels shorter
# than the stride or at stride 1
SHAPES = [(3, 2, 41), (3, 2, 40), (2, 2, 17), (10, 5, 64), (2, 3, 20), (4, 1, 9)]  # (kernel, stride, frames)


@pytest.mark.parametrize("kernel,stride,frames", SHAPES)
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_frame_products_are_the_convolution_and_its_gradients(kernel, stride, frames, bias):
    torch.manual_seed(0)
    x = torch.randn(3, 5, frames, dtype=torch.float64, requires_grad=True)  # (B, C, T)
    weight = torch.randn(7, 5, kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64) if bias else None
    reference = F.conv1d(x, weight, b, stride=stride)
    grad = torch.randn_like(reference)
    reference.backward(grad)
    x_frames, grad_frames = x.detach().transpose(1, 2).contiguous(), grad.transpose(1, 2).contiguous()
    out = conv_frames(x_frames, weight.detach(), b, stride)  # (B, T', C')
    torch.testing.assert_close(out.transpose(1, 2), reference.detach(), rtol=1e-12, atol=1e-12)
    grad_weight = conv_frames_weight_grad(x_frames, grad_frames, kernel, stride)
    torch.testing.assert_close(grad_weight, weight.grad, rtol=1e-12, atol=1e-12)
    grad_x = conv_frames_input_grad(grad_frames, weight.detach(), frames, stride)  # frames past the last tap: 0
    torch.testing.assert_close(grad_x.transpose(1, 2), x.grad, rtol=1e-12, atol=1e-12)


def test_channel_norm_and_its_backward_are_group_norms():
    norm = torch.nn.GroupNorm(6, 6).double()
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    y = (3 * torch.randn(2, 4100, 6, dtype=torch.float64) + 1).requires_grad_(True)  # (B, T, C), past one chunk
    reference = norm(y.transpose(1, 2)).transpose(1, 2)
    grad = torch.randn_like(reference)
    reference.backward(grad)
    out, mean, rstd = channel_norm(norm, y.detach())
    torch.testing.assert_close(out, reference.detach(), rtol=1e-10, atol=1e-10)
    grad_y, grad_weight, grad_bias = channel_norm_backward(grad.clone(), y.detach(), mean, rstd, norm.weight.detach())
    torch.testing.assert_close(grad_y, y.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_weight, norm.weight.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_bias, norm.bias.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_the_first_norm_folds_into_the_first_product(bias):
    """Conv then a group norm of one group per channel, from the patches' statistics: each row its own."""
    conv = torch.nn.Conv1d(1, 6, 10, stride=5, bias=bias).double()
    norm = torch.nn.GroupNorm(6, 6).double()
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    # rows of different level and offset (one silent but for its offset): the statistics are per row
    x = torch.randn(3, 4003, dtype=torch.float64) * torch.tensor([[1.0], [30.0], [0.0]]) + torch.tensor(
        [[0.5], [-2.0], [1e-3]]
    )
    x[2, 100] = 1e-3 + 1e-4  # a nearly constant row: its variance is tiny, eps keeps it finite as group norm's
    with torch.no_grad():
        reference = norm(conv(x[:, None])).transpose(1, 2)  # (B, T, C)
        folded = first_conv_normed_frames(x, conv, norm)
    torch.testing.assert_close(folded, reference, rtol=1e-9, atol=1e-9)
    with torch.no_grad():  # float32: to float32 rounding of the outputs' scale
        single = first_conv_normed_frames(x.float(), conv.float(), norm.float())
    assert (single.double() - reference).abs().max() <= 1e-5 * reference.abs().max()


def frame_products_step(encoder, x, weights, on, monkeypatch):
    monkeypatch.setattr(FeatureEncoder, "frame_products", on)
    encoder.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    out = encoder(x)
    (out * weights).sum().backward()
    return out, x.grad, {name: p.grad for name, p in encoder.named_parameters()}


@pytest.mark.parametrize("length", [1600, 1999])
@pytest.mark.parametrize("variant", ["base", "large"])
def test_frame_products_train_like_the_plain_conv_stack(variant, length, monkeypatch):
    """The same features and gradients to float32 rounding, every layer on (B, T, C) memory, still recomputing."""
    encoder = FeatureEncoder(tiny_config(variant, **FOUR_LAYERS)).train()
    x = torch.randn(3, length)
    weights = torch.randn(encoder(x).shape)
    out, x_grad, grads = frame_products_step(encoder, x, weights, True, monkeypatch)
    assert out.transpose(1, 2).is_contiguous() and recomputes(encoder, x)
    plain_out, plain_x_grad, plain_grads = frame_products_step(encoder, x, weights, False, monkeypatch)
    assert plain_out.is_contiguous() is (variant == "base")
    assert grads.keys() == plain_grads.keys()
    pairs = [(out, plain_out, "features"), (x_grad, plain_x_grad, "input")]
    for name, grad in grads.items():
        pairs.append((grad, plain_grads[name], name))
    for ours, plain, name in pairs:  # float32 rounding, against each tensor's largest value
        assert (ours - plain).abs().max() <= 1e-5 * plain.abs().max(), name


def frame_product_calls(monkeypatch) -> list:
    """A list that grows by one at each call of convolution_hf_wav2vec2.conv_frames (which still runs)."""
    calls, real = [], convolution_hf_wav2vec2.conv_frames

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(convolution_hf_wav2vec2, "conv_frames", spy)
    return calls


def test_frame_products_where_products_run_on_mkl_in_float32(monkeypatch):
    encoder = FeatureEncoder(tiny_config("base", **FOUR_LAYERS)).train()
    x = torch.randn(2, 1600)
    calls = frame_product_calls(monkeypatch)

    def frames_used(**settings):
        for name, value in settings.items():
            monkeypatch.setattr(FeatureEncoder, name, value)
        calls.clear()
        out = encoder(x)
        assert out.transpose(1, 2).is_contiguous() or not calls  # (B, T, C) memory throughout
        return bool(calls)

    for value, expected in (("0", True), ("1", False)):  # None: where the products are MKL's, not oneDNN's
        monkeypatch.setenv("HF_WAV2VEC2_ONEDNN_LINEAR", value)
        assert frames_used() is expected
        with torch.no_grad():
            assert frames_used() is expected  # with "1", oneDNN's 2-D convolutions
    assert frames_used(frame_products=True)  # forced on, against the environment's 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not frames_used()  # autocast's casts run on the plain path
    with torch.no_grad():
        assert frames_used(channels_last=None)
        assert not frames_used(channels_last=True)  # asked for: oneDNN's 2-D convolutions first
    assert not frames_used(frame_products=False, channels_last=None)


@pytest.mark.parametrize("variant,activation", [("base", "gelu"), ("large", "gelu"), ("base", "relu")])
def test_frame_products_inference_equals_the_plain_conv_stack(variant, activation, monkeypatch, onednn_convs):
    # the products' path applies the exact GELU in place: any other activation takes the plain path
    encoder = FeatureEncoder(tiny_config(variant, feat_extract_activation=activation, **FOUR_LAYERS)).eval()
    x = torch.randn(3, 1999)
    monkeypatch.setattr(FeatureEncoder, "channels_last", False)
    with torch.no_grad():
        plain = encoder(x)
        monkeypatch.setattr(FeatureEncoder, "frame_products", True)
        calls = frame_product_calls(monkeypatch)
        ours = encoder(x)
    if activation == "gelu":
        assert len(calls) == len(FOUR_LAYERS["conv_dim"]) - 1 and ours.transpose(1, 2).is_contiguous()
    else:
        assert not calls and (plain == 0).any()  # a ReLU's zeros: the activation really is the config's
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- the feed-forward


def test_the_feed_forward_runs_in_chunks_of_rows_only_without_gradients(monkeypatch):
    feed_forward = FeedForward(tiny_config()).eval()
    calls = []
    feed_forward.intermediate_dense.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    monkeypatch.setattr(FeedForward, "chunk_rows", 7)
    x = torch.randn(3, 11, feed_forward.intermediate_dense.in_features)  # 33 positions: 4 chunks of 7, one of 5
    with torch.no_grad():
        chunked = feed_forward(x)
    assert calls == [7, 7, 7, 7, 5]
    calls.clear()
    whole = feed_forward(x)  # with gradients: one product over the batch, which autograd keeps for backward
    assert calls == [3] and whole.requires_grad
    torch.testing.assert_close(chunked, whole.detach(), rtol=1e-6, atol=1e-6)
    calls.clear()
    with torch.no_grad():
        feed_forward(x[:, :2])  # 6 positions: one chunk's worth, the plain call
        monkeypatch.setattr(FeedForward, "chunk_rows", None)
        feed_forward(x)
    assert calls == [3, 3]


# ------------------------------------------------------------------------------------------- the attention core


def layer_step(layer, x, recompute, checkpointed=False):
    """(output, input gradient, parameter gradients, bytes kept for backward) of one training step of ``layer``."""
    Attention.recompute_cpu_dropout = recompute
    layer.gradient_checkpointing = checkpointed  # as model.gradient_checkpointing_enable() sets it
    layer._gradient_checkpointing_func = functools.partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)
    sizes = []
    try:
        torch.manual_seed(3)  # the dropout masks
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: sizes.append(t.untyped_storage().nbytes()) or t, lambda t: t
        ):
            out, _ = layer(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    finally:
        Attention.recompute_cpu_dropout = True
        layer.gradient_checkpointing = False
    grads = [p.grad.clone() for p in layer.parameters()]
    gx, x.grad = x.grad.clone(), None
    layer.zero_grad(set_to_none=True)
    return out.detach(), gx, grads, sum(sizes)


def reference_core(q, k, v, key_mask, scaling, p):
    """The core written out for autograd, its mask drawn as DropoutAttention draws it."""
    scores = (q @ k.transpose(-1, -2)) * scaling
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
    probs = scores.softmax(-1)
    keep = ~(torch.rand_like(probs) < p)
    return (probs * keep / (1 - p)) @ v, keep


@pytest.mark.parametrize("padded", [False, True])
def test_dropout_attention_matches_autograd_on_the_same_mask(padded):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 20, 8, generator=g, requires_grad=True) for _ in range(3))
    key_mask = (torch.arange(20) < torch.tensor([[20], [13]]))[:, None, None, :] if padded else None
    torch.manual_seed(5)
    out = DropoutAttention.apply(q, k, v, key_mask, 0.35, 0.3)
    torch.manual_seed(5)
    expected, keep = reference_core(q, k, v, key_mask, 0.35, 0.3)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert abs((~keep).float().mean().item() - 0.3) < 0.03  # the dropout rate asked for
    weights = torch.randn(out.shape, generator=g)
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v))
    for got, want in zip(grads, torch.autograd.grad((expected * weights).sum(), (q, k, v)), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    if padded:  # padded keys get no probability and no gradient
        assert torch.all(grads[1][1, :, 13:] == 0) and torch.all(grads[2][1, :, 13:] == 0)


@pytest.mark.parametrize("pre_ln", [False, True])
def test_the_layer_keeps_a_byte_mask_instead_of_three_float_tensors(pre_ln):
    config = tiny_config(attention_dropout=0.3, hidden_dropout=0.0, do_stable_layer_norm=pre_ln)
    torch.manual_seed(0)
    layer = EncoderLayer(config).train()
    x = torch.randn(2, 40, config.hidden_size, requires_grad=True)
    out, gx, grads, kept = layer_step(layer, x, recompute=True)
    _, _, _, plain_kept = layer_step(layer, x, recompute=False)
    probs = 2 * config.num_attention_heads * 40 * 40
    assert plain_kept - kept >= 3 * probs * 4 - probs
    assert torch.isfinite(gx).all() and all(torch.isfinite(g).all() for g in grads)
    torch.manual_seed(3)  # layer_step's seed: the same masks, the same output
    assert torch.equal(layer(x)[0], out)
    torch.manual_seed(4)  # the dropout really acts: another seed, another output
    assert not torch.equal(layer(x)[0], out)


def test_the_plain_attention_core_runs_where_nothing_needs_recomputing():
    config = tiny_config(attention_dropout=0.3, hidden_dropout=0.0)
    attention = EncoderLayer(config).train().attention
    q = torch.randn(2, config.num_attention_heads, 40, 8, requires_grad=True)
    assert attention._recomputes("sdpa", 0.3, q)
    assert not attention._recomputes("eager", 0.3, q)  # eager is asked for to see the probabilities
    assert not attention._recomputes("sdpa", 0.0, q)  # no dropout (or eval): the CPU flash kernel keeps little
    assert not attention._recomputes("sdpa", 1.0, q)  # everything dropped: F.dropout's zeros
    assert not attention._recomputes("sdpa", 0.3, q.detach())  # no gradient wanted
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the casts are autocast's business: the plain path
        assert not attention._recomputes("sdpa", 0.3, q)


def test_a_checkpointed_layer_draws_the_same_dropout_masks():
    # checkpointing must not change what is trained: the same masks, so the same outputs and gradients
    config = tiny_config(attention_dropout=0.3, hidden_dropout=0.0)
    torch.manual_seed(0)
    layer = EncoderLayer(config).train()
    x = torch.randn(2, 40, config.hidden_size, requires_grad=True)
    out, gx, grads, kept = layer_step(layer, x, recompute=True, checkpointed=True)
    plain_out, plain_gx, plain_grads, _ = layer_step(layer, x, recompute=True)
    assert torch.equal(out, plain_out) and torch.equal(gx, plain_gx)
    assert all(torch.equal(a, b) for a, b in zip(grads, plain_grads, strict=True))
    assert kept <= x.numel() * 4  # the checkpoint keeps the layer's input only


# ---------------------------------------------------------------------------------------------- positional conv


@pytest.mark.parametrize("channels_last", [False, True], ids=["BCT", "BTC"])
@pytest.mark.parametrize("kernel, groups, bias", [(8, 4, True), (7, 2, False), (1, 1, True), (5, 8, True)])
def test_grouped_time_conv_gives_autograds_gradients(kernel, groups, bias, channels_last):
    torch.manual_seed(0)
    x = torch.randn(3, 11, 16, dtype=torch.float64).transpose(1, 2)  # (B, C, T) over (B, T, C) memory
    x = (x if channels_last else x.contiguous()).requires_grad_(True)
    weight = torch.randn(24, 16 // groups, kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(24, dtype=torch.float64, requires_grad=True) if bias else None
    padding = kernel // 2
    ours = GroupedTimeConv.apply(x, weight, b, padding, groups, channels_last)
    plain = torch.nn.functional.conv1d(x, weight, b, padding=padding, groups=groups)
    torch.testing.assert_close(ours, plain, rtol=1e-12, atol=1e-12)
    assert ours.is_contiguous() is not channels_last  # the 2-D convolution keeps (B, T, C) memory
    grad = torch.randn_like(plain)
    inputs = [x, weight] + ([b] if bias else [])
    expected = torch.autograd.grad(plain, inputs, grad)
    got = torch.autograd.grad(ours, inputs, grad)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
    # only what is asked for: the input alone
    alone = GroupedTimeConv.apply(x, weight.detach(), None, padding, groups, channels_last)
    (alone,) = torch.autograd.grad(alone, [x], grad)
    plain = torch.nn.functional.conv1d(x, weight.detach(), None, padding=padding, groups=groups)
    torch.testing.assert_close(alone, torch.autograd.grad(plain, [x], grad)[0], rtol=1e-12, atol=1e-12)


def _positional(**overrides):
    config = tiny_config(num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, **overrides)
    torch.manual_seed(0)
    return PositionalConvEmbedding(config).double()


def test_the_positional_conv_trains_through_two_forward_convolutions_with_the_plain_gradients():
    module = _positional()
    x = torch.randn(2, 9, module.conv.in_channels, dtype=torch.float64, requires_grad=True)
    out = module(x)
    assert "GroupedTimeConvBackward" in graph_ops(out) and "ConvolutionBackward0" not in graph_ops(out)
    grad = torch.randn_like(out)
    params = [x, *module.parameters()]
    ours = torch.autograd.grad(out, params, grad)
    module.conv_backward_as_convs = False
    plain_out = module(x)
    assert "ConvolutionBackward0" in graph_ops(plain_out)
    torch.testing.assert_close(out, plain_out, rtol=0, atol=0)
    for o, p in zip(ours, torch.autograd.grad(plain_out, params, grad), strict=True):
        torch.testing.assert_close(o, p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("train", [True, False], ids=["training", "inference"])
def test_the_positional_conv_on_channels_last_memory_equals_the_plain_one(train, monkeypatch):
    module = _positional().float().train(train)
    x = torch.randn(2, 9, module.conv.in_channels, requires_grad=train)
    results = []
    for on in (True, False):
        monkeypatch.setattr(PositionalConvEmbedding, "channels_last", on)
        with torch.set_grad_enabled(train):
            out = module(x)
        assert ("GroupedTimeConvBackward" in graph_ops(out)) is train
        results.append((out, torch.autograd.grad(out, [x, *module.parameters()], out) if train else ()))
    (out, grads), (plain, plain_grads) = results
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_plain_positional_conv_runs_under_autocast_and_without_gradients():
    module = _positional().float()
    x = torch.randn(2, 9, module.conv.in_channels, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert "GroupedTimeConvBackward" not in graph_ops(module(x))
    with torch.no_grad():
        assert module(x).grad_fn is None
    frozen = x.detach()
    for p in module.parameters():
        p.requires_grad_(False)
    assert module(frozen).grad_fn is None  # nothing to differentiate: the plain conv
