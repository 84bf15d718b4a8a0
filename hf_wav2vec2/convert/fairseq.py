"""Convert original fairseq wav2vec 2.0 checkpoints (Baevski et al., 2020, arXiv:2006.11477) to this package.

Two kinds of checkpoints are released by fairseq and handled here:

* pre-trained ``Wav2Vec2Model`` (fairseq model name ``wav2vec2``: ``wav2vec_small.pt``, ``libri960_big.pt``,
  ``wav2vec_vox_new.pt``, ``xlsr_53_56k.pt``, ...) become an :class:`~hf_wav2vec2.HfWav2Vec2ForPreTraining` plus a
  feature extractor;
* CTC fine-tuned ``Wav2VecCtc`` (``wav2vec_ctc``: ``wav2vec_small_960h.pt``, ``wav2vec2_vox_960h_new.pt``, ...)
  become an :class:`~hf_wav2vec2.HfWav2Vec2ForCTC` plus a processor built from fairseq's letter dictionary
  (``dict.ltr.txt``, which lives next to the training manifests, not in the checkpoint).

fairseq itself is not needed (it does not import on Python 3.11). This module holds the entry points; the steps
live beside it: ``fairseq_checkpoint`` (safe loading, hyper-parameters), ``fairseq_config`` (hyper-parameters ->
config), ``fairseq_weights`` (parameter names, every tensor accounted for), ``fairseq_dictionary`` (letter
dictionary -> processor) and ``fairseq_adapters`` (MMS). Their public names are importable from here too.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import ConversionError
from .fairseq_adapters import corpus_keys, split_adapters, uses_adapters
from .fairseq_checkpoint import FairseqHyperParameters, load_checkpoint, read_hyperparameters, to_plain
from .fairseq_config import config_from_fairseq, model_field, parse_conv_layers
from .fairseq_dictionary import build_processor, read_fairseq_dictionary, vocabulary_from_fairseq
from .fairseq_weights import build_model, map_state_dict, target_key

logger = logging.getLogger(__name__)


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


def load_fairseq_model(
    checkpoint_path, dict_path=None, *, allow_unsafe_pickle: bool = False, target_lang: str | None = None
) -> ConvertedCheckpoint:
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
    if fine_tuned:
        vocabulary = _ctc_vocabulary(weights, dict_path)
    else:
        _check_pretrained(hp, dict_path)
        vocabulary = None
    config = config_from_fairseq(hp, vocab_size=len(vocabulary) if vocabulary else None)
    weights, adapters, chosen = _take_adapters(state, weights, hp, target_lang)
    model, dropped = build_model(config, weights, fine_tuned)
    model.target_lang = chosen
    normalize = bool(hp.task.get("normalize", False))
    if fine_tuned:  # fairseq has one CTC head for every corpus: each language's file carries it
        head = {f"lm_head.{name}": p.detach().clone() for name, p in model.lm_head.named_parameters()}
        adapters = {lang: {**state_dict, **head} for lang, state_dict in adapters.items()}
        processor = build_processor(vocabulary, config, normalize)
        return ConvertedCheckpoint(model, processor.feature_extractor, processor, dropped, adapters)
    from ..feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor

    extractor = HfWav2Vec2FeatureExtractor.for_config(config, do_normalize=normalize)
    return ConvertedCheckpoint(model, extractor, None, dropped, adapters)


def _ctc_vocabulary(weights: dict, dict_path) -> dict[str, int]:
    """The vocabulary of a fine-tuned checkpoint, from its letter dictionary, checked against the CTC head."""
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
    return vocabulary


def _check_pretrained(hp: FairseqHyperParameters, dict_path):
    """Refuse a dictionary for a pre-trained checkpoint and the pre-training variants this package lacks."""
    if dict_path is not None:
        raise ConversionError("dict_path given for a pre-trained checkpoint, which has no CTC head")
    if not model_field(hp.model, "quantize_targets"):
        raise ConversionError(
            "pre-trained checkpoints with continuous targets (quantize_targets=False) are not supported"
        )
    if model_field(hp.model, "target_glu"):
        raise ConversionError("pre-trained checkpoints with target_glu=True are not supported")


def _take_adapters(state: dict, weights: dict, hp: FairseqHyperParameters, target_lang):
    """MMS: ``(weights without the stacked adapters, {lang: adapter state dict}, chosen lang)``; else unchanged."""
    if not uses_adapters(hp.model):
        if target_lang is not None:
            raise ConversionError("target_lang given, but the checkpoint has no MMS adapters (layer_type='trf_adp')")
        return weights, {}, None
    cfg = to_plain(state["cfg"] if state.get("cfg") is not None else state["args"])
    cfg_task = cfg["task"] if isinstance(cfg.get("task"), dict) else cfg  # argparse: one flat namespace
    names = corpus_keys(cfg_task, int(hp.model["adp_num"]))
    return split_adapters(weights, names, target_lang)


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
    "target_key",
    "vocabulary_from_fairseq",
]
