"""wav2vec 2.0 (Baevski et al., 2020, arXiv:2006.11477) as transformers models.

Parameter names are transformers' (``wav2vec2.encoder.layers.0.attention.q_proj.weight``, ...), so checkpoints
saved by transformers' ``Wav2Vec2*`` classes load here without renaming. The pre-training objective follows
fairseq's ``Wav2Vec2Model`` and ``wav2vec`` criterion; where it deliberately differs from transformers'
``Wav2Vec2ForPreTraining`` the docstring of :class:`HfWav2Vec2ForPreTraining` says so.

The building blocks live in flat sibling modules (copied with this file by ``save_pretrained`` for
``trust_remote_code``): ``modules_hf_wav2vec2`` (feature encoder, transformer), ``masking_hf_wav2vec2`` (span masks,
distractors), ``pretraining_hf_wav2vec2`` (quantizer, contrastive objective) and ``adapters_hf_wav2vec2`` (MMS
per-language adapters).

Shapes in comments: B batch, L samples, T frames, C conv channels, D hidden size.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutput, ModelOutput

from .adapters_hf_wav2vec2 import AdapterMixin
from .configuration_hf_wav2vec2 import HfWav2Vec2Config
from .linear_hf_wav2vec2 import Linear
from .masking_hf_wav2vec2 import compute_mask_indices, sample_negative_indices
from .modules_hf_wav2vec2 import (
    Encoder,
    FeatureEncoder,
    FeatureProjection,
    GradMultiply,
    PositionalConvEmbedding,
    conv_output_lengths,
)
from .pretraining_hf_wav2vec2 import GumbelVectorQuantizer, HfWav2Vec2ForPreTrainingOutput, PreTrainingObjective


def _checks_values() -> bool:
    """Whether checks that read the input's values may run: not while a graph is traced, compiled or exported, where
    a Python branch on a tensor's values breaks the graph or bakes the example's answer into it."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    compiler = getattr(torch, "compiler", None)
    for probe in ("is_compiling", "is_exporting"):
        if compiler is not None and getattr(compiler, probe, lambda: False)():
            return False
    return True


def _check_finite(input_values: torch.Tensor) -> None:
    """A ValueError naming NaN/Inf in ``input_values``: the model would turn them into NaN logits without a word.
    One reduction on the normal path; which values and rows are bad is worked out only for the error."""
    if torch.isfinite(input_values).all():
        return
    kinds = [name for name, test in (("NaN", torch.isnan), ("Inf", torch.isinf)) if test(input_values).any()]
    rows = (~torch.isfinite(input_values)).any(-1).nonzero().flatten().tolist() if input_values.dim() == 2 else []
    where = f" in batch rows {rows[:10]}{' ...' if len(rows) > 10 else ''}" if rows else ""
    raise ValueError(
        f"input_values contain {' and '.join(kinds)}{where}; the model would return NaN logits: check "
        "how the audio was decoded, resampled or normalized"
    )


