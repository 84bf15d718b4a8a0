"""Feature extractor of wav2vec 2.0: raw mono waveform in, (normalized, padded) ``input_values`` out.

The constructor arguments and the saved ``preprocessor_config.json`` keys are those of transformers'
``Wav2Vec2FeatureExtractor``, so configs move between the two packages in both directions. Behaviour differs from
transformers on purpose in a few places, all of them cases where transformers silently returns something wrong:

* normalization only ever looks at the real samples of a clip, so a clip's features do not depend on the other clips
  it is batched with (transformers normalizes over the padding too when no attention mask is requested);
* integer PCM (int16, int32, ...) is scaled to [-1, 1) instead of being used as raw integers;
* empty clips, NaN/Inf samples and arrays laid out as (samples, channels) are errors instead of garbage features
  (transformers reads a (16000, 2) stereo array as 16000 clips of 2 samples);
* a wrong sampling rate is an error unless ``resample=True`` asks for resampling with soxr.
"""

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import PaddingStrategy, TensorType, is_torch_tensor, logging

logger = logging.get_logger(__name__)

# transformers' epsilon, so features match its feature extractor's and a silent clip maps to zeros, not NaN (fairseq
# adds 1e-5, F.layer_norm's default; pre-training crops are normalized otherwise: training.data.collate.normalize_crop)
_VARIANCE_EPS = 1e-7


