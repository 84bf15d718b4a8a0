"""Checkpoints in and out: fairseq -> this package, and transformers <-> this package.

:func:`convert` is the one entry point (the ``hf-wav2vec2 convert`` subcommand, :mod:`hf_wav2vec2.cli.convert`,
calls it)::

    convert("wav2vec_small_960h.pt", "out/base-960h", dict_path="dict.ltr.txt")      # fairseq -> hf_wav2vec2
    convert("facebook-wav2vec2-base-960h/", "out/base-960h")                           # transformers -> hf_wav2vec2
    convert("out/base-960h", "out/base-960h-transformers", target="transformers")      # hf_wav2vec2 -> transformers

Formats: ``fairseq`` (a ``.pt`` file; see :mod:`hf_wav2vec2.convert.fairseq`), ``transformers`` (a directory
saved by transformers' ``Wav2Vec2*`` classes, ``model_type`` "wav2vec2") and ``hf_wav2vec2`` (a directory saved by
this package, ``model_type`` "hf_wav2vec2"). Processors travel along: a vocab.json becomes the target format's
processor, a lone feature extractor config its feature extractor. The output directory must be new (or empty), so
no stale file (an old ``pytorch_model.bin``) ends up next to the converted weights.
"""

import json
import logging
import os
import pickle
import traceback
from pathlib import Path

from ..architectures import UnknownArchitectureError, architecture, head_owner

logger = logging.getLogger(__name__)


class ConversionError(Exception):
    """A checkpoint that cannot be converted faithfully. The message is one line, meant to be shown as is."""


SOURCES = ("fairseq", "transformers", "hf_wav2vec2")
TARGETS = ("hf_wav2vec2", "transformers")

# ----------------------------------------------------------------------------------------------- pickled checkpoints


def failed_load_path(error: BaseException) -> str | None:
    """The file a failed ``torch.load`` was reading, from the error's traceback (torch's message names none)."""
    for frame, _ in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_name == "load" and frame.f_globals.get("__name__") == "torch.serialization":
            f = frame.f_locals.get("f")
            name = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", None)
            if isinstance(name, (str, os.PathLike)):
                return os.fspath(name)
    return None


_REFUSALS = ("GLOBAL", "Can only build", "Can only create new object")  # torch's words for a disallowed object


def is_weights_only_refusal(error: BaseException) -> bool:
    """Whether ``error`` is torch's ``weights_only=True`` loader refusing a pickled object, not a corrupt file
    (which fails the same loader with "Unsupported operand ...")."""
    text = str(error)
    return (
        isinstance(error, pickle.UnpicklingError)
        and "Weights only load failed" in text
        and any(word in text for word in _REFUSALS)
    )


