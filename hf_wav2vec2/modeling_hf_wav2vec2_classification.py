"""wav2vec 2.0 with utterance classification, frame labelling and x-vector (speaker embedding) heads.

The heads of transformers' ``Wav2Vec2ForSequenceClassification``, ``Wav2Vec2ForAudioFrameClassification`` and
``Wav2Vec2ForXVector`` with the same parameter names (``projector``, ``classifier``, ``layer_weights``,
``tdnn.0.kernel``, ``feature_extractor``, ``objective.weight``) and config fields (``classifier_proj_size``,
``use_weighted_layer_sum``, ``tdnn_dim``, ``tdnn_kernel``, ``tdnn_dilation``, ``xvector_output_dim``), so the Hub's
keyword-spotting, emotion, speaker-identification, diarization and verification checkpoints load as they are.
Outputs and losses equal transformers' where transformers defines them; the additions are listed per class.

Shapes in comments: B batch, L samples, T frames, D hidden size, P projection size, C labels.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput, TokenClassifierOutput, XVectorOutput

from .configuration_hf_wav2vec2 import HfWav2Vec2Config
from .modeling_hf_wav2vec2 import HfWav2Vec2Model, HfWav2Vec2WithLabels

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
#: transformers' documented starting point for x-vector speaker verification; the right value is data-dependent.
DEFAULT_VERIFICATION_THRESHOLD = 0.7


def _check_positive(config, names, model_name):
    for name in names:
        value = getattr(config, name, None)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{model_name}: config.{name} must be a positive integer, got {value!r}")


def _check_tdnn(config, model_name):
    """The x-vector head's TDNN lists: equal, non-zero lengths and positive entries."""
    lists = {name: list(getattr(config, name, None) or []) for name in ("tdnn_dim", "tdnn_kernel", "tdnn_dilation")}
    lengths = {len(values) for values in lists.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(
            f"{model_name}: config.tdnn_dim, tdnn_kernel and tdnn_dilation must be non-empty and of "
            f"equal length, got {', '.join(str(len(v)) for v in lists.values())}"
        )
    for name, values in lists.items():
        if any(not isinstance(v, int) or v < 1 for v in values):
            raise ValueError(f"{model_name}: config.{name} must hold positive integers, got {values}")


class _HfWav2Vec2WithHead(HfWav2Vec2WithLabels):
    """The encoder, the optional learned layer weights and the states a head reads. ``forward`` and freezing are
    :class:`HfWav2Vec2WithLabels`'s; each head's :meth:`_head` says what its ``labels`` are."""

    def __init__(self, config: HfWav2Vec2Config):
        _check_positive(config, ("num_labels",), type(self).__name__)
        super().__init__(config)
        self.wav2vec2 = HfWav2Vec2Model(config)
        if config.use_weighted_layer_sum:
            num_layers = config.num_hidden_layers + 1  # transformer layers + their input
            self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, AMSoftmaxLoss):
            init.normal_(module.weight)
        elif isinstance(module, _HfWav2Vec2WithHead) and getattr(module, "layer_weights", None) is not None:
            # equal weights, as constructed: a checkpoint without them (a base model) must not start from noise
            init.constant_(module.layer_weights, 1.0 / module.layer_weights.numel())

    def _states(self, input_values, attention_mask, output_attentions, output_hidden_states):
        """(states the head reads (B, T, D), the encoder's outputs): with ``use_weighted_layer_sum`` the learned
        softmax-weighted sum of all hidden states, else the last one."""
        if not self.config.use_weighted_layer_sum:
            return super()._states(input_values, attention_mask, output_attentions, output_hidden_states)
        _, outputs = super()._states(input_values, attention_mask, output_attentions, True)
        stacked = torch.stack(outputs.hidden_states, dim=1)  # (B, layers + 1, T, D)
        weights = F.softmax(self.layer_weights, dim=-1).to(stacked.dtype)
        return (stacked * weights.view(-1, 1, 1)).sum(dim=1), outputs

    def _real_frames(self, attention_mask, frames):
        """(B, T) bool, True for frames computed from real samples; None without a mask."""
        return None if attention_mask is None else self._frame_mask(attention_mask, frames)


