"""Drop-in behaviour of the models where transformers users expect transformers' semantics.

Pre-training: distractors at any frame, masks only when asked in eval, the time mask applied without SpecAugment,
masked padding ignored; attention: ``attn_implementation`` chooses eager or sdpa.
"""

import pytest
import torch
import torch.nn.functional as F
from conftest import NO_DROPOUT, tiny_config

from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining, HfWav2Vec2Model
from hf_wav2vec2.modeling_hf_wav2vec2 import compute_mask_indices


def frames_of(model, samples):
    return int(model._get_feat_extract_output_lengths(samples))


def any_frame_negatives(batch, frames, k, generator=None):
    """Distractors drawn from every frame of the utterance (transformers' sampler without a mask), flat indices."""
    picks = torch.randint(0, frames, (batch, frames, k), generator=generator)
    return picks + torch.arange(batch)[:, None, None] * frames


def one_masked_utterance(model, mask_prob, samples=4000):
    """A random utterance, a time mask of spans of 4 (at least 2) and 6 distractors per frame from any frame."""
    x, frames = torch.randn(1, samples), frames_of(model, samples)
    mask = compute_mask_indices((1, frames), mask_prob, 4, 2)
    return x, mask, any_frame_negatives(1, frames, 6)


def quantizer_rows(model):
    """Records how many rows each quantizer call receives."""
    rows = []
    model.quantizer.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    return rows


# ------------------------------------------------------------------ distractors at any frame


def test_distractors_at_unmasked_frames_quantize_only_what_the_loss_reads():
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT, mask_time_prob=0.3)).train()
    rows = quantizer_rows(model)
    x = torch.randn(2, 6000)
    frames = frames_of(model, 6000)
    mask = compute_mask_indices((2, frames), 0.3, 4, 2)
    negatives = any_frame_negatives(2, frames, model.config.num_negatives)
    out = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    assert torch.isfinite(out.loss) and out.num_masked.item() == int(mask.sum())
    read = torch.zeros(2 * frames, dtype=torch.bool)
    read[mask.view(-1)] = True
    read[negatives.view(2 * frames, -1)[mask.view(-1)].view(-1)] = True
    assert rows == [int(read.sum())] and rows[0] < 2 * frames  # masked + referenced frames, not all of them
    quantized = out.projected_quantized_states.view(2 * frames, -1)
    assert (quantized[~read] == 0).all() and (quantized[read].abs().sum(-1) > 0).all()
    out.loss.backward()
    assert model.quantizer.weight_proj.weight.grad is not None
    # eval quantizes every frame, as transformers (deterministic, cheap without gradients)
    rows.clear()
    model.eval()(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    assert rows == [2 * frames]


def test_loss_with_unmasked_distractors_matches_a_step_by_step_reference():
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT, mask_time_prob=0.4)).eval()
    x, mask, negatives = one_masked_utterance(model, 0.4)
    with torch.no_grad():
        out = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
        base = model.wav2vec2
        _, normed, hidden, _ = base.extract_features(x)
        context = base.encoder(base.mask_time_steps(hidden, mask))[0][0]
        targets = model.project_q(model.quantizer(normed[0])[0])  # every frame, (T, P)
        expected = 0.0
        for t in mask[0].nonzero().squeeze(1).tolist():
            pred = model.project_hid(context[t])
            candidates = [t] + negatives[0, t].tolist()
            sims = torch.stack([F.cosine_similarity(pred, targets[c], dim=0) for c in candidates])
            same = torch.tensor([i > 0 and torch.equal(targets[c], targets[t]) for i, c in enumerate(candidates)])
            sims = sims.masked_fill(same, float("-inf")) / model.config.contrastive_logits_temperature
            expected += -torch.log_softmax(sims, 0)[0]
    assert abs(out.contrastive_loss.item() - float(expected)) < 1e-4 * max(1.0, float(expected))


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda n: n + 10_000, "flat indices into batch \\* frames"),
        (lambda n: n[:, :, None], "must be \\(batch, frames, K\\)"),
    ],
)
def test_bad_distractor_indices_fail_clearly(bad, message):
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT)).eval()
    x, mask, negatives = one_masked_utterance(model, 0.5, samples=3000)
    with pytest.raises(ValueError, match=message):
        model(x, mask_time_indices=mask, sampled_negative_indices=bad(negatives))


# ------------------------------------------------------------------ masks: eval, SpecAugment off, padding


def test_eval_masks_only_when_asked():
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT)).eval()
    x = torch.randn(2, 4000)
    with torch.no_grad():
        first, second = model(x), model(x)
        assert first.loss is None and first.mask_time_indices is None and first.num_masked.item() == 0
        assert torch.equal(first.projected_states, second.projected_states)  # deterministic
        # the context is the unmasked one, as the bare model's in eval
        context = model.wav2vec2(x).last_hidden_state
        assert torch.allclose(first.projected_states, model.project_hid(context), atol=1e-6)
        assert first.projected_quantized_states.shape == first.projected_states.shape
        assert torch.equal(first.codevector_perplexity, first.code_perplexity)
        # asked explicitly: masks and distractors are sampled, and the loss is computed (a validation loss)
        asked = model(x, sample_masks=True)
    assert asked.num_masked.item() > 0 and torch.isfinite(asked.loss)
    assert asked.mask_time_indices.sum().item() == asked.num_masked.item()
    # training keeps sampling; sample_masks=False turns it off there too
    model.train()
    assert model(x).num_masked.item() > 0
    assert model(x, sample_masks=False).loss is None