def unpickler_detail(error: BaseException) -> str:
    """The cause in an UnpicklingError: torch's weights-only loader buries it under paragraphs of advice."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[0] if lines else type(error).__name__


def unreadable_pickle_message(error: BaseException) -> str:
    """One line for an UnpicklingError that is no :func:`is_weights_only_refusal`: a corrupt or truncated file."""
    return f"{failed_load_path(error) or 'a checkpoint file'}: not a readable PyTorch file ({unpickler_detail(error)})"


def _pickled_globals(path: str) -> list[str]:
    """The classes and functions a torch file would import when unpickled, read without running any of them."""
    import torch

    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - a legacy (non-zip) file: the message just names no globals
        return []


def unsafe_pickle_message(error: BaseException, remedy: str) -> str:
    """One line for an :func:`is_weights_only_refusal` ``error``: the file, what it pickles, that it is not loaded,
    and ``remedy`` (its ``{folder}`` becomes the file's folder)."""
    path = failed_load_path(error)
    names = _pickled_globals(path) if path else []
    listed = f" (it pickles {', '.join(names[:3])}{', ...' if len(names) > 3 else ''})" if names else ""
    folder = os.path.dirname(path) if path else "MODEL_FOLDER"
    return (
        f"{path or 'a checkpoint file'}: loading it needs arbitrary-code unpickling{listed}, which could run any "
        f"code and is never done on load; {remedy.format(folder=folder or '.')}"
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def unreadable_weights(folder: str | os.PathLike) -> tuple[str, str] | None:
    """(file, why) for the first weights file of a local model folder that cannot be read, else None. Called once
    loading failed, so reading a file again costs nothing that matters; tensors load on the meta device where
    torch allows it, with weights_only=True (an unsafe pickle is refused here as well, and reported by the CLI)."""
    if not os.path.isdir(folder):
        return None
    import torch
    from safetensors import safe_open

    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        try:
            if name.endswith(".safetensors"):
                with safe_open(path, framework="pt") as handle:
                    handle.keys()
            elif name.endswith(".bin") and name.startswith("pytorch_model"):
                torch.load(path, map_location="meta", weights_only=True)
        except pickle.UnpicklingError:
            return None  # the CLI's own message (unsafe pickle or corrupt) comes from loading again
        except Exception as error:  # noqa: BLE001 - whatever torch or safetensors hit in a damaged file
            kind = "safetensors" if name.endswith(".safetensors") else "PyTorch"
            return path, f"not a readable {kind} file ({type(error).__name__}: {_first_line(error)})"
    return None


def _refused_pickle(error: BaseException) -> ConversionError:
    return ConversionError(
        unsafe_pickle_message(
            error,
            "if you trust its source, convert it once to safetensors with convert(..., allow_unsafe_pickle=True), "
            "on the command line hf-wav2vec2 convert --unsafe_load {folder} NEW_FOLDER",
        )
    )


# ----------------------------------------------------------------------------------------------- formats


def detect_format(src) -> str:
    """ "fairseq" for a file, else the format named by the directory's config.json ``model_type``."""
    src = Path(src)
    if src.is_file():
        return "fairseq"
    config_file = src / "config.json"
    if not config_file.is_file():
        raise ConversionError(f"{src}: neither a fairseq checkpoint file nor a directory with a config.json")
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    if model_type == "wav2vec2":
        return "transformers"
    if model_type == "hf_wav2vec2":
        return "hf_wav2vec2"
    raise ConversionError(f"{src}: model_type {model_type!r} is neither 'wav2vec2' (transformers) nor 'hf_wav2vec2'")


def model_class_for(architectures):
    """This package's model class for a config's ``architectures`` list (transformers' or ours)."""
    try:
        return architecture(architectures).load()
    except UnknownArchitectureError as error:
        raise ConversionError(str(error)) from None


def _weight_names(src: Path) -> set[str]:
    """Parameter names stored in a model directory, read without loading any tensor (empty when unreadable:
    ``from_pretrained`` then reports the problem)."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (src / index).is_file():
            return set(json.loads((src / index).read_text(encoding="utf-8")).get("weight_map", {}))
    try:
        if (src / "model.safetensors").is_file():
            from safetensors import safe_open

            with safe_open(src / "model.safetensors", framework="pt") as weights:
                return set(weights.keys())
        if (src / "pytorch_model.bin").is_file():
            import torch

            # weights_only: never unpickle code; "meta": names and shapes only, no memory for the tensors
            return set(torch.load(src / "pytorch_model.bin", map_location="meta", weights_only=True))
    except Exception:  # noqa: BLE001 - any unreadable file is left to from_pretrained's own error
        return set()
    return set()


def model_class_for_directory(src):
    """This package's class for a saved directory: its ``architectures`` entry, unless the weights hold the head
    of another class. Configs of the transformers 4.5 era say ``Wav2Vec2Model`` for pre-training checkpoints
    whose weights include the quantizer and projections; those load as ``HfWav2Vec2ForPreTraining``."""
    src = Path(src)
    architectures = json.loads((src / "config.json").read_text(encoding="utf-8")).get("architectures")
    owner = head_owner(_weight_names(src))
    try:
        named = architecture(architectures)
    except UnknownArchitectureError:
        named = None  # model_class_for reports it below, unless the weights tell the class
    if owner is not None and owner != named:
        logger.info(
            "%s: config says %s but the weights hold the heads of %s; loading %s",
            src,
            architectures,
            owner.name,
            owner.name,
        )
        return owner.load()
    return model_class_for(architectures)


def load_model_directory(src, allow_unsafe_pickle: bool = False):
    """Load a transformers or hf_wav2vec2 directory with this package's classes: ``(model, processor)``.

    ``processor`` is an ``HfWav2Vec2Processor`` when the directory has a vocab.json, an
    ``HfWav2Vec2FeatureExtractor`` when it only has a feature extractor config, else None. Missing, unexpected or
    mis-shaped weights are errors, and so is a ``pytorch_model.bin`` that pickles Python objects, unless
    ``allow_unsafe_pickle`` (it then runs whatever code the file holds: trusted files only).
    """
    src = Path(src)
    cls = model_class_for_directory(src)
    try:
        if allow_unsafe_pickle and _pickled_weight_files(src):
            # from_pretrained's own weights_only=False does not reach its .bin loader (transformers 5.24)
            config = cls.config_class.from_pretrained(src)
            model, info = cls.from_pretrained(
                None, config=config, state_dict=_unpickled_weights(src), output_loading_info=True
            )
        else:
            model, info = cls.from_pretrained(src, output_loading_info=True)
    except pickle.UnpicklingError as error:
        if is_weights_only_refusal(error):
            raise _refused_pickle(error) from None
        raise ConversionError(unreadable_pickle_message(error)) from None
    except Exception:
        damaged = unreadable_weights(src)  # e.g. safetensors' "invalid JSON in header", naming no file
        if damaged is None:
            raise
        raise ConversionError(": ".join(damaged)) from None
    problems = {kind: info.get(kind) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {kind: list(keys) for kind, keys in problems.items() if keys}
    if problems:
        detail = "; ".join(f"{kind}: {', '.join(map(str, keys[:5]))}" for kind, keys in problems.items())
        raise ConversionError(f"{src}: weights do not match {cls.__name__} ({detail})")
    return model.eval(), _load_processor(src)


def _pickled_weight_files(src: Path) -> list[str]:
    """The directory's pickled weight files (``pytorch_model.bin`` or its shards), when it has no safetensors
    (from_pretrained prefers those)."""
    if (src / "model.safetensors").is_file() or (src / "model.safetensors.index.json").is_file():
        return []
    index = src / "pytorch_model.bin.index.json"
    if index.is_file():
        return sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
    return ["pytorch_model.bin"] if (src / "pytorch_model.bin").is_file() else []


def _unpickled_weights(src: Path) -> dict:
    """The tensors of the directory's pickled weight files, unpickled in full: this runs any code the files hold
    (only for ``allow_unsafe_pickle``, the caller's word that they come from a trusted source)."""
    import torch

    weights = {}
    for name in _pickled_weight_files(src):
        weights.update(torch.load(src / name, map_location="cpu", weights_only=False))
    return weights


def _load_processor(src: Path):
    from ..feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from ..processing_hf_wav2vec2 import HfWav2Vec2Processor

    if (src / "vocab.json").is_file():
        return HfWav2Vec2Processor.from_pretrained(src)
    if (src / "preprocessor_config.json").is_file() or (src / "processor_config.json").is_file():
        return HfWav2Vec2FeatureExtractor.from_pretrained(src)
    return None


def new_directory(out) -> Path:
    """Create ``out`` (or take it when empty); a file or a directory with files in it is a ConversionError, so
    nothing the user has is overwritten or mixed with what is written there."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConversionError(f"{out} already exists and is not an empty directory; choose a new output directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def convert(src, out, *, source=None, target="hf_wav2vec2", dict_path=None, allow_unsafe_pickle=False) -> Path:
    """Convert the checkpoint at ``src`` into a new directory ``out``; returns ``out``.

    Args:
        src: a fairseq ``.pt`` file, or a transformers / hf_wav2vec2 directory.
        out: output directory (created; must not hold files).
        source: "fairseq", "transformers" or "hf_wav2vec2"; detected from ``src`` when None.
        target: "hf_wav2vec2" (this package, loadable with ``trust_remote_code``) or "transformers" (transformers'
            own ``Wav2Vec2*`` classes, no custom code).
        dict_path: fairseq letter dictionary (``dict.ltr.txt``) for fine-tuned fairseq checkpoints.
        allow_unsafe_pickle: let a fairseq checkpoint, or a directory's ``pytorch_model.bin``, unpickle arbitrary
            objects (runs code from the file: trusted files only); the output holds safetensors, safe to load.
    """
    source = source or detect_format(src)
    if source not in SOURCES:
        raise ConversionError(f"unknown source format {source!r}; expected one of {', '.join(SOURCES)}")
    if target not in TARGETS:
        raise ConversionError(f"unknown target format {target!r}; expected one of {', '.join(TARGETS)}")
    if source == target == "transformers":
        raise ConversionError("source and target are both transformers: nothing to convert")
    if source != "fairseq" and dict_path is not None:
        raise ConversionError("--dict only applies to fairseq checkpoints")
    if source != "fairseq" and detect_format(src) != source:
        raise ConversionError(f"{src} is a {detect_format(src)} directory, not {source}")

    if source == "fairseq":
        from .fairseq import load_fairseq_model

        converted = load_fairseq_model(src, dict_path, allow_unsafe_pickle=allow_unsafe_pickle)
        model, processor = converted.model, converted.processor or converted.feature_extractor
    else:
        converted = None
        model, processor = load_model_directory(src, allow_unsafe_pickle=allow_unsafe_pickle)

    out = new_directory(out)
    if target == "hf_wav2vec2":
        from ..interop import copy_adapter_files
        from ..modeling_hf_wav2vec2 import HfWav2Vec2ForCTC
        from ..modeling_hf_wav2vec2_classification import HfWav2Vec2ForSequenceClassification
        from ..pipeline_audio_classification import save_classification_pipeline_code
        from ..pipeline_hf_wav2vec2 import save_pipeline_code

        model.save_pretrained(out)
        if processor is not None:
            processor.save_pretrained(out)
        if converted is None:
            copy_adapter_files(model, out)  # MMS: every language's adapter file beside the weights
        if isinstance(model, HfWav2Vec2ForCTC):
            # remote-code users (no hf_wav2vec2) get this package's pipeline: soxr resampling, streaming, LM
            save_pipeline_code(out)
        elif isinstance(model, HfWav2Vec2ForSequenceClassification):  # likewise for audio classification
            save_classification_pipeline_code(out)
    else:
        from ..interop import save_as_transformers

        try:
            save_as_transformers(model, out, processor=processor)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ConversionError(f"cannot export to transformers: {error}") from error
    if converted is not None:
        converted.save_adapters(out)  # fairseq MMS: one adapter file per language (the format is shared)
    return out


def __getattr__(name):
    # fairseq entry points, importable from here without loading the fairseq module for other conversions
    if name in ("convert_fairseq_checkpoint", "load_fairseq_model"):
        from . import fairseq

        return getattr(fairseq, name)
    if name == "to_transformers_processor":  # interop imports transformers: not for `hf-wav2vec2 convert --help`
        from ..interop import to_transformers_processor

        return to_transformers_processor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConversionError",
    "SOURCES",
    "TARGETS",
    "convert",
    "convert_fairseq_checkpoint",
    "detect_format",
    "failed_load_path",
    "is_weights_only_refusal",
    "load_fairseq_model",
    "load_model_directory",
    "model_class_for",
    "model_class_for_directory",
    "to_transformers_processor",
    "unpickler_detail",
    "unreadable_pickle_message",
    "unreadable_weights",
    "unsafe_pickle_message",
]
