"""Translate a fairseq checkpoint's hyper-parameters into an :class:`~hf_wav2vec2.HfWav2Vec2Config`.

Options that change what the network computes and have no counterpart in this package are refused with a
:class:`ConversionError`; options that only affect fairseq's pre-training are logged.
"""

import ast
import logging

from . import ConversionError
from .fairseq_adapters import check_adapter_options, uses_adapters
from .fairseq_checkpoint import FairseqHyperParameters

logger = logging.getLogger(__name__)

# Defaults of fairseq's Wav2Vec2Config (fairseq/models/wav2vec/wav2vec2.py) and of the fine-tuning config
# (Wav2Vec2AsrConfig, wav2vec2_asr.py), used only for fields an older checkpoint predates.
FAIRSEQ_MODEL_DEFAULTS = {
    "activation_fn": "gelu",
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "dropout_features": 0.0,
    "final_dim": 0,
    "conv_bias": False,
    "logit_temp": 0.1,
    "quantize_targets": False,
    "quantize_input": False,
    "target_glu": False,
    "feature_grad_mult": 1.0,
    "latent_vars": 320,
    "latent_groups": 2,
    "latent_dim": 0,
    "mask_length": 10,
    "mask_prob": 0.65,
    "mask_selection": "static",
    "mask_channel_prob": 0.0,
    "mask_channel_length": 10,
    "num_negatives": 100,
    "cross_sample_negatives": 0,
    "codebook_negatives": 0,
    "negatives_from_everywhere": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "pos_conv_depth": 1,
    "layer_type": "transformer",
    "latent_temp": (2.0, 0.5, 0.999995),
}

# Fields that fix the computation. Every released checkpoint stores them (fairseq's base_architecture fills the
# argparse ones before saving, the dataclass serializes all of its fields), so a default is never trusted here.
REQUIRED_MODEL_FIELDS = (
    "extractor_mode",
    "conv_feature_layers",
    "encoder_layers",
    "encoder_embed_dim",
    "encoder_ffn_embed_dim",
    "encoder_attention_heads",
    "layer_norm_first",
)

# fairseq activation_fn -> transformers ACT2FN name. fairseq's "gelu" is the exact (erf) GELU, "gelu_accurate"
# the tanh approximation, which transformers calls "gelu_new".
ACTIVATIONS = {"gelu": "gelu", "gelu_accurate": "gelu_new", "relu": "relu", "tanh": "tanh", "linear": "linear"}


def model_field(cfg: dict, name: str):
    """A model field of the checkpoint, fairseq's default for fields it predates; required ones must be set."""
    if name in cfg and cfg[name] is not None:
        return cfg[name]
    if name in REQUIRED_MODEL_FIELDS:
        raise ConversionError(f"the checkpoint's model hyper-parameters lack {name!r}")
    return FAIRSEQ_MODEL_DEFAULTS[name]


def parse_conv_layers(spec) -> list[tuple[int, int, int]]:
    """Parse fairseq's ``conv_feature_layers`` ("[(512, 10, 5)] + [(512, 3, 2)] * 4 + ...").

    fairseq ``eval``s this string; here only list/tuple literals of integers, ``+`` and ``*`` are accepted, so a
    checkpoint cannot run code through it.
    """
    if isinstance(spec, (list, tuple)):
        layers = spec
    else:
        try:
            layers = _eval_list_expression(ast.parse(str(spec), mode="eval").body)
        except (SyntaxError, ValueError) as error:
            raise ConversionError(f"cannot parse conv_feature_layers {spec!r}: {error}") from None
    result = []
    for layer in layers:
        if not (isinstance(layer, (list, tuple)) and len(layer) == 3 and all(isinstance(v, int) for v in layer)):
            raise ConversionError(f"conv_feature_layers entries must be (dim, kernel, stride), got {layer!r}")
        result.append(tuple(layer))
    if not result:
        raise ConversionError("conv_feature_layers is empty")
    return result


