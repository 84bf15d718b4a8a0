"""fairseq -> hf_wav2vec2 conversion, and transformers <-> hf_wav2vec2, on synthetic checkpoints.

fairseq does not import on Python 3.11, so the checkpoints here are built from fairseq's documented parameter names,
shapes and config fields (argparse ``args`` style and dict ``cfg`` style), and the converted models are checked
against plain-torch re-implementations of fairseq's forward computations (written from fairseq's
``ConvFeatureExtractionModel``, ``TransformerEncoder``, ``TransformerSentenceEncoderLayer``, ``MultiheadAttention``
and ``GumbelVectorQuantizer``), fp32, max abs diff <= 1e-5.
"""

import argparse
import json
import math

import pytest
import torch
import torch.nn.functional as F
import transformers

from hf_wav2vec2 import HfWav2Vec2ForCTC
from hf_wav2vec2.cli import convert as convert_command
from hf_wav2vec2.cli.common import CommandError
from hf_wav2vec2.convert import (
    ConversionError,
    convert,
)
from hf_wav2vec2.convert.fairseq import (
    load_fairseq_model,
    parse_conv_layers,
    read_fairseq_dictionary,
    vocabulary_from_fairseq,
)

TOL = 1e-5

# fairseq Wav2Vec2Config fields of two tiny models: BASE-like (group norm in conv 0, post-LN, no conv bias) and
# LARGE-like (layer norm in every conv block, pre-LN, conv bias, explicit latent_dim).
BASE_FS = dict(
    extractor_mode="default",
    conv_feature_layers="[(16, 10, 5)] + [(16, 3, 2)] * 2",
    conv_bias=False,
    encoder_layers=2,
    encoder_embed_dim=32,
    encoder_ffn_embed_dim=64,
    encoder_attention_heads=4,
    layer_norm_first=False,
    activation_fn="gelu",
    conv_pos=16,
    conv_pos_groups=4,
    latent_vars=8,
    latent_groups=2,
    latent_dim=0,
    final_dim=12,
    quantize_targets=True,
    quantize_input=False,
    target_glu=False,
    logit_temp=0.1,
    dropout=0.1,
    attention_dropout=0.1,
    activation_dropout=0.0,
    encoder_layerdrop=0.05,
    dropout_input=0.1,
    dropout_features=0.1,
    feature_grad_mult=0.1,
    mask_prob=0.65,
    mask_length=10,
    mask_channel_prob=0.0,
    mask_channel_length=10,
    num_negatives=100,
)
LARGE_FS = dict(
    BASE_FS,
    extractor_mode="layer_norm",
    conv_bias=True,
    layer_norm_first=True,
    latent_dim=16,
    conv_pos=15,
    dropout=0.0,
    attention_dropout=0.0,
    encoder_layerdrop=0.0,
    dropout_input=0.0,
    dropout_features=0.0,
    feature_grad_mult=1.0,
)
VARIANTS = {"base": BASE_FS, "large": LARGE_FS}
LETTERS = ["|", "E", "T", "A", "O", "N", "I", "H"]  # dict.ltr.txt order (by count)


# --------------------------------------------------------------------------------------------------------------------
# Synthetic fairseq checkpoints
# --------------------------------------------------------------------------------------------------------------------


