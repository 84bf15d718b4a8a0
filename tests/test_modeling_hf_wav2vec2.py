import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import NO_DROPOUT, tiny_config

from hf_wav2vec2 import (
    HfWav2Vec2ForCTC,
    HfWav2Vec2ForPreTraining,
    HfWav2Vec2Model,
    compute_mask_indices,
    masking_hf_wav2vec2,
    modeling_hf_wav2vec2,
    sample_negative_indices,
)
from hf_wav2vec2.modules_hf_wav2vec2 import FeatureEncoder

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ------------------------------------------------------------------ masks


def test_split_out_names_stay_importable_from_the_modeling_file():
    import hf_wav2vec2

    for name in ("compute_mask_indices", "sample_negative_indices"):
        assert getattr(modeling_hf_wav2vec2, name) is getattr(masking_hf_wav2vec2, name) is getattr(hf_wav2vec2, name)
    for name in ("HfWav2Vec2Model", "HfWav2Vec2PreTrainedModel", "conv_output_lengths", "GumbelVectorQuantizer"):
        assert hasattr(modeling_hf_wav2vec2, name)


@pytest.mark.parametrize("device", DEVICES)
def test_mask_spans_respect_lengths_and_minimum(device):
    lengths = torch.tensor([200, 120, 37, 9, 0])
    for seed in range(20):
        gen = torch.Generator(device=device).manual_seed(seed)
        mask = compute_mask_indices((5, 200), 0.65, 10, 2, lengths, device, gen)
        assert mask.device.type == device and mask.dtype == torch.bool
        for row, length in zip(mask.cpu(), lengths.tolist(), strict=True):
            assert not row[length:].any(), "a mask reaches padding"
            if length >= 10:
                # at least min_masks spans of 10 (overlaps can merge them, never below one full span + 1 step)
                assert row.sum() >= 11
            elif length > 0:
                assert row[:length].all(), "a row shorter than a span is masked whole"
            else:
                assert not row.any()


def test_mask_span_count_matches_fairseq_formula():
    # disjoint spans are distinguishable when spans cannot overlap: use length 1 spans
    lengths = torch.full((2000,), 100)
    mask = compute_mask_indices((2000, 100), 0.3, 1, 0, lengths)
    counts = mask.sum(1).float()
    # int(0.3 * 100 / 1 + u) = 30 exactly (u < 1)
    assert torch.all(counts == 30)
    mask = compute_mask_indices((4000, 100), 0.65, 10, 2)
    # expected masked fraction with overlaps allowed, fairseq BASE: about 49 %
    frac = mask.float().mean().item()
    assert 0.40 < frac < 0.56, frac


def test_low_probability_still_gives_min_masks():
    mask = compute_mask_indices((8, 50), 0.01, 10, 2)
    assert (mask.sum(1) >= 11).all()
    assert not compute_mask_indices((8, 50), 0.0, 10, 0).any()


# ------------------------------------------------------------------ distractors


