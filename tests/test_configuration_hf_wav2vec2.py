import ast
import dataclasses
import logging
import re

import pytest
import torch
import transformers

from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining, HfWav2Vec2Model
from hf_wav2vec2.configuration_hf_wav2vec2 import SHARED_WITH_TRANSFORMERS


def documented_defaults():
    pattern = re.compile(r"^\s{8}(\w+) \(`[^`]+`, defaults to (.+?)\):", re.M)
    return {name: value for name, value in pattern.findall(HfWav2Vec2Config.__doc__)}


def test_every_field_is_documented_with_its_real_default():
    annotated = HfWav2Vec2Config.__annotations__
    fields = {f.name: f.default for f in dataclasses.fields(HfWav2Vec2Config) if f.name in annotated}
    documented = documented_defaults()
    assert set(fields) == set(documented), set(fields) ^ set(documented)
    config = HfWav2Vec2Config()
    for name, text in documented.items():
        expected = text.strip('"') if text.startswith('"') else ast.literal_eval(text)
        actual = getattr(config, name)
        if isinstance(expected, tuple):
            actual = tuple(actual)
        assert actual == expected, (name, actual, expected)


def sizes(config):
    return config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size


def as_list(value):
    """Lists and tuples compare as lists (transformers keeps some of its sizes as tuples)."""
    return list(value) if isinstance(value, (list, tuple)) else value


def test_base_and_large_presets_match_the_paper():
    base, large = HfWav2Vec2Config.base(), HfWav2Vec2Config.large()
    assert sizes(base) == (12, 768, 12, 3072)
    assert base.feat_extract_norm == "group" and not base.conv_bias and not base.do_stable_layer_norm
    assert sizes(large) == (24, 1024, 16, 4096)
    assert large.feat_extract_norm == "layer" and large.conv_bias and large.do_stable_layer_norm
    assert base.conv_kernel == [10, 3, 3, 3, 3, 2, 2] and base.conv_stride == [5, 2, 2, 2, 2, 2, 2]
    assert base.inputs_to_logits_ratio == 320 and base.receptive_field == 400
    assert (base.num_codevector_groups, base.num_codevectors_per_group, base.num_negatives) == (2, 320, 100)
    assert (base.mask_time_prob, base.mask_time_length) == (0.65, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(conv_dim=(512, 512), conv_kernel=(10,), conv_stride=(5,)), "equal length"),
        (dict(feat_extract_norm="batch"), "feat_extract_norm"),
        (dict(mask_time_prob=1.5), "mask_time_prob"),
        (dict(ctc_loss_reduction="avg"), "ctc_loss_reduction"),
        (dict(contrastive_logits_temperature=0), "temperature"),
    ],
)
def test_invalid_single_fields_raise_clear_errors_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HfWav2Vec2Config(**kwargs)


# Consistency between fields is checked where the model is built, as transformers does (partial configs construct).
@pytest.mark.parametrize(
    "kwargs, model, message",
    [
        (
            dict(hidden_size=100),
            HfWav2Vec2Model,
            r"HfWav2Vec2Model: config.hidden_size \(100\) must be divisible by "
            r"config.num_attention_heads \(12\)",
        ),
        (dict(hidden_size=120, num_attention_heads=12), HfWav2Vec2Model, "num_conv_pos_embedding_groups"),
        (dict(codevector_dim=255), HfWav2Vec2ForPreTraining, "codevector_dim"),
        (dict(max_gumbel_temperature=0.3), HfWav2Vec2ForPreTraining, "min_gumbel_temperature"),
        (dict(vocab_size=4, pad_token_id=7), HfWav2Vec2ForCTC, "HfWav2Vec2ForCTC: .*pad_token_id"),
        (dict(vocab_size=None), HfWav2Vec2ForCTC, "vocab_size is needed"),
    ],
)
def test_inconsistent_configs_construct_and_fail_where_the_model_is_built(kwargs, model, message):
    config = HfWav2Vec2Config(**kwargs)  # a partial config constructs, as in transformers
    with pytest.raises(ValueError, match=message):
        with torch.device("meta"):
            model(config)