def prepare_input_values(input_values, dtype: torch.dtype, device: torch.device, min_samples: int) -> torch.Tensor:
    """Check (and where it is lossless, convert) what is passed as ``input_values`` to the model.

    * a NumPy array becomes a tensor on the model's device (a tensor keeps its device);
    * floating point of another precision (float64 from librosa / NumPy, half) is cast to the weights' ``dtype``;
    * integer, bool and complex tensors are a TypeError: raw PCM has no single scale (int16 is / 32768, int32 is
      / 2**31), so the caller passes float audio in [-1, 1] (for int16: ``x.float() / 32768``);
    * anything but (batch, samples), or fewer samples than the receptive field, is a ValueError;
    * NaN or Inf values are a ValueError (skipped while tracing or exporting a graph, see :func:`_checks_values`).
    """
    if isinstance(input_values, np.ndarray):
        input_values = torch.from_numpy(np.ascontiguousarray(input_values)).to(device)
    elif not isinstance(input_values, torch.Tensor):
        raise TypeError(
            f"input_values must be a torch.Tensor (batch, samples) of float audio in [-1, 1], got "
            f"{type(input_values).__name__}"
        )
    if not input_values.is_floating_point():
        hint = " (int16 PCM: x.float() / 32768)" if input_values.dtype == torch.int16 else ""
        raise TypeError(
            f"input_values are {str(input_values.dtype).removeprefix('torch.')}; pass float32 audio in [-1, 1]{hint}"
        )
    if input_values.dim() != 2:
        fix = "add a batch dimension (x[None])" if input_values.dim() == 1 else "mix audio to mono"
        raise ValueError(f"input_values must be (batch, samples), got shape {tuple(input_values.shape)}; {fix}")
    if input_values.shape[-1] < min_samples:
        raise ValueError(
            f"input is {input_values.shape[-1]} samples; the model needs at least {min_samples} (its "
            "receptive field) to produce one frame"
        )
    if input_values.dtype != dtype:
        input_values = input_values.to(dtype)
    if _checks_values():
        _check_finite(input_values)
    return input_values


@dataclass
class HfWav2Vec2BaseModelOutput(ModelOutput):
    """``last_hidden_state`` (B, T, D); ``extract_features`` (B, T, C): the layer-normed conv features."""

    last_hidden_state: torch.FloatTensor | None = None
    extract_features: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class HfWav2Vec2PreTrainedModel(AdapterMixin, PreTrainedModel):
    """Base of the model classes: config checks, weight init, frame lengths and MMS adapters (:class:`AdapterMixin`,
    listed first so that its ``load_adapter`` hides the PEFT mixin's)."""

    config_class = HfWav2Vec2Config
    config: HfWav2Vec2Config
    base_model_prefix = "wav2vec2"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _supports_sdpa = True  # eager and sdpa (see Attention); flash and flex attention are not declared: untested
    _config_checks: tuple[str, ...] = ()  # the parts of config.check_model_consistency this class needs

    def __init__(self, config: HfWav2Vec2Config, *inputs, **kwargs):
        if not hasattr(config, "check_model_consistency"):
            raise TypeError(
                f"{type(self).__name__} needs an HfWav2Vec2Config, got {type(config).__name__}; convert "
                "it with HfWav2Vec2Config.from_transformers_config(config)"
            )
        config.check_model_consistency(type(self).__name__, self._config_checks)
        super().__init__(config, *inputs, **kwargs)

    def _initialize_weights(self, module, is_custom_code: bool = False):
        # transformers treats any class outside its package as remote code and then marks a module without direct
        # parameters as initialized before _init_weights sees it, which skipped the FeatureProjection, positional
        # conv and pre-training head branches below (those layers kept std 0.02 instead of transformers' and
        # fairseq's fan-in init; issue 17). Every init here goes through transformers' guarded init functions, so
        # the shortcut is not needed: loaded weights are still left alone.
        super()._initialize_weights(module, is_custom_code=False)

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, HfWav2Vec2ForPreTraining):
            # fairseq's final_proj / project_q keep torch's default Linear init
            module.project_hid.reset_parameters()
            module.project_q.reset_parameters()
        elif isinstance(module, GumbelVectorQuantizer):
            init.normal_(module.weight_proj.weight, mean=0.0, std=1.0)
            init.zeros_(module.weight_proj.bias)
            init.uniform_(module.codevectors)
        elif isinstance(module, PositionalConvEmbedding):
            conv = module.conv
            fan = conv.kernel_size[0] * conv.in_channels
            weight = conv.parametrizations.weight
            init.normal_(weight.original1, mean=0.0, std=2 * math.sqrt(1 / fan))
            with torch.no_grad():
                init.copy_(weight.original0, torch.linalg.vector_norm(weight.original1, dim=(0, 1), keepdim=True))
            init.zeros_(conv.bias)
        elif isinstance(module, FeatureProjection):
            bound = math.sqrt(1 / module.projection.in_features)
            init.uniform_(module.projection.weight, a=-bound, b=bound)
            init.uniform_(module.projection.bias, a=-bound, b=bound)
        elif isinstance(module, nn.Conv1d) and not hasattr(module, "parametrizations"):
            init.kaiming_normal_(module.weight)
            if module.bias is not None:
                bound = math.sqrt(module.groups / (module.in_channels * module.kernel_size[0]))
                init.uniform_(module.bias, a=-bound, b=bound)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, HfWav2Vec2Model) and module.masked_spec_embed is not None:
            init.uniform_(module.masked_spec_embed)

    def _get_feat_extract_output_lengths(self, input_lengths, add_adapter=None):
        """Frames out of the feature encoder for ``input_lengths`` samples (transformers' method, no adapters)."""
        return conv_output_lengths(input_lengths, self.config.conv_kernel, self.config.conv_stride)

    def _frame_mask(self, attention_mask, frames):
        """Sample-level attention mask (B, L) -> frame-level (B, T) bool, True for real frames."""
        lengths = self._get_feat_extract_output_lengths(attention_mask.long().sum(-1))
        return torch.arange(frames, device=attention_mask.device)[None, :] < lengths[:, None]

    def _get_feature_vector_attention_mask(self, feature_vector_length, attention_mask, add_adapter=None):
        # transformers' name, called by its pre-training collator (DataCollatorForWav2Vec2Pretraining)
        return self._frame_mask(attention_mask, feature_vector_length)

    def _prepare_input(self, input_values):
        """``input_values`` as the conv encoder takes them, or a one-line error saying what to pass (see
        :func:`prepare_input_values`)."""
        return prepare_input_values(input_values, self.dtype, self.device, self.config.receptive_field)


