"""Adapter-only CTC fine-tuning for a new language (MMS recipe; ``--adapter_lang`` of ``examples/finetune_ctc.py``).

The Hugging Face recipe "Fine-tuning MMS adapter models for multi-lingual ASR": start from a multilingual model
(``facebook/mms-1b-all``, or any pre-LN model of this package, which gets fresh adapters), build the new language's
character vocabulary, re-initialize every layer's adapter and the CTC head, freeze everything else and train. Only
about 2M parameters move for mms-1b-all, so one base model serves many languages: each language is one
``adapter.<lang>.safetensors`` file beside it, switched with ``model.load_adapter(lang)``.

The output directory is then a multilingual model: the base weights with the new language loaded, the base's own
adapter files, ``adapter.<lang>.safetensors``, and a nested ``vocab.json`` ({lang: vocabulary}; the base's
languages kept) with ``tokenizer_config.json``'s ``target_lang`` set to the new language.
``--save_adapter_beside_base`` also adds the adapter file and the language's vocabulary to the base model's own
(local) directory; an existing adapter file or language there is never replaced.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..adapters_hf_wav2vec2 import ADAPTER_PT_FILE, ADAPTER_SAFE_FILE, check_language
from ..interop import copy_adapter_files
from ..tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer
from .vocab import tokenizer_kwargs

logger = logging.getLogger(__name__)

DEFAULT_ADAPTER_DIM = 16  # mms-1b-all's width, for bases that have no adapters yet


def _nested_vocab(directory) -> dict | None:
    """The {lang: vocabulary} of a local model directory's vocab.json, or None (no file, or a flat one)."""
    path = Path(directory) / "vocab.json"
    if not path.is_file():
        return None
    vocab = json.loads(path.read_text(encoding="utf-8"))
    nested = isinstance(vocab, dict) and vocab and all(isinstance(v, dict) for v in vocab.values())
    return vocab if nested else None


def check_adapter_arguments(model_args, training_args) -> None:
    """Fail before featurizing on settings adapter-only fine-tuning cannot honour (one-line errors)."""
    lang = model_args.adapter_lang
    if lang is None:
        if model_args.save_adapter_beside_base or model_args.adapter_attn_dim is not None:
            raise ValueError("--save_adapter_beside_base and --adapter_attn_dim need --adapter_lang")
        return
    check_language(lang, "--adapter_lang")
    if model_args.from_scratch or not model_args.model_name_or_path:
        raise ValueError(
            "--adapter_lang trains adapters on a pre-trained base: give --model_name_or_path, not --from_scratch"
        )
    if training_args.freeze_finetune_updates > 0:
        raise ValueError(
            "--freeze_finetune_updates and --adapter_lang conflict: adapter-only fine-tuning never "
            "unfreezes the base model"
        )
    if model_args.save_adapter_beside_base:
        base = Path(model_args.model_name_or_path)
        if not base.is_dir():
            raise ValueError(f"--save_adapter_beside_base needs a local base directory, got {base}")
        for name in (ADAPTER_SAFE_FILE.format(lang), ADAPTER_PT_FILE.format(lang)):
            if (base / name).exists():
                raise ValueError(
                    f"--save_adapter_beside_base: {base / name} exists and is kept; choose another "
                    "--adapter_lang or move the file"
                )
        vocab = _nested_vocab(base)
        if vocab is None:
            raise ValueError(
                f"--save_adapter_beside_base: {base / 'vocab.json'} is missing or holds one vocabulary, "
                "not one per language; the output directory has the multilingual model instead"
            )
        if lang in vocab:
            raise ValueError(
                f"--save_adapter_beside_base: {base / 'vocab.json'} has a vocabulary for {lang!r} "
                "already, which is kept; choose another --adapter_lang"
            )


def adapter_config_values(model_args, base_config) -> dict:
    """``adapter_attn_dim`` for the fine-tuned config: the base's, or ``--adapter_attn_dim`` (default 16) for
    a base without adapters."""
    if model_args.adapter_lang is None:
        return {}
    have, asked = getattr(base_config, "adapter_attn_dim", None), model_args.adapter_attn_dim
    if have is not None and asked is not None and asked != have:
        raise ValueError(
            f"--adapter_attn_dim {asked} differs from the base model's adapter_attn_dim ({have}), "
            "whose other languages' adapter files have that width"
        )
    if not base_config.do_stable_layer_norm:
        raise ValueError(
            "--adapter_lang needs a pre-LN base model (do_stable_layer_norm=True, as MMS and LARGE / "
            "XLS-R): adapters sit in pre-LN layers only"
        )
    return {"adapter_attn_dim": have if have is not None else (asked or DEFAULT_ADAPTER_DIM)}


def prepare_adapter_model(model, lang: str):
    """Fresh adapters and head for ``lang``, everything else frozen; logs what trains."""
    model.init_adapter_layers()
    trainable = model.freeze_all_but_adapters()
    model.target_lang = lang
    count = sum(p.numel() for p in trainable.values())
    total = sum(p.numel() for p in model.parameters())
    logger.info(
        "adapter-only fine-tuning of %r: %d of %d parameters train (%.2f%%)", lang, count, total, 100 * count / total
    )
    return model


def save_adapter_outputs(model, processor, output_dir, model_args) -> dict:
    """Write the multilingual outputs (see the module docstring); returns what was written where."""
    lang, output_dir = model_args.adapter_lang, Path(output_dir)
    language_vocab = json.loads((output_dir / "vocab.json").read_text(encoding="utf-8"))  # the run's flat vocabulary
    model.target_lang = lang
    languages = copy_adapter_files(model, output_dir)
    base = Path(model_args.model_name_or_path)
    nested = _nested_vocab(base) if base.is_dir() else None
    merged = dict(nested or {})
    if lang in merged:
        logger.warning("the base vocab.json has %r already: the output's vocabulary for it is the new one", lang)
    merged[lang] = language_vocab
    (output_dir / "vocab.json").write_text(json.dumps(merged, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    processor.tokenizer = HfWav2Vec2CTCTokenizer(str(output_dir / "vocab.json"), target_lang=lang, **tokenizer_kwargs())
    processor.save_pretrained(output_dir)
    written = {"output_dir": str(output_dir), "languages": languages}
    if model_args.save_adapter_beside_base:
        written["beside_base"] = str(_save_beside_base(model, base, lang, language_vocab))
    return written


def _save_beside_base(model, base: Path, lang: str, language_vocab: dict) -> Path:
    """Add ``adapter.<lang>.safetensors`` and the language's vocabulary to the base directory (checked before
    training by :func:`check_adapter_arguments`; re-checked here, as the run may have taken hours)."""
    path = model.save_adapter(base, lang)  # refuses to replace an existing file
    vocab = _nested_vocab(base)
    if vocab is None or lang in vocab:
        raise ValueError(
            f"{base / 'vocab.json'} changed during the run; {path} is written, the vocabulary for "
            f"{lang!r} is in the output directory's vocab.json"
        )
    vocab[lang] = language_vocab
    (base / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    logger.info("added %s and the %r vocabulary to %s", path.name, lang, base)
    return path


__all__ = [
    "DEFAULT_ADAPTER_DIM",
    "adapter_config_values",
    "check_adapter_arguments",
    "prepare_adapter_model",
    "save_adapter_outputs",
]
