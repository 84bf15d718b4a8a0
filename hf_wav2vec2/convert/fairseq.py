"""Convert original fairseq wav2vec 2.0 checkpoints (Baevski et al., 2020, arXiv:2006.11477) to this package.

Two kinds of checkpoints are released by fairseq and handled here:

* pre-trained ``Wav2Vec2Model`` (fairseq model name ``wav2vec2``: ``wav2vec_small.pt``, ``libri960_big.pt``,
  ``wav2vec_vox_new.pt``, ``xlsr_53_56k.pt``, ...) become an :class:`~hf_wav2vec2.HfWav2Vec2ForPreTraining` plus a
  feature extractor;
* CTC fine-tuned ``Wav2VecCtc`` (``wav2vec_ctc``: ``wav2vec_small_960h.pt``, ``wav2vec2_vox_960h_new.pt``, ...)
  become an :class:`~hf_wav2vec2.HfWav2Vec2ForCTC` plus a processor built from fairseq's letter dictionary
  (``dict.ltr.txt``, which lives next to the training manifests, not in the checkpoint).

fairseq itself is not needed (it does not import on Python 3.11). The checkpoint is read with ``torch.load`` and
its hyper-parameters come from the ``args`` entry (an ``argparse.Namespace``, fairseq before the hydra migration)
or the ``cfg`` entry (a plain dict in recent fairseq, an omegaconf ``DictConfig`` in some versions). Every tensor
is accounted for: a fairseq parameter with no counterpart, a parameter of the new model that nothing fills, or a
shape mismatch is a :class:`ConversionError`, never a warning.
"""

import argparse
import ast
import json
import logging
import pickle
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import ConversionError
from .fairseq_adapters import (
    apply_finetuning_overrides,
    check_adapter_options,
    corpus_keys,
    split_adapters,
    uses_adapters,
)

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
    "extractor_mode", "conv_feature_layers", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
    "encoder_attention_heads", "layer_norm_first",
)

# fairseq activation_fn -> transformers ACT2FN name. fairseq's "gelu" is the exact (erf) GELU, "gelu_accurate"
# the tanh approximation, which transformers calls "gelu_new".
ACTIVATIONS = {"gelu": "gelu", "gelu_accurate": "gelu_new", "relu": "relu", "tanh": "tanh", "linear": "linear"}

# fairseq's Dictionary() starts with these four symbols, in this order (bos, pad, eos, unk).
FAIRSEQ_SPECIAL_SYMBOLS = ("<s>", "<pad>", "</s>", "<unk>")

# Parameter names inside fairseq's Wav2Vec2Model -> names in this package. "B." stands for the backbone prefix
# ("wav2vec2."); heads of the pre-training model have none.
_RULES = [
    # ConvFeatureExtractionModel: each block is Sequential(conv, dropout, norm, GELU). In mode "default" the norm
    # of block 0 is an Fp32GroupNorm (index 2); in mode "layer_norm" every block's norm is
    # Sequential(TransposeLast, Fp32LayerNorm, TransposeLast), so its parameters sit at index 2.1.
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"B.feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"B.feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)",
     r"B.feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"B.feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"B.feature_projection.projection.\1"),
    (r"mask_emb", r"B.masked_spec_embed"),
    # pos_conv = Sequential(weight-normed Conv1d, SamePad, GELU): old torch weight_norm names, or the
    # parametrization names of torch >= 2.1 (which this package uses too).
    (r"encoder\.pos_conv\.0\.weight_g", r"B.encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"B.encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.0\.parametrizations\.weight\.original([01])",
     r"B.encoder.pos_conv_embed.conv.parametrizations.weight.original\1"),
    (r"encoder\.pos_conv\.0\.bias", r"B.encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"B.encoder.layer_norm.\1"),
    # TransformerSentenceEncoderLayer
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"B.encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"B.encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"B.encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"B.encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"B.encoder.layers.\1.final_layer_norm.\2"),
    # MMS adapters, once fairseq_adapters.split_adapters has taken one language out of the stacked AdapterFast
    (r"encoder\.layers\.(\d+)\.adapter_layer\.(norm|linear_1|linear_2)\.(weight|bias)",
     r"B.encoder.layers.\1.adapter_layer.\2.\3"),
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