def test_partial_configs_construct_like_transformers():
    for kwargs in (
        dict(hidden_size=32),
        dict(num_attention_heads=5),
        dict(codevector_dim=100),
        dict(max_gumbel_temperature=0.3),
        dict(vocab_size=4, pad_token_id=7),
    ):
        transformers.Wav2Vec2Config(**{k: v for k, v in kwargs.items() if "gumbel" not in k})
        config = HfWav2Vec2Config(**kwargs)
        assert all(getattr(config, k) == v for k, v in kwargs.items())
    # completed later, the config builds a model
    config = HfWav2Vec2Config(hidden_size=32)
    config.num_attention_heads = config.num_conv_pos_embedding_groups = 4
    with torch.device("meta"):
        assert HfWav2Vec2ForPreTraining(config).config.hidden_size == 32
    # a codebook size the bare model does not use does not stop it from being built
    with torch.device("meta"):
        HfWav2Vec2Model(HfWav2Vec2Config(codevector_dim=255))
        HfWav2Vec2Model(HfWav2Vec2Config(vocab_size=4, pad_token_id=7))


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
    theirs = transformers.Wav2Vec2Config(
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, vocab_size=50
    )
    theirs.save_pretrained(tmp_path)
    ours = HfWav2Vec2Config.from_pretrained(tmp_path)
    assert ours.model_type == "hf_wav2vec2"
    for name in SHARED_WITH_TRANSFORMERS:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert as_list(a) == as_list(b), name
    # a layer-norm checkpoint is a LARGE-recipe model
    assert ours.feature_penalty_weight == 0.0 and ours.feature_grad_mult == 1.0
    back = ours.to_transformers_config()
    assert back.do_stable_layer_norm and back.vocab_size == 50


def test_conv_adapter_checkpoints_are_refused():
    with pytest.raises(ValueError, match=r"add_adapter=True.*not supported; MMS's per-layer adapters"):
        HfWav2Vec2Config.from_transformers_config(transformers.Wav2Vec2Config(add_adapter=True))


def test_mms_adapter_width_translates_both_ways_and_is_checked():
    theirs = transformers.Wav2Vec2Config(do_stable_layer_norm=True, feat_extract_norm="layer", adapter_attn_dim=16)
    ours = HfWav2Vec2Config.from_transformers_config(theirs)
    assert ours.adapter_attn_dim == 16 and HfWav2Vec2Config(**theirs.to_dict()).adapter_attn_dim == 16
    assert ours.to_transformers_config().adapter_attn_dim == 16
    assert HfWav2Vec2Config().adapter_attn_dim is None
    assert HfWav2Vec2Config().to_transformers_config().adapter_attn_dim is None
    for bad in (0, -3, 2.5, True, "16"):
        with pytest.raises(ValueError, match=r"adapter_attn_dim must be None \(no adapters\) or an integer >= 1"):
            HfWav2Vec2Config(adapter_attn_dim=bad)
    # transformers silently builds no adapters into post-LN layers: here that is an error where the model is built
    post_ln = HfWav2Vec2Config(
        adapter_attn_dim=16, hidden_size=32, num_attention_heads=4, num_conv_pos_embedding_groups=4
    )
    with pytest.raises(
        ValueError,
        match=r"HfWav2Vec2ForCTC: config.adapter_attn_dim \(16\) needs "
        r"config.do_stable_layer_norm=True",
    ):
        HfWav2Vec2ForCTC(post_ln)


TRANSFORMERS_VARIANTS = {
    "base": dict(),
    "large_lv60": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
        codevector_dim=768,
        proj_codevector_dim=768,
    ),
    "xls_r_300m": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
        codevector_dim=768,
        proj_codevector_dim=768,
        mask_time_prob=0.075,
        vocab_size=None,
        layerdrop=0.1,
        feat_quantizer_dropout=0.0,
        num_codevectors_per_group=320,
    ),
    "ctc_finetuned": dict(
        vocab_size=45,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
        final_dropout=0.1,
        architectures=["Wav2Vec2ForCTC"],
    ),
}
ADAPTER_KEYS = (
    "add_adapter",
    "adapter_kernel_size",
    "adapter_stride",
    "num_adapter_layers",
    "output_hidden_size",
    "adapter_attn_dim",
)


