"""Processor of wav2vec 2.0: the feature extractor and the CTC tokenizer behind one object.

``HfWav2Vec2Processor.from_pretrained`` always builds this package's feature extractor and tokenizer, also from a
directory written by transformers' ``Wav2Vec2Processor`` (whose configs name transformers' classes).
"""

import numpy as np
from transformers import BatchEncoding, BatchFeature, ProcessorMixin
from transformers.utils import to_py_obj

from .feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from .tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

# Label positions that are padding; the CTC loss ignores them (PyTorch's ignore_index convention).
LABEL_PAD_ID = -100

# Keyword arguments that mean the same thing for audio and text; every other one belongs to a single modality.
_SHARED_KWARGS = ("padding", "return_tensors")

# from_pretrained arguments that locate files, passed to both sub-components' from_pretrained.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "proxies", "subfolder")
# from_pretrained arguments that override a saved setting of one sub-component.
_FEATURE_EXTRACTOR_ARGS = (
    "feature_size", "sampling_rate", "padding_value", "return_attention_mask", "do_normalize", "padding_side",
)
_TOKENIZER_ARGS = (
    "bos_token", "eos_token", "unk_token", "pad_token", "word_delimiter_token", "replace_word_delimiter_char",
    "do_lower_case", "target_lang",
)