@pytest.mark.parametrize("device", DEVICES)
def test_distractors_are_other_masked_frames_of_the_same_utterance(device):
    lengths = torch.tensor([60, 40, 25])
    mask = compute_mask_indices((3, 60), 0.65, 5, 2, lengths, device)
    negatives = sample_negative_indices(mask, 50)
    assert negatives.shape == (3, 60, 50) and negatives.device.type == device
    flat_mask = mask.view(-1)
    for b in range(3):
        for t in mask[b].nonzero().squeeze(1).tolist():
            row = negatives[b, t]
            assert ((row // 60) == b).all(), "distractor from another utterance"
            assert flat_mask[row].all(), "distractor at an unmasked frame"
            assert not (row == b * 60 + t).any(), "the positive drawn as its own distractor"


def test_distractors_cover_all_other_masked_frames_uniformly():
    mask = torch.zeros(1, 30, dtype=torch.bool)
    mask[0, [3, 7, 8, 20]] = True
    negatives = sample_negative_indices(mask, 3000)
    counts = torch.bincount(negatives[0, 3], minlength=30)
    assert counts[3] == 0 and counts[[7, 8, 20]].min() > 850


def test_single_masked_frame_scores_minus_infinity():
    config = tiny_config(**NO_DROPOUT)
    model = HfWav2Vec2ForPreTraining(config).eval()
    x = torch.randn(1, 2000)
    frames = int(model._get_feat_extract_output_lengths(2000))
    mask = torch.zeros(1, frames, dtype=torch.bool)
    mask[0, 5] = True
    out = model(x, mask_time_indices=mask)
    assert torch.isinf(out.logits[:, 1:]).all() and out.contrastive_loss.item() == 0.0


# ------------------------------------------------------------------ objective


def reference_contrastive_loss(model, x, mask, negatives):
    """The loss written out step by step, fairseq's way, on the model's own tensors (eval mode)."""
    config = model.config
    base = model.wav2vec2
    with torch.no_grad():
        features, normed, hidden, _ = base.extract_features(x)
        hidden = base.mask_hidden_states(hidden, mask)
        context = base.encoder(hidden)[0]
        total = 0.0
        B, T = mask.shape
        for b in range(B):
            for t in mask[b].nonzero().squeeze(1).tolist():
                pred = model.project_hid(context[b, t])

                def target(bb, tt):
                    q = model.quantizer(normed[bb, tt][None])[0]
                    return model.project_q(q)[0]

                positive = target(b, t)
                logits = [torch.cosine_similarity(pred, positive, dim=0)]
                for n in negatives[b, t].tolist():
                    candidate = target(n // T, n % T)
                    value = torch.cosine_similarity(pred, candidate, dim=0)
                    logits.append(torch.tensor(float("-inf")) if torch.equal(candidate, positive) else value)
                logits = torch.stack(logits) / config.contrastive_logits_temperature
                total += -torch.log_softmax(logits, 0)[0]
    return total, features


def test_loss_matches_a_step_by_step_reference():
    config = tiny_config(**NO_DROPOUT, mask_time_prob=0.5)
    model = HfWav2Vec2ForPreTraining(config).eval()
    x = torch.randn(2, 3000)
    frames = int(model._get_feat_extract_output_lengths(3000))
    mask = compute_mask_indices((2, frames), 0.5, 4, 2)
    negatives = sample_negative_indices(mask, config.num_negatives)
    out = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    expected, features = reference_contrastive_loss(model, x, mask, negatives)
    assert abs(out.contrastive_loss.item() - expected.item()) < 1e-4 * max(1, expected.item())
    n = int(mask.sum())
    assert out.num_masked.item() == n
    assert torch.allclose(out.feature_penalty, features.pow(2).mean())
    total = out.contrastive_loss + 0.1 * out.diversity_loss * n + 10.0 * out.feature_penalty * n
    assert torch.allclose(out.loss, total)
    assert 0.0 <= out.accuracy.item() <= 1.0
    gv = config.num_codevector_groups * config.num_codevectors_per_group
    assert 1.0 <= out.code_perplexity.item() <= gv and 1.0 <= out.prob_perplexity.item() <= gv
    assert torch.allclose(out.diversity_loss, (gv - out.prob_perplexity) / gv)


def test_training_step_samples_masks_itself_and_backpropagates():
    model = HfWav2Vec2ForPreTraining(tiny_config()).train()
    model.set_gumbel_temperature(1.5)
    assert model.quantizer.temperature == 1.5
    out = model(torch.randn(2, 4000))
    assert out.num_masked.item() > 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_padded_pretraining_batch_masks_only_real_frames():
    config = tiny_config("large")
    model = HfWav2Vec2ForPreTraining(config).train()
    x = torch.randn(2, 4000)
    attention = torch.ones(2, 4000, dtype=torch.long)
    attention[1, 2000:] = 0
    out = model(x * attention, attention_mask=attention)
    frames_1 = int(model._get_feat_extract_output_lengths(torch.tensor(2000)))
    assert not out.mask_time_indices[1, frames_1:].any()


@pytest.mark.parametrize(
    "mode", [dict(quantize_input=True), dict(quantize_targets=False), dict(quantize_input=True, quantize_targets=False)]
)
def test_ablation_modes_train(mode):
    model = HfWav2Vec2ForPreTraining(tiny_config(**mode)).train()
    out = model(torch.randn(2, 4000))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    if not model.config.quantize_targets and not model.config.quantize_input:
        assert out.diversity_loss.item() == 0.0


def test_feature_grad_mult_scales_gradients_not_values():
    torch.manual_seed(0)
    full = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT, feature_grad_mult=1.0)).eval()
    scaled = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT, feature_grad_mult=0.1)).eval()
    scaled.load_state_dict(full.state_dict())
    x = torch.randn(1, 3000)
    frames = int(full._get_feat_extract_output_lengths(3000))
    mask = compute_mask_indices((1, frames), 0.5, 4, 2)
    negatives = sample_negative_indices(mask, 6)
    outs = [m(x, mask_time_indices=mask, sampled_negative_indices=negatives) for m in (full, scaled)]
    assert torch.equal(outs[0].loss, outs[1].loss)
    for out in outs:
        out.loss.backward()
    conv_full = full.wav2vec2.feature_extractor.conv_layers[0].conv.weight.grad
    conv_scaled = scaled.wav2vec2.feature_extractor.conv_layers[0].conv.weight.grad
    # the feature penalty's gradient is scaled too (fairseq applies the multiplier before computing it)
    assert torch.allclose(conv_scaled, 0.1 * conv_full, rtol=1e-4, atol=1e-8)
    head_full, head_scaled = full.project_hid.weight.grad, scaled.project_hid.weight.grad
    assert torch.allclose(head_full, head_scaled)


