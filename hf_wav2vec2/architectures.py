"""The model classes of this package, their transformers counterparts and their tasks, in one table.

A saved model names its class in ``config.json`` (``"architectures": ["HfWav2Vec2ForCTC"]``, or transformers'
``"Wav2Vec2ForCTC"``). Conversion (which class loads a directory), publishing (``auto_map``, the card's wording) and
the export to transformers (which transformers class takes the weights) all read that name through
:data:`ARCHITECTURES`, so a new head is one row here. Names only: importing this module imports neither torch nor
transformers; :meth:`Architecture.load` imports the class.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["ARCHITECTURES", "Architecture", "UnknownArchitectureError", "architecture", "head_owner"]


class UnknownArchitectureError(ValueError):
    """An ``architectures`` entry or class that is none of this package's models (one line, lists the known ones)."""


@dataclass(frozen=True)
class Architecture:
    """One model class.

    Args:
        name: this package's class, e.g. ``"HfWav2Vec2ForCTC"``.
        transformers_name: transformers' class with the same parameter names, e.g. ``"Wav2Vec2ForCTC"``.
        module: the flat module defining the class (its ``auto_map`` entry is ``module.name``).
        auto_class: the transformers Auto class it is registered with, e.g. ``"AutoModelForCTC"``.
        task: what the head does: ``"encoder"``, ``"pretraining"``, ``"ctc"``, ``"audio-classification"``,
            ``"audio-frame-classification"`` or ``"audio-xvector"``.
        heads: top-level parameter names that only this class has; weights holding them belong to it.
    """

    name: str
    transformers_name: str
    module: str
    auto_class: str
    task: str
    heads: tuple[str, ...] = ()

    @property
    def auto_map_entry(self) -> str:
        return f"{self.module}.{self.name}"

    def load(self) -> Any:
        """The class itself, through the package: that registers the Auto classes first (``save_pretrained`` then
        writes the ``auto_map``), as the first use of a model class always does. Imports torch and transformers."""
        return getattr(importlib.import_module(__package__), self.name)


_CLASSIFICATION = "modeling_hf_wav2vec2_classification"

ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("HfWav2Vec2Model", "Wav2Vec2Model", "modeling_hf_wav2vec2", "AutoModel", "encoder"),
    Architecture(
        "HfWav2Vec2ForPreTraining",
        "Wav2Vec2ForPreTraining",
        "modeling_hf_wav2vec2",
        "AutoModelForPreTraining",
        "pretraining",
        heads=("quantizer", "project_q", "project_hid"),
    ),
    Architecture(
        "HfWav2Vec2ForCTC", "Wav2Vec2ForCTC", "modeling_hf_wav2vec2", "AutoModelForCTC", "ctc", heads=("lm_head",)
    ),
    # classifier / projector are shared by these heads, so only the x-vector's own layers identify one
    Architecture(
        "HfWav2Vec2ForSequenceClassification",
        "Wav2Vec2ForSequenceClassification",
        _CLASSIFICATION,
        "AutoModelForAudioClassification",
        "audio-classification",
    ),
    Architecture(
        "HfWav2Vec2ForAudioFrameClassification",
        "Wav2Vec2ForAudioFrameClassification",
        _CLASSIFICATION,
        "AutoModelForAudioFrameClassification",
        "audio-frame-classification",
    ),
    Architecture(
        "HfWav2Vec2ForXVector",
        "Wav2Vec2ForXVector",
        _CLASSIFICATION,
        "AutoModelForAudioXVector",
        "audio-xvector",
        heads=("tdnn", "objective"),
    ),
)

_BY_NAME = {name: a for a in ARCHITECTURES for name in (a.name, a.transformers_name)}
_BY_HEAD = {head: a for a in ARCHITECTURES for head in a.heads}


def architecture(name_or_model: Any) -> Architecture:
    """The row of a class name (ours or transformers'), a config's ``architectures`` list, or a model / class.

    Raises :class:`UnknownArchitectureError` for anything else (an empty or missing ``architectures`` entry too).
    """
    name = name_or_model
    if isinstance(name, (list, tuple)):
        name = name[0] if name else None
    elif not isinstance(name, str) and name is not None:
        name = name.__name__ if isinstance(name, type) else type(name).__name__
    found = _BY_NAME.get(name)
    if found is None:
        known = ", ".join(a.name for a in ARCHITECTURES)
        raise UnknownArchitectureError(
            f"architecture {name!r} is not a model of this package; expected one of {known} "
            "or transformers' Wav2Vec2 counterparts"
        )
    return found


def head_owner(parameter_names: Any) -> Architecture | None:
    """The class whose head the weights hold (from their top-level names), None when they hold no single one."""
    owners = {_BY_HEAD[n.split(".")[0]] for n in parameter_names if n.split(".")[0] in _BY_HEAD}
    return owners.pop() if len(owners) == 1 else None