class HfWav2Vec2Model(HfWav2Vec2PreTrainedModel):
    """Feature encoder, feature projection, SpecAugment-style masking and the transformer: the bare wav2vec 2.0."""

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__(config)
        self.feature_extractor = FeatureEncoder(config)
        self.feature_projection = FeatureProjection(config)
        # learned vector that replaces masked frames (fairseq mask_emb); transformers creates it only when masking
        if config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0:
            self.masked_spec_embed = nn.Parameter(torch.empty(config.hidden_size))
        else:
            self.masked_spec_embed = None
        self.encoder = Encoder(config)
        self.post_init()

    def freeze_feature_encoder(self):
        """Stop gradients into the conv feature encoder (fine-tuning keeps it frozen, as fairseq)."""
        for param in self.feature_extractor.parameters():
            param.requires_grad = False

    def extract_features(self, input_values, attention_mask=None):
        """Run the conv encoder and the projection.

        Returns conv features (B, C, T) (for the feature penalty), normed features (B, T, C), projected features
        (B, T, D) and the frame mask (B, T) (None without ``attention_mask``).
        """
        input_values = self._prepare_input(input_values)
        features = self.feature_extractor(input_values)
        grad_mult = self.config.feature_grad_mult
        if grad_mult == 0:
            features = features.detach()
        elif grad_mult != 1.0 and features.requires_grad:
            features = GradMultiply.apply(features, grad_mult)
        projected, normed = self.feature_projection(features.transpose(1, 2))
        frame_mask = None if attention_mask is None else self._frame_mask(attention_mask, features.shape[-1])
        return features, normed, projected, frame_mask

    def mask_hidden_states(self, hidden_states, mask_time_indices=None, frame_mask=None):
        """SpecAugment-style masking (section 3.1 / 4.4): masked frames become ``masked_spec_embed``, masked channels 0.

        Only with ``apply_spec_augment`` (as transformers). Given ``mask_time_indices`` are always applied; otherwise
        spans are sampled only in training. Channel masks are sampled only in training.
        """
        if not self.config.apply_spec_augment:
            return hidden_states
        batch, frames, _ = hidden_states.shape
        if mask_time_indices is None and self.training and self.config.mask_time_prob > 0:
            lengths = None if frame_mask is None else frame_mask.sum(-1)
            mask_time_indices = compute_mask_indices(
                (batch, frames),
                self.config.mask_time_prob,
                self.config.mask_time_length,
                self.config.mask_time_min_masks,
                lengths,
                hidden_states.device,
            )
        return self.mask_channels(self.mask_time_steps(hidden_states, mask_time_indices))

    def mask_time_steps(self, hidden_states, mask_time_indices):
        """Replace the frames of ``mask_time_indices`` (B, T) (None: none) by the learned ``masked_spec_embed``."""
        if mask_time_indices is None:
            return hidden_states
        if self.masked_spec_embed is None:
            raise ValueError("mask_time_indices given, but the config has mask_time_prob=0 (no mask embedding)")
        embed = self.masked_spec_embed.to(hidden_states.dtype)
        return torch.where(mask_time_indices[:, :, None].bool(), embed, hidden_states)

    def mask_channels(self, hidden_states):
        """Zero random channel spans (``mask_feature_prob``), in training only."""
        if not (self.training and self.config.mask_feature_prob > 0):
            return hidden_states
        batch, _, dim = hidden_states.shape
        channels = compute_mask_indices(
            (batch, dim),
            self.config.mask_feature_prob,
            self.config.mask_feature_length,
            self.config.mask_feature_min_masks,
            device=hidden_states.device,
        )
        return hidden_states.masked_fill(channels[:, None, :], 0.0)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """``input_values`` (B, L) at 16 kHz; ``attention_mask`` (B, L) 1 for real samples (pass it only to
        layer-norm models: group-norm encoders were trained on zero padding, fairseq #3227)."""
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        _, normed, hidden, frame_mask = self.extract_features(input_values, attention_mask)
        hidden = self.mask_hidden_states(hidden, mask_time_indices, frame_mask)
        last, states, weights = self.encoder(hidden, frame_mask, output_hidden_states, output_attentions)
        output = HfWav2Vec2BaseModelOutput(
            last_hidden_state=last, extract_features=normed, hidden_states=states, attentions=weights
        )
        return output if return_dict is not False else output.to_tuple()