def test_layerdrop_keeps_every_parameter_in_the_graph():
    model = HfWav2Vec2ForCTC(tiny_config(layerdrop=1.0)).train()
    out = model(torch.randn(2, 3000), labels=torch.tensor([[1, 2], [3, 4]]))
    out.loss.backward()
    for layer in model.wav2vec2.encoder.layers:
        for p in layer.parameters():
            assert p.grad is not None and torch.count_nonzero(p.grad) == 0


def test_gradient_checkpointing_gives_the_same_gradients(monkeypatch):
    # a checkpointed conv layer runs oneDNN's convolution: so does the plain model's here, for float32-exact sums
    monkeypatch.setattr(FeatureEncoder, "frame_products", False)
    config = tiny_config(**NO_DROPOUT)
    plain = HfWav2Vec2ForCTC(config).train()
    ckpt = HfWav2Vec2ForCTC(config).train()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.activation_checkpointing_enable()
    x, labels = torch.randn(2, 3000), torch.tensor([[1, 2, 3], [4, 5, -100]])
    for m in (plain, ckpt):
        m.config.apply_spec_augment = False
        m(x, labels=labels).loss.backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6), name


# ------------------------------------------------------------------ CTC and base model


def test_padded_batch_equals_one_by_one_for_layer_norm_models():
    model = HfWav2Vec2ForCTC(tiny_config("large")).eval()
    lengths = [4000, 2600, 1200]
    clips = [torch.randn(n) for n in lengths]
    batch = torch.zeros(3, 4000)
    attention = torch.zeros(3, 4000, dtype=torch.long)
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
        attention[i, : len(clip)] = 1
    with torch.no_grad():
        batched = model(batch, attention_mask=attention).logits
        for i, clip in enumerate(clips):
            single = model(clip[None]).logits[0]
            frames = single.shape[0]
            assert (batched[i, :frames] - single).abs().max() < 1e-5


def test_ctc_loss_reductions_and_errors():
    model = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()
    x = torch.randn(2, 3000)
    labels = torch.tensor([[1, 2, 2, 3], [4, 5, -100, -100]])
    total = model(x, labels=labels).loss
    model.config.ctc_loss_reduction = "mean"
    mean = model(x, labels=labels).loss
    assert total > mean > 0
    with pytest.raises(ValueError, match="vocab_size"):
        model(x, labels=torch.tensor([[1, 99], [1, 2]]))
    with pytest.raises(ValueError, match="receptive field"):
        model(torch.randn(1, model.config.receptive_field - 1))
    with pytest.raises(ValueError, match="mono"):
        model(torch.randn(1, 2, 3000))


def test_impossible_ctc_targets_are_zeroed_not_infinite():
    model = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()
    x = torch.randn(1, 1000)
    frames = int(model._get_feat_extract_output_lengths(1000))
    loss = model(x, labels=torch.randint(1, 10, (1, frames + 5))).loss
    assert torch.isfinite(loss) and loss.item() == 0.0


def test_bf16_ctc_loss_is_computed_in_fp32():
    model = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).to(torch.bfloat16).eval()
    out = model(torch.randn(2, 3000, dtype=torch.bfloat16), labels=torch.tensor([[1, 2], [3, 4]]))
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


def test_contrastive_logits_are_float32_under_bf16_autocast():
    # GPU training runs the model under bf16 autocast; the einsum scoring the distractors used to run in bf16 there
    # while the positive stayed float32, and the logits came back in bf16 (steps of 0.06 near 8 after the 0.1
    # temperature)
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT))
    g = torch.Generator().manual_seed(0)
    predictions = torch.randn(40, 16, generator=g).to(torch.bfloat16)
    targets = torch.randn(60, 16, generator=g).to(torch.bfloat16)
    positives, negatives = torch.arange(40), torch.randint(0, 60, (40, 20), generator=g)
    plain = model.contrastive_logits(predictions, targets, positives, negatives)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = model.contrastive_logits(predictions, targets, positives, negatives)
    assert plain.dtype == autocast.dtype == torch.float32
    assert torch.equal(plain, autocast)


