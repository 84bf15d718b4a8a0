"""Tests for hf_wav2vec2/architectures.py, the one table of model classes, and for its readers (convert, interop).

Each row is checked against the classes themselves, so the table cannot drift from the code: the class is defined
in the named module and registered with the named Auto class, transformers' counterpart has exactly its parameter
names, and the identifying heads belong to that class alone.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import transformers
from conftest import NO_DROPOUT, tiny_config

from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForCTC, HfWav2Vec2ForSequenceClassification
from hf_wav2vec2.architectures import ARCHITECTURES, UnknownArchitectureError, architecture, head_owner
from hf_wav2vec2.convert import ConversionError, convert, model_class_for
from hf_wav2vec2.interop import to_transformers

ROWS = {a.name: a for a in ARCHITECTURES}


def tiny(**overrides):
    return tiny_config(
        **NO_DROPOUT,
        num_labels=3,
        tdnn_dim=(8, 8),
        tdnn_kernel=(3, 1),
        tdnn_dilation=(1, 1),
        xvector_output_dim=6,
        classifier_proj_size=5,
        **overrides,
    )


def top_level_names(model) -> set[str]:
    return {name.split(".")[0] for name in model.state_dict()}


def test_every_head_of_the_package_is_a_row():
    expected = {
        "HfWav2Vec2Model",
        "HfWav2Vec2ForPreTraining",
        "HfWav2Vec2ForCTC",
        "HfWav2Vec2ForSequenceClassification",
        "HfWav2Vec2ForAudioFrameClassification",
        "HfWav2Vec2ForXVector",
    }
    assert set(ROWS) == expected
    assert len({a.task for a in ARCHITECTURES}) == len(ARCHITECTURES)  # one task a row


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_matches_the_class(name):
    row = ROWS[name]
    cls = row.load()
    assert cls.__name__ == name and cls.__module__ == f"hf_wav2vec2.{row.module}"
    auto_class = getattr(transformers, row.auto_class)
    assert auto_class._model_mapping[HfWav2Vec2Config] is cls  # registered there by import hf_wav2vec2
    ours = cls(tiny())
    theirs = getattr(transformers, row.transformers_name)(ours.config.to_transformers_config())
    assert set(ours.state_dict()) == set(theirs.state_dict())  # same parameter names: the weights move as they are
    for head in row.heads:  # a head name identifies this class among all the others
        assert head in top_level_names(ours)
        others = [other for other in ARCHITECTURES if other.name != name]
        assert all(head not in top_level_names(other.load()(tiny())) for other in others)


def test_lookup_by_any_name_of_a_class():
    ctc = ROWS["HfWav2Vec2ForCTC"]
    assert architecture("HfWav2Vec2ForCTC") is architecture("Wav2Vec2ForCTC") is architecture(["Wav2Vec2ForCTC"]) is ctc
    assert architecture(HfWav2Vec2ForCTC) is architecture(HfWav2Vec2ForCTC(tiny())) is ctc
    assert ctc.auto_map_entry == "modeling_hf_wav2vec2.HfWav2Vec2ForCTC"
    for unknown in ("HubertForCTC", [], None):
        with pytest.raises(
            UnknownArchitectureError,
            match=r"is not a model of this package; expected one of "
            r"HfWav2Vec2Model, HfWav2Vec2ForPreTraining",
        ):
            architecture(unknown)
    assert head_owner(["wav2vec2.encoder.layers.0.weight", "lm_head.weight"]) is ctc
    assert head_owner(["lm_head.weight", "quantizer.codevectors"]) is None  # two classes' heads: no single owner
    assert head_owner(["classifier.weight"]) is None  # shared by the classification heads


def test_registry_imports_neither_torch_nor_transformers():
    # the module alone (the package's __init__ registers the Auto classes, which is transformers' business)
    import hf_wav2vec2.architectures as module

    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('table', sys.argv[1]); "
        "sys.modules['table'] = table = importlib.util.module_from_spec(spec); spec.loader.exec_module(table); "
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, module.__file__], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_convert_and_export_the_classification_heads(tmp_path):
    theirs = transformers.Wav2Vec2ForSequenceClassification(tiny().to_transformers_config()).eval()
    theirs.save_pretrained(tmp_path / "theirs")
    out = convert(tmp_path / "theirs", tmp_path / "ours")
    ours = model_class_for(["HfWav2Vec2ForSequenceClassification"]).from_pretrained(out).eval()
    assert type(ours) is HfWav2Vec2ForSequenceClassification
    values = torch.randn(2, 4000)
    with torch.no_grad():
        torch.testing.assert_close(ours(values).logits, theirs(values).logits)
        back = convert(out, tmp_path / "back", target="transformers")
        reloaded = transformers.Wav2Vec2ForSequenceClassification.from_pretrained(back).eval()
        torch.testing.assert_close(reloaded(values).logits, theirs(values).logits)
    assert type(to_transformers(ours)) is transformers.Wav2Vec2ForSequenceClassification
    with pytest.raises(ConversionError, match="architecture 'HubertForCTC' is not a model of this package"):
        model_class_for(["HubertForCTC"])
