"""int8 inference (hf_wav2vec2.quantization): quantize() and from_pretrained(quantize="int8") give an int8 ONNX
Runtime model close to the fp32 one; exported folders are reused, not re-exported; bad modes are one-line errors."""

import gc
import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import NO_DROPOUT, tiny_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import hf_wav2vec2  # noqa: E402
from hf_wav2vec2 import HfWav2Vec2ForCTC  # noqa: E402
from hf_wav2vec2 import onnx as onnx_module  # noqa: E402
from hf_wav2vec2.onnx import (  # noqa: E402
    ONNX_FILE,
    ONNX_INT8_FILE,
    OnnxExportError,
    OnnxWav2Vec2ForCTC,
    export_onnx,
)
from hf_wav2vec2.quantization import from_pretrained, quantize  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HfWav2Vec2ForCTC(tiny_config("large", **NO_DROPOUT)).eval()


@pytest.fixture(scope="module")
def export_calls():
    return []


@pytest.fixture(scope="module")
def int8_model(model, tmp_path_factory, export_calls):
    """The one export of this module (exports are slow): quantize() into a kept cache folder, counting exports."""
    real = onnx_module._export_graph
    patch = pytest.MonkeyPatch()
    patch.setattr(onnx_module, "_export_graph", lambda *a: export_calls.append(1) or real(*a))
    try:
        return quantize(model, "int8", cache_dir=tmp_path_factory.mktemp("int8") / "cache")
    finally:
        patch.undo()


def relative_error(a, b):
    return float((a - b).abs().max() / b.std())


def test_quantize_gives_an_int8_model_close_to_fp32(model, int8_model):
    assert isinstance(int8_model, OnnxWav2Vec2ForCTC) and int8_model.is_int8
    assert Path(int8_model.path).name == ONNX_INT8_FILE
    values = torch.randn(2, 5000)
    with torch.no_grad():
        expected = model(values).logits
    actual = int8_model(values).logits
    assert actual.shape == expected.shape
    assert 1e-4 < relative_error(actual, expected) < 0.25


def test_quantize_is_the_package_level_function():
    assert hf_wav2vec2.quantize is quantize
    assert hf_wav2vec2.OnnxWav2Vec2ForCTC is OnnxWav2Vec2ForCTC
    assert hf_wav2vec2.export_onnx is export_onnx


def test_exported_folders_are_loaded_not_exported_again(model, int8_model, export_calls, tmp_path, monkeypatch):
    int8_dir = int8_model.path.parent
    assert export_calls == [1]
    assert json.loads((int8_dir / "config.json").read_text())["hidden_size"] == model.config.hidden_size
    fp32_dir = tmp_path / "fp32"  # a folder as export_onnx(model, fp32_dir) writes it, without the int8 graph
    fp32_dir.mkdir()
    for name in (ONNX_FILE, "config.json"):
        shutil.copyfile(int8_dir / name, fp32_dir / name)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_module, "_export_graph", no_export)
    values = torch.randn(1, 4000)
    loaded = from_pretrained(int8_dir, quantize="int8")
    assert loaded.path == int8_dir / ONNX_INT8_FILE
    torch.testing.assert_close(loaded(values).logits, int8_model(values).logits, atol=1e-5, rtol=1e-5)
    # a folder with only the fp32 graph is quantized from it, into a folder of ours: the user's is left alone
    from_fp32 = quantize(fp32_dir)
    assert from_fp32.is_int8 and from_fp32.path.parent != fp32_dir
    assert sorted(p.name for p in fp32_dir.glob("*.onnx")) == [ONNX_FILE]
    torch.testing.assert_close(from_fp32(values).logits, loaded(values).logits, atol=1e-5, rtol=1e-5)
    temporary = from_fp32.path.parent  # removed with the model that reads from it
    del from_fp32
    gc.collect()
    assert not temporary.exists()
    assert quantize(loaded) is loaded
    assert quantize(OnnxWav2Vec2ForCTC.from_pretrained(fp32_dir)).is_int8
    with pytest.raises(OnnxExportError, match="already exists"):  # a kept cache is never written over
        quantize(fp32_dir, cache_dir=int8_dir)


def test_bad_modes_are_one_line_errors(model):
    with pytest.raises(ValueError, match=r"quantize: mode must be one of 'int8', got 'int4'"):
        quantize(model, "int4")
    with pytest.raises(ValueError, match=r"from_pretrained: quantize must be one of 'int8', got 'fp8'"):
        from_pretrained("anything", quantize="fp8")
