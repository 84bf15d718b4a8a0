"""Configuration of wav2vec 2.0 (Baevski et al., 2020, arXiv:2006.11477).

Attribute names follow transformers' ``Wav2Vec2Config`` wherever the concept is the same, so configs and
checkpoints move between the two packages. The defaults are the paper's BASE pre-training recipe (fairseq
``wav2vec2_base``); :meth:`HfWav2Vec2Config.large` gives the LARGE (LV-60k) architecture.
"""

import functools
import logging
import operator

from transformers import PretrainedConfig

logger = logging.getLogger(__name__)

# The dropout probabilities (transformers' names): fields of both packages, each checked to lie in [0, 1].
DROPOUTS = (
    "hidden_dropout",
    "activation_dropout",
    "attention_dropout",
    "feat_proj_dropout",
    "feat_quantizer_dropout",
    "final_dropout",
    "layerdrop",
)
# Attributes of transformers' Wav2Vec2Config that mean the same thing here.
SHARED_WITH_TRANSFORMERS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    *DROPOUTS,
    "initializer_range",
    "layer_norm_eps",
    "feat_extract_norm",
    "feat_extract_activation",
    "conv_dim",
    "conv_stride",
    "conv_kernel",
    "conv_bias",
    "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups",
    "do_stable_layer_norm",
    "apply_spec_augment",
    "mask_time_prob",
    "mask_time_length",
    "mask_time_min_masks",
    "mask_feature_prob",
    "mask_feature_length",
    "mask_feature_min_masks",
    "num_codevectors_per_group",
    "num_codevector_groups",
    "contrastive_logits_temperature",
    "num_negatives",
    "codevector_dim",
    "proj_codevector_dim",
    "diversity_loss_weight",
    "ctc_loss_reduction",
    "ctc_zero_infinity",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    # the classification, frame-labelling and x-vector heads (modeling_hf_wav2vec2_classification.py)
    "use_weighted_layer_sum",
    "classifier_proj_size",
    "tdnn_dim",
    "tdnn_kernel",
    "tdnn_dilation",
    "xvector_output_dim",
    # MMS: per-language adapters in every pre-LN transformer layer
    "adapter_attn_dim",
)
# fairseq-only training terms and the values that reproduce transformers' Wav2Vec2ForPreTraining (which has neither):
# what a transformers-format config (model_type "wav2vec2") gets unless it sets them itself. Measured in issue 17:
# fairseq's BASE values (10, 0.1) silently applied to a small transformers-format model stopped it learning (held-out
# contrastive accuracy 0.058 -> 0.046 in 800 updates where transformers' objective reached 0.089).
TRANSFORMERS_OBJECTIVE = {"feature_penalty_weight": 0.0, "feature_grad_mult": 1.0}


