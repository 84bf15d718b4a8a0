"""The conv feature encoder's training path that recomputes norms and GELUs (modules_hf_wav2vec2.ActivationThenConv)."""

import pytest
import torch
from conftest import tiny_config

from hf_wav2vec2 import HfWav2Vec2Model
from hf_wav2vec2.modules_hf_wav2vec2 import FeatureEncoder

FOUR_LAYERS = dict(conv_dim=(16, 24, 24, 16), conv_kernel=(10, 3, 3, 2), conv_stride=(5, 2, 2, 2))


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
def test_recomputing_the_conv_stack_gives_the_plain_gradients_bit_for_bit(variant, autocast):
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


def test_recomputing_keeps_only_the_conv_outputs():
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
