"""Parity with transformers' own Wav2Vec2 classes on tiny random checkpoints (fp32, max abs diff <= 1e-5)."""

import pytest
import torch
import transformers
from safetensors.torch import load_file

import hf_wav2vec2
from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining, HfWav2Vec2Model, sample_negative_indices
from hf_wav2vec2.modeling_hf_wav2vec2 import compute_mask_indices

from conftest import BASE_LIKE, LARGE_LIKE, NO_DROPOUT

TOL = 1e-5
VARIANTS = {"base": BASE_LIKE, "large": LARGE_LIKE}


def hf_config(variant, **overrides):
    values = dict(VARIANTS[variant], **NO_DROPOUT)
    values.update(overrides)
    return transformers.Wav2Vec2Config(**values)


def max_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


def close(a, b):
    """Scalars summed over many terms: 1e-5 absolute, or relative once they exceed 1."""
    a, b = float(torch.as_tensor(a).detach()), float(torch.as_tensor(b).detach())
    return abs(a - b) <= TOL * max(1.0, abs(b))


@pytest.fixture(params=["base", "large"])
def variant(request):
    return request.param


def saved(tmp_path, model, name="ckpt"):
    path = tmp_path / name
    model.save_pretrained(path)
    return path


def load_clean(cls, path):
    model, info = cls.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["unexpected_keys"], info["unexpected_keys"]
    assert not info.get("mismatched_keys"), info.get("mismatched_keys")
    return model.eval()


def audio_batch(batch=2, samples=3200):
    return torch.randn(batch, samples)


def test_ctc_logits_hidden_states_and_loss(tmp_path, variant):
    reference = transformers.Wav2Vec2ForCTC(hf_config(variant)).eval()
    ours = load_clean(HfWav2Vec2ForCTC, saved(tmp_path, reference))
    assert ours.config.model_type == "hf_wav2vec2"
    x = audio_batch()
    labels = torch.tensor([[1, 5, 5, 7, 3], [4, 9, -100, -100, -100]])
    with torch.no_grad():
        theirs = reference(x, output_hidden_states=True)
        mine = ours(x, output_hidden_states=True)
        assert max_diff(mine.logits, theirs.logits) <= TOL
        assert len(mine.hidden_states) == len(theirs.hidden_states) == reference.config.num_hidden_layers + 1
        for a, b in zip(mine.hidden_states, theirs.hidden_states):
            assert max_diff(a, b) <= TOL
        base_theirs = reference.wav2vec2(x)
        base_mine = ours.wav2vec2(x)
        assert max_diff(base_mine.extract_features, base_theirs.extract_features) <= TOL
        for reduction in ("sum", "mean"):
            reference.config.ctc_loss_reduction = ours.config.ctc_loss_reduction = reduction
            a, b = ours(x, labels=labels).loss, reference(x, labels=labels).loss
            assert close(a, b), (reduction, a, b)


def test_padded_batch_with_attention_mask_matches_transformers(tmp_path):
    reference = transformers.Wav2Vec2ForCTC(hf_config("large")).eval()
    ours = load_clean(HfWav2Vec2ForCTC, saved(tmp_path, reference))
    x = audio_batch(3, 4000)
    mask = torch.ones_like(x, dtype=torch.long)
    mask[1, 2500:] = 0
    mask[2, 1000:] = 0
    x = x * mask
    with torch.no_grad():
        assert max_diff(ours(x, attention_mask=mask).logits, reference(x, attention_mask=mask).logits) <= TOL


def test_pretraining_contrastive_loss_with_given_masks(tmp_path, variant):
    reference = transformers.Wav2Vec2ForPreTraining(hf_config(variant, mask_time_prob=0.5)).eval()
    ours = load_clean(HfWav2Vec2ForPreTraining, saved(tmp_path, reference))
    x = audio_batch(2, 6400)
    frames = int(ours._get_feat_extract_output_lengths(6400))
    mask = compute_mask_indices((2, frames), 0.5, 4, 2)
    negatives = sample_negative_indices(mask, reference.config.num_negatives)
    with torch.no_grad():
        theirs = reference(x, mask_time_indices=mask, sampled_negative_indices=negatives)
        mine = ours(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    assert mine.num_masked.item() == int(mask.sum())
    assert close(mine.contrastive_loss, theirs.contrastive_loss)
    # eval: transformers' perplexity is the hard (argmax) one
    assert close(mine.code_perplexity, theirs.codevector_perplexity)


def test_pretraining_diversity_loss_in_training_mode(tmp_path, variant):
    """In training transformers' perplexity is the soft one; its diversity loss is ours times the masked count."""
    reference = transformers.Wav2Vec2ForPreTraining(hf_config(variant, mask_time_prob=0.5))
    ours = load_clean(HfWav2Vec2ForPreTraining, saved(tmp_path, reference))
    reference.train()
    ours.train()
    x = audio_batch(2, 6400)
    frames = int(ours._get_feat_extract_output_lengths(6400))
    mask = compute_mask_indices((2, frames), 0.5, 4, 2)
    negatives = sample_negative_indices(mask, reference.config.num_negatives)
    theirs = reference(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    mine = ours(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    assert close(mine.prob_perplexity, theirs.codevector_perplexity)
    scaled = mine.diversity_loss * mine.num_masked
    assert close(scaled, theirs.diversity_loss)


def test_loads_legacy_weight_norm_names_and_bin(tmp_path, variant):
    """Older Hub checkpoints store the positional conv as weight_g / weight_v in pytorch_model.bin."""
    reference = transformers.Wav2Vec2ForCTC(hf_config(variant)).eval()
    path = saved(tmp_path, reference)
    state = load_file(path / "model.safetensors")
    legacy = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        legacy[key] = value
    assert any(k.endswith("weight_g") for k in legacy)
    (path / "model.safetensors").unlink()
    torch.save(legacy, path / "pytorch_model.bin")
    ours = load_clean(HfWav2Vec2ForCTC, path)
    x = audio_batch()
    with torch.no_grad():
        assert max_diff(ours(x).logits, reference(x).logits) <= TOL


def test_base_model_loads_from_pretraining_checkpoint(tmp_path):
    """facebook/wav2vec2-base is a ForPreTraining checkpoint; the bare model takes its wav2vec2.* weights."""
    reference = transformers.Wav2Vec2ForPreTraining(hf_config("base")).eval()
    path = saved(tmp_path, reference)
    model, info = HfWav2Vec2Model.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"]
    x = audio_batch()
    with torch.no_grad():
        assert max_diff(model.eval()(x).last_hidden_state, reference.wav2vec2(x).last_hidden_state) <= TOL


def test_export_to_transformers_round_trip(tmp_path, variant):
    from hf_wav2vec2.interop import save_as_transformers

    config = hf_wav2vec2.HfWav2Vec2Config(**dict(VARIANTS[variant], **NO_DROPOUT))
    ours = HfWav2Vec2ForCTC(config).eval()
    path = tmp_path / "exported"
    save_as_transformers(ours, path)
    theirs, info = transformers.Wav2Vec2ForCTC.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert theirs.config.model_type == "wav2vec2"
    x = audio_batch()
    with torch.no_grad():
        assert max_diff(ours(x).logits, theirs.eval()(x).logits) <= TOL
