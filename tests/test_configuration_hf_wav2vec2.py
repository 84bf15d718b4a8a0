import ast
import dataclasses
import re

import pytest
import transformers

from hf_wav2vec2 import HfWav2Vec2Config
from hf_wav2vec2.configuration_hf_wav2vec2 import SHARED_WITH_TRANSFORMERS


def documented_defaults():
    pattern = re.compile(r"^\s{8}(\w+) \(`[^`]+`, defaults to (.+?)\):", re.M)
    return {name: value for name, value in pattern.findall(HfWav2Vec2Config.__doc__)}


def test_every_field_is_documented_with_its_real_default():
    fields = {f.name: f.default for f in dataclasses.fields(HfWav2Vec2Config) if f.name in HfWav2Vec2Config.__annotations__}
    documented = documented_defaults()
    assert set(fields) == set(documented), set(fields) ^ set(documented)
    config = HfWav2Vec2Config()
    for name, text in documented.items():
        expected = text.strip('"') if text.startswith('"') else ast.literal_eval(text)
        actual = getattr(config, name)
        if isinstance(expected, tuple):
            actual = tuple(actual)
        assert actual == expected, (name, actual, expected)


def test_base_and_large_presets_match_the_paper():
    base, large = HfWav2Vec2Config.base(), HfWav2Vec2Config.large()
    assert (base.num_hidden_layers, base.hidden_size, base.num_attention_heads, base.intermediate_size) == (12, 768, 12, 3072)
    assert base.feat_extract_norm == "group" and not base.conv_bias and not base.do_stable_layer_norm
    assert (large.num_hidden_layers, large.hidden_size, large.num_attention_heads, large.intermediate_size) == (24, 1024, 16, 4096)
    assert large.feat_extract_norm == "layer" and large.conv_bias and large.do_stable_layer_norm
    assert base.conv_kernel == [10, 3, 3, 3, 3, 2, 2] and base.conv_stride == [5, 2, 2, 2, 2, 2, 2]
    assert base.inputs_to_logits_ratio == 320 and base.receptive_field == 400
    assert (base.num_codevector_groups, base.num_codevectors_per_group, base.num_negatives) == (2, 320, 100)
    assert (base.mask_time_prob, base.mask_time_length) == (0.65, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=100), "divisible by num_attention_heads"),
        (dict(conv_dim=(512, 512), conv_kernel=(10,), conv_stride=(5,)), "equal length"),
        (dict(feat_extract_norm="batch"), "feat_extract_norm"),
        (dict(mask_time_prob=1.5), "mask_time_prob"),
        (dict(ctc_loss_reduction="avg"), "ctc_loss_reduction"),
        (dict(codevector_dim=255), "codevector_dim"),
        (dict(vocab_size=4, pad_token_id=7), "pad_token_id"),
        (dict(contrastive_logits_temperature=0), "temperature"),
    ],
)
def test_invalid_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HfWav2Vec2Config(**kwargs)


def test_gumbel_schedule():
    config = HfWav2Vec2Config()
    assert config.gumbel_temperature_at(0) == 2.0
    assert config.gumbel_temperature_at(10**7) == 0.5
    assert abs(config.gumbel_temperature_at(100_000) - 2.0 * 0.999995**100_000) < 1e-12


def test_save_load_round_trip(tmp_path):
    config = HfWav2Vec2Config(hidden_size=64, num_attention_heads=4, num_conv_pos_embedding_groups=4, vocab_size=40)
    config.save_pretrained(tmp_path)
    loaded = HfWav2Vec2Config.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


def test_transformers_config_is_translated(tmp_path):
    theirs = transformers.Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, vocab_size=50)
    theirs.save_pretrained(tmp_path)
    ours = HfWav2Vec2Config.from_pretrained(tmp_path)
    assert ours.model_type == "hf_wav2vec2"
    for name in SHARED_WITH_TRANSFORMERS:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b), name
    # a layer-norm checkpoint is a LARGE-recipe model
    assert ours.feature_penalty_weight == 0.0 and ours.feature_grad_mult == 1.0
    back = ours.to_transformers_config()
    assert back.do_stable_layer_norm and back.vocab_size == 50


def test_adapter_checkpoints_are_refused():
    with pytest.raises(ValueError, match="adapter"):
        HfWav2Vec2Config.from_transformers_config(transformers.Wav2Vec2Config(add_adapter=True))
