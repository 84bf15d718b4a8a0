"""``hf-wav2vec2 export-onnx`` and ``transcribe --onnx / --int8``: the exported graphs written next to the model are
what transcribe runs, with the PyTorch transcript for fp32; conflicts and existing files are one-line errors."""

from __future__ import annotations

import pytest
import soundfile as sf
from test_pipeline_hf_wav2vec2 import SR, noise, save_model_dir

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from hf_wav2vec2 import cli  # noqa: E402
from hf_wav2vec2.onnx import ONNX_FILE, ONNX_INT8_FILE, OnnxWav2Vec2ForCTC  # noqa: E402


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory):
    """A model folder that export-onnx --int8 wrote its graphs into (one export for the module)."""
    model = save_model_dir(tmp_path_factory.mktemp("cli_onnx") / "model")
    assert cli.main(["export-onnx", str(model), str(model), "--int8"]) == 0
    return model


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "clip.wav"
    sf.write(path, noise(2.0, seed=3), SR)
    return path


def test_export_onnx_writes_both_graphs(exported_model, capsys):
    assert (exported_model / ONNX_FILE).is_file() and (exported_model / ONNX_INT8_FILE).is_file()
    assert OnnxWav2Vec2ForCTC.from_pretrained(exported_model, int8=True).is_int8


def test_export_onnx_refuses_to_replace_existing_graphs(exported_model, capsys):
    before = (exported_model / ONNX_FILE).stat().st_mtime_ns
    assert cli.main(["export-onnx", str(exported_model), str(exported_model)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("hf-wav2vec2: error:") and "already exists" in error and "--overwrite" in error
    assert len(error.splitlines()) == 1
    assert (exported_model / ONNX_FILE).stat().st_mtime_ns == before


def test_transcribe_with_onnx_and_int8_uses_the_exported_graphs(exported_model, clip, capsys, monkeypatch):
    texts = {}
    for flag in ([], ["--onnx"], ["--int8"]):
        assert cli.main(["transcribe", str(clip), "--model", str(exported_model), "--quiet", *flag]) == 0
        texts[" ".join(flag)] = capsys.readouterr().out
    assert texts["--onnx"] == texts[""]
    assert texts[""].strip()  # the random model writes letters, so equal transcripts mean something
    loaded = []
    real = OnnxWav2Vec2ForCTC.from_pretrained.__func__
    monkeypatch.setattr(
        OnnxWav2Vec2ForCTC,
        "from_pretrained",
        classmethod(lambda cls, d, **kw: loaded.append(kw.get("int8")) or real(cls, d, **kw)),
    )
    assert cli.main(["transcribe", str(clip), "--model", str(exported_model), "--quiet", "--int8"]) == 0
    assert loaded == [True]  # from the folder: nothing exported


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--onnx", "--int8"], "argument --int8: not allowed with argument --onnx"),
        (["--onnx", "--lang", "spa"], "--lang is not available with --onnx/--int8"),
        (["--int8", "--stream"], "does not take --int8"),
    ],
)
def test_runtime_flag_conflicts_are_usage_errors(exported_model, clip, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        status = cli.main(["transcribe", str(clip), "--model", str(exported_model), *argv])
        raise SystemExit(status)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_int8_conv_stack_quantizes_the_feature_encoder_too(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    model = save_model_dir(tmp_path / "model")
    assert cli.main(["export-onnx", str(model), str(tmp_path / "all"), "--int8", "--int8_conv_stack"]) == 0
    nodes = onnx.load(str(tmp_path / "all" / ONNX_INT8_FILE)).graph.node
    # the conv stack's MatMuls read its fp32 weights by default; with the flag none is left float
    float_conv = [n for n in nodes if n.op_type == "MatMul" and any("feature_encoder.convs." in x for x in n.input)]
    assert float_conv == [] and sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in nodes) > 0


def test_int8_conv_stack_without_int8_is_a_usage_error(tmp_path, capsys):
    model = save_model_dir(tmp_path / "model")
    capsys.readouterr()  # saving the model prints a progress bar
    assert cli.main(["export-onnx", str(model), str(tmp_path / "out"), "--int8_conv_stack"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "hf-wav2vec2: error: --int8_conv_stack needs --int8" and not (tmp_path / "out").exists()