def test_time_mask_is_applied_even_without_spec_augment():
    """The mask is part of the objective: with apply_spec_augment=False the loss must not score visible frames."""
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT)).eval()
    x, mask, negatives = one_masked_utterance(model, 0.5)
    with torch.no_grad():
        with_augment = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
        model.config.apply_spec_augment = False
        without = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
        visible = model.project_hid(model.wav2vec2(x).last_hidden_state)  # what unmasked frames would predict from
    assert torch.equal(with_augment.contrastive_loss, without.contrastive_loss)
    masked_rows = mask[0]
    assert not torch.allclose(without.projected_states[0, masked_rows], visible[0, masked_rows], atol=1e-3)
    # the bare model keeps transformers' semantics: no SpecAugment, no masking
    base = model.wav2vec2
    assert torch.equal(base(x, mask_time_indices=mask).last_hidden_state, base(x).last_hidden_state)


def test_masked_padding_frames_are_ignored_not_refused():
    model = HfWav2Vec2ForPreTraining(tiny_config("large", **NO_DROPOUT)).eval()
    x = torch.randn(2, 6000)
    attention = torch.ones_like(x, dtype=torch.long)
    attention[1, 3000:] = 0
    x = x * attention
    frames = frames_of(model, 6000)
    real = model._get_feature_vector_attention_mask(frames, attention)
    mask = compute_mask_indices((2, frames), 0.5, 4, 2)
    mask[1, -6:] = True  # masks padding frames of the second utterance
    assert (mask & ~real).any()
    negatives = any_frame_negatives(2, frames, 6, torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x, attention_mask=attention, mask_time_indices=mask, sampled_negative_indices=negatives)
        clean = model(x, attention_mask=attention, mask_time_indices=mask & real, sampled_negative_indices=negatives)
    assert out.num_masked.item() == int((mask & real).sum()) < int(mask.sum())
    assert torch.equal(out.mask_time_indices, mask & real)
    assert torch.equal(out.contrastive_loss, clean.contrastive_loss) and torch.equal(out.loss, clean.loss)


# ------------------------------------------------------------------ attention implementation


def count_sdpa_calls(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_attn_implementation_selects_the_kernel(monkeypatch, tmp_path):
    calls = count_sdpa_calls(monkeypatch)
    x = torch.randn(1, 3000)
    layers = 2
    default = HfWav2Vec2Model(tiny_config(**NO_DROPOUT)).eval()
    assert default.config._attn_implementation == "sdpa"
    with torch.no_grad():
        fused = default(x).last_hidden_state
    assert len(calls) == layers
    config = tiny_config(**NO_DROPOUT)
    config._attn_implementation = "eager"
    eager = HfWav2Vec2Model(config).eval()
    eager.load_state_dict(default.state_dict())
    calls.clear()
    with torch.no_grad():
        out = eager(x, output_attentions=True)
    frames = fused.shape[1]
    assert not calls and len(out.attentions) == layers and out.attentions[0].shape == (1, 4, frames, frames)
    assert (out.last_hidden_state - fused).abs().max() <= 1e-5
    # switched at run time, as transformers' models
    default.set_attn_implementation("eager")
    assert default.config._attn_implementation == "eager"
    with torch.no_grad():
        default(x)
    assert not calls
    default.set_attn_implementation("sdpa")
    with torch.no_grad():
        default(x)
    assert len(calls) == layers
    # from_pretrained(attn_implementation=...) reaches the CTC model's encoder too
    HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).save_pretrained(tmp_path)
    ctc = HfWav2Vec2ForCTC.from_pretrained(tmp_path, attn_implementation="eager").eval()
    calls.clear()
    with torch.no_grad():
        ctc(x)
    assert not calls and ctc.wav2vec2.config._attn_implementation == "eager"


def test_output_attentions_with_sdpa_falls_back_to_eager_with_a_warning(caplog):
    import logging

    from transformers.utils.logging import warning_once

    model = HfWav2Vec2Model(tiny_config(**NO_DROPOUT)).eval()
    warning_once.cache_clear()  # transformers' warning_once: an earlier test may have issued it already
    with caplog.at_level(logging.WARNING), torch.no_grad():
        out = model(torch.randn(1, 3000), output_attentions=True)
        fused = model(torch.randn(1, 3000))
    assert model.config._attn_implementation == "sdpa"
    assert len(out.attentions) == 2 and all(a is not None for a in out.attentions)
    assert fused.attentions is None
    assert any("needs eager attention: falling back from sdpa" in r.getMessage() for r in caplog.records)


def test_unsupported_attn_implementation_is_refused():
    config = tiny_config()
    config._attn_implementation = "flash_attention_2"
    with pytest.raises((ValueError, ImportError)):
        HfWav2Vec2Model(config)
