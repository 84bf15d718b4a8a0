"""Processor of wav2vec 2.0: the feature extractor and the CTC tokenizer behind one object.

``HfWav2Vec2Processor.from_pretrained`` always builds this package's feature extractor and tokenizer, also from a
directory written by transformers' ``Wav2Vec2Processor`` (whose configs name transformers' classes).
"""

from transformers import BatchEncoding, BatchFeature, ProcessorMixin
from transformers.utils import to_py_obj

from .feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from .tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

# Label positions that are padding; the CTC loss ignores them (PyTorch's ignore_index convention).
LABEL_PAD_ID = -100

# Keyword arguments that mean the same thing for audio and text; every other one belongs to a single modality.
_SHARED_KWARGS = ("padding", "return_tensors")
# Call arguments only the feature extractor has: kept out of the tokenizer's share of `common_kwargs`.
_AUDIO_ONLY_CALL_KWARGS = ("sampling_rate", "resample")
# Tokenizer constructor arguments that transformers' processors use as defaults of every text call.
_TOKENIZER_CALL_DEFAULTS = ("padding", "max_length", "truncation", "pad_to_multiple_of")

# from_pretrained arguments that locate files, passed to both sub-components' from_pretrained.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "proxies", "subfolder")
# from_pretrained arguments about how to load, not what to build: our classes are loaded directly.
_LOADER_KWARGS = ("trust_remote_code", "_from_auto", "_from_pipeline", "return_unused_kwargs")
# Settings only the feature extractor has; every other from_pretrained keyword argument also goes to the tokenizer
# (special tokens such as cls_token, do_lower_case, target_lang, padding_side, ...), as transformers does.
_FEATURE_EXTRACTOR_ONLY_ARGS = (
    "feature_size",
    "sampling_rate",
    "padding_value",
    "return_attention_mask",
    "do_normalize",
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

    Keyword arguments are routed as in transformers' ``ProcessorMixin``: ``audio_kwargs={...}`` go to the feature
    extractor, ``text_kwargs={...}`` to the tokenizer, ``common_kwargs={...}`` to both (e.g.
    ``{"return_tensors": "pt"}``), with lower priority than the other two. Plain keyword arguments go to the feature
    extractor when there is audio (and to the tokenizer with text alone); of them only `padding` and `return_tensors`
    also reach the tokenizer, as other options such as `max_length` count samples, not characters. An option given
    both as a plain keyword argument and in the dictionary it would join is an error. `padding`, `max_length`,
    `truncation` and `pad_to_multiple_of` given to the tokenizer's constructor are the defaults of its calls.

    ``from_pretrained(path, **kwargs)`` passes its keyword arguments on like transformers: settings of the saved
    feature extractor (``return_attention_mask``, ``sampling_rate``, ...) override it, and everything else goes to
    the tokenizer's ``from_pretrained`` (``do_lower_case``, ``target_lang``, special tokens such as ``cls_token``).

    Args:
        feature_extractor (`HfWav2Vec2FeatureExtractor`): turns waveforms into ``input_values``.
        tokenizer (`HfWav2Vec2CTCTokenizer`): turns transcripts into label ids and predictions into text.
    """

    feature_extractor_class = "HfWav2Vec2FeatureExtractor"
    tokenizer_class = "HfWav2Vec2CTCTokenizer"

    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        # transformers 5.24's flow, kept for every version: 5.25 resolves the sub-processors through the Auto classes
        # in from_pretrained itself (a custom processor without torchvision fails there) and skips the methods below
        processor_dict, instantiation_kwargs = cls.get_processor_dict(pretrained_model_name_or_path, **kwargs)
        args = cls._get_arguments_from_pretrained(pretrained_model_name_or_path, processor_dict, **kwargs)
        return cls.from_args_and_dict(args, processor_dict, **instantiation_kwargs)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # ProcessorMixin would go through AutoFeatureExtractor/AutoTokenizer, which build whatever class the saved
        # configs name (transformers' own for a transformers-written directory). Load ours directly instead; this
        # also works when the classes are not registered with the Auto classes, e.g. under trust_remote_code.
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if kwargs.get(key) is not None}
        overrides = {key: value for key, value in kwargs.items() if key not in _HUB_KWARGS + _LOADER_KWARGS}
        feature_extractor = HfWav2Vec2FeatureExtractor.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        for key, value in overrides.items():
            # transformers overrides the keys of the saved config; ours also sets arguments an old config lacks.
            if key in _FEATURE_EXTRACTOR_ONLY_ARGS or key in vars(feature_extractor):
                setattr(feature_extractor, key, value)
        tokenizer_overrides = {key: v for key, v in overrides.items() if key not in _FEATURE_EXTRACTOR_ONLY_ARGS}
        tokenizer = HfWav2Vec2CTCTokenizer.from_pretrained(
            pretrained_model_name_or_path, **hub_kwargs, **tokenizer_overrides
        )
        return [feature_extractor, tokenizer]

    @classmethod
    def from_args_and_dict(cls, args, processor_dict, **kwargs):
        processor = super().from_args_and_dict(args, processor_dict, **kwargs)
        # save_pretrained gives a registered processor an `auto_map` attribute; keep the loaded one the same.
        if isinstance(processor, cls) and "auto_map" in processor_dict:
            processor.auto_map = processor_dict["auto_map"]
        return processor

    def __call__(
        self,
        audio=None,
        text=None,
        sampling_rate=None,
        audio_kwargs=None,
        text_kwargs=None,
        common_kwargs=None,
        **kwargs,
    ):
        """Featurize `audio` and/or tokenize `text` (see the class docstring for how keyword arguments are routed).

        Args:
            audio: a mono clip (1-D array/tensor, list of floats), a list of clips or a 2-D (clips, samples) array.
            text: a transcript or a list of transcripts, one per clip (a single string for a single clip, also
                when that clip is given as a list of one).
            sampling_rate: sampling rate of `audio` in Hz; always pass it (see the feature extractor).
            audio_kwargs / text_kwargs: options for the feature extractor / the tokenizer only.
            common_kwargs: options for both, e.g. ``{"return_tensors": "pt"}``.
            kwargs: options for the feature extractor (`padding`, `max_length`, `truncation`, `return_tensors`,
                `return_attention_mask`, `resample`, ...) or, with text alone, for the tokenizer.
        """
        if audio is None and text is None:
            raise ValueError("Pass `audio`, `text` or both.")
        common_kwargs = dict(common_kwargs or {})
        init_kwargs = self.tokenizer.init_kwargs
        text_common = {key: init_kwargs[key] for key in _TOKENIZER_CALL_DEFAULTS if key in init_kwargs}
        text_common.update({key: v for key, v in common_kwargs.items() if key not in _AUDIO_ONLY_CALL_KWARGS})
        if sampling_rate is not None:
            kwargs["sampling_rate"] = sampling_rate
        if audio is None:
            kwargs.pop("sampling_rate", None)  # tokenizing text needs no rate
            return self.tokenizer(text, **_merge_call_kwargs(text_common, kwargs, text_kwargs, "text_kwargs"))

        # Both sides' arguments are checked before any audio is featurized.
        audio_call = _merge_call_kwargs(common_kwargs, kwargs, audio_kwargs, "audio_kwargs")
        shared = {key: kwargs[key] for key in _SHARED_KWARGS if key in kwargs}
        text_kwargs = _merge_call_kwargs(text_common, shared, text_kwargs, "text_kwargs")
        inputs = self.feature_extractor(audio, **audio_call)
        if text is None:
            return inputs

        clips, transcripts = len(inputs["input_values"]), 1 if isinstance(text, str) else len(text)
        if clips != transcripts:
            raise ValueError(
                f"Got {_count(clips, 'clip')} but {_count(transcripts, 'transcript')}: pass one transcript per clip."
            )
        return_tensors = text_kwargs.pop("return_tensors", None)
        text_kwargs["return_attention_mask"] = True  # needed to tell padding from labels
        encodings = self.tokenizer(text, **text_kwargs)
        inputs["labels"] = _labels_from_encodings(encodings, return_tensors)["labels"]
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


def _merge_call_kwargs(common: dict, flat: dict, modality: dict | None, name: str) -> dict:
    """One sub-component's call arguments: `common_kwargs` < plain keyword arguments / its own `name` dict."""
    modality = dict(modality or {})
    twice = sorted(set(flat) & set(modality))
    if twice:
        raise ValueError(f"HfWav2Vec2Processor: {twice} given both as keyword arguments and in {name}; give them once.")
    return {**common, **flat, **modality}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _labels_from_encodings(encodings, return_tensors) -> BatchFeature:
    """Token ids (python lists) with every padded position set to -100, as lists or `return_tensors` tensors.

    One unbatched sequence stays flat without `return_tensors` and gets a batch axis with it, as in transformers.
    """
    ids, mask = to_py_obj(encodings["input_ids"]), to_py_obj(encodings["attention_mask"])
    batched = len(ids) > 0 and isinstance(ids[0], (list, tuple))
    if not batched:
        ids, mask = [ids], [mask]
    labels = [
        [i if m else LABEL_PAD_ID for i, m in zip(row, row_mask, strict=True)]
        for row, row_mask in zip(ids, mask, strict=True)
    ]
    if not batched and return_tensors is None:
        labels, mask = labels[0], mask[0]
    return BatchFeature({"labels": labels, "attention_mask": mask}, tensor_type=return_tensors)


__all__ = ["HfWav2Vec2Processor"]