class HfWav2Vec2ForPreTraining(PreTrainingObjective, HfWav2Vec2PreTrainedModel):
    """wav2vec 2.0 with the self-supervised objective of fairseq's ``Wav2Vec2Model`` and ``wav2vec`` criterion.

    Masks (p=``mask_time_prob``, M=``mask_time_length``) and distractors are sampled in torch on the model's device
    unless given as ``mask_time_indices`` (B, T) and ``sampled_negative_indices`` (B, T, K) in transformers'
    convention (flat indices into B*T), so the inputs of transformers' ``Wav2Vec2ForPreTraining`` (its collator,
    its ``_sample_negative_indices``, which may draw distractors from every frame) work unchanged.

    * Masks are sampled in training only, as transformers: in eval nothing is masked unless ``mask_time_indices``
      are given or ``sample_masks=True`` (e.g. for a validation loss), so eval outputs are deterministic and
      without a mask there is no loss (fairseq masks in eval too).
    * The time mask is part of the objective, not an augmentation: it is applied even with
      ``apply_spec_augment=False`` (which then only switches channel masking off). Unapplied, the model would
      predict frames it sees: a trivial task. transformers skips it there.
    * Masked padding frames carry no target: they are neither masked, scored nor counted (transformers scores them).

    Deliberate differences from transformers' ``Wav2Vec2ForPreTraining`` (fairseq is followed):

    * in training the quantizer and ``project_q`` run only on the frames the loss reads (masked frames and the
      distractors' frames), in eval on every frame;
    * the diversity loss always uses the softmax ("prob") perplexity, in eval too (transformers uses the hard code
      perplexity in eval), and is reported unscaled; the total loss scales it by the number of masked frames;
    * an L2 penalty on the conv features is added (``feature_penalty_weight``), and gradients into the conv encoder
      are scaled by ``feature_grad_mult``;
    * ablations of the paper's Table 4: ``quantize_targets=False`` (continuous targets) and ``quantize_input=True``
      (the transformer reads quantized features; the quantizer is shared, fairseq's ``same_quantizer``).
    """

    _config_checks = ("quantizer",)

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__(config)
        self.wav2vec2 = HfWav2Vec2Model(config)
        self.dropout_features = nn.Dropout(config.feat_quantizer_dropout)
        self.quantizer = GumbelVectorQuantizer(config)
        self.project_hid = Linear(config.hidden_size, config.proj_codevector_dim)
        target_dim = config.codevector_dim if config.quantize_targets else config.conv_dim[-1]
        self.project_q = Linear(target_dim, config.proj_codevector_dim)
        if config.quantize_input:
            self.project_inp = Linear(config.codevector_dim, config.hidden_size)
        self.post_init()

    def set_gumbel_temperature(self, temperature: float):
        """Set the Gumbel softmax temperature (the training loop anneals it, ``config.gumbel_temperature_at``)."""
        self.quantizer.temperature = float(temperature)

    def freeze_feature_encoder(self):
        self.wav2vec2.freeze_feature_encoder()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        sampled_negative_indices: torch.Tensor | None = None,
        sample_masks: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """``sample_masks``: sample masks when ``mask_time_indices`` is None (default: in training only)."""
        config, base = self.config, self.wav2vec2
        features, normed, hidden, frame_mask = base.extract_features(input_values, attention_mask)
        batch, frames, _ = hidden.shape
        sample = self.training if sample_masks is None else bool(sample_masks)
        mask = self._time_mask(mask_time_indices, sample, frame_mask, (batch, frames), hidden.device)
        in_ppl = None
        if config.quantize_input:
            q_in, _, *in_ppl = self.quantizer(normed.reshape(batch * frames, -1))
            hidden = self.project_inp(q_in.view(batch, frames, -1))
        hidden = base.mask_time_steps(hidden, mask)
        if config.apply_spec_augment:
            hidden = base.mask_channels(hidden)
        output_hidden_states = bool(output_hidden_states or config.output_hidden_states)
        output_attentions = bool(output_attentions or config.output_attentions)
        context, states, weights = base.encoder(hidden, frame_mask, output_hidden_states, output_attentions)
        projected = self.project_hid(context)  # (B, T, P): every frame, as transformers' projected_states
        fields, quantized = self._objective(projected, normed, mask, sampled_negative_indices, frame_mask)
        code_ppl, prob_ppl = fields.pop("perplexities", None) or in_ppl or (torch.zeros((), device=hidden.device),) * 2
        if mask is not None:
            fields.update(self._losses(fields["logits"], features, prob_ppl))
        output = HfWav2Vec2ForPreTrainingOutput(
            **fields,
            code_perplexity=code_ppl,
            prob_perplexity=prob_ppl,
            mask_time_indices=mask,
            hidden_states=states,
            attentions=weights,
            projected_states=projected,
            projected_quantized_states=quantized,
            codevector_perplexity=prob_ppl if self.training else code_ppl,
        )
        return output if return_dict is not False else output.to_tuple()