def _eval_list_expression(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_eval_list_expression(item) for item in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _eval_list_expression(node.left), _eval_list_expression(node.right)
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
            return left + right
        if isinstance(node.op, ast.Mult):
            count, items = (right, left) if isinstance(left, list) else (left, right)
            if isinstance(items, list) and isinstance(count, int) and 0 <= count * len(items) <= 1000:
                return items * count
    raise ValueError(f"unsupported expression {ast.dump(node)[:60]}")


def _parse_numbers(value, count: int, name: str) -> list[float]:
    """``latent_temp`` / ``loss_weights``: a sequence in cfg checkpoints, its string form in argparse ones."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (SyntaxError, ValueError):
            raise ConversionError(f"cannot parse {name} {value!r}") from None
    if isinstance(value, (int, float)):
        value = [value]
    values = [float(v) for v in value]
    if count and len(values) != count:
        raise ConversionError(f"{name} must have {count} values, got {value!r}")
    return values


def _check_supported(model: dict, fine_tuned: bool):
    """Refuse options that change what the network computes and have no counterpart in this package."""
    mode, layer_type = model_field(model, "extractor_mode"), model_field(model, "layer_type")
    depth = model_field(model, "pos_conv_depth")
    if mode not in ("default", "layer_norm"):
        raise ConversionError(f"extractor_mode {mode!r} is not supported ('default', 'layer_norm')")
    if layer_type not in ("transformer", "trf_adp"):  # trf_adp: MMS adapters (fairseq_adapters.py)
        raise ConversionError(f"layer_type {layer_type!r} (e.g. conformer) is not supported")
    if int(depth) != 1:
        raise ConversionError(f"pos_conv_depth={depth} (a stack of positional convs) is not supported")
    if model_field(model, "quantize_input"):
        raise ConversionError("quantize_input=True checkpoints (quantized transformer input) are not supported")
    activation = model_field(model, "activation_fn")
    if activation not in ACTIVATIONS:
        raise ConversionError(f"activation_fn {activation!r} is not supported ({', '.join(ACTIVATIONS)})")
    if fine_tuned:
        return
    training_only = {
        "mask_selection": "static",
        "cross_sample_negatives": 0,
        "codebook_negatives": 0,
        "negatives_from_everywhere": False,
    }
    for name, supported in training_only.items():
        if model_field(model, name) != supported:
            logger.warning(
                "fairseq option %s=%r only affects pre-training and is not reproduced by this package's training "
                "(weights and inference are unaffected)",
                name,
                model_field(model, name),
            )


def config_from_fairseq(hp: FairseqHyperParameters, vocab_size: int | None = None):
    """Translate fairseq hyper-parameters into an :class:`~hf_wav2vec2.HfWav2Vec2Config`.

    Architecture fields come from the pre-training model config (``conv_feature_layers``, ``extractor_mode``,
    ``conv_bias``, ``encoder_*``, ``layer_norm_first``, ``conv_pos``, ``conv_pos_groups``, ``latent_*``,
    ``final_dim``); regularization and masking (``dropout``, ``attention_dropout``, ``activation_dropout``,
    ``dropout_input``, ``layerdrop``, ``mask_prob``, ``mask_length``, ``mask_channel_*``, ``feature_grad_mult``,
    ``apply_mask``, ``final_dropout``) from the fine-tuning config when there is one, as fairseq's Wav2VecEncoder
    overrides them.
    """
    from ..configuration_hf_wav2vec2 import HfWav2Vec2Config

    model = hp.model
    _check_supported(model, fine_tuned=hp.finetuning is not None)
    conv = parse_conv_layers(model_field(model, "conv_feature_layers"))
    hidden = int(model_field(model, "encoder_embed_dim"))
    final_dim = int(model_field(model, "final_dim")) or hidden
    max_temp, min_temp, decay = _parse_numbers(model_field(model, "latent_temp"), 3, "latent_temp")
    values = dict(
        conv_dim=[c[0] for c in conv],
        conv_kernel=[c[1] for c in conv],
        conv_stride=[c[2] for c in conv],
        conv_bias=bool(model_field(model, "conv_bias")),
        feat_extract_norm="group" if model_field(model, "extractor_mode") == "default" else "layer",
        # fairseq's conv blocks and positional conv use nn.GELU() whatever activation_fn
        feat_extract_activation="gelu",
        hidden_size=hidden,
        num_hidden_layers=int(model_field(model, "encoder_layers")),
        num_attention_heads=int(model_field(model, "encoder_attention_heads")),
        intermediate_size=int(model_field(model, "encoder_ffn_embed_dim")),
        hidden_act=ACTIVATIONS[model_field(model, "activation_fn")],
        do_stable_layer_norm=bool(model_field(model, "layer_norm_first")),
        num_conv_pos_embeddings=int(model_field(model, "conv_pos")),
        num_conv_pos_embedding_groups=int(model_field(model, "conv_pos_groups")),
        hidden_dropout=float(model_field(model, "dropout")),
        attention_dropout=float(model_field(model, "attention_dropout")),
        activation_dropout=float(model_field(model, "activation_dropout")),
        feat_proj_dropout=float(model_field(model, "dropout_input")),
        feat_quantizer_dropout=float(model_field(model, "dropout_features")),
        layerdrop=float(model_field(model, "encoder_layerdrop")),
        feature_grad_mult=float(model_field(model, "feature_grad_mult")),
        mask_time_prob=float(model_field(model, "mask_prob")),
        mask_time_length=int(model_field(model, "mask_length")),
        mask_feature_prob=float(model_field(model, "mask_channel_prob")),
        mask_feature_length=int(model_field(model, "mask_channel_length")),
        num_codevectors_per_group=int(model_field(model, "latent_vars")),
        num_codevector_groups=int(model_field(model, "latent_groups")),
        codevector_dim=int(model_field(model, "latent_dim")) or final_dim,
        proj_codevector_dim=final_dim,
        contrastive_logits_temperature=float(model_field(model, "logit_temp")),
        num_negatives=int(model_field(model, "num_negatives")),
        max_gumbel_temperature=max_temp,
        min_gumbel_temperature=min_temp,
        gumbel_temperature_decay=decay,
        quantize_targets=bool(model_field(model, "quantize_targets")),
    )
    if uses_adapters(model):
        values["adapter_attn_dim"] = check_adapter_options(model)
    loss_weights = hp.criterion.get("loss_weights")
    if loss_weights is not None:  # fairseq's wav2vec criterion: [diversity, feature penalty]
        weights = _parse_numbers(loss_weights, 0, "loss_weights")
        if len(weights) == 2:
            values.update(diversity_loss_weight=weights[0], feature_penalty_weight=weights[1])
    if hp.finetuning is not None:
        values.update(_finetuning_values(hp.finetuning))
        values.update(vocab_size=vocab_size, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    try:
        return HfWav2Vec2Config(**values)
    except ValueError as error:
        raise ConversionError(f"the checkpoint's hyper-parameters give an invalid config: {error}") from None


def _finetuning_values(ft: dict) -> dict:
    """Wav2VecCtc overrides of the pre-training fields (fairseq's Wav2VecEncoder arg_overrides)."""
    renames = {
        "dropout": "hidden_dropout",
        "attention_dropout": "attention_dropout",
        "activation_dropout": "activation_dropout",
        "dropout_input": "feat_proj_dropout",
        "layerdrop": "layerdrop",
        "mask_prob": "mask_time_prob",
        "mask_length": "mask_time_length",
        "mask_channel_prob": "mask_feature_prob",
        "mask_channel_length": "mask_feature_length",
        "feature_grad_mult": "feature_grad_mult",
        "final_dropout": "final_dropout",
    }
    values = {ours: ft[theirs] for theirs, ours in renames.items() if ft.get(theirs) is not None}
    if "apply_mask" in ft:
        values["apply_spec_augment"] = bool(ft["apply_mask"])
    return values