def random_fairseq_weights(hp, fine_tuned=False, vocab_size=None, keep_heads=False, seed=0):
    """A state dict with fairseq's Wav2Vec2Model (or Wav2VecCtc) parameter names and shapes, random values."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.3, offset=0.0):
        return offset + scale * torch.randn(*shape, generator=gen)

    sd = {}
    in_dim = 1
    for i, (dim, kernel, _) in enumerate(parse_conv_layers(hp["conv_feature_layers"])):
        prefix = f"feature_extractor.conv_layers.{i}"
        sd[f"{prefix}.0.weight"] = rand(dim, in_dim, kernel, scale=1 / math.sqrt(in_dim * kernel))
        if hp["conv_bias"]:
            sd[f"{prefix}.0.bias"] = rand(dim, scale=0.1)
        if hp["extractor_mode"] == "default" and i == 0:  # Fp32GroupNorm at index 2
            sd[f"{prefix}.2.weight"], sd[f"{prefix}.2.bias"] = rand(dim, scale=0.1, offset=1.0), rand(dim, scale=0.1)
        if hp["extractor_mode"] == "layer_norm":  # Sequential(TransposeLast, Fp32LayerNorm, TransposeLast) at 2
            sd[f"{prefix}.2.1.weight"] = rand(dim, scale=0.1, offset=1.0)
            sd[f"{prefix}.2.1.bias"] = rand(dim, scale=0.1)
        in_dim = dim
    c, d, f = in_dim, hp["encoder_embed_dim"], hp["encoder_ffn_embed_dim"]
    sd["layer_norm.weight"], sd["layer_norm.bias"] = rand(c, scale=0.1, offset=1.0), rand(c, scale=0.1)
    sd["post_extract_proj.weight"], sd["post_extract_proj.bias"] = rand(d, c, scale=c**-0.5), rand(d, scale=0.1)
    sd["mask_emb"] = torch.rand(d, generator=gen)
    kernel, groups = hp["conv_pos"], hp["conv_pos_groups"]
    sd["encoder.pos_conv.0.weight_g"] = rand(1, 1, kernel, scale=0.2, offset=1.0)
    sd["encoder.pos_conv.0.weight_v"] = rand(d, d // groups, kernel)
    sd["encoder.pos_conv.0.bias"] = rand(d, scale=0.1)
    sd["encoder.layer_norm.weight"], sd["encoder.layer_norm.bias"] = rand(d, scale=0.1, offset=1.0), rand(d, scale=0.1)
    for layer in range(hp["encoder_layers"]):
        prefix = f"encoder.layers.{layer}"
        for proj in ("k", "v", "q", "out"):
            sd[f"{prefix}.self_attn.{proj}_proj.weight"] = rand(d, d, scale=d**-0.5)
            sd[f"{prefix}.self_attn.{proj}_proj.bias"] = rand(d, scale=0.1)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            sd[f"{prefix}.{norm}.weight"] = rand(d, scale=0.1, offset=1.0)
            sd[f"{prefix}.{norm}.bias"] = rand(d, scale=0.1)
        sd[f"{prefix}.fc1.weight"], sd[f"{prefix}.fc1.bias"] = rand(f, d, scale=d**-0.5), rand(f, scale=0.1)
        sd[f"{prefix}.fc2.weight"], sd[f"{prefix}.fc2.bias"] = rand(d, f, scale=f**-0.5), rand(d, scale=0.1)
    if not fine_tuned or keep_heads:
        groups, num_vars = hp["latent_groups"], hp["latent_vars"]
        final_dim = hp["final_dim"] or d
        vq_dim = hp["latent_dim"] or final_dim
        sd["quantizer.vars"] = torch.rand(1, groups * num_vars, vq_dim // groups, generator=gen)
        sd["quantizer.weight_proj.weight"] = rand(groups * num_vars, c)
        sd["quantizer.weight_proj.bias"] = rand(groups * num_vars, scale=0.1)
        sd["project_q.weight"], sd["project_q.bias"] = rand(final_dim, vq_dim, scale=vq_dim**-0.5), rand(final_dim)
        sd["final_proj.weight"], sd["final_proj.bias"] = rand(final_dim, d, scale=d**-0.5), rand(final_dim)
    if not fine_tuned:
        return sd
    sd = {f"w2v_encoder.w2v_model.{key}": value for key, value in sd.items()}
    sd["w2v_encoder.proj.weight"], sd["w2v_encoder.proj.bias"] = rand(vocab_size, d, scale=d**-0.5), rand(vocab_size)
    return sd


def args_checkpoint(hp, weights, fine_tuned=False, **finetuning):
    """Old fairseq layout: an argparse Namespace under "args" (strings for latent_temp / loss_weights)."""
    model_args = dict(hp, arch="wav2vec2", latent_temp="(2,0.5,0.999995)", normalize=False)
    if not fine_tuned:
        args = argparse.Namespace(**model_args, criterion="wav2vec", loss_weights="[0.1, 10]")
    else:
        args = argparse.Namespace(
            arch="wav2vec_ctc", w2v_args=argparse.Namespace(**model_args), normalize=False, **finetuning
        )
    return {"args": args, "model": weights, "optimizer_history": [{"num_updates": 400000}], "extra_state": {}}


def cfg_checkpoint(hp, weights, fine_tuned=False, **finetuning):
    """Newer fairseq layout: a plain dict under "cfg" with model / task / criterion sections."""
    model = dict(hp, _name="wav2vec2", latent_temp=[2.0, 0.1, 0.999995])
    task = {"_name": "audio_pretraining", "normalize": True, "sample_rate": 16000}
    if not fine_tuned:
        cfg = {"model": model, "task": task, "criterion": {"_name": "wav2vec", "loss_weights": [0.1, 0.0]}}
    else:
        w2v_args = {"model": model, "task": task}
        cfg = {
            "model": {"_name": "wav2vec_ctc", "w2v_path": "/x/pretrained.pt", "w2v_args": w2v_args, **finetuning},
            "task": {"_name": "audio_finetuning", "normalize": True},
            "criterion": {"_name": "ctc", "zero_infinity": True},
        }
    return {"cfg": cfg, "model": weights}


FINETUNING = dict(
    apply_mask=True,
    mask_prob=0.5,
    mask_length=10,
    mask_channel_prob=0.25,
    mask_channel_length=64,
    dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.1,
    dropout_input=0.0,
    final_dropout=0.0,
    layerdrop=0.1,
    feature_grad_mult=0.0,
)


def write_dictionary(path, symbols=LETTERS):
    path.write_text("".join(f"{s} {1000 - 10 * i}\n" for i, s in enumerate(symbols)), encoding="utf-8")
    return path


def save(tmp_path, checkpoint, name="checkpoint.pt"):
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


# --------------------------------------------------------------------------------------------------------------------
# fairseq's forward computations in plain torch
# --------------------------------------------------------------------------------------------------------------------


def fs_feature_extractor(sd, hp, wav, p=""):
    """ConvFeatureExtractionModel: conv -> (GroupNorm in block 0 | LayerNorm over channels in every block) -> GELU."""
    x = wav[:, None]
    for i, (dim, _, stride) in enumerate(parse_conv_layers(hp["conv_feature_layers"])):
        block = f"{p}feature_extractor.conv_layers.{i}"
        x = F.conv1d(x, sd[f"{block}.0.weight"], sd.get(f"{block}.0.bias"), stride=stride)
        if hp["extractor_mode"] == "default" and i == 0:
            x = F.group_norm(x, dim, sd[f"{block}.2.weight"], sd[f"{block}.2.bias"], eps=1e-5)
        elif hp["extractor_mode"] == "layer_norm":
            x = F.layer_norm(x.transpose(1, 2), (dim,), sd[f"{block}.2.1.weight"], sd[f"{block}.2.1.bias"], 1e-5)
            x = x.transpose(1, 2)
        x = F.gelu(x)
    return x  # (B, C, T)


def fs_layer_norm(sd, name, x):
    return F.layer_norm(x, (x.shape[-1],), sd[f"{name}.weight"], sd[f"{name}.bias"], 1e-5)


def fs_linear(sd, name, x):
    return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])


def fs_attention(sd, name, x, heads):
    """fairseq MultiheadAttention (self-attention, no mask), time-first x (T, B, D): q is scaled after q_proj."""
    time, batch, dim = x.shape
    head_dim = dim // heads
    q = fs_linear(sd, f"{name}.q_proj", x) * head_dim**-0.5
    k, v = fs_linear(sd, f"{name}.k_proj", x), fs_linear(sd, f"{name}.v_proj", x)
    q, k, v = (t.contiguous().view(time, batch * heads, head_dim).transpose(0, 1) for t in (q, k, v))
    weights = torch.bmm(q, k.transpose(1, 2)).softmax(-1)
    out = torch.bmm(weights, v).transpose(0, 1).contiguous().view(time, batch, dim)
    return fs_linear(sd, f"{name}.out_proj", out)


def fs_encoder_layer(sd, name, x, hp):
    """TransformerSentenceEncoderLayer.forward (eval), x (T, B, D), both layer_norm_first orders."""
    heads = hp["encoder_attention_heads"]

    def ffn(t):
        return fs_linear(sd, f"{name}.fc2", F.gelu(fs_linear(sd, f"{name}.fc1", t)))

    residual = x
    if hp["layer_norm_first"]:
        normed = fs_layer_norm(sd, f"{name}.self_attn_layer_norm", x)
        x = residual + fs_attention(sd, f"{name}.self_attn", normed, heads)
        x = x + ffn(fs_layer_norm(sd, f"{name}.final_layer_norm", x))
    else:
        attended = residual + fs_attention(sd, f"{name}.self_attn", x, heads)
        x = fs_layer_norm(sd, f"{name}.self_attn_layer_norm", attended)
        x = fs_layer_norm(sd, f"{name}.final_layer_norm", x + ffn(x))
    return x


def fs_context(sd, hp, wav, p=""):
    """Wav2Vec2Model.extract_features(mask=False): features -> layer_norm -> post_extract_proj -> TransformerEncoder."""
    features = fs_feature_extractor(sd, hp, wav, p).transpose(1, 2)
    x = fs_linear(sd, f"{p}post_extract_proj", fs_layer_norm(sd, f"{p}layer_norm", features))
    g, v = sd[f"{p}encoder.pos_conv.0.weight_g"], sd[f"{p}encoder.pos_conv.0.weight_v"]
    weight = g * v / v.norm(dim=(0, 1), keepdim=True)  # torch weight_norm(dim=2): norm over all dims but 2
    kernel = hp["conv_pos"]
    conv = F.conv1d(
        x.transpose(1, 2), weight, sd[f"{p}encoder.pos_conv.0.bias"], padding=kernel // 2, groups=hp["conv_pos_groups"]
    )
    if kernel % 2 == 0:  # SamePad drops the extra step of an even kernel
        conv = conv[:, :, :-1]
    x = x + F.gelu(conv).transpose(1, 2)
    if not hp["layer_norm_first"]:
        x = fs_layer_norm(sd, f"{p}encoder.layer_norm", x)
    x = x.transpose(0, 1)
    for layer in range(hp["encoder_layers"]):
        x = fs_encoder_layer(sd, f"{p}encoder.layers.{layer}", x, hp)
    x = x.transpose(0, 1)
    if hp["layer_norm_first"]:
        x = fs_layer_norm(sd, f"{p}encoder.layer_norm", x)
    return x, features


def fs_quantizer(sd, hp, y):
    """GumbelVectorQuantizer.forward in eval (hard argmax), time-first=True, y (B, T, C)."""
    bsz, tsz, fsz = y.shape
    groups, num_vars = hp["latent_groups"], hp["latent_vars"]
    x = fs_linear(sd, "quantizer.weight_proj", y.reshape(-1, fsz)).view(bsz * tsz * groups, -1)
    _, k = x.max(-1)
    hard = x.new_zeros(*x.shape).scatter_(-1, k.view(-1, 1), 1.0).view(bsz * tsz, groups, -1)
    x = hard.view(bsz * tsz, -1).unsqueeze(-1) * sd["quantizer.vars"]
    x = x.view(bsz * tsz, groups, num_vars, -1).sum(-2).view(bsz, tsz, -1)
    return x, k.view(bsz, tsz, groups)


def max_diff(a, b):
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------------------------------------------------
# Numerical equivalence
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(params=["base", "large"])
def variant(request):
    return request.param


@pytest.fixture(params=["args", "cfg"])
def layout(request):
    return request.param


def build_checkpoint(layout, hp, weights, fine_tuned=False, **finetuning):
    maker = args_checkpoint if layout == "args" else cfg_checkpoint
    return maker(hp, weights, fine_tuned, **finetuning)


def test_pretrained_checkpoint_matches_fairseq(tmp_path, variant, layout):
    hp = VARIANTS[variant]
    sd = random_fairseq_weights(hp)
    converted = load_fairseq_model(save(tmp_path, build_checkpoint(layout, hp, sd)))
    model = converted.model
    assert type(model).__name__ == "HfWav2Vec2ForPreTraining" and converted.processor is None
    assert converted.dropped == []
    wav = torch.randn(2, 1600)
    with torch.no_grad():
        # feature encoder, then the whole context network
        assert max_diff(model.wav2vec2.feature_extractor(wav), fs_feature_extractor(sd, hp, wav)) <= TOL
        context, features = fs_context(sd, hp, wav)
        assert max_diff(model.wav2vec2(wav).last_hidden_state, context) <= TOL
        # quantizer (eval: argmax path), project_q on its output, final_proj (-> project_hid) on the context
        normed = fs_layer_norm(sd, "layer_norm", features)
        quantized, codes = fs_quantizer(sd, hp, normed)
        ours_q, ours_codes, _, _ = model.quantizer(normed.reshape(-1, normed.shape[-1]))
        assert torch.equal(ours_codes, codes.reshape(-1, hp["latent_groups"]))
        assert max_diff(ours_q, quantized.reshape(ours_q.shape)) <= TOL
        theirs_q = fs_linear(sd, "project_q", quantized).reshape(ours_q.shape[0], -1)
        assert max_diff(model.project_q(ours_q), theirs_q) <= TOL
        assert max_diff(model.project_hid(context), fs_linear(sd, "final_proj", context)) <= TOL


@pytest.mark.parametrize("variant", ["base", "large"])
def test_encoder_layer_matches_fairseq_in_both_layer_norm_orders(tmp_path, variant):
    hp = VARIANTS[variant]
    sd = random_fairseq_weights(hp, seed=1)
    model = load_fairseq_model(save(tmp_path, cfg_checkpoint(hp, sd))).model
    assert model.config.do_stable_layer_norm == hp["layer_norm_first"]
    h = torch.randn(3, 7, hp["encoder_embed_dim"])
    with torch.no_grad():
        ours, _ = model.wav2vec2.encoder.layers[1](h)
        reference = fs_encoder_layer(sd, "encoder.layers.1", h.transpose(0, 1), hp).transpose(0, 1)
    assert max_diff(ours, reference) <= TOL


def test_finetuned_checkpoint_logits_and_processor(tmp_path, variant, layout):
    hp = VARIANTS[variant]
    vocab_size = 4 + len(LETTERS)
    sd = random_fairseq_weights(hp, fine_tuned=True, vocab_size=vocab_size, keep_heads=(layout == "args"))
    path = save(tmp_path, build_checkpoint(layout, hp, sd, fine_tuned=True, **FINETUNING))
    converted = load_fairseq_model(path, write_dictionary(tmp_path / "dict.ltr.txt"))
    model = converted.model
    assert isinstance(model, HfWav2Vec2ForCTC)
    if layout == "args":  # pre-training heads still in the checkpoint are left out, each with its reason
        assert {key for key, _ in converted.dropped} == {
            k for k in sd if k.split("w2v_model.")[-1].split(".")[0] in ("quantizer", "project_q", "final_proj")
        }
    else:
        assert converted.dropped == []
    wav = torch.randn(2, 1600)
    with torch.no_grad():
        context, _ = fs_context(sd, hp, wav, p="w2v_encoder.w2v_model.")
        reference = fs_linear(sd, "w2v_encoder.proj", context)
        assert max_diff(model(wav).logits, reference) <= TOL

    # fine-tuning overrides win over the pre-training values (fairseq's Wav2VecEncoder arg_overrides)
    config = model.config
    assert (config.mask_time_prob, config.mask_feature_prob, config.mask_feature_length) == (0.5, 0.25, 64)
    assert (config.hidden_dropout, config.activation_dropout, config.layerdrop) == (0.0, 0.1, 0.1)
    assert config.feature_grad_mult == 0.0 and config.apply_spec_augment
    assert config.vocab_size == vocab_size and config.pad_token_id == 0

    # vocabulary: fairseq ids kept, names of 0 (the CTC blank) and 1 swapped
    tokenizer = converted.processor.tokenizer
    letters = {s: 4 + i for i, s in enumerate(LETTERS)}
    assert tokenizer.get_vocab() == {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, **letters}
    assert tokenizer.pad_token_id == config.pad_token_id == 0
    ids = [0, 6, 6, 0, 5, 4, 0, 11, 5]  # blank T T blank E | blank H E
    assert tokenizer.decode(ids) == "TE HE"
    # feature extractor follows fairseq's task.normalize and the feature encoder's norm
    feature_extractor = converted.processor.feature_extractor
    assert feature_extractor.do_normalize == (layout == "cfg")
    assert feature_extractor.return_attention_mask == (hp["extractor_mode"] == "layer_norm")


def test_saved_conversion_reloads(tmp_path):
    hp = BASE_FS
    sd = random_fairseq_weights(hp, fine_tuned=True, vocab_size=12)
    path = save(tmp_path, args_checkpoint(hp, sd, fine_tuned=True, **FINETUNING))
    out = convert(path, tmp_path / "out", dict_path=write_dictionary(tmp_path / "dict.ltr.txt"))
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.json", "tokenizer_config.json"} <= files
    assert not any(name.endswith(".bin") for name in files)
    model = HfWav2Vec2ForCTC.from_pretrained(out).eval()
    wav = torch.randn(1, 1600)
    with torch.no_grad():
        reference = fs_linear(sd, "w2v_encoder.proj", fs_context(sd, hp, wav, p="w2v_encoder.w2v_model.")[0])
        assert max_diff(model(wav).logits, reference) <= TOL
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["<pad>"] == 0 and vocab["<s>"] == 1 and vocab["|"] == 4


def test_mask_embedding_of_a_model_without_masking_is_left_out(tmp_path):
    sd = random_fairseq_weights(BASE_FS, fine_tuned=True, vocab_size=12)
    finetuning = dict(FINETUNING, mask_prob=0.0, mask_channel_prob=0.0)
    path = save(tmp_path, cfg_checkpoint(BASE_FS, sd, fine_tuned=True, **finetuning))
    converted = load_fairseq_model(path, write_dictionary(tmp_path / "dict.ltr.txt"))
    assert [key for key, _ in converted.dropped] == ["w2v_encoder.w2v_model.mask_emb"]
    assert converted.model.wav2vec2.masked_spec_embed is None
    assert all(p.requires_grad for p in converted.model.parameters())  # ready for further fine-tuning


def test_fp16_checkpoint_is_widened(tmp_path):
    sd = {k: v.half() for k, v in random_fairseq_weights(BASE_FS).items()}
    model = load_fairseq_model(save(tmp_path, cfg_checkpoint(BASE_FS, sd))).model
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.equal(model.project_hid.weight, sd["final_proj.weight"].float())


def test_missing_post_extract_proj_is_the_identity(tmp_path):
    # fairseq builds no post_extract_proj when the conv output already has the transformer's width
    hp = dict(BASE_FS, conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 2")
    sd = random_fairseq_weights(hp)
    del sd["post_extract_proj.weight"], sd["post_extract_proj.bias"]
    sd["post_extract_proj.weight"] = torch.eye(32)  # what the reference computation multiplies by
    sd["post_extract_proj.bias"] = torch.zeros(32)
    reference_sd = dict(sd)
    del sd["post_extract_proj.weight"], sd["post_extract_proj.bias"]
    model = load_fairseq_model(save(tmp_path, cfg_checkpoint(hp, sd))).model
    wav = torch.randn(1, 1600)
    with torch.no_grad():
        assert max_diff(model.wav2vec2(wav).last_hidden_state, fs_context(reference_sd, hp, wav)[0]) <= TOL


# --------------------------------------------------------------------------------------------------------------------
# Everything is accounted for: errors, not warnings
# --------------------------------------------------------------------------------------------------------------------


def test_unmapped_key_is_an_error(tmp_path):
    sd = random_fairseq_weights(BASE_FS)
    sd["encoder.layers.0.self_attn.in_proj_weight"] = torch.zeros(96, 32)
    with pytest.raises(ConversionError, match=r"no counterpart.*encoder\.layers\.0\.self_attn\.in_proj_weight"):
        load_fairseq_model(save(tmp_path, cfg_checkpoint(BASE_FS, sd)))


def test_missing_key_is_an_error(tmp_path):
    sd = random_fairseq_weights(BASE_FS)
    del sd["encoder.layers.1.fc2.bias"]
    missing = r"no weights for: wav2vec2\.encoder\.layers\.1\.feed_forward\.output_dense\.bias"
    with pytest.raises(ConversionError, match=missing):
        load_fairseq_model(save(tmp_path, cfg_checkpoint(BASE_FS, sd)))


def test_shape_mismatch_is_an_error(tmp_path):
    sd = random_fairseq_weights(BASE_FS)
    sd["encoder.layers.0.fc1.weight"] = torch.zeros(65, 32)
    with pytest.raises(ConversionError, match=r"fc1\.weight has shape \(65, 32\)"):
        load_fairseq_model(save(tmp_path, cfg_checkpoint(BASE_FS, sd)))


def test_weights_that_disagree_with_the_config_are_an_error(tmp_path):
    # layer-norm-mode conv weights under extractor_mode="default"
    sd = random_fairseq_weights(LARGE_FS)
    with pytest.raises(ConversionError, match="lacks"):
        load_fairseq_model(save(tmp_path, cfg_checkpoint(dict(LARGE_FS, extractor_mode="default"), sd)))


class PickledConfig(dict):
    """Stands for omegaconf's DictConfig: a class the safe loader does not know."""