def test_pretraining_under_bf16_autocast_keeps_losses_and_gumbel_in_float32(monkeypatch):
    torch.manual_seed(0)
    model = HfWav2Vec2ForPreTraining(tiny_config(**NO_DROPOUT)).train()
    x = torch.randn(2, 4000)
    frames = int(model._get_feat_extract_output_lengths(4000))
    mask = compute_mask_indices((2, frames), 0.5, 3, min_masks=2)
    negatives = sample_negative_indices(mask, model.config.num_negatives)
    quantized, gumbel = [], []
    model.quantizer.register_forward_hook(lambda module, args, out: quantized.append(out[0].dtype))
    real_gumbel = torch.nn.functional.gumbel_softmax

    def recording_gumbel(logits, *args, **kwargs):
        gumbel.append(logits.dtype)
        return real_gumbel(logits, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "gumbel_softmax", recording_gumbel)
    runs = {}
    for name, enabled in (("fp32", False), ("bf16", True)):
        torch.manual_seed(1)  # the same Gumbel noise in both runs
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            runs[name] = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert quantized == [torch.float32, torch.bfloat16]  # autocast reached the model: its matmuls ran in bf16
    assert gumbel == [torch.float32, torch.float32]
    for field in ("loss", "contrastive_loss", "diversity_loss", "feature_penalty", "logits"):
        assert getattr(bf16, field).dtype == torch.float32, field
    assert torch.isfinite(bf16.logits[:, 0]).all()
    assert abs(bf16.loss.item() - fp32.loss.item()) < 0.02 * fp32.loss.item()
    bf16.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_freezing():
    model = HfWav2Vec2ForCTC(tiny_config())
    model.freeze_feature_encoder()
    assert not any(p.requires_grad for p in model.wav2vec2.feature_extractor.parameters())
    assert all(p.requires_grad for p in model.wav2vec2.encoder.parameters())
    model.freeze_base_model()
    assert not any(p.requires_grad for p in model.wav2vec2.parameters()) and model.lm_head.weight.requires_grad


def test_output_attentions_and_hidden_states():
    model = HfWav2Vec2Model(tiny_config(**NO_DROPOUT)).eval()
    x = torch.randn(2, 3000)
    out = model(x, output_attentions=True, output_hidden_states=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape[1] == 4
    assert len(out.hidden_states) == 3
    plain = model(x)
    assert torch.allclose(plain.last_hidden_state, out.last_hidden_state, atol=1e-5)


# ------------------------------------------------------------------ saving and loading


def test_save_load_round_trip_is_identical(tmp_path):
    model = HfWav2Vec2ForPreTraining(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in files and "modeling_hf_wav2vec2.py" in files
    assert "configuration_hf_wav2vec2.py" in files
    loaded = HfWav2Vec2ForPreTraining.from_pretrained(tmp_path).eval()
    x = torch.randn(1, 3000)
    frames = int(model._get_feat_extract_output_lengths(3000))
    mask = compute_mask_indices((1, frames), 0.5, 4, 2)
    negatives = sample_negative_indices(mask, 6)
    a = model(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    b = loaded(x, mask_time_indices=mask, sampled_negative_indices=negatives)
    assert torch.equal(a.loss, b.loss)


def test_auto_classes_and_remote_code_in_a_fresh_process(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForCTC, AutoModelForPreTraining

    model = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()
    model.save_pretrained(tmp_path / "ckpt")
    # the modeling file's flat siblings travel with it (the fresh process below can import nothing else)
    code = {p.name for p in (tmp_path / "ckpt").glob("*.py")}
    assert code == {
        "configuration_hf_wav2vec2.py",
        "modeling_hf_wav2vec2.py",
        "modules_hf_wav2vec2.py",
        "linear_hf_wav2vec2.py",
        "convolution_hf_wav2vec2.py",
        "masking_hf_wav2vec2.py",
        "pretraining_hf_wav2vec2.py",
        "adapters_hf_wav2vec2.py",
    }, code
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "ckpt"), type(model.config))
    assert isinstance(AutoModelForCTC.from_pretrained(tmp_path / "ckpt"), HfWav2Vec2ForCTC)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "ckpt"), HfWav2Vec2Model)
    HfWav2Vec2ForPreTraining(tiny_config()).save_pretrained(tmp_path / "pt")
    assert isinstance(AutoModelForPreTraining.from_pretrained(tmp_path / "pt"), HfWav2Vec2ForPreTraining)

    x = torch.randn(1, 3000)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(model(x).logits, tmp_path / "expected.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch
        sys.modules["hf_wav2vec2"] = None  # a process that cannot import the package (it may be pip-installed)
        from transformers import AutoModelForCTC
        model = AutoModelForCTC.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        x = torch.load({str(tmp_path / "x.pt")!r})
        with torch.no_grad():
            diff = (model(x).logits - torch.load({str(tmp_path / "expected.pt")!r})).abs().max().item()
        assert diff == 0.0, diff
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HOME"] = str(tmp_path / "hf_home")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