class HfWav2Vec2Processor(ProcessorMixin):
    r"""Feature extractor plus CTC tokenizer.

    * ``processor(audio=..., sampling_rate=16000)``: the feature extractor's output (``input_values``, and
      ``attention_mask`` when the extractor returns one).
    * ``processor(text=...)``: the tokenizer's output (``input_ids``, ``attention_mask``).
    * ``processor(audio=..., text=..., sampling_rate=16000)``: the audio features plus ``labels``, the label ids; in a
      padded batch, label padding is -100 (ignored by the CTC loss), not the pad id (the CTC blank).
    * ``pad(...)``: collate already processed examples (features and/or labels, labels padded with -100).
    * ``decode`` / ``batch_decode``: the tokenizer's CTC decoding.

    When audio and text are given together, `padding` and `return_tensors` apply to both and every other keyword
    argument to the audio (lengths in samples, not characters); pass text-only options as ``text_kwargs={...}`` and
    audio-only ones as ``audio_kwargs={...}`` if needed.

    ``from_pretrained(path, **kwargs)`` accepts overrides of the saved settings, e.g. ``return_attention_mask`` for
    the feature extractor or ``do_lower_case`` for the tokenizer.

    Args:
        feature_extractor (`HfWav2Vec2FeatureExtractor`): turns waveforms into ``input_values``.
        tokenizer (`HfWav2Vec2CTCTokenizer`): turns transcripts into label ids and predictions into text.
    """

    feature_extractor_class = "HfWav2Vec2FeatureExtractor"
    tokenizer_class = "HfWav2Vec2CTCTokenizer"

    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # ProcessorMixin would go through AutoFeatureExtractor/AutoTokenizer, which build whatever class the saved
        # configs name (transformers' own for a transformers-written directory). Load ours directly instead; this
        # also works when the classes are not registered with the Auto classes, e.g. under trust_remote_code.
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if kwargs.get(key) is not None}
        feature_extractor = HfWav2Vec2FeatureExtractor.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        for key in _FEATURE_EXTRACTOR_ARGS:
            if key in kwargs:
                setattr(feature_extractor, key, kwargs[key])
        tokenizer_overrides = {key: kwargs[key] for key in _TOKENIZER_ARGS if key in kwargs}
        tokenizer = HfWav2Vec2CTCTokenizer.from_pretrained(
            pretrained_model_name_or_path, **hub_kwargs, **tokenizer_overrides
        )
        return [feature_extractor, tokenizer]

    def __call__(self, audio=None, text=None, sampling_rate=None, audio_kwargs=None, text_kwargs=None, **kwargs):
        """Featurize `audio` and/or tokenize `text` (see the class docstring).

        Args:
            audio: a mono clip (1-D array/tensor, list of floats) or a list of clips.
            text: a transcript or a list of transcripts.
            sampling_rate: sampling rate of `audio` in Hz; always pass it (see the feature extractor).
            audio_kwargs / text_kwargs: options for one side only.
            kwargs: options for the feature extractor (`padding`, `max_length`, `truncation`, `return_tensors`,
                `return_attention_mask`, `resample`, ...) or, with text alone, for the tokenizer.
        """
        if audio is None and text is None:
            raise ValueError("Pass `audio`, `text` or both.")
        audio_kwargs = dict(audio_kwargs or {})
        text_kwargs = dict(text_kwargs or {})
        if audio is None:
            text_kwargs = {**kwargs, **text_kwargs}
            return self.tokenizer(text, **text_kwargs)

        if text is not None and isinstance(text, str) == _is_batch(audio):
            raise ValueError("Pass as many transcripts as clips: one string with one clip, or a list with a batch.")
        audio_kwargs = {**kwargs, **audio_kwargs}
        if sampling_rate is not None:
            audio_kwargs["sampling_rate"] = sampling_rate
        inputs = self.feature_extractor(audio, **audio_kwargs)
        if text is None:
            return inputs

        for key in _SHARED_KWARGS:
            if key in kwargs:
                text_kwargs.setdefault(key, kwargs[key])
        return_tensors = text_kwargs.pop("return_tensors", None)
        text_kwargs["return_attention_mask"] = True  # needed to tell padding from labels
        encodings = self.tokenizer(text, **text_kwargs)
        labels = _labels_from_encodings(encodings, return_tensors)
        if _is_batch(audio) and len(labels["labels"]) != len(inputs["input_values"]):
            raise ValueError(f"Got {len(inputs['input_values'])} clips but {len(labels['labels'])} transcripts.")
        inputs["labels"] = labels["labels"]
        return inputs

    def pad(self, input_features=None, labels=None, **kwargs):
        """Pad processed examples, e.g. in a data collator.

        Args:
            input_features: a list of ``{"input_values": ...}`` dicts (or a dict of lists), as `processor(audio)`
                returns per example; padded by the feature extractor.
            labels: a list of ``{"input_ids": ...}`` dicts or a list of id lists; padded with -100.
            kwargs: padding options (`padding` defaults to True, `return_tensors`, ...). With both inputs,
                `padding` and `return_tensors` apply to both and the rest to the features only.

        Returns:
            With features: the padded features, plus ``labels`` when labels were given. With labels only: a
            `BatchEncoding` with ``input_ids`` (padded with -100) and ``attention_mask``.
        """
        if input_features is None and labels is None:
            raise ValueError("Pass `input_features`, `labels` or both.")
        kwargs.setdefault("padding", True)
        label_kwargs = {key: kwargs[key] for key in _SHARED_KWARGS if key in kwargs}
        if input_features is None:
            label_kwargs = dict(kwargs)

        padded_labels = None
        if labels is not None:
            labels = [item if isinstance(item, dict) else {"input_ids": item} for item in labels]
            return_tensors = label_kwargs.pop("return_tensors", None)
            label_kwargs["return_attention_mask"] = True
            encodings = self.tokenizer.pad(labels, **label_kwargs)
            padded_labels = _labels_from_encodings(encodings, return_tensors)

        if input_features is None:
            return BatchEncoding(
                {"input_ids": padded_labels["labels"], "attention_mask": padded_labels["attention_mask"]}
            )
        features = self.feature_extractor.pad(input_features, **kwargs)
        if padded_labels is not None:
            features["labels"] = padded_labels["labels"]
        return features

    @property
    def model_input_names(self) -> list[str]:
        return list(self.feature_extractor.model_input_names) + ["labels"]


def _is_batch(audio) -> bool:
    if isinstance(audio, (list, tuple)):
        return len(audio) > 0 and not isinstance(audio[0], (int, float, np.number))
    return False


def _labels_from_encodings(encodings, return_tensors) -> BatchFeature:
    """Token ids (python lists) with every padded position set to -100, as lists or `return_tensors` tensors.

    One unbatched sequence stays flat without `return_tensors` and gets a batch axis with it, as in transformers.
    """
    ids, mask = to_py_obj(encodings["input_ids"]), to_py_obj(encodings["attention_mask"])
    batched = len(ids) > 0 and isinstance(ids[0], (list, tuple))
    if not batched:
        ids, mask = [ids], [mask]
    labels = [[i if m else LABEL_PAD_ID for i, m in zip(row, row_mask)] for row, row_mask in zip(ids, mask)]
    if not batched and return_tensors is None:
        labels, mask = labels[0], mask[0]
    return BatchFeature({"labels": labels, "attention_mask": mask}, tensor_type=return_tensors)


__all__ = ["HfWav2Vec2Processor"]