def test_unsafe_pickle_needs_explicit_opt_in(tmp_path):
    checkpoint = cfg_checkpoint(BASE_FS, random_fairseq_weights(BASE_FS))
    checkpoint["cfg"] = PickledConfig(checkpoint["cfg"])
    path = save(tmp_path, checkpoint)
    with pytest.raises(ConversionError) as error:
        load_fairseq_model(path)
    message = str(error.value)
    assert "PickledConfig" in message and "allow_unsafe_pickle=True" in message and "--unsafe_load" in message
    assert "\n" not in message
    assert load_fairseq_model(path, allow_unsafe_pickle=True).model is not None


def test_omegaconf_checkpoint_with_unsafe_load(tmp_path):
    """Some fairseq versions pickle the cfg (and a fine-tuned model's w2v_args) as omegaconf DictConfig."""
    omegaconf = pytest.importorskip("omegaconf")
    sd = random_fairseq_weights(BASE_FS, fine_tuned=True, vocab_size=12)
    checkpoint = cfg_checkpoint(BASE_FS, sd, fine_tuned=True, **FINETUNING)
    checkpoint["cfg"] = omegaconf.OmegaConf.create(checkpoint["cfg"])
    path = save(tmp_path, checkpoint)
    with pytest.raises(ConversionError, match="omegaconf.*--unsafe_load"):
        load_fairseq_model(path, write_dictionary(tmp_path / "dict.ltr.txt"))
    model = load_fairseq_model(path, write_dictionary(tmp_path / "dict.ltr.txt"), allow_unsafe_pickle=True).model
    wav = torch.randn(1, 1600)
    with torch.no_grad():
        reference = fs_linear(sd, "w2v_encoder.proj", fs_context(sd, BASE_FS, wav, p="w2v_encoder.w2v_model.")[0])
        assert max_diff(model(wav).logits, reference) <= TOL


