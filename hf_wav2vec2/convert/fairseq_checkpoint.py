"""Read a fairseq wav2vec 2.0 checkpoint safely: its tensors and its hyper-parameters as plain dicts.

The checkpoint is read with ``torch.load`` (``weights_only=True`` unless the caller trusts the file). Its
hyper-parameters come from the ``args`` entry (an ``argparse.Namespace``, fairseq before the hydra migration) or
the ``cfg`` entry (a plain dict in recent fairseq, an omegaconf ``DictConfig`` in some versions).
"""

import argparse
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import ConversionError
from .fairseq_adapters import apply_finetuning_overrides


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
            from_omegaconf = bool(error.name) and error.name.startswith("omegaconf")
            hint = " (fairseq's DictConfig needs omegaconf)" if from_omegaconf else ""
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


def to_plain(obj):
    """Namespaces, omegaconf containers and dicts -> plain dicts (recursively); other values unchanged."""
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    elif type(obj).__module__.startswith("omegaconf"):
        # only reachable after an unsafe load, which has imported omegaconf already
        from omegaconf import OmegaConf

        obj = OmegaConf.to_container(obj, resolve=True)
    if isinstance(obj, dict):
        return {str(key): to_plain(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [to_plain(value) for value in obj]
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
        cfg = to_plain(state["cfg"])
        model, task, criterion = cfg.get("model") or {}, cfg.get("task") or {}, cfg.get("criterion") or {}
    elif state.get("args") is not None:
        model = task = criterion = to_plain(state["args"])  # argparse: one flat namespace for everything
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