class HfWav2Vec2ForSequenceClassification(_HfWav2Vec2WithHead):
    """One label (or score) per utterance: keyword spotting, emotion, language or speaker identification.

    The last hidden state (or, with ``use_weighted_layer_sum``, a learned softmax-weighted sum of all hidden
    states) is projected to ``classifier_proj_size``, mean-pooled over the frames of real samples (all frames
    without ``attention_mask``) and classified into ``num_labels``.

    Losses follow ``config.problem_type`` as transformers' text classifiers do: "single_label_classification"
    (cross-entropy over integer labels (B,)), "multi_label_classification" (binary cross-entropy over float labels
    (B, C)), "regression" (mean squared error). Without a problem type it is inferred from the labels: regression
    when ``num_labels == 1``, single-label for integer labels, multi-label otherwise. transformers'
    ``Wav2Vec2ForSequenceClassification`` always uses cross-entropy; for integer labels and ``num_labels > 1`` (the
    only case where that is meaningful) the losses are equal.
    """

    output_class = SequenceClassifierOutput

    def __init__(self, config: HfWav2Vec2Config):
        _check_positive(config, ("classifier_proj_size",), type(self).__name__)
        if config.problem_type is not None and config.problem_type not in PROBLEM_TYPES:
            raise ValueError(
                f"{type(self).__name__}: config.problem_type must be one of {PROBLEM_TYPES} or None, "
                f"got {config.problem_type!r}"
            )
        super().__init__(config)
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)
        self.post_init()

    def _head(self, states, labels, attention_mask, num_samples):
        """``labels``: (B,) class ids, (B, C) multi-hot floats or (B,) / (B, 1) regression targets."""
        projected = self.projector(states)  # (B, T, P)
        real = self._real_frames(attention_mask, projected.shape[1])
        if real is None:
            pooled = projected.mean(dim=1)
        else:
            weights = real[:, :, None].to(projected.dtype)
            pooled = (projected * weights).sum(dim=1) / weights.sum(dim=1)
        logits = self.classifier(pooled)  # (B, C)
        return {"loss": None if labels is None else self.classification_loss(logits, labels), "logits": logits}

    def classification_loss(self, logits, labels):
        """The loss of ``config.problem_type`` (or of the type the labels imply, see the class docstring)."""
        num_labels = self.config.num_labels
        labels = labels.to(logits.device)
        problem = self.config.problem_type
        if problem is None:
            if num_labels == 1:
                problem = "regression"
            elif not labels.is_floating_point():
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            if labels.numel() != logits.numel():
                raise ValueError(
                    f"regression labels must be ({logits.shape[0]},) or {tuple(logits.shape)}, got "
                    f"{tuple(labels.shape)}"
                )
            return F.mse_loss(logits.float().squeeze(), labels.float().view_as(logits).squeeze())
        if problem == "single_label_classification":
            labels = labels.view(-1)
            if labels.is_floating_point() or labels.numel() != logits.shape[0]:
                raise ValueError(
                    f"single-label classification needs one integer class id per clip ({logits.shape[0]}"
                    f",), got {labels.dtype} labels of shape {tuple(labels.shape)}"
                )
            _check_class_ids(labels, num_labels)
            return F.cross_entropy(logits.float(), labels)
        if tuple(labels.shape) != tuple(logits.shape):
            raise ValueError(
                f"multi-label classification needs labels of shape {tuple(logits.shape)} (0/1 per "
                f"label), got {tuple(labels.shape)}"
            )
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class HfWav2Vec2ForAudioFrameClassification(_HfWav2Vec2WithHead):
    """One label per frame (20 ms at 16 kHz): speaker diarization, voice activity, frame-level tagging.

    Losses:

    * ``labels`` (B, T, C), one-hot or multi-hot: cross-entropy against each frame's ``argmax`` label, over every
      frame, as transformers' ``Wav2Vec2ForAudioFrameClassification`` (equal values); with
      ``config.problem_type == "multi_label_classification"`` binary cross-entropy per label instead (several
      speakers at once), over the frames of real samples only;
    * ``labels`` (B, T) integer class ids (an addition): cross-entropy over the frames of real samples; ids of -100
      are ignored.
    """

    output_class = TokenClassifierOutput

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.num_labels = config.num_labels
        self.post_init()

    def _head(self, states, labels, attention_mask, num_samples):
        """``labels``: (B, T, C) one-/multi-hot per frame, or (B, T) class ids (see the class docstring)."""
        logits = self.classifier(states)  # (B, T, C)
        loss = None
        if labels is not None:
            loss = self.frame_loss(logits, labels.to(logits.device), self._real_frames(attention_mask, logits.shape[1]))
        return {"loss": loss, "logits": logits}

    def frame_loss(self, logits, labels, real=None):
        """Loss over frames; ``real`` (B, T) marks frames of real samples (None: all)."""
        batch, frames, num_labels = logits.shape
        if labels.dim() == 2:
            if tuple(labels.shape) != (batch, frames) or labels.is_floating_point():
                raise ValueError(
                    f"frame class ids must be integers of shape ({batch}, {frames}) (one per output "
                    f"frame), got {labels.dtype} of shape {tuple(labels.shape)}"
                )
            if real is not None:
                labels = labels.masked_fill(~real, -100)
            _check_class_ids(labels[labels != -100], num_labels)
            return F.cross_entropy(logits.float().reshape(-1, num_labels), labels.reshape(-1), ignore_index=-100)
        if tuple(labels.shape) != tuple(logits.shape):
            raise ValueError(
                f"frame labels must be ({batch}, {frames}, {num_labels}) one-/multi-hot or ({batch}, "
                f"{frames}) class ids, got {tuple(labels.shape)}"
            )
        if self.config.problem_type == "multi_label_classification":
            per_label = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
            if real is None:
                return per_label.mean()
            weights = real[:, :, None].to(per_label.dtype).expand_as(per_label)
            return (per_label * weights).sum() / weights.sum()
        return F.cross_entropy(logits.float().reshape(-1, num_labels), labels.reshape(-1, num_labels).argmax(-1))