# --------------------------------------------------------------------------------------------------------------------
# Reading the checkpoint
# --------------------------------------------------------------------------------------------------------------------


def load_checkpoint(path, allow_unsafe_pickle: bool = False) -> dict:
    """``torch.load`` a fairseq checkpoint on the CPU.

    By default only tensors, containers and ``argparse.Namespace`` (the ``args`` of older checkpoints: an attribute
    bag, safe to rebuild) are unpickled. Checkpoints that pickle other Python objects (omegaconf ``DictConfig``,
    numpy scalars, ...) are refused with a message naming them; ``allow_unsafe_pickle=True`` then loads them with
    full pickle, which runs whatever code the file asks for: only for files from a trusted source.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such checkpoint file")
    if allow_unsafe_pickle:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except ModuleNotFoundError as error:
            hint = " (fairseq's DictConfig needs omegaconf)" if error.name and error.name.startswith("omegaconf") else ""
            raise ConversionError(
                f"{path} pickles objects from the module {error.name!r}, which is not installed: "
                f"pip install {error.name.split('.')[0] if error.name else '...'}{hint}"
            ) from error
    else:
        try:
            with torch.serialization.safe_globals([argparse.Namespace]):
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ConversionError(
                f"{path} contains pickled Python objects ({_unsafe_globals(path)}) that torch's safe loader "
                "refuses; if you trust the file, pass allow_unsafe_pickle=True (CLI: --unsafe_load), which lets "
                "the file run arbitrary code while loading"
            ) from error
    if not isinstance(state, dict) or "model" not in state:
        raise ConversionError(f"{path} is not a fairseq checkpoint (no 'model' entry)")
    return state


def _unsafe_globals(path) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError):  # e.g. legacy non-zip files
        return "unknown classes"
    names = [name for name in names if name != "argparse.Namespace"]
    return ", ".join(names) if names else "unknown classes"


def _plain(obj):
    """Namespaces, omegaconf containers and dicts -> plain dicts (recursively); other values unchanged."""
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    elif type(obj).__module__.startswith("omegaconf"):
        # only reachable after an unsafe load, which has imported omegaconf already
        from omegaconf import OmegaConf

        obj = OmegaConf.to_container(obj, resolve=True)
    if isinstance(obj, dict):
        return {str(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_plain(value) for value in obj]
    return obj


@dataclass
class FairseqHyperParameters:
    """Hyper-parameters of a checkpoint, as plain dicts of fairseq field names.

    ``model``: the pre-trained ``Wav2Vec2Model``'s fields (for a fine-tuned checkpoint, those of ``w2v_args``);
    ``task`` / ``criterion``: the task (``normalize``) and pre-training criterion (``loss_weights``) fields;
    ``finetuning``: the ``Wav2VecCtc`` fields (dropouts, masking, ``final_dropout``) or None for pre-trained ones.
    """

    model: dict
    task: dict = field(default_factory=dict)
    criterion: dict = field(default_factory=dict)
    finetuning: dict | None = None


def read_hyperparameters(state: dict, fine_tuned: bool) -> FairseqHyperParameters:
    """Collect the hyper-parameters from a checkpoint's ``cfg`` (newer fairseq) or ``args`` (older)."""
    if state.get("cfg") is not None:
        cfg = _plain(state["cfg"])
        model, task, criterion = cfg.get("model") or {}, cfg.get("task") or {}, cfg.get("criterion") or {}
    elif state.get("args") is not None:
        model = task = criterion = _plain(state["args"])  # argparse: one flat namespace for everything
    else:
        raise ConversionError("the checkpoint holds no hyper-parameters (neither 'cfg' nor 'args')")
    name = model.get("_name") or model.get("arch")
    if not fine_tuned:
        _check_model_name(name, "wav2vec2")
        return FairseqHyperParameters(model=model, task=task, criterion=criterion)

    _check_model_name(name, "wav2vec_ctc")
    pretraining = model.get("w2v_args")
    if not pretraining:
        raise ConversionError(
            "the fine-tuned checkpoint does not embed its pre-training hyper-parameters (w2v_args is empty; fairseq "
            f"would read them from w2v_path={model.get('w2v_path')!r}); re-save it with fairseq so that w2v_args is set"
        )
    if isinstance(pretraining.get("model"), dict):  # a full pre-training cfg: {"model": ..., "task": ..., ...}
        pre_model, pre_task = pretraining["model"], pretraining.get("task") or {}
    else:  # an argparse namespace of the pre-training run
        pre_model = pre_task = pretraining
    # fairseq asserts that fine-tuning and pre-training agree on `normalize`; the fine-tuning task is authoritative
    task = {**pre_task, **{k: v for k, v in task.items() if k == "normalize"}}
    pre_model = apply_finetuning_overrides(pre_model, model)  # MMS: layer_type / adp_* of the fine-tuning run
    return FairseqHyperParameters(model=pre_model, task=task, criterion={}, finetuning=model)