def test_argparse_namespace_loads_without_unsafe_pickle(tmp_path):
    path = save(tmp_path, args_checkpoint(BASE_FS, random_fairseq_weights(BASE_FS)))
    model = load_fairseq_model(path).model
    assert model.config.diversity_loss_weight == 0.1 and model.config.feature_penalty_weight == 10.0
    assert model.config.max_gumbel_temperature == 2.0 and model.config.min_gumbel_temperature == 0.5


def test_conv_layer_spec_is_not_evaluated():
    assert parse_conv_layers("[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    )
    with pytest.raises(ConversionError):
        parse_conv_layers("__import__('os').system('true')")
    with pytest.raises(ConversionError):
        parse_conv_layers("[(1, 2, 3)] * 10**9")


def test_finetuned_checkpoint_needs_a_matching_dictionary(tmp_path):
    sd = random_fairseq_weights(BASE_FS, fine_tuned=True, vocab_size=12)
    path = save(tmp_path, cfg_checkpoint(BASE_FS, sd, fine_tuned=True, **FINETUNING))
    with pytest.raises(ConversionError, match="--dict"):
        load_fairseq_model(path)
    with pytest.raises(ConversionError, match="CTC head has 12 outputs"):
        load_fairseq_model(path, write_dictionary(tmp_path / "short.txt", LETTERS[:-1]))


def test_unsupported_architectures_are_refused(tmp_path):
    sd = random_fairseq_weights(BASE_FS)
    for change, message in [
        (dict(layer_type="conformer"), "conformer"),
        (dict(pos_conv_depth=5), "pos_conv_depth"),
        (dict(quantize_targets=False), "quantize_targets"),
    ]:
        with pytest.raises(ConversionError, match=message):
            load_fairseq_model(save(tmp_path, cfg_checkpoint(dict(BASE_FS, **change), sd)))


def test_dictionary_file_parsing(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("| 10\nE 5 #fairseq:overwrite\n\nX 1\n", encoding="utf-8")
    symbols = read_fairseq_dictionary(path)
    assert symbols == ["<s>", "<pad>", "</s>", "<unk>", "|", "E", "X"]
    assert vocabulary_from_fairseq(symbols)["<pad>"] == 0
    path.write_text("| 10\n| 3\n", encoding="utf-8")
    with pytest.raises(ConversionError, match="duplicate"):
        read_fairseq_dictionary(path)


# --------------------------------------------------------------------------------------------------------------------
# transformers <-> hf_wav2vec2, and the CLI hooks
# --------------------------------------------------------------------------------------------------------------------


def transformers_ctc_directory(tmp_path):
    config = transformers.Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 3, 3),
        conv_stride=(5, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        vocab_size=12,
        feat_extract_norm="layer",
        conv_bias=True,
        do_stable_layer_norm=True,
    )
    model = transformers.Wav2Vec2ForCTC(config).eval()
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, **{s: 4 + i for i, s in enumerate(LETTERS)}}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    feature_extractor = transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True)
    directory = tmp_path / "transformers"
    model.save_pretrained(directory)
    transformers.Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(directory)
    return directory, model