class AMSoftmaxLoss(nn.Module):
    """Additive-margin softmax (Wang et al., 2018): cosine logits, the target's less ``margin``, times ``scale``."""

    def __init__(self, input_dim, num_labels, scale=30.0, margin=0.4):
        super().__init__()
        self.scale = scale
        self.margin = margin
        self.num_labels = num_labels
        self.weight = nn.Parameter(torch.randn(input_dim, num_labels))

    def forward(self, hidden_states, labels):  # (B, E), (B,) -> ()
        labels = labels.flatten()
        _check_class_ids(labels, self.num_labels)
        cosine = F.normalize(hidden_states.float(), dim=1) @ F.normalize(self.weight.float(), dim=0)  # (B, C)
        target = F.one_hot(labels, self.num_labels).bool()
        logits = self.scale * torch.where(target, cosine - self.margin, cosine)
        return F.cross_entropy(logits, labels)


class TDNNLayer(nn.Module):
    """A time-delay layer: a dilated 1-D convolution stored as transformers' ``kernel`` Linear, then ReLU."""

    def __init__(self, config, layer_id=0):
        super().__init__()
        self.in_conv_dim = config.tdnn_dim[layer_id - 1] if layer_id > 0 else config.tdnn_dim[layer_id]
        self.out_conv_dim = config.tdnn_dim[layer_id]
        self.kernel_size = config.tdnn_kernel[layer_id]
        self.dilation = config.tdnn_dilation[layer_id]
        self.kernel = nn.Linear(self.in_conv_dim * self.kernel_size, self.out_conv_dim)
        self.activation = nn.ReLU()

    def forward(self, hidden_states):  # (B, T, in) -> (B, T', out)
        # the Linear's (out, kernel * in) weight read as a (out, in, kernel) convolution, as transformers does
        weight = self.kernel.weight.view(self.out_conv_dim, self.kernel_size, self.in_conv_dim).transpose(1, 2)
        out = F.conv1d(hidden_states.transpose(1, 2), weight, self.kernel.bias, dilation=self.dilation)
        return self.activation(out.transpose(1, 2))