class HfWav2Vec2Config(PretrainedConfig):
    r"""Configuration of the wav2vec 2.0 models in this package.

    Drop-in for transformers' ``Wav2Vec2Config``: ``HfWav2Vec2Config(**Wav2Vec2Config(...).to_dict())`` works. Its
    derived keys (``num_feat_extract_layers``, ``output_hidden_size``) must agree with ``conv_dim`` / ``hidden_size``;
    MMS's per-layer adapters (``adapter_attn_dim``) are a field, the encoder-top conv adapter (``add_adapter``) is
    accepted switched off only; ``model_type`` is dropped; other keys (the classification heads' own are fields,
    see below) stay attributes. Direct construction takes the fields it is given and this class's defaults for the
    rest; :meth:`from_transformers_config` and ``from_pretrained`` also pick fairseq's
    LARGE recipe for the Gumbel floor when the encoder is a layer-norm one.

    A transformers-format config (``model_type: wav2vec2``: ``from_pretrained`` of a transformers checkpoint,
    :meth:`from_transformers_config`, or ``HfWav2Vec2Config(**Wav2Vec2Config().to_dict())``) trains transformers'
    objective: ``feature_penalty_weight`` 0 and ``feature_grad_mult`` 1.0, never fairseq's BASE terms a user did not
    ask for (continued pre-training of ``facebook/wav2vec2-base`` included). A value such a config sets itself is
    kept, with a warning; in direct construction a value equal to this class's default counts as not set. fairseq's
    values belong to the pre-training recipes: :meth:`base` (10, 0.1) and :meth:`large` (0, 1.0).

    Validation, as in transformers, is split: consistency between fields (``hidden_size`` divisible by
    ``num_attention_heads`` and ``num_conv_pos_embedding_groups``, ``codevector_dim`` by ``num_codevector_groups``,
    ``min_gumbel_temperature <= max_gumbel_temperature``, ``pad_token_id < vocab_size`` for CTC) is checked where
    a model is built (:meth:`check_model_consistency`), so partial configs construct. Stricter than transformers,
    single fields are checked at construction: probabilities in [0, 1], positive sizes and temperatures,
    ``feat_extract_norm`` in {"group", "layer"}, ``ctc_loss_reduction`` in {"sum", "mean"} (plus the equal length of
    the conv lists, which transformers checks too).

    Args:
        vocab_size (`int`, defaults to 32): size of the CTC output vocabulary (letters plus specials).
        hidden_size (`int`, defaults to 768): transformer width (fairseq `encoder_embed_dim`).
        num_hidden_layers (`int`, defaults to 12): transformer layers (`encoder_layers`).
        num_attention_heads (`int`, defaults to 12): attention heads (`encoder_attention_heads`).
        intermediate_size (`int`, defaults to 3072): feed-forward width (`encoder_ffn_embed_dim`).
        hidden_act (`str`, defaults to "gelu"): feed-forward activation (`activation_fn`).
        hidden_dropout (`float`, defaults to 0.1): dropout on residual branches (`dropout`).
        activation_dropout (`float`, defaults to 0.0): dropout after the feed-forward activation (`activation_dropout`).
        attention_dropout (`float`, defaults to 0.1): dropout on attention probabilities (`attention_dropout`).
        feat_proj_dropout (`float`, defaults to 0.1): dropout after the feature projection (`dropout_input`).
        feat_quantizer_dropout (`float`, defaults to 0.1): dropout on the quantizer's input (`dropout_features`).
        final_dropout (`float`, defaults to 0.0): dropout before the CTC head (`final_dropout`).
        layerdrop (`float`, defaults to 0.05): probability of skipping a whole layer in training (`encoder_layerdrop`).
        initializer_range (`float`, defaults to 0.02): std of the normal init of linear layers.
        layer_norm_eps (`float`, defaults to 1e-05): epsilon of every layer norm.
        feat_extract_norm (`str`, defaults to "group"): "group" (BASE: group norm in the first conv layer only,
            `extractor_mode=default`) or "layer" (LARGE: layer norm after every conv, `extractor_mode=layer_norm`).
        feat_extract_activation (`str`, defaults to "gelu"): activation of the conv feature encoder.
        conv_dim (`tuple[int]`, defaults to (512, 512, 512, 512, 512, 512, 512)): channels of each conv layer.
        conv_stride (`tuple[int]`, defaults to (5, 2, 2, 2, 2, 2, 2)): strides (20 ms frames at 16 kHz).
        conv_kernel (`tuple[int]`, defaults to (10, 3, 3, 3, 3, 2, 2)): kernel widths (25 ms receptive field).
        conv_bias (`bool`, defaults to False): bias in the conv layers (`conv_bias`; True for LARGE).
        num_conv_pos_embeddings (`int`, defaults to 128): kernel of the convolutional positional embedding (`conv_pos`).
        num_conv_pos_embedding_groups (`int`, defaults to 16): groups of that convolution (`conv_pos_groups`).
        do_stable_layer_norm (`bool`, defaults to False): pre-LN transformer (`layer_norm_first`, LARGE) instead
            of post-LN (BASE).
        apply_spec_augment (`bool`, defaults to True): mask time steps and channels in training.
        mask_time_prob (`float`, defaults to 0.65): fraction of frames that start a masked span, times the span
            length (`mask_prob`).
        mask_time_length (`int`, defaults to 10): masked span length M (`mask_length`).
        mask_time_min_masks (`int`, defaults to 2): minimum number of spans per utterance (fairseq `mask_min_masks`).
        mask_feature_prob (`float`, defaults to 0.0): channel masking probability (`mask_channel_prob`).
        mask_feature_length (`int`, defaults to 10): channel mask span (`mask_channel_length`).
        mask_feature_min_masks (`int`, defaults to 0): minimum number of channel spans.
        num_codevectors_per_group (`int`, defaults to 320): entries V per codebook (`latent_vars`).
        num_codevector_groups (`int`, defaults to 2): codebooks G (`latent_groups`).
        contrastive_logits_temperature (`float`, defaults to 0.1): temperature kappa of the cosine logits
            (`logit_temp`).
        num_negatives (`int`, defaults to 100): distractors K per masked step (`num_negatives`).
        codevector_dim (`int`, defaults to 256): size of a concatenated quantized vector (`latent_dim` / `final_dim`).
        proj_codevector_dim (`int`, defaults to 256): size of the space the contrastive task is scored in (`final_dim`).
        diversity_loss_weight (`float`, defaults to 0.1): weight alpha of the diversity loss (`loss_weights[0]`).
        feature_penalty_weight (`float`, defaults to 10.0): weight of the L2 penalty on the feature-encoder output
            (`loss_weights[1]`; 0 for LARGE and for a transformers-format config). transformers has no such term.
        feature_grad_mult (`float`, defaults to 0.1): multiplier of the gradient flowing into the feature encoder
            (`feature_grad_mult`; 1.0 for LARGE and for a transformers-format config). Forward values are
            unchanged; 0 stops the gradient. fairseq's BASE values (10, 0.1) are for BASE at 400k updates: on a
            4 x 128 model over 800 updates they stopped learning (issue 17: held-out accuracy 0.058 -> 0.046,
            chance 0.048, against 0.058 -> 0.102 with 0 and 1.0 from the same initial weights).
        max_gumbel_temperature (`float`, defaults to 2.0): Gumbel softmax temperature at update 0 (`latent_temp[0]`).
        min_gumbel_temperature (`float`, defaults to 0.5): its floor (`latent_temp[1]`; 0.1 for LARGE).
        gumbel_temperature_decay (`float`, defaults to 0.999995): its decay per update (`latent_temp[2]`).
        quantize_targets (`bool`, defaults to True): contrast against quantized targets (`quantize_targets`);
            False uses continuous features (an ablation of the paper's Table 4).
        quantize_input (`bool`, defaults to False): feed quantized features to the transformer (`quantize_input`
            with `same_quantizer=True`; an ablation).
        ctc_loss_reduction (`str`, defaults to "sum"): "sum" or "mean" (per-utterance loss divided by target length,
            then averaged), as in `torch.nn.functional.ctc_loss`.
        ctc_zero_infinity (`bool`, defaults to True): zero infinite CTC losses (fairseq's `zero_infinity`).
        pad_token_id (`int`, defaults to 0): id of the padding token, which is also the CTC blank.
        bos_token_id (`int`, defaults to 1): id of `<s>`.
        eos_token_id (`int`, defaults to 2): id of `</s>`.
        use_weighted_layer_sum (`bool`, defaults to False): the classification heads read a learned softmax-weighted
            sum of every hidden state (SUPERB's recipe) instead of the last one.
        classifier_proj_size (`int`, defaults to 256): width of the sequence classifier's projection before pooling.
        tdnn_dim (`tuple[int]`, defaults to (512, 512, 512, 512, 1500)): channels of the x-vector TDNN layers.
        tdnn_kernel (`tuple[int]`, defaults to (5, 3, 3, 1, 1)): their kernel widths.
        tdnn_dilation (`tuple[int]`, defaults to (1, 2, 3, 1, 1)): their dilations.
        xvector_output_dim (`int`, defaults to 512): size of the x-vector embedding.
        adapter_attn_dim (`int`, defaults to None): bottleneck width of MMS's per-language adapters (16 in
            `facebook/mms-1b-all`): every pre-LN transformer layer then ends with ``h + adapter(h)``, adapter =
            LayerNorm -> Linear(hidden_size -> adapter_attn_dim) -> ReLU -> Linear(-> hidden_size), and each
            language's adapters and CTC head live in an ``adapter.<lang>.safetensors`` file beside the model
            (``model.load_adapter(lang)``). None: no adapters. Needs `do_stable_layer_norm`.
    """

    model_type = "hf_wav2vec2"

    vocab_size: int = 32
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    activation_dropout: float = 0.0
    attention_dropout: float = 0.1
    feat_proj_dropout: float = 0.1
    feat_quantizer_dropout: float = 0.1
    final_dropout: float = 0.0
    layerdrop: float = 0.05
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    feat_extract_norm: str = "group"
    feat_extract_activation: str = "gelu"
    conv_dim: list[int] | tuple[int, ...] = (512, 512, 512, 512, 512, 512, 512)
    conv_stride: list[int] | tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_kernel: list[int] | tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_bias: bool = False
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False
    apply_spec_augment: bool = True
    mask_time_prob: float = 0.65
    mask_time_length: int = 10
    mask_time_min_masks: int = 2
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    mask_feature_min_masks: int = 0
    num_codevectors_per_group: int = 320
    num_codevector_groups: int = 2
    contrastive_logits_temperature: float = 0.1
    num_negatives: int = 100
    codevector_dim: int = 256
    proj_codevector_dim: int = 256
    diversity_loss_weight: float = 0.1
    feature_penalty_weight: float = 10.0
    feature_grad_mult: float = 0.1
    max_gumbel_temperature: float = 2.0
    min_gumbel_temperature: float = 0.5
    gumbel_temperature_decay: float = 0.999995
    quantize_targets: bool = True
    quantize_input: bool = False
    ctc_loss_reduction: str = "sum"
    ctc_zero_infinity: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    use_weighted_layer_sum: bool = False
    classifier_proj_size: int = 256
    tdnn_dim: list[int] | tuple[int, ...] = (512, 512, 512, 512, 1500)
    tdnn_kernel: list[int] | tuple[int, ...] = (5, 3, 3, 1, 1)
    tdnn_dilation: list[int] | tuple[int, ...] = (1, 2, 3, 1, 1)
    xvector_output_dim: int = 512
    adapter_attn_dim: int | None = None

    def __post_init__(self, **kwargs):
        for name in ("conv_dim", "conv_stride", "conv_kernel", "tdnn_dim", "tdnn_kernel", "tdnn_dilation"):
            setattr(self, name, list(getattr(self, name)))
        self._accept_transformers_keys(kwargs)
        super().__post_init__(**kwargs)
        self._check_fields(self._fail)

    def _accept_transformers_keys(self, kwargs):
        """Take the keys transformers' ``Wav2Vec2Config.to_dict()`` writes that are no field here (pops them).

        Derived keys must agree with the fields they derive from; the conv adapter's keys are accepted only
        switched off (``adapter_attn_dim``, MMS's adapters, is a field).
        Other unknown keys stay plain attributes, as in transformers.
        """
        # model_type is a class attribute: an instance copy ("wav2vec2") would shadow it and mislabel the config
        if kwargs.pop("model_type", None) == "wav2vec2":
            for name, value in TRANSFORMERS_OBJECTIVE.items():
                given = getattr(self, name)
                if given == getattr(type(self), name):  # the class default: not set by the transformers config
                    setattr(self, name, value)
                elif given != value:
                    _warn_fairseq_term(name, given)
        layers = kwargs.pop("num_feat_extract_layers", None)
        if layers is not None and layers != len(self.conv_dim):
            self._fail(f"num_feat_extract_layers ({layers}) disagrees with len(conv_dim) ({len(self.conv_dim)})")
        if kwargs.pop("add_adapter", False):
            self._fail(
                "add_adapter=True (transformers' conv adapter on top of the encoder, for speech-to-text "
                "decoders) is not supported; MMS's per-layer adapters (adapter_attn_dim) are"
            )
        output_size = kwargs.pop("output_hidden_size", None)
        if output_size is not None and output_size != self.hidden_size:
            self._fail(
                f"output_hidden_size ({output_size}) differs from hidden_size ({self.hidden_size}); only "
                "models with the conv adapter (add_adapter) have that, and it is not supported"
            )
        for name in ("adapter_kernel_size", "adapter_stride", "num_adapter_layers"):  # meaningless without adapters
            kwargs.pop(name, None)

    @staticmethod
    def _fail(message):
        raise ValueError(f"HfWav2Vec2Config: {message}")

    @property
    def num_feat_extract_layers(self) -> int:
        return len(self.conv_dim)

    @property
    def inputs_to_logits_ratio(self) -> int:
        """Input samples per output frame (320 for the published models); the ASR pipeline reads it."""
        return functools.reduce(operator.mul, self.conv_stride, 1)

    @property
    def receptive_field(self) -> int:
        """Samples needed for one output frame (400 for the published models)."""
        field = 1
        for kernel, stride in reversed(list(zip(self.conv_kernel, self.conv_stride, strict=True))):
            field = (field - 1) * stride + kernel
        return field

    def check_model_consistency(self, model_name: str, heads: tuple[str, ...] = ()):
        """Check what building ``model_name`` needs; raise a one-line ``ValueError`` naming the attributes otherwise.

        Called by every model's ``__init__`` (as transformers checks where the model is built), so partial configs
        such as ``HfWav2Vec2Config(hidden_size=32)`` construct. ``heads``: "ctc" (the blank must be a vocabulary
        entry) and "quantizer" (codebooks and Gumbel schedule of the pre-training objective).
        """

        def fail(message):
            raise ValueError(f"{model_name}: {message}")

        self._check_fields(fail)
        for name in ("num_attention_heads", "num_conv_pos_embedding_groups"):
            if self.hidden_size % getattr(self, name):
                fail(
                    f"config.hidden_size ({self.hidden_size}) must be divisible by config.{name} "
                    f"({getattr(self, name)})"
                )
        if self.adapter_attn_dim is not None and not self.do_stable_layer_norm:
            # transformers builds adapters only into pre-LN layers: a post-LN model would silently have none
            fail(
                f"config.adapter_attn_dim ({self.adapter_attn_dim}) needs config.do_stable_layer_norm=True (MMS "
                "adapters sit in pre-LN layers only)"
            )
        if "quantizer" in heads:
            if self.codevector_dim % self.num_codevector_groups:
                fail(
                    f"config.codevector_dim ({self.codevector_dim}) must be divisible by config.num_codevector_groups "
                    f"({self.num_codevector_groups})"
                )
            if self.min_gumbel_temperature > self.max_gumbel_temperature:
                fail(
                    f"config.min_gumbel_temperature ({self.min_gumbel_temperature}) exceeds "
                    f"config.max_gumbel_temperature ({self.max_gumbel_temperature})"
                )
        if "ctc" in heads:
            if self.vocab_size is None:
                fail("config.vocab_size is needed (the size of the tokenizer's vocabulary)")
            if self.pad_token_id is None or not 0 <= self.pad_token_id < self.vocab_size:
                fail(
                    f"config.pad_token_id ({self.pad_token_id}) is the CTC blank and must be < config.vocab_size "
                    f"({self.vocab_size})"
                )

    def _check_fields(self, fail):
        """Checks of single fields (plus the conv stack's equal lengths, which transformers checks too)."""
        if not (len(self.conv_dim) == len(self.conv_stride) == len(self.conv_kernel)) or not self.conv_dim:
            fail(
                "conv_dim, conv_stride and conv_kernel must be non-empty and of equal length, got "
                f"{len(self.conv_dim)}, {len(self.conv_stride)} and {len(self.conv_kernel)}"
            )
        if any(int(v) <= 0 for v in (*self.conv_dim, *self.conv_stride, *self.conv_kernel)):
            fail("conv_dim, conv_stride and conv_kernel must hold positive integers")
        if self.feat_extract_norm not in ("group", "layer"):
            fail(f"feat_extract_norm must be 'group' or 'layer', got {self.feat_extract_norm!r}")
        for name in (*DROPOUTS, "mask_time_prob", "mask_feature_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                fail(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in (
            "mask_time_length",
            "mask_feature_length",
            "num_codevectors_per_group",
            "num_codevector_groups",
            "num_hidden_layers",
            "num_attention_heads",
            "hidden_size",
            "intermediate_size",
            "num_conv_pos_embedding_groups",
        ):
            if int(getattr(self, name)) < 1:
                fail(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.adapter_attn_dim is not None and (
            isinstance(self.adapter_attn_dim, bool)
            or not isinstance(self.adapter_attn_dim, int)
            or self.adapter_attn_dim < 1
        ):
            fail(f"adapter_attn_dim must be None (no adapters) or an integer >= 1, got {self.adapter_attn_dim!r}")
        for name in ("mask_time_min_masks", "mask_feature_min_masks", "num_negatives"):
            if int(getattr(self, name)) < 0:
                fail(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.contrastive_logits_temperature <= 0:
            fail(f"contrastive_logits_temperature must be > 0, got {self.contrastive_logits_temperature}")
        if self.min_gumbel_temperature <= 0:
            fail(f"min_gumbel_temperature must be > 0, got {self.min_gumbel_temperature}")
        if not 0 < self.gumbel_temperature_decay <= 1:
            fail(f"gumbel_temperature_decay must lie in (0, 1], got {self.gumbel_temperature_decay}")
        if self.feature_grad_mult < 0:
            fail(f"feature_grad_mult must be >= 0, got {self.feature_grad_mult}")
        if self.ctc_loss_reduction not in ("sum", "mean"):
            fail(f"ctc_loss_reduction must be 'sum' or 'mean', got {self.ctc_loss_reduction!r}")

    def gumbel_temperature_at(self, num_updates: int) -> float:
        """fairseq's schedule: max(max_temp * decay**num_updates, min_temp)."""
        decayed = self.max_gumbel_temperature * self.gumbel_temperature_decay**num_updates
        return max(decayed, self.min_gumbel_temperature)

    @classmethod
    def base(cls, **kwargs) -> "HfWav2Vec2Config":
        """The paper's BASE model (12 x 768, post-LN, group-norm feature encoder): the defaults."""
        return cls(**kwargs)

    @classmethod
    def large(cls, **kwargs) -> "HfWav2Vec2Config":
        """The paper's LARGE model as pre-trained on LV-60k (24 x 1024, pre-LN, layer-norm conv encoder with bias)."""
        preset = dict(
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            feat_extract_norm="layer",
            conv_bias=True,
            do_stable_layer_norm=True,
            codevector_dim=768,
            proj_codevector_dim=768,
            hidden_dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
            feat_proj_dropout=0.0,
            feat_quantizer_dropout=0.0,
            layerdrop=0.0,
            feature_penalty_weight=0.0,
            feature_grad_mult=1.0,
            min_gumbel_temperature=0.1,
        )
        preset.update(kwargs)
        return cls(**preset)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        # A transformers checkpoint (model_type "wav2vec2", e.g. facebook/wav2vec2-base) is translated here, before
        # from_pretrained compares model types: loading it is supported, so transformers' "You are using a model of
        # type wav2vec2 to instantiate a model of type hf_wav2vec2" warning would be wrong. Other types still warn.
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type") == "wav2vec2":
            config_dict = cls.from_transformers_config(config_dict).to_dict()
        return config_dict, kwargs

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # A transformers config dict is translated first (from_pretrained has done it already).
        if config_dict.get("model_type") == "wav2vec2":
            config_dict = cls.from_transformers_config(config_dict).to_dict()
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def from_transformers_config(cls, config) -> "HfWav2Vec2Config":
        """Build a config from transformers' ``Wav2Vec2Config`` (or its dict), keeping every shared attribute.

        transformers omits attributes equal to its own defaults when saving, so the dict is first completed by
        transformers' class. The feature penalty and gradient multiplier, which transformers does not have, get
        transformers' behaviour (0 and 1.0) unless the config sets them (kept, with a warning); the Gumbel floor
        takes fairseq's LARGE value (0.1) for layer-norm encoders. None of them changes a forward value.
        """
        if isinstance(config, dict):
            from transformers import Wav2Vec2Config

            config = Wav2Vec2Config.from_dict(config)
        if getattr(config, "add_adapter", False):
            raise ValueError(
                "wav2vec 2.0 checkpoints with transformers' conv adapter (add_adapter=True) are not "
                "supported; MMS's per-layer adapters (adapter_attn_dim) are"
            )
        values = {name: getattr(config, name) for name in SHARED_WITH_TRANSFORMERS if hasattr(config, name)}
        for name, value in TRANSFORMERS_OBJECTIVE.items():
            # transformers keeps unknown keys as attributes: a user's explicit value survives (with a warning)
            values[name] = getattr(config, name, value)
            if values[name] != value:
                _warn_fairseq_term(name, values[name])
        if values.get("feat_extract_norm") == "layer":
            # the layer-norm (LARGE / XLS-R) checkpoints were pre-trained with fairseq's LARGE recipe
            values.update(min_gumbel_temperature=0.1)
        for name in ("architectures", "id2label", "label2id", "problem_type", "_name_or_path", "dtype"):
            if getattr(config, name, None):
                values[name] = getattr(config, name)
        return cls(**values)

    def to_transformers_config(self):
        """transformers' ``Wav2Vec2Config`` with the same architecture (for exporting)."""
        from transformers import Wav2Vec2Config

        values = {name: getattr(self, name) for name in SHARED_WITH_TRANSFORMERS}
        for name in ("conv_dim", "conv_stride", "conv_kernel"):
            values[name] = tuple(values[name])
        # the classification heads' labels (their head sizes follow num_labels)
        values.update(id2label=dict(self.id2label), label2id=dict(self.label2id), problem_type=self.problem_type)
        return Wav2Vec2Config(**values)


def _warn_fairseq_term(name, value):
    logger.warning(
        "HfWav2Vec2Config: the transformers-format config sets %s=%r, a fairseq-only pre-training term that "
        "transformers' Wav2Vec2ForPreTraining ignores; kept (transformers' behaviour is %s=%r)",
        name,
        value,
        name,
        TRANSFORMERS_OBJECTIVE[name],
    )


__all__ = ["HfWav2Vec2Config"]