def _same(a, b):
    return (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b)


@pytest.mark.parametrize("variant", sorted(TRANSFORMERS_VARIANTS))
@pytest.mark.parametrize("without_adapter_keys", [False, True])
def test_every_key_of_transformers_to_dict_is_accepted(variant, without_adapter_keys, tmp_path):
    theirs = transformers.Wav2Vec2Config(**TRANSFORMERS_VARIANTS[variant])
    values = theirs.to_dict()
    assert {"num_feat_extract_layers", "output_hidden_size", "model_type", "tdnn_dim"} <= set(values)
    if without_adapter_keys:  # configs written before transformers had adapters
        for key in ADAPTER_KEYS:
            values.pop(key)
    ours = HfWav2Vec2Config(**values)
    assert ours.model_type == "hf_wav2vec2" and type(ours).model_type == "hf_wav2vec2"
    assert ours.num_feat_extract_layers == len(theirs.conv_dim)
    for name in SHARED_WITH_TRANSFORMERS:
        assert _same(getattr(ours, name), getattr(theirs, name)), name
    assert _same(ours.tdnn_dim, theirs.tdnn_dim)  # head-only keys stay attributes, as in transformers
    ours.save_pretrained(tmp_path)
    reloaded = HfWav2Vec2Config.from_pretrained(tmp_path)
    assert reloaded.to_dict() == ours.to_dict() and reloaded.model_type == "hf_wav2vec2"
    with torch.device("meta"):  # every model builds from it (meta: no memory for the LARGE weights)
        HfWav2Vec2ForPreTraining(ours)
        if ours.vocab_size is not None:
            HfWav2Vec2ForCTC(ours)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(num_feat_extract_layers=5), r"num_feat_extract_layers \(5\) disagrees with len\(conv_dim\) \(7\)"),
        (dict(output_hidden_size=512), r"output_hidden_size \(512\) differs from hidden_size \(768\)"),
        (dict(add_adapter=True), "add_adapter=True"),
        (dict(adapter_attn_dim=0), "adapter_attn_dim must be None"),
    ],
)
def test_inconsistent_or_unsupported_transformers_keys_fail_in_one_line(change, message):
    values = dict(transformers.Wav2Vec2Config().to_dict(), **change)
    with pytest.raises(ValueError, match=message) as error:
        HfWav2Vec2Config(**values)
    assert str(error.value).startswith("HfWav2Vec2Config: ") and "\n" not in str(error.value)


class _Records(logging.Handler):
    """Collects what transformers logs (its loggers do not propagate to the root logger that caplog reads)."""

    def __enter__(self):
        super().__init__(logging.WARNING)
        self.messages = []
        self.logger = logging.getLogger("transformers")
        self.level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.WARNING)
        return self

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level)


def test_loading_a_transformers_checkpoint_gives_no_model_type_warning(tmp_path):
    from conftest import TINY

    transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**TINY)).save_pretrained(tmp_path / "ctc")
    with _Records() as records:
        config = HfWav2Vec2Config.from_pretrained(tmp_path / "ctc")
        model = HfWav2Vec2ForCTC.from_pretrained(tmp_path / "ctc")
        HfWav2Vec2Model.from_pretrained(tmp_path / "ctc")
    assert config.model_type == "hf_wav2vec2" and model.config.hidden_size == TINY["hidden_size"]
    assert not [m for m in records.messages if "model of type" in m], records.messages
    # genuinely another model type still warns, as in transformers
    transformers.HubertConfig(**TINY).save_pretrained(tmp_path / "hubert")
    with _Records() as records:
        HfWav2Vec2Config.from_pretrained(tmp_path / "hubert")
    assert any("model of type `hubert` to instantiate a model of type `hf_wav2vec2`" in m for m in records.messages)
