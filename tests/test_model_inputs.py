"""Issue 13 at the model boundary: what ``input_values`` may be. NaN/Inf, integer PCM, the wrong rank and objects
that are no tensor get one line saying what to pass; NumPy arrays and other float precisions are converted, with
the logits of the float32 tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import NO_DROPOUT, tiny_config

from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining, HfWav2Vec2Model


@pytest.fixture(scope="module")
def ctc():
    torch.manual_seed(0)
    return HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()


@pytest.fixture(scope="module")
def audio():
    return (torch.randn(2, 3000, generator=torch.Generator().manual_seed(1)) * 0.1).clamp(-1, 1)


def logits(model, x):
    with torch.no_grad():
        return model(x).logits


@pytest.mark.parametrize("model_class", [HfWav2Vec2Model, HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining])
@pytest.mark.parametrize("bad, named", [(float("nan"), "NaN"), (float("inf"), "Inf"), (-float("inf"), "Inf")])
def test_nan_or_inf_input_is_refused_naming_the_value_and_row(model_class, bad, named, audio):
    model = model_class(tiny_config()).eval()
    x = audio.clone()
    x[1, 1234] = bad
    with pytest.raises(ValueError, match=rf"^input_values contain {named} in batch rows \[1\]; the model would return"):
        model(x)
    x[0, 7], x[1, 9] = float("nan"), float("inf")
    with pytest.raises(ValueError, match=r"contain NaN and Inf in batch rows \[0, 1\]"):
        model(x)


def test_finite_input_still_gives_finite_logits(ctc, audio):
    assert torch.isfinite(logits(ctc, audio)).all()


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool])
def test_integer_pcm_is_refused_saying_to_pass_float_audio(ctc, audio, dtype):
    pcm = (audio * 32767).to(dtype)
    with pytest.raises(TypeError, match=rf"^input_values are {str(dtype)[6:]}; pass float32 audio in \[-1, 1\]"):
        ctc(pcm)


def test_the_int16_hint_gives_the_logits_of_the_float_audio(ctc, audio):
    pcm = (audio * 32768).round().clamp(-32768, 32767).to(torch.int16)
    with pytest.raises(TypeError, match=r"\(int16 PCM: x.float\(\) / 32768\)$"):
        ctc(pcm)
    assert torch.equal(logits(ctc, pcm.float() / 32768), logits(ctc, pcm.to(torch.float32) / 32768))
    assert torch.allclose(logits(ctc, pcm.float() / 32768), logits(ctc, audio), atol=1e-3)


def test_float64_and_numpy_input_give_the_logits_of_the_float32_tensor(ctc, audio):
    expected = logits(ctc, audio)
    assert torch.equal(logits(ctc, audio.double()), expected)  # float32 -> float64 -> float32 is exact
    assert torch.equal(logits(ctc, audio.numpy()), expected)
    assert torch.equal(logits(ctc, audio.numpy().astype(np.float64)), expected)
    assert torch.equal(logits(ctc, np.asfortranarray(audio.numpy())), expected)  # any memory layout
    with pytest.raises(TypeError, match="input_values are int16"):
        ctc((audio.numpy() * 32767).astype(np.int16))


def test_float32_input_is_cast_to_a_bfloat16_model(audio):
    model = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval().to(torch.bfloat16)
    out = logits(model, audio)
    assert out.dtype == torch.bfloat16 and torch.equal(out, logits(model, audio.to(torch.bfloat16)))


@pytest.mark.parametrize(
    "shape, fix",
    [
        ((3000,), "add a batch dimension (x[None])"),
        ((2, 1, 3000), "mix audio to mono"),
        ((2, 2, 3000), "mix audio to mono"),
    ],
)
def test_input_that_is_not_batch_by_samples_says_so(ctc, shape, fix):
    with pytest.raises(ValueError) as error:
        ctc(torch.zeros(shape))
    assert str(error.value) == f"input_values must be (batch, samples), got shape {shape}; {fix}"


def test_objects_that_are_no_tensor_are_refused(ctc):
    with pytest.raises(TypeError, match=r"^input_values must be a torch.Tensor \(batch, samples\) .*got list$"):
        ctc([[0.0] * 3000])


def test_too_short_input_names_the_receptive_field(ctc):
    need = ctc.config.receptive_field
    with pytest.raises(ValueError, match=f"input is {need - 1} samples; the model needs at least {need}"):
        ctc(torch.zeros(1, need - 1))
    assert logits(ctc, torch.zeros(1, need)).shape[1] == 1


def test_graph_capture_skips_the_value_check(ctc, audio):
    from hf_wav2vec2.modeling_hf_wav2vec2 import _checks_values

    seen = []
    torch.jit.trace(lambda x: seen.append(_checks_values()) or x * 2, audio[0], check_trace=False)
    assert seen == [False] and _checks_values()
    # a Python branch on the values would be dynamo's "Data-dependent branching" and fail a full-graph compile
    compiled = torch.compile(lambda x: ctc(x).logits, backend="eager", fullgraph=True)
    with torch.no_grad():
        # to float32 rounding: eager may take oneDNN's products and channels-last convs, a graph keeps the plain ops
        assert torch.allclose(compiled(audio), logits(ctc, audio), atol=1e-5)
        poisoned = audio.clone()
        poisoned[0, 5] = float("nan")
        assert torch.isnan(compiled(poisoned)).any()  # the captured graph runs unchecked, as exported graphs do