def test_transformers_to_ours_and_back(tmp_path):
    source, reference = transformers_ctc_directory(tmp_path)
    ours_dir = convert(source, tmp_path / "ours")
    assert json.loads((ours_dir / "config.json").read_text())["model_type"] == "hf_wav2vec2"
    back_dir = convert(ours_dir, tmp_path / "back", target="transformers")
    assert json.loads((back_dir / "config.json").read_text())["model_type"] == "wav2vec2"

    ours = HfWav2Vec2ForCTC.from_pretrained(ours_dir).eval()
    back = transformers.Wav2Vec2ForCTC.from_pretrained(back_dir).eval()
    processor = transformers.Wav2Vec2Processor.from_pretrained(back_dir)
    theirs = transformers.Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    assert processor.tokenizer.get_vocab() == theirs.get_vocab()
    assert processor.feature_extractor.return_attention_mask
    wav = torch.randn(2, 1600)
    with torch.no_grad():
        expected = reference(wav).logits
        assert max_diff(ours(wav).logits, expected) <= TOL
        assert max_diff(back(wav).logits, expected) <= TOL


def test_fairseq_to_transformers(tmp_path):
    hp = LARGE_FS
    sd = random_fairseq_weights(hp, fine_tuned=True, vocab_size=12)
    path = save(tmp_path, cfg_checkpoint(hp, sd, fine_tuned=True, **FINETUNING))
    out = convert(path, tmp_path / "out", target="transformers", dict_path=write_dictionary(tmp_path / "d.txt"))
    model = transformers.Wav2Vec2ForCTC.from_pretrained(out).eval()
    wav = torch.randn(1, 1600)
    with torch.no_grad():
        reference = fs_linear(sd, "w2v_encoder.proj", fs_context(sd, hp, wav, p="w2v_encoder.w2v_model.")[0])
        assert max_diff(model(wav).logits, reference) <= TOL
    assert transformers.Wav2Vec2Processor.from_pretrained(out).tokenizer.pad_token_id == 0


def test_cli_hooks(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    convert_command.add_arguments(parser)
    run_convert = convert_command.run
    path = save(tmp_path, cfg_checkpoint(BASE_FS, random_fairseq_weights(BASE_FS)))
    assert run_convert(parser.parse_args([str(path), str(tmp_path / "out")])) == 0
    assert "wrote hf_wav2vec2 checkpoint" in capsys.readouterr().out
    assert (tmp_path / "out" / "model.safetensors").is_file()
    # a second run into the same directory is refused with one line
    with pytest.raises(CommandError) as exit_info:  # hf-wav2vec2's main prints it as one line and exits 1
        run_convert(parser.parse_args([str(path), str(tmp_path / "out"), "--from", "fairseq"]))
    assert "not an empty directory" in str(exit_info.value) and "\n" not in str(exit_info.value)


def test_inconsistent_hyper_parameters_are_a_conversion_error(tmp_path):
    hp = dict(BASE_FS, encoder_attention_heads=5)  # 32 dimensions do not split into 5 heads
    path = save(tmp_path, cfg_checkpoint(hp, random_fairseq_weights(hp)))
    with pytest.raises(ConversionError, match="invalid config: .*divisible by .*num_attention_heads"):
        load_fairseq_model(path)