class HfWav2Vec2ForXVector(_HfWav2Vec2WithHead):
    """Speaker embeddings (x-vectors): TDNN layers, statistics pooling, an embedding layer and an AMSoftmax loss.

    ``embeddings`` (B, ``xvector_output_dim``) compare speakers (:func:`speaker_similarity`,
    :func:`verify_speakers`); ``logits`` and the loss train them on ``num_labels`` speakers. Statistics pooling
    (mean and unbiased standard deviation over time) covers only the TDNN frames computed from real samples when
    ``attention_mask`` is given, so a padded batch gives each clip's embedding alone. Differences from transformers'
    ``Wav2Vec2ForXVector``, whose outputs are equal otherwise: it counts those frames without the TDNN dilation
    (see :meth:`_get_tdnn_output_lengths`), so its padded clips differ from the clips alone; a clip with a single
    TDNN frame gets a standard deviation of 0 here (transformers: NaN); a clip with none is refused with the length
    it needs.
    """

    output_class = XVectorOutput

    def __init__(self, config: HfWav2Vec2Config):
        _check_tdnn(config, type(self).__name__)
        _check_positive(config, ("xvector_output_dim",), type(self).__name__)
        super().__init__(config)
        self.projector = nn.Linear(config.hidden_size, config.tdnn_dim[0])
        self.tdnn = nn.ModuleList(TDNNLayer(config, i) for i in range(len(config.tdnn_dim)))
        self.feature_extractor = nn.Linear(config.tdnn_dim[-1] * 2, config.xvector_output_dim)
        self.classifier = nn.Linear(config.xvector_output_dim, config.xvector_output_dim)
        self.objective = AMSoftmaxLoss(config.xvector_output_dim, config.num_labels)
        self.post_init()

    def _get_tdnn_output_lengths(self, input_lengths):
        """Frames out of the TDNN layers for ``input_lengths`` encoder frames.

        A layer of kernel k and dilation d removes d * (k - 1) frames. transformers' method of this name leaves the
        dilation out, so its statistics pooling of a padded clip also reads TDNN frames computed from padding.
        """
        for kernel_size, dilation in zip(self.config.tdnn_kernel, self.config.tdnn_dilation, strict=True):
            input_lengths = input_lengths - dilation * (kernel_size - 1)
        return input_lengths

    def _head(self, states, labels, attention_mask, num_samples):
        """``labels`` (B,) speaker ids for the AMSoftmax loss."""
        lengths = self._pooled_lengths(attention_mask, states.shape[0], states.shape[1], states.device)
        hidden = self.projector(states)
        for layer in self.tdnn:
            hidden = layer(hidden)  # (B, T', tdnn_dim[-1])
        statistics = self._statistics_pooling(hidden, lengths)
        embeddings = self.feature_extractor(statistics)  # (B, E)
        logits = self.classifier(embeddings)
        loss = None if labels is None else self.objective(logits, labels.to(logits.device))
        return {"loss": loss, "logits": logits, "embeddings": embeddings}

    def _pooled_lengths(self, attention_mask, batch, encoder_frames, device):
        """(B,) TDNN frames computed from each clip's real samples; a clip without any is refused."""
        if attention_mask is None:
            encoder_lengths = torch.full((batch,), encoder_frames, device=device, dtype=torch.long)
        else:
            encoder_lengths = self._get_feat_extract_output_lengths(attention_mask.long().sum(-1)).to(device)
        lengths = self._get_tdnn_output_lengths(encoder_lengths.clamp(max=encoder_frames))
        if bool((lengths < 1).any()):
            context = 1 - int(self._get_tdnn_output_lengths(torch.tensor(0)))  # encoder frames per TDNN frame
            samples = self.config.receptive_field + (context - 1) * self.config.inputs_to_logits_ratio
            raise ValueError(
                f"a clip is too short for the x-vector head: its TDNN layers need {context} encoder "
                f"frames, i.e. at least {samples} samples of real audio"
            )
        return lengths

    @staticmethod
    def _statistics_pooling(hidden, lengths):
        """(B, T', F) -> (B, 2F): mean and standard deviation over the first ``lengths`` (B,) frames of each clip."""
        frames = hidden.shape[1]
        mask = (torch.arange(frames, device=hidden.device)[None, :] < lengths[:, None])[:, :, None].to(hidden.dtype)
        count = lengths[:, None].to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / count
        variance = (((hidden - mean[:, None, :]) * mask) ** 2).sum(dim=1) / (count - 1).clamp(min=1)
        return torch.cat([mean, variance.sqrt()], dim=-1)


def _check_class_ids(labels, num_labels):
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_labels):
        raise ValueError(
            f"class ids must lie in [0, num_labels={num_labels}), got ids from {int(labels.min())} to "
            f"{int(labels.max())}"
        )


def speaker_similarity(embeddings_a: torch.Tensor, embeddings_b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of x-vector embeddings, pair by pair: (E,) or (N, E) each -> () or (N,), in [-1, 1]."""
    if embeddings_a.shape[-1] != embeddings_b.shape[-1]:
        raise ValueError(f"embeddings differ in size: {embeddings_a.shape[-1]} and {embeddings_b.shape[-1]}")
    a = F.normalize(embeddings_a.float(), dim=-1)
    b = F.normalize(embeddings_b.float(), dim=-1)
    return (a * b).sum(dim=-1)


def verify_speakers(embeddings_a, embeddings_b, threshold: float = DEFAULT_VERIFICATION_THRESHOLD):
    """Whether each pair of x-vectors comes from one speaker: ``(similarity, similarity >= threshold)``.

    The threshold (0.7 in transformers' documentation) depends on the model and the data: choose it on labelled
    pairs, e.g. at the equal error rate.
    """
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold is a cosine similarity and must lie in [-1, 1], got {threshold}")
    similarity = speaker_similarity(embeddings_a, embeddings_b)
    return similarity, similarity >= threshold


__all__ = [
    "AMSoftmaxLoss",
    "HfWav2Vec2ForAudioFrameClassification",
    "HfWav2Vec2ForSequenceClassification",
    "HfWav2Vec2ForXVector",
    "TDNNLayer",
    "speaker_similarity",
    "verify_speakers",
]
