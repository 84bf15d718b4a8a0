"""Moving checkpoints to transformers' own Wav2Vec2 classes (the reverse direction needs no code:
``HfWav2Vec2*.from_pretrained`` reads transformers' directories directly)."""

from pathlib import Path

TRANSFORMERS_CLASSES = {
    "HfWav2Vec2Model": "Wav2Vec2Model",
    "HfWav2Vec2ForPreTraining": "Wav2Vec2ForPreTraining",
    "HfWav2Vec2ForCTC": "Wav2Vec2ForCTC",
}


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
        raise RuntimeError(f"weights do not line up with transformers' {name}: missing {missing}, unexpected {unexpected}")
    return target.to(next(model.parameters()).dtype)


def save_as_transformers(model, directory, processor=None):
    """Write ``model`` (and optionally its processor) as a directory transformers' classes load, without this package."""
    directory = Path(directory)
    to_transformers(model).save_pretrained(directory)
    if processor is not None:
        processor.save_pretrained(directory)
    return directory
