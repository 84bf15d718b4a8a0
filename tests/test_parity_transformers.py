"""Parity with transformers' own Wav2Vec2 classes on tiny random checkpoints (fp32, max abs diff <= 1e-5)."""

import numpy as np
import pytest
import torch
import transformers
from conftest import BASE_LIKE, LARGE_LIKE, NO_DROPOUT
from safetensors.torch import load_file

import hf_wav2vec2
from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining, HfWav2Vec2Model, sample_negative_indices
from hf_wav2vec2.modeling_hf_wav2vec2 import compute_mask_indices

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
        for a, b in zip(mine.hidden_states, theirs.hidden_states, strict=True):
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


# ------------------------------------------------------------------ drop-in for transformers' pre-training scripts


def transformers_collate(model, x, attention_mask=None, mask_prob=0.5, draw_from="masked"):
    """What transformers' DataCollatorForWav2Vec2Pretraining does, with transformers' own numpy samplers.

    ``draw_from``: "masked" (the collator: distractors among masked frames), "all" (``_sample_negative_indices``
    without a mask: every frame) or "unpadded" (every real frame).
    """
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    np.random.seed(0)
    batch = {"input_values": x}
    frames = int(model._get_feat_extract_output_lengths(x.shape[-1]))
    if attention_mask is not None:
        batch["attention_mask"] = attention_mask
        batch["sub_attention_mask"] = model._get_feature_vector_attention_mask(frames, attention_mask)
    sub = batch.get("sub_attention_mask")
    mask = _compute_mask_indices((x.shape[0], frames), mask_prob, 4, attention_mask=sub, min_masks=2)
    source = {"masked": mask, "all": None, "unpadded": None if sub is None else sub.numpy()}[draw_from]
    negatives = _sample_negative_indices((x.shape[0], frames), model.config.num_negatives, mask_time_indices=source)
    batch["mask_time_indices"] = torch.tensor(mask, dtype=torch.long)
    batch["sampled_negative_indices"] = torch.tensor(negatives, dtype=torch.long)
    return batch


@pytest.mark.parametrize("draw_from", ["all", "masked"])
def test_contrastive_loss_with_transformers_samplers(tmp_path, variant, draw_from):
    """transformers' sampler may draw distractors from unmasked frames: accepted, same loss as transformers."""
    reference = transformers.Wav2Vec2ForPreTraining(hf_config(variant, mask_time_prob=0.5)).eval()
    ours = load_clean(HfWav2Vec2ForPreTraining, saved(tmp_path, reference))
    x = audio_batch(2, 6400)
    batch = transformers_collate(reference, x, draw_from=draw_from)
    mask = batch["mask_time_indices"].bool()
    flat = batch["sampled_negative_indices"].view(-1, reference.config.num_negatives)[mask.view(-1)]
    if draw_from == "all":
        assert not mask.view(-1)[flat].all(), "the sampler should have drawn unmasked frames"
    with torch.no_grad():
        theirs = reference(**batch)
        mine = ours(**batch)
    assert close(mine.contrastive_loss, theirs.contrastive_loss), (mine.contrastive_loss, theirs.contrastive_loss)
    # transformers' output fields, same meaning (eval: every frame projected and quantized, hard perplexity)
    assert max_diff(mine.projected_states, theirs.projected_states) <= TOL
    assert max_diff(mine.projected_quantized_states, theirs.projected_quantized_states) <= TOL
    assert close(mine.codevector_perplexity, theirs.codevector_perplexity)


def test_padded_batch_with_transformers_collator_runs_its_training_step(tmp_path):
    """A padded LARGE batch as transformers' collator builds it, fed as **batch; distractors from every real frame."""
    reference = transformers.Wav2Vec2ForPreTraining(hf_config("large", mask_time_prob=0.5))
    ours = load_clean(HfWav2Vec2ForPreTraining, saved(tmp_path, reference))
    x = audio_batch(2, 6400)
    attention = torch.ones_like(x, dtype=torch.long)
    attention[1, 4000:] = 0
    x = x * attention
    batch = transformers_collate(ours, x, attention, draw_from="unpadded")
    batch.pop("sub_attention_mask")  # as the script does before the forward pass
    num_losses = batch["mask_time_indices"].sum()
    with torch.no_grad():
        theirs = reference.eval()(**batch)
        mine = ours.eval()(**batch)
    assert mine.num_masked.item() == int(num_losses)
    assert close(mine.contrastive_loss, theirs.contrastive_loss)
    # training mode: the script's step runs unchanged (loss, its parts, the perplexity it logs)
    ours.train()
    outputs = ours(**batch)
    (outputs.loss / num_losses).backward()
    logs = [outputs.contrastive_loss / num_losses, outputs.diversity_loss / num_losses, outputs.codevector_perplexity]
    assert all(torch.isfinite(v) for v in logs)
    assert torch.equal(outputs.codevector_perplexity, outputs.prob_perplexity)
    assert ours.project_q.weight.grad is not None


def test_eager_and_sdpa_attention_agree_with_transformers_eager(tmp_path, variant):
    reference = transformers.Wav2Vec2Model(hf_config(variant, attn_implementation="eager")).eval()
    path = saved(tmp_path, reference)
    eager = HfWav2Vec2Model.from_pretrained(path, attn_implementation="eager").eval()
    sdpa = HfWav2Vec2Model.from_pretrained(path, attn_implementation="sdpa").eval()
    assert (eager.config._attn_implementation, sdpa.config._attn_implementation) == ("eager", "sdpa")
    x = audio_batch(2, 4000)
    attention = torch.ones_like(x, dtype=torch.long)
    attention[1, 2500:] = 0
    kwargs = dict(attention_mask=attention) if variant == "large" else {}
    with torch.no_grad():
        theirs = reference(x * attention, output_attentions=True, **kwargs)
        mine = eager(x * attention, output_attentions=True, **kwargs)
        fused = sdpa(x * attention, **kwargs)
    assert max_diff(mine.last_hidden_state, fused.last_hidden_state) <= TOL
    assert max_diff(mine.last_hidden_state, theirs.last_hidden_state) <= TOL
    assert len(mine.attentions) == len(theirs.attentions) == reference.config.num_hidden_layers
    for a, b in zip(mine.attentions, theirs.attentions, strict=True):
        assert max_diff(a, b) <= TOL
