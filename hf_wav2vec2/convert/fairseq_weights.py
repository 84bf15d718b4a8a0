"""fairseq parameter names -> this package's, with every tensor accounted for, and the model built from them.

A fairseq parameter with no counterpart, a parameter of the new model that nothing fills, or a shape mismatch is
a :class:`ConversionError`, never a warning.
"""

import re

import torch

from . import ConversionError

# Parameter names inside fairseq's Wav2Vec2Model -> names in this package. "B." stands for the backbone prefix
# ("wav2vec2."); heads of the pre-training model have none.
_RULES = [
    # ConvFeatureExtractionModel: each block is Sequential(conv, dropout, norm, GELU). In mode "default" the norm
    # of block 0 is an Fp32GroupNorm (index 2); in mode "layer_norm" every block's norm is
    # Sequential(TransposeLast, Fp32LayerNorm, TransposeLast), so its parameters sit at index 2.1.
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"B.feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"B.feature_extractor.conv_layers.\1.layer_norm.\2"),
    (
        r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)",
        r"B.feature_extractor.conv_layers.\1.layer_norm.\2",
    ),
    (r"layer_norm\.(weight|bias)", r"B.feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"B.feature_projection.projection.\1"),
    (r"mask_emb", r"B.masked_spec_embed"),
    # pos_conv = Sequential(weight-normed Conv1d, SamePad, GELU): old torch weight_norm names, or the
    # parametrization names of torch >= 2.1 (which this package uses too).
    (r"encoder\.pos_conv\.0\.weight_g", r"B.encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"B.encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (
        r"encoder\.pos_conv\.0\.parametrizations\.weight\.original([01])",
        r"B.encoder.pos_conv_embed.conv.parametrizations.weight.original\1",
    ),
    (r"encoder\.pos_conv\.0\.bias", r"B.encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"B.encoder.layer_norm.\1"),
    # TransformerSentenceEncoderLayer
    (
        r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)",
        r"B.encoder.layers.\1.attention.\2_proj.\3",
    ),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"B.encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"B.encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"B.encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"B.encoder.layers.\1.final_layer_norm.\2"),
    # MMS adapters, once fairseq_adapters.split_adapters has taken one language out of the stacked AdapterFast
    (
        r"encoder\.layers\.(\d+)\.adapter_layer\.(norm|linear_1|linear_2)\.(weight|bias)",
        r"B.encoder.layers.\1.adapter_layer.\2.\3",
    ),
    # GumbelVectorQuantizer (weight_proj is a plain nn.Linear when weight_proj_depth == 1, the only depth used)
    (r"quantizer\.vars", r"quantizer.codevectors"),
    (r"quantizer\.weight_proj\.(weight|bias)", r"quantizer.weight_proj.\1"),
    (r"project_q\.(weight|bias)", r"project_q.\1"),
    (r"final_proj\.(weight|bias)", r"project_hid.\1"),
]
_RULES = [(re.compile(pattern), replacement.replace("B.", "wav2vec2.", 1)) for pattern, replacement in _RULES]

# Modules of the pre-training model that fairseq's Wav2VecEncoder removes (remove_pretraining_modules) before
# fine-tuning; a fine-tuned checkpoint that still holds them has them unused.
_PRETRAINING_ONLY = re.compile(r"(quantizer|project_q|final_proj|target_glu)(\..+)?")

_FINETUNED_PREFIX = "w2v_encoder.w2v_model."


def target_key(key: str, fine_tuned: bool, has_mask_embedding: bool) -> tuple[str | None, str | None]:
    """Name in this package of the fairseq parameter ``key``: ``(name, None)``, ``(None, reason)`` for a
    parameter left out on purpose, or ``(None, None)`` for an unknown one."""
    if fine_tuned:
        match = re.fullmatch(r"w2v_encoder\.proj\.(weight|bias)", key)
        if match:
            return f"lm_head.{match[1]}", None
        if not key.startswith(_FINETUNED_PREFIX):
            return None, None
        key = key[len(_FINETUNED_PREFIX) :]
        if _PRETRAINING_ONLY.fullmatch(key):
            return None, "pre-training head, unused by the CTC model (fairseq's remove_pretraining_modules)"
    if key == "mask_emb" and not has_mask_embedding:
        return None, "mask embedding of a model configured without masking (mask_prob = mask_channel_prob = 0)"
    for pattern, replacement in _RULES:
        match = pattern.fullmatch(key)
        if match:
            return match.expand(replacement), None
    return None, None


def map_state_dict(fairseq_state: dict, target_shapes: dict, config, fine_tuned: bool):
    """Rename fairseq's tensors to this package's names and check them against ``target_shapes``.

    Returns ``(state_dict, dropped)`` where ``dropped`` lists ``(fairseq_key, reason)`` for tensors left out on
    purpose. Raises :class:`ConversionError` for an unknown fairseq key, a target the model lacks, two sources for
    one target, a shape mismatch, or a model parameter nothing fills.
    """
    has_mask_embedding = "wav2vec2.masked_spec_embed" in target_shapes
    mapped, source_of, dropped, unknown = {}, {}, [], []
    for key, value in fairseq_state.items():
        target, reason = target_key(key, fine_tuned, has_mask_embedding)
        if reason is not None:
            dropped.append((key, reason))
            continue
        if target is None:
            unknown.append(key)
            continue
        if target not in target_shapes:
            raise ConversionError(
                f"fairseq parameter {key} maps to {target}, which a model with this config lacks "
                f"(feat_extract_norm={config.feat_extract_norm!r}, conv_bias={config.conv_bias}, "
                f"{config.num_hidden_layers} layers); the checkpoint's hyper-parameters and weights disagree"
            )
        if target in source_of:
            raise ConversionError(f"fairseq parameters {source_of[target]} and {key} both map to {target}")
        if tuple(value.shape) != tuple(target_shapes[target]):
            raise ConversionError(
                f"fairseq parameter {key} has shape {tuple(value.shape)}, but {target} needs "
                f"{tuple(target_shapes[target])}"
            )
        mapped[target], source_of[target] = value, key
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ConversionError(f"fairseq parameters with no counterpart here: {', '.join(unknown[:5])}{more}")
    _fill_identity_projection(mapped, target_shapes, config)
    missing = [name for name in target_shapes if name not in mapped]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ConversionError(f"the checkpoint has no weights for: {', '.join(missing[:5])}{more}")
    return mapped, dropped


def _fill_identity_projection(mapped: dict, target_shapes: dict, config):
    # fairseq builds no post_extract_proj when the conv features already have the transformer's width and feeds
    # them on unchanged; this package always has the projection, so it becomes the identity.
    name = "wav2vec2.feature_projection.projection"
    if f"{name}.weight" in mapped or config.conv_dim[-1] != config.hidden_size:
        return
    mapped[f"{name}.weight"] = torch.eye(config.hidden_size)
    mapped[f"{name}.bias"] = torch.zeros(config.hidden_size)


def build_model(config, state_dict: dict, fine_tuned: bool):
    from ..modeling_hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining

    cls = HfWav2Vec2ForCTC if fine_tuned else HfWav2Vec2ForPreTraining
    # Built on the meta device: the random initialization of a LARGE model would be thrown away anyway.
    try:
        with torch.device("meta"):
            model = cls(config)
    except ValueError as error:  # fields that disagree with each other are checked where the model is built
        raise ConversionError(f"the checkpoint's hyper-parameters give an invalid config: {error}") from None
    target_shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    mapped, dropped = map_state_dict(state_dict, target_shapes, config, fine_tuned)
    # fp16 checkpoints are widened to fp32, the dtype the model is saved and parity-tested in
    mapped = {name: value.float() if value.is_floating_point() else value for name, value in mapped.items()}
    model.load_state_dict(mapped, strict=True, assign=True)
    if any(tensor.is_meta for tensor in (*model.parameters(), *model.buffers())):
        raise ConversionError("internal error: some model tensors were not filled from the checkpoint")
    return model.eval(), dropped
