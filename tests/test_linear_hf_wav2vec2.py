"""linear_hf_wav2vec2.Linear: the oneDNN product equals F.linear's (values and gradients), is taken exactly where
the module docstring says, and leaves models' outputs, losses, state dicts and ONNX graphs as they were."""

import pytest
import torch
import torch.nn.functional as F
from conftest import NO_DROPOUT, tiny_config
from torch.overrides import TorchFunctionMode

from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining
from hf_wav2vec2 import linear_hf_wav2vec2 as lin
from hf_wav2vec2.linear_hf_wav2vec2 import Linear, onednn_default, onednn_linear
from hf_wav2vec2.modules_hf_wav2vec2 import FeatureEncoder, PositionalConvEmbedding


class Calls(TorchFunctionMode):
    """Records which of F.linear and F.conv2d run."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (F.linear, F.conv2d):
            self.names.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def onednn(monkeypatch):
    """oneDNN on for every size (the tiny models' products are below ONEDNN_MIN_MACS)."""
    monkeypatch.setattr(Linear, "onednn", True)
    monkeypatch.setattr(lin, "ONEDNN_MIN_MACS", 0)


def path_taken(module, x) -> list:
    with Calls() as calls:
        module(x)
    return calls.names


@pytest.mark.parametrize("shape", [(7, 24), (3, 5, 24), (2, 3, 4, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_onednn_product_and_gradients_equal_linear(shape, bias):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(10, 24, dtype=torch.float64, requires_grad=True)
    b = torch.randn(10, dtype=torch.float64, requires_grad=True) if bias else None
    g = torch.randn(*shape[:-1], 10, dtype=torch.float64)
    inputs = [t for t in (x, w, b) if t is not None]
    ours = onednn_linear(x, w, b)
    ref = F.linear(x, w, b)
    assert ours.shape == ref.shape and ours.is_contiguous()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for a, r in zip(torch.autograd.grad(ours, inputs, g), torch.autograd.grad(ref, inputs, g), strict=True):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


def test_float32_cpu_takes_onednn_and_agrees_to_rounding(onednn):
    layer = Linear(48, 40)
    x = torch.randn(6, 9, 48)
    assert path_taken(layer, x) == ["conv2d"]
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_where_the_plain_product_stays(onednn, monkeypatch):
    layer = Linear(48, 40)
    x = torch.randn(6, 9, 48)
    assert path_taken(layer.double(), x.double()) == ["linear"]  # float32 only
    layer.float()
    assert path_taken(layer, x.transpose(0, 1)) == ["linear"]  # a non-contiguous input would be copied
    assert path_taken(layer, x[0, 0]) == ["linear"]  # a single vector
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert path_taken(layer, x) == ["linear"]  # autocast's own casts and kernels
    monkeypatch.setattr(lin, "ONEDNN_MIN_MACS", 6 * 9 * 48 * 40 + 1)
    assert path_taken(layer, x) == ["linear"]  # too small to pay the set-up
    monkeypatch.setattr(lin, "ONEDNN_MIN_MACS", 0)
    monkeypatch.setattr(Linear, "onednn", False)
    assert path_taken(layer, x) == ["linear"]


def test_traced_and_exported_graphs_keep_linear(onednn):
    """The ONNX export goes through torch.export; its int8 pass quantizes MatMuls, not 1x1 convolutions."""
    layer = Linear(48, 40)
    graph = str(torch.jit.trace(layer, torch.randn(6, 48)).graph)
    assert "aten::linear" in graph and "conv" not in graph
    program = torch.export.export(layer, (torch.randn(6, 48),))
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert targets == ["aten.linear.default"], targets


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("0", False)])
def test_environment_variable_decides_when_onednn_is_none(monkeypatch, value, expected):
    monkeypatch.setenv("HF_WAV2VEC2_ONEDNN_LINEAR", value)
    monkeypatch.setattr(lin, "ONEDNN_MIN_MACS", 0)
    assert onednn_default() is expected
    assert path_taken(Linear(48, 40), torch.randn(6, 48)) == ["conv2d" if expected else "linear"]


def test_environment_variable_other_values_are_an_error(monkeypatch):
    monkeypatch.setenv("HF_WAV2VEC2_ONEDNN_LINEAR", "yes")
    with pytest.raises(ValueError, match="HF_WAV2VEC2_ONEDNN_LINEAR must be 0 or 1, got 'yes'"):
        onednn_default()


def test_models_give_the_same_logits_losses_and_gradients(onednn, monkeypatch):
    for module in (FeatureEncoder, PositionalConvEmbedding):  # their 2-D convolutions would count as conv2d calls
        monkeypatch.setattr(module, "channels_last", False)
    ctc = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()
    pre = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT)).train()
    assert all(type(m) is Linear for m in ctc.modules() if isinstance(m, torch.nn.Linear))
    x = torch.randn(2, 4000)
    labels = torch.tensor([[5, 6, 7], [8, 9, -100]])
    results = {}
    for on in (True, False):
        monkeypatch.setattr(Linear, "onednn", on)
        with Calls() as calls:
            logits = ctc(x).logits
        assert ("conv2d" in calls.names) is on and ("linear" in calls.names) is not on
        torch.manual_seed(0)  # the same masks and distractors
        loss = pre(x).loss + ctc(x, labels=labels).loss
        grads = torch.autograd.grad(loss, [*pre.parameters(), *ctc.parameters()], allow_unused=True)
        results[on] = logits, loss, grads
    (a_logits, a_loss, a_grads), (b_logits, b_loss, b_grads) = results[True], results[False]
    torch.testing.assert_close(a_logits, b_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a_loss, b_loss, rtol=1e-5, atol=1e-5)
    for a, b in zip(a_grads, b_grads, strict=True):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