class HfWav2Vec2WithLabels(HfWav2Vec2PreTrainedModel):
    """The encoder under a head trained on ``labels``: transformers' ``forward`` of the CTC and classification heads.

    A head sets ``output_class`` (transformers' output dataclass) and implements :meth:`_head`; :meth:`_states` may
    change the states it reads (the classification heads' weighted layer sum).
    """

    output_class: type[ModelOutput]

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """``input_values`` (B, L) at 16 kHz, ``attention_mask`` (B, L) 1 for real samples; ``labels`` as the head's
        :meth:`_head` says."""
        wanted = bool(output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states)
        states, outputs = self._states(input_values, attention_mask, output_attentions, wanted)
        fields = self._head(states, labels, attention_mask, input_values.shape[-1])
        output = self.output_class(
            **fields, hidden_states=outputs.hidden_states if wanted else None, attentions=outputs.attentions
        )
        return output if return_dict is not False else output.to_tuple()

    def _states(self, input_values, attention_mask, output_attentions, output_hidden_states):
        """(the states the head reads (B, T, D), the encoder's outputs): here its last hidden state."""
        outputs = self.wav2vec2(
            input_values,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return outputs.last_hidden_state, outputs

    def _head(self, states, labels, attention_mask, num_samples) -> dict:
        """The head's output fields (``logits``, ``loss`` when ``labels`` are given, ...) from ``states`` (B, T, D);
        ``num_samples`` is L, the padded input's length."""
        raise NotImplementedError

    def freeze_feature_encoder(self):
        """Stop gradients into the conv feature encoder (fine-tuning keeps it frozen, as fairseq)."""
        self.wav2vec2.freeze_feature_encoder()

    def freeze_base_model(self):
        """Freeze the whole wav2vec 2.0 encoder: only the head (and its own weights, such as a classifier's layer
        weights) trains, as in fairseq's ``freeze_finetune_updates`` phase.

        MMS adapters freeze too, as in transformers; adapter-only fine-tuning wants ``freeze_all_but_adapters()``.
        """
        for param in self.wav2vec2.parameters():
            param.requires_grad = False


class HfWav2Vec2ForCTC(HfWav2Vec2WithLabels):
    """wav2vec 2.0 with a linear CTC head over the vocabulary; the blank is ``pad_token_id``."""

    _config_checks = ("ctc",)
    output_class = CausalLMOutput

    def __init__(self, config: HfWav2Vec2Config):
        super().__init__(config)
        self.wav2vec2 = HfWav2Vec2Model(config)
        self.dropout = nn.Dropout(config.final_dropout)
        self.lm_head = Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def _head(self, states, labels, attention_mask, num_samples):
        """``labels`` (B, S) token ids, padded with -100 (any negative id is ignored)."""
        logits = self.lm_head(self.dropout(states))  # (B, T, V)
        loss = None if labels is None else self.ctc_loss(logits, labels, attention_mask, num_samples)
        return {"loss": loss, "logits": logits}

    def ctc_loss(self, logits, labels, attention_mask, num_samples):
        if _checks_values() and labels.max() >= self.config.vocab_size:
            raise ValueError(f"label ids must be < vocab_size ({self.config.vocab_size}), got {int(labels.max())}")
        if attention_mask is None:
            sample_lengths = torch.full((logits.shape[0],), num_samples, device=logits.device, dtype=torch.long)
        else:
            sample_lengths = attention_mask.long().sum(-1)
        input_lengths = self._get_feat_extract_output_lengths(sample_lengths)
        label_mask = labels >= 0
        target_lengths = label_mask.sum(-1)
        # (B, S) targets, each row's labels first in their order (-100 anywhere is skipped): a fixed shape, where
        # masked_select's 1-D concatenation has a data-dependent length that breaks a compiled graph
        first = torch.sort((~label_mask).to(torch.uint8), dim=1, stable=True).indices
        targets = labels.gather(1, first).clamp(min=0)
        # fp32 log-softmax: CTC in half precision overflows (speechbrain #1803)
        log_probs = F.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)  # (T, B, V)
        # (B, S) int64 targets on the logits' device never take cuDNN's CTC (it wants 1-D int32 targets on the CPU,
        # and differs from the native kernel), so no cudnn.flags context is needed, which would break a graph
        return F.ctc_loss(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            blank=self.config.pad_token_id,
            reduction=self.config.ctc_loss_reduction,
            zero_infinity=self.config.ctc_zero_infinity,
        )


__all__ = [
    "HfWav2Vec2PreTrainedModel",
    "HfWav2Vec2Model",
    "HfWav2Vec2ForPreTraining",
    "HfWav2Vec2ForCTC",
    "compute_mask_indices",
    "sample_negative_indices",
]
