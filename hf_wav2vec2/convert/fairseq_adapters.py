"""fairseq MMS checkpoints (``layer_type=trf_adp``): per-language adapters stacked in one tensor per layer.

fairseq's MMS fine-tuning (``fairseq/models/wav2vec/wav2vec2.py``: ``TransformerSentenceEncoderWithAdapterLayer``,
``AdapterFast``) keeps ``adp_num`` adapters in each transformer layer as stacked parameters
``encoder.layers.{i}.adapter_layer.{W_a, b_a, W_b, b_b, ln_W, ln_b}`` of shapes (A, adp_dim, D), (A, adp_dim),
(A, D, adp_dim), (A, D), (A, D), (A, D); the forward pass of a layer adds ``adapter[k](x)`` after the
feed-forward, k the batch's corpus (language) index, which is the position of its key in the task's
``multi_corpus_keys``. ``AdapterFast`` computes LayerNorm(ln_W[k], ln_b[k]) -> Linear(W_a[k], b_a[k]) -> act ->
Linear(W_b[k], b_b[k]): transformers' ``Wav2Vec2AttnAdapterLayer`` with ``norm`` / ``linear_1`` / ``linear_2``.

So adapter k becomes ``adapter.<key>.safetensors`` in transformers' format, each with the checkpoint's CTC head
(``w2v_encoder.proj``: fairseq's model has one head for every corpus, so every language file carries it), and the
weights of one of them (``target_lang``) go into the model itself. Conditions transformers' layout can express:
adapters in every layer (``adp_trf_idx="all"``), ReLU (``adp_act_fn``), pre-LN layers. This was written from
fairseq's code and tested on synthetic checkpoints; no released MMS ``.pt`` file was at hand to convert.
"""

from __future__ import annotations

import logging
import re

from . import ConversionError

logger = logging.getLogger(__name__)

ADAPTER_FIELDS = ("layer_type", "adp_num", "adp_dim", "adp_act_fn", "adp_trf_idx")
# fairseq AdapterFast parameter -> transformers' Wav2Vec2AttnAdapterLayer parameter
PARAMETERS = {
    "W_a": "linear_1.weight",
    "b_a": "linear_1.bias",
    "W_b": "linear_2.weight",
    "b_b": "linear_2.bias",
    "ln_W": "norm.weight",
    "ln_b": "norm.bias",
}
_STACKED = re.compile(r"(?P<prefix>.*encoder\.layers\.\d+\.adapter_layer)\.(?P<name>W_a|b_a|W_b|b_b|ln_W|ln_b)")


def apply_finetuning_overrides(pre_model: dict, finetuning: dict) -> dict:
    """fairseq's ``Wav2VecEncoder`` copies these fine-tuning fields over the pre-training model's (args_replacement)."""
    values = dict(pre_model)
    values.update({name: finetuning[name] for name in ADAPTER_FIELDS if finetuning.get(name) is not None})
    return values


def uses_adapters(model: dict) -> bool:
    return model.get("layer_type") == "trf_adp"


def check_adapter_options(model: dict) -> int:
    """The adapter width (``adp_dim``), after refusing what transformers' layout cannot express."""
    where, act = model.get("adp_trf_idx", "all"), model.get("adp_act_fn", "relu")
    if str(where) != "all":
        raise ConversionError(
            f"adapters in only some layers (adp_trf_idx={where!r}) have no transformers "
            "counterpart, which puts one in every layer"
        )
    if act != "relu":
        raise ConversionError(f"adp_act_fn={act!r} is not supported: transformers' MMS adapters use ReLU")
    if int(model.get("adp_num", -1)) < 1:
        raise ConversionError(f"layer_type='trf_adp' with adp_num={model.get('adp_num')} holds no adapter")
    if not model.get("layer_norm_first"):
        raise ConversionError(
            "adapters in post-LN layers (layer_norm_first=False) are not supported: transformers "
            "puts MMS adapters in pre-LN layers only"
        )
    return int(model.get("adp_dim", 64))


def corpus_keys(cfg_task: dict, count: int) -> list[str]:
    """Adapter k's language: the k-th of the task's ``multi_corpus_keys``, else its index as a string."""
    keys = cfg_task.get("multi_corpus_keys")
    names = [k.strip() for k in keys.split(",")] if isinstance(keys, str) and keys.strip() else []
    if len(names) != count:
        if names:
            logger.warning(
                "multi_corpus_keys names %d corpora but the checkpoint has %d adapters: adapters are named by index",
                len(names),
                count,
            )
        names = [str(index) for index in range(count)]
    if len(set(names)) != count or any("/" in n or "\\" in n or n.startswith(".") for n in names):
        raise ConversionError(f"multi_corpus_keys {keys!r} do not name the {count} adapters as distinct file names")
    return names


def split_adapters(weights: dict, names: list[str], target_lang: str | None):
    """Replace the stacked adapter tensors by those of ``target_lang`` (transformers' names under the fairseq
    prefix), and give every language's adapter state dict in this package's names (CTC head added by the caller).

    Returns ``(weights, adapters, chosen)``.
    """
    chosen = target_lang if target_lang is not None else ("eng" if "eng" in names else names[0])
    if chosen not in names:
        raise ConversionError(f"target_lang {chosen!r} is not one of the checkpoint's adapters: {', '.join(names)}")
    index = names.index(chosen)
    kept, adapters = {}, {name: {} for name in names}
    for key, value in weights.items():
        match = _STACKED.fullmatch(key)
        if match is None:
            kept[key] = value
            continue
        if value.shape[0] != len(names):
            raise ConversionError(f"fairseq parameter {key} stacks {value.shape[0]} adapters, expected {len(names)}")
        target = f"{match['prefix']}.{PARAMETERS[match['name']]}"
        kept[target] = value[index]
        ours = "wav2vec2." + target.split("w2v_model.", 1)[-1]
        for k, name in enumerate(names):
            adapters[name][ours] = value[k].float().clone()
    return kept, adapters, chosen


__all__ = ["apply_finetuning_overrides", "check_adapter_options", "corpus_keys", "split_adapters", "uses_adapters"]
