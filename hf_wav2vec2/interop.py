"""Moving checkpoints to transformers' own Wav2Vec2 classes (the reverse direction needs no code:
``HfWav2Vec2*.from_pretrained`` reads transformers' directories directly)."""

import shutil
import tempfile
from pathlib import Path

from transformers.utils import logging

from .architectures import ARCHITECTURES

logger = logging.get_logger(__name__)

# our class -> transformers' class with the same parameter names, every head included
TRANSFORMERS_CLASSES = {a.name: a.transformers_name for a in ARCHITECTURES}


def to_transformers(model):
    """Return transformers' counterpart of ``model`` holding the same weights (same parameter names)."""
    import transformers

    name = TRANSFORMERS_CLASSES.get(type(model).__name__)
    if name is None:
        raise TypeError(f"no transformers counterpart for {type(model).__name__}")
    config = model.config.to_transformers_config()
    if model.config.quantize_input or not model.config.quantize_targets:
        raise ValueError("ablation models (quantize_input / continuous targets) have no transformers counterpart")
    target = getattr(transformers, name)(config)
    missing, unexpected = target.load_state_dict(model.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"weights do not line up with transformers' {name}: missing {missing}, unexpected {unexpected}"
        )
    return target.to(next(model.parameters()).dtype)


def to_transformers_processor(processor):
    """transformers' ``Wav2Vec2Processor`` (or feature extractor) with the settings of ours (None stays None).

    transformers' own processors are returned as they are. Ours cannot simply be saved for transformers: their
    configs name this package's classes (``auto_map``), which plain transformers refuses without trust_remote_code.
    """
    import transformers

    if processor is None or type(processor).__module__.startswith("transformers."):
        return processor
    feature_extractor = getattr(processor, "feature_extractor", processor)
    if not hasattr(feature_extractor, "sampling_rate"):
        raise TypeError(
            f"processor must be a wav2vec 2.0 processor or feature extractor, got {type(processor).__name__}"
        )
    theirs_fe = transformers.Wav2Vec2FeatureExtractor(
        feature_size=feature_extractor.feature_size,
        sampling_rate=feature_extractor.sampling_rate,
        padding_value=feature_extractor.padding_value,
        do_normalize=feature_extractor.do_normalize,
        return_attention_mask=feature_extractor.return_attention_mask,
    )
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        return theirs_fe
    with tempfile.TemporaryDirectory() as scratch:
        (vocab_file,) = tokenizer.save_vocabulary(scratch)
        theirs_tok = transformers.Wav2Vec2CTCTokenizer(
            vocab_file,
            bos_token=str(tokenizer.bos_token),
            eos_token=str(tokenizer.eos_token),
            unk_token=str(tokenizer.unk_token),
            pad_token=str(tokenizer.pad_token),
            word_delimiter_token=str(tokenizer.word_delimiter_token),
            replace_word_delimiter_char=tokenizer.replace_word_delimiter_char,
            do_lower_case=tokenizer.do_lower_case,
            target_lang=tokenizer.target_lang,
        )
    return transformers.Wav2Vec2Processor(feature_extractor=theirs_fe, tokenizer=theirs_tok)


def copy_adapter_files(model, directory) -> list[str]:
    """Put the MMS adapter files of ``model`` into ``directory`` (the file format is the same in both packages).

    Every ``adapter.<lang>.safetensors`` / ``.bin`` beside the checkpoint the model was loaded from (a local
    directory) is copied; the loaded language (``model.target_lang``) is written from the model's own weights, so
    changes made in memory are kept. Returns the languages written; models without adapters write nothing.
    """
    from .adapters_hf_wav2vec2 import available_adapters

    if getattr(model.config, "adapter_attn_dim", None) is None:
        return []
    directory, name = Path(directory), model.config._name_or_path or ""
    source, languages = Path(name), []
    if name and source.is_dir():
        languages = [] if source.resolve() == directory.resolve() else available_adapters(source)
    elif name:
        logger.warning(
            f"{name} is no local directory: its adapter files are not copied (download them, or load "
            "each language and call model.save_adapter)"
        )
    for lang in languages:
        if lang == model.target_lang:
            continue
        for name in (f"adapter.{lang}.safetensors", f"adapter.{lang}.bin"):
            if (source / name).is_file() and not (directory / name).exists():
                shutil.copyfile(source / name, directory / name)
    if model.target_lang is not None:
        model.save_adapter(directory, overwrite=True)
    return sorted(set(languages) | {model.target_lang} - {None})


def save_as_transformers(model, directory, processor=None):
    """Write ``model`` (and optionally its processor) as a directory transformers' classes load, without this package.

    The processor is saved as transformers' own classes (:func:`to_transformers_processor`), so
    ``Wav2Vec2Processor.from_pretrained`` and ``pipeline(...)`` work without ``trust_remote_code``. MMS models
    keep their per-language adapter files (:func:`copy_adapter_files`): ``Wav2Vec2ForCTC.from_pretrained(directory,
    target_lang=...)`` loads each language.
    """
    directory = Path(directory)
    theirs = to_transformers_processor(processor)  # before writing anything: a bad processor leaves no half folder
    to_transformers(model).save_pretrained(directory)
    if theirs is not None:
        theirs.save_pretrained(directory)
    copy_adapter_files(model, directory)
    return directory
