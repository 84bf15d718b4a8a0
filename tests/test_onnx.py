"""ONNX export (hf_wav2vec2.onnx): the graph matches PyTorch to 1e-4 on BASE-like and LARGE-like tiny models,
padded batches with attention_mask, any batch size and length; int8 graphs quantize the conv stack too; the ONNX
Runtime model runs in the pipeline."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import NO_DROPOUT, tiny_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
import onnx  # noqa: E402

from hf_wav2vec2 import (  # noqa: E402
    HfWav2Vec2AutomaticSpeechRecognitionPipeline,
    HfWav2Vec2CTCTokenizer,
    HfWav2Vec2FeatureExtractor,
    HfWav2Vec2ForCTC,
    HfWav2Vec2Processor,
)
from hf_wav2vec2.onnx import (  # noqa: E402
    ONNX_FILE,
    ONNX_INT8_FILE,
    OnnxExportError,
    OnnxWav2Vec2ForCTC,
    _ChannelsLastFeatureEncoder,
    export_onnx,
    quantize_onnx,
)

VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8, "N": 9, "I": 10, "H": 11}


def save_model_dir(directory: Path, variant: str) -> tuple[Path, HfWav2Vec2ForCTC]:
    torch.manual_seed(0)
    model = HfWav2Vec2ForCTC(tiny_config(variant, **NO_DROPOUT, vocab_size=len(VOCAB))).eval()
    model.save_pretrained(directory)
    (directory / "vocab.json").write_text(json.dumps(VOCAB))
    processor = HfWav2Vec2Processor(HfWav2Vec2FeatureExtractor(), HfWav2Vec2CTCTokenizer(str(directory / "vocab.json")))
    processor.save_pretrained(directory)
    return directory, model


@pytest.fixture(scope="module", params=["base", "large"])
def exported(request, tmp_path_factory):
    """One export (fp32 + int8) per variant, shared by the tests of this module."""
    root = tmp_path_factory.mktemp(f"onnx_{request.param}")
    model_dir, model = save_model_dir(root / "model", request.param)
    out = export_onnx(model_dir, root / "onnx", quantize="int8")
    return model, model_dir, out


def padded_batch(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    values = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        values[i, :n] = torch.randn(n, generator=gen)
        mask[i, :n] = 1
    return values, mask


@pytest.mark.parametrize("variant", ["base", "large"])
def test_channels_last_feature_encoder_equals_the_conv_stack(variant):
    model = HfWav2Vec2ForCTC(tiny_config(variant, **NO_DROPOUT)).eval()
    x = torch.randn(3, 2345)
    with torch.no_grad():
        expected = model.wav2vec2.feature_extractor(x).transpose(1, 2)
        actual = _ChannelsLastFeatureEncoder(model.wav2vec2.feature_extractor)(x)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_export_writes_graph_config_and_processor(exported):
    model, _, out = exported
    assert (out / ONNX_FILE).is_file() and (out / ONNX_INT8_FILE).is_file()
    assert json.loads((out / "config.json").read_text())["hidden_size"] == model.config.hidden_size
    processor = HfWav2Vec2Processor.from_pretrained(out)
    assert processor.tokenizer.get_vocab() == VOCAB
    graph = onnx.load(str(out / ONNX_FILE)).graph
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert set(inputs) == {"input_values", "attention_mask"}
    # both axes symbolic: no batch size or length was baked in
    assert all(isinstance(d, str) and d for dims in inputs.values() for d in dims)


@pytest.mark.parametrize("lengths", [[4000, 2500], [7777, 7777, 3001], [1000], [40, 40]])
def test_onnx_logits_match_pytorch_with_padding(exported, lengths):
    model, _, out = exported
    onnx_model = OnnxWav2Vec2ForCTC.from_pretrained(out)
    values, mask = padded_batch(lengths)
    with torch.no_grad():
        expected = model(values, attention_mask=mask).logits
    actual = onnx_model(values, attention_mask=mask).logits
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_onnx_without_attention_mask_equals_pytorch_without_one(exported):
    model, _, out = exported
    values = torch.randn(2, 3333)
    with torch.no_grad():
        expected = model(values).logits
    torch.testing.assert_close(OnnxWav2Vec2ForCTC.from_pretrained(out)(values).logits, expected, atol=1e-4, rtol=1e-4)


def integer_matmuls(path):
    """(int8 MatMuls, float MatMuls reading a conv-stack weight) of an ONNX file."""
    nodes = onnx.load(str(path)).graph.node
    quantized = sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in nodes)
    conv = sum(n.op_type == "MatMul" and any(x.startswith("feature_encoder.convs.") for x in n.input) for n in nodes)
    assert not any(n.op_type == "ConvInteger" for n in nodes)
    return quantized, conv


def test_int8_graph_quantizes_the_transformer_not_the_conv_stack_and_stays_close(exported, tmp_path):
    model, _, out = exported
    # q, k, v, out, 2 feed-forward per layer, the feature projection and the CTC head; the conv stack stays fp32
    # (quantized, it cost the main job's model 6 CER points) unless asked for
    linear, convs = 6 * model.config.num_hidden_layers + 2, len(model.config.conv_dim)
    assert integer_matmuls(out / ONNX_INT8_FILE) == (linear, convs)
    with_conv = quantize_onnx(out / ONNX_FILE, tmp_path / "all.onnx", conv_stack=True)
    assert integer_matmuls(with_conv) == (linear + convs, 0)
    values, mask = padded_batch([6000, 4000])
    with torch.no_grad():
        expected = model(values, attention_mask=mask).logits
    actual = OnnxWav2Vec2ForCTC.from_pretrained(out, int8=True)(values, attention_mask=mask).logits
    assert not torch.allclose(actual, expected, atol=1e-4)  # it is really quantized ...
    error = (actual - expected).abs().max() / expected.std()
    assert error < 0.25, f"int8 logits deviate by {error:.3f} standard deviations"  # ... and still close


def test_pipeline_runs_the_onnx_model_with_the_same_transcript(exported):
    _, model_dir, out = exported
    processor = HfWav2Vec2Processor.from_pretrained(out)
    audio = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    texts = []
    for model in (HfWav2Vec2ForCTC.from_pretrained(model_dir).eval(), OnnxWav2Vec2ForCTC.from_pretrained(out)):
        asr = HfWav2Vec2AutomaticSpeechRecognitionPipeline(
            model=model,
            tokenizer=processor.tokenizer,
            feature_extractor=processor.feature_extractor,
        )
        texts.append(
            [
                asr(audio)["text"],
                asr([audio, audio[:9000]], batch_size=2)[1]["text"],
                asr(audio, chunk_length_s=1.0, stride_length_s=0.2)["text"],
            ]
        )
    assert texts[0] == texts[1]
    assert any(texts[0])  # a random model still writes letters, so equality means something


def test_existing_files_are_not_overwritten(tmp_path):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / ONNX_FILE).write_bytes(b"mine")
    with pytest.raises(OnnxExportError, match="already exists"):
        export_onnx(tmp_path / "anything", out)
    assert (out / ONNX_FILE).read_bytes() == b"mine"


def test_bad_sources_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(OnnxExportError, match=r"empty: not a model directory \(no config.json\)"):
        export_onnx(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(OnnxExportError, match="must be a CTC model"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "out")
    with pytest.raises(OnnxExportError, match="quantize must be None or 'int8'"):
        export_onnx(tmp_path / "empty", tmp_path / "out", quantize="int4")
    with pytest.raises(OnnxExportError, match="no such ONNX file"):
        OnnxWav2Vec2ForCTC(tmp_path / "missing.onnx", config=None)
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(OnnxExportError, match="broken.onnx: onnxruntime cannot load it"):
        OnnxWav2Vec2ForCTC(tmp_path / "broken.onnx", config=None)


def test_onnx_model_refuses_what_it_cannot_do(exported):
    _, _, out = exported
    onnx_model = OnnxWav2Vec2ForCTC.from_pretrained(out)
    with pytest.raises(OnnxExportError, match="runs on the CPU"):
        onnx_model.to("cuda")
    assert onnx_model.to("cpu") is onnx_model
    with pytest.raises(ValueError, match="receptive field"):
        onnx_model(torch.zeros(1, onnx_model.config.receptive_field - 1))
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        onnx_model(torch.zeros(4000))
    with pytest.raises(OnnxExportError, match="only takes input_values and attention_mask"):
        onnx_model(torch.zeros(1, 4000), labels=torch.zeros(1, 3))


def test_pipeline_runtime_option_uses_the_exported_graphs(exported, tmp_path):
    from transformers import pipeline

    _, model_dir, out = exported
    both = tmp_path / "both"  # a model folder that export-onnx also wrote into: nothing is exported again
    shutil.copytree(model_dir, both)
    for name in (ONNX_FILE, ONNX_INT8_FILE):
        shutil.copyfile(out / name, both / name)
    audio = np.random.default_rng(1).standard_normal(16000 * 2).astype(np.float32) * 0.1
    texts = {}
    for runtime in (None, "onnx", "onnx-int8"):
        asr = pipeline("automatic-speech-recognition", model=str(both), runtime=runtime)
        assert isinstance(asr, HfWav2Vec2AutomaticSpeechRecognitionPipeline)
        if runtime:
            assert isinstance(asr.model, OnnxWav2Vec2ForCTC)
            assert asr.model.path == both / (ONNX_INT8_FILE if runtime == "onnx-int8" else ONNX_FILE)
        texts[runtime] = asr(audio)["text"]
    assert texts["onnx"] == texts[None]
    with pytest.raises(ValueError, match="runtime must be one of 'onnx', 'onnx-int8' or None, got 'tensorrt'"):
        pipeline("automatic-speech-recognition", model=str(both), runtime="tensorrt")