def _check_model_name(name, expected):
    if name is not None and name != expected:
        raise ConversionError(
            f"fairseq model {name!r} is not supported here; expected {expected!r} "
            "(wav2vec 2.0 pre-training: 'wav2vec2'; CTC fine-tuning: 'wav2vec_ctc')"
        )


def _get(cfg: dict, name: str):
    if name in cfg and cfg[name] is not None:
        return cfg[name]
    if name in REQUIRED_MODEL_FIELDS:
        raise ConversionError(f"the checkpoint's model hyper-parameters lack {name!r}")
    return FAIRSEQ_MODEL_DEFAULTS[name]


# --------------------------------------------------------------------------------------------------------------------
# Hyper-parameters -> HfWav2Vec2Config
# --------------------------------------------------------------------------------------------------------------------


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
    mode, layer_type, depth = _get(model, "extractor_mode"), _get(model, "layer_type"), _get(model, "pos_conv_depth")
    if mode not in ("default", "layer_norm"):
        raise ConversionError(f"extractor_mode {mode!r} is not supported ('default', 'layer_norm')")
    if layer_type not in ("transformer", "trf_adp"):  # trf_adp: MMS adapters (fairseq_adapters.py)
        raise ConversionError(f"layer_type {layer_type!r} (e.g. conformer) is not supported")
    if int(depth) != 1:
        raise ConversionError(f"pos_conv_depth={depth} (a stack of positional convs) is not supported")
    if _get(model, "quantize_input"):
        raise ConversionError("quantize_input=True checkpoints (quantized transformer input) are not supported")
    activation = _get(model, "activation_fn")
    if activation not in ACTIVATIONS:
        raise ConversionError(f"activation_fn {activation!r} is not supported ({', '.join(ACTIVATIONS)})")
    if fine_tuned:
        return
    training_only = {
        "mask_selection": "static", "cross_sample_negatives": 0, "codebook_negatives": 0,
        "negatives_from_everywhere": False,
    }
    for name, supported in training_only.items():
        if _get(model, name) != supported:
            logger.warning(
                "fairseq option %s=%r only affects pre-training and is not reproduced by this package's training "
                "(weights and inference are unaffected)", name, _get(model, name),
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
    conv = parse_conv_layers(_get(model, "conv_feature_layers"))
    hidden = int(_get(model, "encoder_embed_dim"))
    final_dim = int(_get(model, "final_dim")) or hidden
    max_temp, min_temp, decay = _parse_numbers(_get(model, "latent_temp"), 3, "latent_temp")
    values = dict(
        conv_dim=[c[0] for c in conv], conv_kernel=[c[1] for c in conv], conv_stride=[c[2] for c in conv],
        conv_bias=bool(_get(model, "conv_bias")),
        feat_extract_norm="group" if _get(model, "extractor_mode") == "default" else "layer",
        feat_extract_activation="gelu",  # fairseq's conv blocks and positional conv use nn.GELU() whatever activation_fn
        hidden_size=hidden,
        num_hidden_layers=int(_get(model, "encoder_layers")),
        num_attention_heads=int(_get(model, "encoder_attention_heads")),
        intermediate_size=int(_get(model, "encoder_ffn_embed_dim")),
        hidden_act=ACTIVATIONS[_get(model, "activation_fn")],
        do_stable_layer_norm=bool(_get(model, "layer_norm_first")),
        num_conv_pos_embeddings=int(_get(model, "conv_pos")),
        num_conv_pos_embedding_groups=int(_get(model, "conv_pos_groups")),
        hidden_dropout=float(_get(model, "dropout")),
        attention_dropout=float(_get(model, "attention_dropout")),
        activation_dropout=float(_get(model, "activation_dropout")),
        feat_proj_dropout=float(_get(model, "dropout_input")),
        feat_quantizer_dropout=float(_get(model, "dropout_features")),
        layerdrop=float(_get(model, "encoder_layerdrop")),
        feature_grad_mult=float(_get(model, "feature_grad_mult")),
        mask_time_prob=float(_get(model, "mask_prob")),
        mask_time_length=int(_get(model, "mask_length")),
        mask_feature_prob=float(_get(model, "mask_channel_prob")),
        mask_feature_length=int(_get(model, "mask_channel_length")),
        num_codevectors_per_group=int(_get(model, "latent_vars")),
        num_codevector_groups=int(_get(model, "latent_groups")),
        codevector_dim=int(_get(model, "latent_dim")) or final_dim,
        proj_codevector_dim=final_dim,
        contrastive_logits_temperature=float(_get(model, "logit_temp")),
        num_negatives=int(_get(model, "num_negatives")),
        max_gumbel_temperature=max_temp, min_gumbel_temperature=min_temp, gumbel_temperature_decay=decay,
        quantize_targets=bool(_get(model, "quantize_targets")),
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
        "dropout": "hidden_dropout", "attention_dropout": "attention_dropout",
        "activation_dropout": "activation_dropout", "dropout_input": "feat_proj_dropout",
        "layerdrop": "layerdrop", "mask_prob": "mask_time_prob", "mask_length": "mask_time_length",
        "mask_channel_prob": "mask_feature_prob", "mask_channel_length": "mask_feature_length",
        "feature_grad_mult": "feature_grad_mult", "final_dropout": "final_dropout",
    }
    values = {ours: ft[theirs] for theirs, ours in renames.items() if ft.get(theirs) is not None}
    if "apply_mask" in ft:
        values["apply_spec_augment"] = bool(ft["apply_mask"])
    return values


# --------------------------------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------------------------------


def target_key(key: str, fine_tuned: bool, has_mask_embedding: bool) -> tuple[str | None, str | None]:
    """Name in this package of the fairseq parameter ``key``: ``(name, None)``, ``(None, reason)`` for a
    parameter left out on purpose, or ``(None, None)`` for an unknown one."""
    if fine_tuned:
        match = re.fullmatch(r"w2v_encoder\.proj\.(weight|bias)", key)
        if match:
            return f"lm_head.{match[1]}", None
        if not key.startswith(_FINETUNED_PREFIX):
            return None, None
        key = key[len(_FINETUNED_PREFIX):]
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


def _build_model(config, state_dict: dict, fine_tuned: bool):
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


# --------------------------------------------------------------------------------------------------------------------
# Letter dictionary -> vocabulary
# --------------------------------------------------------------------------------------------------------------------


def read_fairseq_dictionary(path) -> list[str]:
    """Symbols of a fairseq ``Dictionary`` file (``dict.ltr.txt``: lines "SYMBOL COUNT"), index order.

    fairseq prepends ``<s>``, ``<pad>``, ``</s>``, ``<unk>`` (ids 0-3) to the file's symbols. A line may end with
    the flag ``#fairseq:overwrite``; overwriting one of the special symbols (which gives it a second id in fairseq)
    cannot be represented in a vocab.json and is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such dictionary file")
    symbols = list(FAIRSEQ_SPECIAL_SYMBOLS)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        overwrite = line.endswith(" #fairseq:overwrite")
        if overwrite:
            line = line[: -len(" #fairseq:overwrite")]
        symbol, _, count = line.rstrip().rpartition(" ")
        if not symbol or not count.lstrip("-").isdigit():
            raise ConversionError(f"{path}, line {number}: expected 'SYMBOL COUNT', got {line!r}")
        if symbol in symbols:
            raise ConversionError(f"{path}, line {number}: duplicate symbol {symbol!r}")
        symbols.append(symbol)
    return symbols


def vocabulary_from_fairseq(symbols: list[str]) -> dict[str, int]:
    """vocab.json contents (token -> id) for fairseq symbols in index order.

    fairseq's CTC blank is id 0, its ``<s>`` symbol (the wav2letter convention of ``Dictionary.bos()``); this
    package (like transformers) calls the blank ``pad_token`` and gives it id 0. So the NAMES of ids 0 and 1 are
    swapped (0 = "<pad>", 1 = "<s>") while every id, and with it every row of the CTC head, stays where it is.
    """
    if list(symbols[:2]) != ["<s>", "<pad>"]:
        raise ConversionError(f"a fairseq dictionary starts with <s>, <pad>; got {symbols[:2]}")
    names = ["<pad>", "<s>", *symbols[2:]]
    return {name: index for index, name in enumerate(names)}


def build_processor(vocabulary: dict[str, int], config, normalize: bool):
    """Feature extractor + CTC tokenizer for a converted CTC model."""
    from ..feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from ..processing_hf_wav2vec2 import HfWav2Vec2Processor
    from ..tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

    if "|" not in vocabulary:
        logger.warning("the dictionary has no word delimiter '|': transcripts will have no spaces")
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = Path(scratch) / "vocab.json"
        vocab_file.write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        tokenizer = HfWav2Vec2CTCTokenizer(
            str(vocab_file), bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
            word_delimiter_token="|", do_lower_case=False,
        )
    feature_extractor = HfWav2Vec2FeatureExtractor.for_config(config, do_normalize=normalize)
    return HfWav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer)


# --------------------------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ConvertedCheckpoint:
    """A converted fairseq checkpoint.

    ``model``: HfWav2Vec2ForPreTraining or HfWav2Vec2ForCTC (eval mode, fp32); ``processor``: the CTC processor
    (None for pre-trained checkpoints); ``feature_extractor``: always set (the processor's for CTC models);
    ``dropped``: ``(fairseq_key, reason)`` for tensors left out on purpose; ``adapters``: MMS checkpoints' state
    dict per language (``adapter.<lang>.safetensors`` contents; the model holds ``model.target_lang``'s).
    """

    model: object
    feature_extractor: object
    processor: object = None
    dropped: list = field(default_factory=list)
    adapters: dict = field(default_factory=dict)

    def save_pretrained(self, directory) -> Path:
        directory = Path(directory)
        self.model.save_pretrained(directory)
        (self.processor or self.feature_extractor).save_pretrained(directory)
        self.save_adapters(directory)
        return directory

    def save_adapters(self, directory) -> list[Path]:
        """Write every language's ``adapter.<lang>.safetensors`` (MMS checkpoints; nothing otherwise)."""
        from safetensors.torch import save_file

        paths = []
        for lang, state in self.adapters.items():
            paths.append(Path(directory) / f"adapter.{lang}.safetensors")
            save_file({k: v.contiguous() for k, v in state.items()}, str(paths[-1]), metadata={"format": "pt"})
        return paths


def is_fine_tuned(fairseq_state: dict) -> bool:
    return any(key.startswith("w2v_encoder.") for key in fairseq_state)


def load_fairseq_model(checkpoint_path, dict_path=None, *, allow_unsafe_pickle: bool = False,
                       target_lang: str | None = None) -> ConvertedCheckpoint:
    """Read a fairseq wav2vec 2.0 checkpoint into this package's classes (nothing is written).

    Args:
        checkpoint_path: the fairseq ``.pt`` file.
        dict_path: fairseq's letter dictionary (``dict.ltr.txt``); required for fine-tuned (CTC) checkpoints.
        allow_unsafe_pickle: load with full pickle (see :func:`load_checkpoint`).
        target_lang: MMS checkpoints (``layer_type=trf_adp``): the adapter loaded into the model (default "eng"
            when there is one, else the first); every adapter is in ``adapters`` (see ``fairseq_adapters``).
    """
    state = load_checkpoint(checkpoint_path, allow_unsafe_pickle)
    weights = state["model"]
    fine_tuned = is_fine_tuned(weights)
    hp = read_hyperparameters(state, fine_tuned)
    vocabulary = None
    if fine_tuned:
        if "w2v_encoder.proj.weight" not in weights:
            raise ConversionError("fine-tuned checkpoint without a CTC head (w2v_encoder.proj); seq2seq is not supported")
        if dict_path is None:
            raise ConversionError(
                "a fine-tuned checkpoint needs its letter dictionary: pass dict_path (CLI: --dict dict.ltr.txt); "
                "fairseq keeps it next to the training manifests, not in the checkpoint"
            )
        vocabulary = vocabulary_from_fairseq(read_fairseq_dictionary(dict_path))
        outputs = weights["w2v_encoder.proj.weight"].shape[0]
        if len(vocabulary) != outputs:
            raise ConversionError(
                f"{dict_path} gives {len(vocabulary)} symbols (4 specials included), but the CTC head has {outputs} "
                "outputs: wrong dictionary for this checkpoint"
            )
    elif dict_path is not None:
        raise ConversionError("dict_path given for a pre-trained checkpoint, which has no CTC head")
    elif not _get(hp.model, "quantize_targets"):
        raise ConversionError("pre-trained checkpoints with continuous targets (quantize_targets=False) are not supported")
    elif _get(hp.model, "target_glu"):
        raise ConversionError("pre-trained checkpoints with target_glu=True are not supported")

    config = config_from_fairseq(hp, vocab_size=len(vocabulary) if vocabulary else None)
    adapters, chosen = {}, None
    if uses_adapters(hp.model):
        cfg = _plain(state["cfg"] if state.get("cfg") is not None else state["args"])
        cfg_task = cfg["task"] if isinstance(cfg.get("task"), dict) else cfg  # argparse: one flat namespace
        names = corpus_keys(cfg_task, int(hp.model["adp_num"]))
        weights, adapters, chosen = split_adapters(weights, names, target_lang)
    elif target_lang is not None:
        raise ConversionError("target_lang given, but the checkpoint has no MMS adapters (layer_type='trf_adp')")
    model, dropped = _build_model(config, weights, fine_tuned)
    model.target_lang = chosen
    if fine_tuned:  # fairseq has one CTC head for every corpus: each language's file carries it
        head = {f"lm_head.{name}": p.detach().clone() for name, p in model.lm_head.named_parameters()}
        adapters = {lang: {**state_dict, **head} for lang, state_dict in adapters.items()}
    normalize = bool(hp.task.get("normalize", False))
    if fine_tuned:
        processor = build_processor(vocabulary, config, normalize)
        return ConvertedCheckpoint(model, processor.feature_extractor, processor, dropped, adapters)
    from ..feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor

    extractor = HfWav2Vec2FeatureExtractor.for_config(config, do_normalize=normalize)
    return ConvertedCheckpoint(model, extractor, None, dropped, adapters)


def convert_fairseq_checkpoint(
    checkpoint_path, output_dir, dict_path=None, *, allow_unsafe_pickle: bool = False
) -> ConvertedCheckpoint:
    """Convert a fairseq checkpoint and ``save_pretrained`` the model and its processor into ``output_dir``."""
    converted = load_fairseq_model(checkpoint_path, dict_path, allow_unsafe_pickle=allow_unsafe_pickle)
    converted.save_pretrained(output_dir)
    for key, reason in converted.dropped:
        logger.info("left out %s: %s", key, reason)
    return converted


__all__ = [
    "ConvertedCheckpoint",
    "FairseqHyperParameters",
    "config_from_fairseq",
    "convert_fairseq_checkpoint",
    "load_checkpoint",
    "load_fairseq_model",
    "map_state_dict",
    "parse_conv_layers",
    "read_fairseq_dictionary",
    "read_hyperparameters",
    "vocabulary_from_fairseq",
]
