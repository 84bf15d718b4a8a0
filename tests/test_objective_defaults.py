"""Issue 17: what a transformers-format config trains, and our weight init against transformers' module by module."""

import logging

import pytest
import torch
import transformers
from conftest import NO_DROPOUT, TINY

from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForPreTraining

CONFIG_LOGGER = "hf_wav2vec2.configuration_hf_wav2vec2"


@pytest.mark.parametrize("layer_norm", [False, True])
def test_transformers_format_configs_train_transformers_objective(tmp_path, layer_norm):
    theirs = transformers.Wav2Vec2Config(
        feat_extract_norm="layer" if layer_norm else "group", do_stable_layer_norm=layer_norm, conv_bias=layer_norm
    )
    theirs.save_pretrained(tmp_path)
    for ours in (
        HfWav2Vec2Config(**theirs.to_dict()),
        HfWav2Vec2Config.from_transformers_config(theirs),
        HfWav2Vec2Config.from_pretrained(tmp_path),
        HfWav2Vec2Config.from_dict(theirs.to_dict()),
    ):
        assert (ours.feature_penalty_weight, ours.feature_grad_mult) == (0.0, 1.0)
    # our own recipes keep fairseq's values
    assert (HfWav2Vec2Config().feature_penalty_weight, HfWav2Vec2Config().feature_grad_mult) == (10.0, 0.1)
    assert (HfWav2Vec2Config.large().feature_penalty_weight, HfWav2Vec2Config.large().feature_grad_mult) == (0.0, 1.0)


def test_our_saved_config_keeps_its_terms(tmp_path):
    HfWav2Vec2Config(feature_penalty_weight=10.0, feature_grad_mult=0.1).save_pretrained(tmp_path)
    loaded = HfWav2Vec2Config.from_pretrained(tmp_path)
    assert (loaded.feature_penalty_weight, loaded.feature_grad_mult) == (10.0, 0.1)


def test_fairseq_term_set_in_a_transformers_config_is_kept_with_a_warning(tmp_path, caplog):
    theirs = transformers.Wav2Vec2Config(feature_penalty_weight=5.0)  # an unknown key transformers keeps
    theirs.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger=CONFIG_LOGGER):
        loaded = HfWav2Vec2Config.from_pretrained(tmp_path)
    assert loaded.feature_penalty_weight == 5.0 and loaded.feature_grad_mult == 1.0
    assert "feature_penalty_weight=5.0, a fairseq-only pre-training term" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=CONFIG_LOGGER):
        direct = HfWav2Vec2Config(**dict(transformers.Wav2Vec2Config().to_dict(), feature_grad_mult=0.5))
    assert direct.feature_grad_mult == 0.5 and "feature_grad_mult=0.5" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=CONFIG_LOGGER):
        HfWav2Vec2Config(**transformers.Wav2Vec2Config().to_dict())
    assert "fairseq-only" not in caplog.text


# Modules whose init used to be skipped: transformers marks a parameter-less container module of "custom code" as
# initialized before _init_weights sees it, so these kept the generic std-0.02 Linear init.
FAN_IN_INIT = ("wav2vec2.feature_projection.projection", "project_hid", "project_q")


def _models(variant):
    keys = dict(TINY, **NO_DROPOUT, hidden_size=64, conv_dim=(64, 64, 64), codevector_dim=32, proj_codevector_dim=64)
    if variant == "pre_ln":
        keys.update(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    theirs_config = transformers.Wav2Vec2Config(**keys)
    return transformers.Wav2Vec2ForPreTraining(theirs_config), HfWav2Vec2ForPreTraining(
        HfWav2Vec2Config(**theirs_config.to_dict())
    )


@pytest.mark.parametrize("variant", ["post_ln", "pre_ln"])
def test_init_matches_transformers_module_by_module(variant):
    theirs, ours = _models(variant)
    theirs_sd, ours_sd = theirs.state_dict(), ours.state_dict()
    assert set(theirs_sd) == set(ours_sd)
    for prefix in FAN_IN_INIT:
        for kind in ("weight", "bias"):
            a, b = theirs_sd[f"{prefix}.{kind}"], ours_sd[f"{prefix}.{kind}"]
            bound = 1 / a.shape[-1] ** 0.5 if kind == "weight" else 1 / theirs_sd[f"{prefix}.weight"].shape[-1] ** 0.5
            assert b.abs().max() <= bound + 1e-6, prefix
            assert 0.7 < float(b.std() / a.std()) < 1.4, (prefix, kind, float(a.std()), float(b.std()))
    # the positional conv follows fairseq (normal, std 2 / sqrt(taps * hidden), zero bias); transformers' own
    # normal_ on the weight-normed weight does not reach its parameters, so it keeps torch's default
    conv = ours.wav2vec2.encoder.pos_conv_embed.conv
    expected = 2 / (conv.kernel_size[0] * conv.in_channels) ** 0.5
    assert abs(float(conv.weight.std()) / expected - 1) < 0.1 and not conv.bias.any()
    # everything else: comparable spread
    for name, a in theirs_sd.items():
        b = ours_sd[name]
        if "pos_conv_embed" in name:
            continue
        if a.numel() > 1 and a.dtype.is_floating_point and float(a.std()) > 0:
            assert 0.6 < float(b.std() / a.std()) < 1.5, (name, float(a.std()), float(b.std()))


def test_loaded_weights_are_not_reinitialized(tmp_path):
    _, ours = _models("post_ln")
    ours.save_pretrained(tmp_path)
    again = HfWav2Vec2ForPreTraining.from_pretrained(tmp_path)
    for name, value in ours.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