class HfWav2Vec2FeatureExtractor(SequenceFeatureExtractor):
    r"""Turns raw 16 kHz mono speech into the ``input_values`` (and optionally ``attention_mask``) of wav2vec 2.0.

    Args:
        feature_size (`int`, defaults to 1): values per time step (1: a waveform).
        sampling_rate (`int`, defaults to 16000): sampling rate the model was trained at, in Hz.
        padding_value (`float`, defaults to 0.0): value written into padded positions.
        return_attention_mask (`bool`, defaults to False): whether calls return an ``attention_mask`` by default.
            Set it for models with a layer-norm feature encoder (``feat_extract_norm == "layer"``, e.g. LARGE
            LV-60k), leave it off for group-norm ones (BASE), which were trained on zero-padded batches without a
            mask. :meth:`for_config` picks the right value.
        do_normalize (`bool`, defaults to True): normalize each clip to zero mean and unit variance (over its real
            samples only; padding keeps `padding_value`).
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        return_attention_mask=False,
        do_normalize=True,
        **kwargs,
    ):
        # A transformers-written JSON names its own class here; to_dict() writes ours back.
        kwargs.pop("feature_extractor_type", None)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.return_attention_mask = return_attention_mask
        self.do_normalize = do_normalize

    @classmethod
    def for_config(cls, config, **kwargs) -> "HfWav2Vec2FeatureExtractor":
        """The extractor that matches a model config (an ``HfWav2Vec2Config`` or transformers' ``Wav2Vec2Config``).

        Layer-norm feature encoders get an attention mask, group-norm ones do not: the group norm of BASE models
        normalizes over the whole (zero-padded) time axis, so those models were trained without masks and are
        evaluated the same way. ``kwargs`` override any argument.
        """
        kwargs.setdefault("return_attention_mask", config.feat_extract_norm == "layer")
        return cls(**kwargs)

    @staticmethod
    def zero_mean_unit_var_norm(
        input_values: list[np.ndarray], attention_mask: list[np.ndarray] | None = None, padding_value: float = 0.0
    ) -> list[np.ndarray]:
        """Normalize each array to zero mean and unit variance over its unmasked samples.

        Kept under transformers' name and signature because training scripts call it on already padded batches;
        masked positions are set to ``padding_value``.
        """
        normed = []
        for index, values in enumerate(input_values):
            values = np.asarray(values, dtype=np.float32)
            keep = np.ones(len(values), dtype=bool) if attention_mask is None else np.asarray(attention_mask[index]) > 0
            out = np.full_like(values, padding_value)
            out[keep] = normalize_waveform(values[keep])
            normed.append(out)
        return normed

    def __call__(
        self,
        raw_speech,
        padding: bool | str | PaddingStrategy = False,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        sampling_rate: int | None = None,
        resample: bool = False,
        **kwargs,
    ) -> BatchFeature:
        """Featurize one clip or a batch of clips.

        Args:
            raw_speech: one mono clip (1-D numpy array, 1-D torch tensor, list of floats), a list of them, or a 2-D
                array or tensor holding a batch of equal-length mono clips, one per row (as in transformers, so
                `np.stack(clips)` works). Float arrays are taken as is; integer arrays are PCM and scaled to [-1, 1).
                A (samples, 1) array is one mono clip; a 2-D array with more rows than columns looks like
                (samples, channels) audio and is an error (mix to mono first), as are 3-D arrays.
            padding: `False` (default), `True`/`"longest"` or `"max_length"`, as in transformers.
            max_length: length to pad (`"max_length"`) and/or truncate to, in samples.
            truncation: cut clips longer than `max_length` (before normalization, as transformers does).
            pad_to_multiple_of: round the padded length up to a multiple of this.
            return_attention_mask: return `attention_mask` (1 on real samples); defaults to the extractor's setting.
            return_tensors: `"pt"`, `"np"` or None (list of arrays).
            sampling_rate: sampling rate of `raw_speech` in Hz. Always pass it: a mismatch with the model's rate is
                an error, and leaving it out logs a warning.
            resample: resample (with soxr) audio whose `sampling_rate` differs from the model's instead of raising.

        Returns:
            `BatchFeature` with `input_values` (float32) and, when requested, `attention_mask` (int32).
        """
        if kwargs:
            logger.warning(f"{type(self).__name__} ignores the unknown arguments {sorted(kwargs)}.")
        source_rate = self._check_sampling_rate(sampling_rate, resample)

        clips = [_to_mono_float(clip, index) for index, clip in enumerate(_as_clip_list(raw_speech))]
        if source_rate is not None:
            clips = [_resample(clip, source_rate, self.sampling_rate) for clip in clips]

        if truncation:
            if max_length is None:
                raise ValueError("truncation=True needs max_length (in samples).")
            limit = _round_up(max_length, pad_to_multiple_of)
            clips = [clip[:limit] for clip in clips]
        if self.do_normalize:
            # Per clip and before padding, so padding stays `padding_value` and batching does not change features.
            clips = [normalize_waveform(clip) for clip in clips]

        unpadded = self._get_padding_strategies(padding, max_length) is PaddingStrategy.DO_NOT_PAD
        ragged = unpadded and len({len(clip) for clip in clips}) > 1
        # Unpadded clips of different lengths come back as they are: with return_tensors="np" as an object array
        # of 1-D arrays, like transformers. No other framework has ragged tensors, hence the error.
        if ragged and return_tensors is not None and TensorType(return_tensors) is not TensorType.NUMPY:
            raise ValueError(
                f"Clips of different lengths cannot be stacked into a {TensorType(return_tensors).value!r} tensor: "
                "pass padding=True (or return_tensors='np' or None for the unpadded clips)."
            )

        padded = self.pad(
            BatchFeature({"input_values": clips}),
            padding=padding,
            max_length=max_length,
            truncation=False,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
        )
        values = padded["input_values"]
        padded["input_values"] = [np.asarray(v, dtype=np.float32) for v in values]
        if "attention_mask" in padded:
            padded["attention_mask"] = [np.asarray(m, dtype=np.int32) for m in padded["attention_mask"]]
        if return_tensors is not None:
            padded = padded.convert_to_tensors(return_tensors)
        return padded

    def _check_sampling_rate(self, sampling_rate: int | None, resample: bool) -> int | None:
        """Return the rate to resample from, or None when the audio is (assumed to be) at the model's rate."""
        if sampling_rate is None:
            logger.warning_once(
                f"No `sampling_rate` was passed to {type(self).__name__}: assuming {self.sampling_rate} Hz. Pass it "
                "explicitly; audio at another rate gives wrong features without any error."
            )
            return None
        if not isinstance(sampling_rate, (int, float, np.number)) or sampling_rate <= 0 or sampling_rate % 1:
            raise ValueError(f"sampling_rate must be a positive whole number of Hz, got {sampling_rate!r}.")
        if sampling_rate == self.sampling_rate:
            return None
        if not resample:
            raise ValueError(
                f"The audio is sampled at {sampling_rate} Hz but this model expects {self.sampling_rate} Hz. "
                f"Resample it to {self.sampling_rate} Hz first, or pass resample=True to resample with soxr."
            )
        return int(sampling_rate)


def normalize_waveform(values: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance with transformers' epsilon: what inference and fine-tuning inputs get."""
    # Statistics in float64: long clips summed in float32 lose digits.
    mean = values.mean(dtype=np.float64)
    var = values.var(dtype=np.float64)
    return ((values - mean) / np.sqrt(var + _VARIANCE_EPS)).astype(np.float32)


def _round_up(length: int, multiple: int | None) -> int:
    if multiple is None or length % multiple == 0:
        return length
    return (length // multiple + 1) * multiple


def _is_array(obj) -> bool:
    return isinstance(obj, np.ndarray) or is_torch_tensor(obj)


def _as_clip_list(raw_speech) -> list:
    """Split the caller's input into a list of clips (still unconverted)."""
    if _is_array(raw_speech):
        shape = tuple(raw_speech.shape)
        if len(shape) <= 1:
            return [raw_speech]
        if len(shape) > 2:
            raise ValueError(
                f"raw_speech: expected a 1-D clip or a 2-D (clips, samples) batch, got shape {shape}. "
                "Multi-channel audio is not supported: mix to mono first."
            )
        rows, columns = shape
        if columns == 1:
            return [raw_speech[:, 0]]  # soundfile's always_2d (samples, 1) layout of one mono clip
        if rows > columns:
            # Read as transformers does, this is `rows` clips shorter than the batch is wide: no speech batch looks
            # like that, (samples, channels) audio does.
            raise ValueError(
                f"raw_speech: a 2-D array is a batch of clips, one per row, but shape {shape} would be {rows} clips "
                f"of {columns} samples; it looks like (samples, channels) audio. Mix to mono first "
                "(`audio.mean(axis=1)`), or pass a list of 1-D arrays if the rows really are clips."
            )
        return list(raw_speech)  # a batch of equal-length mono clips, as transformers reads it (np.stack(clips))
    if isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise ValueError("Got an empty list: expected a clip or a non-empty list of clips.")
        if isinstance(raw_speech[0], (int, float, np.number)):
            return [raw_speech]  # one clip given as a list of numbers
        return list(raw_speech)
    raise TypeError(
        f"Expected a 1-D numpy array, a 1-D torch tensor, a list of floats or a list of those; got {type(raw_speech)}."
    )


def _to_mono_float(clip, index: int) -> np.ndarray:
    """One clip as a finite 1-D float32 array in [-1, 1) for PCM input."""
    where = f"clip {index}"
    if is_torch_tensor(clip):
        clip = clip.detach().cpu().numpy()
    if isinstance(clip, (list, tuple)):
        # Python numbers are sample values, never PCM codes.
        clip = np.asarray(clip, dtype=np.float64)
    clip = np.asarray(clip)

    if clip.ndim == 2 and 1 in clip.shape:
        clip = clip.reshape(-1)
    if clip.ndim != 1:
        raise ValueError(
            f"{where}: expected mono audio as a 1-D array, got shape {clip.shape}. Multi-channel audio is not "
            "supported: mix to mono first (e.g. `audio.mean(axis=0)` for (channels, samples) or `audio.mean(axis=1)` "
            "for (samples, channels)). To process a batch, pass a list of 1-D arrays."
        )
    if clip.size == 0:
        raise ValueError(f"{where} is empty: audio needs at least one sample.")

    kind = clip.dtype.kind
    if kind == "i":
        # Signed PCM: full scale is 2**(bits - 1), so int16 -32768 maps to -1.0.
        clip = clip.astype(np.float64) / float(2 ** (8 * clip.dtype.itemsize - 1))
    elif kind == "u":
        # Unsigned PCM (8-bit WAV) is offset by half the range.
        half = float(2 ** (8 * clip.dtype.itemsize - 1))
        clip = (clip.astype(np.float64) - half) / half
    elif kind != "f":
        raise TypeError(f"{where}: unsupported sample dtype {clip.dtype}; expected float or integer PCM samples.")

    if not np.isfinite(clip).all():
        raise ValueError(f"{where} contains NaN or infinite samples.")
    return clip.astype(np.float32, copy=False)


def _resample(clip: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    try:
        import soxr
    except ImportError as error:
        raise ImportError("resample=True needs the `soxr` package: `pip install soxr`.") from error
    return np.asarray(soxr.resample(clip, source_rate, target_rate), dtype=np.float32)


__all__ = ["HfWav2Vec2FeatureExtractor"]
