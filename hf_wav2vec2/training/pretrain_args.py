"""The typed arguments of pre-training (:class:`PretrainArguments`, parsed once) and the model config they build.

Every command-line flag of ``hf-wav2vec2 pretrain`` is a field of :class:`PretrainArguments`; the parser is made
from the fields, so a Python caller (``examples/main_job.py``) builds the same object directly and gets the same
checks. This module imports neither torch nor transformers at import time: ``--help`` and usage errors answer at
once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .allocator import DEFAULT_MMAP_THRESHOLD_KB, check_mmap_threshold

if TYPE_CHECKING:
    from hf_wav2vec2.configuration_hf_wav2vec2 import HfWav2Vec2Config

# what --gradient_checkpointing may recompute: each value's layer classes (of modules_hf_wav2vec2), the one home of
# the parts (training.pretrain.enable_activation_checkpointing resolves the names)
CHECKPOINTING = {"all": ("ConvLayer", "EncoderLayer"), "conv": ("ConvLayer",), "transformer": ("EncoderLayer",)}

# Pre-LN (fairseq layer_norm_first, as LARGE): with post-LN the tiny transformer stayed on the blank-only CTC
# plateau for 3000 fine-tuning updates on the 10-minute split; pre-LN leaves it after about 400 (see
# benchmarks/results/main_job_cpu.md).
TINY_PRESET = dict(
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    do_stable_layer_norm=True,
    conv_dim=(128,) * 7,
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    codevector_dim=128,
    proj_codevector_dim=128,
    num_codevectors_per_group=64,
    num_codevector_groups=2,
    num_negatives=50,
    hidden_dropout=0.1,
    attention_dropout=0.1,
    feat_proj_dropout=0.1,
    feat_quantizer_dropout=0.1,
    activation_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
)
# The tiny preset keeps fairseq's feature penalty 10 and conv gradient x0.1 (from HfWav2Vec2Config.base): without
# them its pre-training accuracy was higher (0.145 vs 0.136 over the last 200 of 1200 updates) but the fine-tuned
# held-out CER was not better (62.8 % vs 60.7 %, one seed each; benchmarks/results/objective_vs_transformers.md).
DEFAULT_LR = {"tiny": 1e-3, "base": 5e-4, "large": 3e-4}
#: --ablation -> (quantize_input, quantize_targets), the paper's Table 4 rows (input / targets).
ABLATIONS = {
    "continuous_quantized": (False, True),  # the paper's choice
    "quantized_quantized": (True, True),
    "quantized_continuous": (True, False),
    "continuous_continuous": (False, False),
}
DESCRIPTION = "Self-supervised wav2vec 2.0 pre-training with Accelerate (one CPU, several CPU processes, or GPUs)."
#: The tiny preset's runs are short: the Gumbel temperature reaches its minimum after this fraction of them.
TINY_GUMBEL_ANNEAL_FRACTION = 0.7


def _flag(default: Any = dataclasses.MISSING, help: str = "", **argparse_kwargs: Any) -> Any:
    """A field that is also a command-line flag (``--<name>``); ``argparse_kwargs`` go to ``add_argument``."""
    metadata = {"help": help, "argparse": argparse_kwargs}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class PretrainArguments:
    """Everything a pre-training run is told (``hf-wav2vec2 pretrain --help`` lists the same, as flags)."""

    data: str = _flag(help="audio folder, fairseq .tsv manifest, or datasets name / path")
    output_dir: str = _flag(
        help="where checkpoints, logs and the model go (must be empty unless --resume or --overwrite_output_dir)"
    )
    preset: str = _flag("base", choices=("tiny", "base", "large"))
    config: str | None = _flag(None, help="JSON file of config overrides")
    config_overrides: list[str] = _flag([], nargs="*", metavar="KEY=VALUE")
    ablation: str | None = _flag(
        None, choices=tuple(ABLATIONS), help="input/target quantization variant of the paper's Table 4"
    )
    learning_rate: float | None = _flag(None, type=float, help="peak lr (default: tiny 1e-3, base 5e-4, large 3e-4)")
    gumbel_anneal_fraction: float | None = _flag(
        None,
        type=float,
        help="reach the minimum Gumbel temperature after this fraction of --max_updates (sets the "
        "config's per-update decay; fairseq's 0.999995 over 400k updates is 0.69). Default: 0.7 for the tiny preset, "
        "whose runs are short, the config's decay otherwise",
    )
    weight_decay: float = _flag(0.01, type=float)
    adam_betas: tuple[float, float] = _flag((0.9, 0.98), type=float, nargs=2)
    adam_eps: float = _flag(1e-6, type=float)
    warmup_ratio: float = _flag(0.08, type=float)
    lr_decay: str = _flag("linear", choices=("linear", "polynomial"))
    lr_power: float = _flag(2.0, type=float, help="exponent of the polynomial decay")
    max_updates: int = _flag(400_000, type=int)
    stop_after: int | None = _flag(
        None,
        type=int,
        help="stop (checkpoint, save) after this many updates without "
        "changing the lr schedule, e.g. to split a run into jobs resumed with --resume",
    )
    max_train_seconds: float | None = _flag(
        None, type=float, help="wall-clock budget: stop after the update that exceeds it, checkpoint and save"
    )
    max_tokens: int = _flag(1_400_000, type=int, help="samples per batch per process")
    max_sample_size: int = _flag(250_000, type=int)
    min_sample_size: int = _flag(32_000, type=int)
    pad: bool = _flag(False, action="store_true", help="pad batches (attention mask) instead of cropping")
    normalize: bool | None = _flag(
        None, action="store_true", help="zero-mean unit-variance inputs (default: on for layer-norm feature encoders)"
    )
    gradient_accumulation_steps: int = _flag(1, type=int)
    max_grad_norm: float = _flag(10.0, type=float, help="clip (0 disables)")
    mixed_precision: str = _flag(
        "no",
        choices=("no", "bf16", "fp16"),
        help="autocast dtype of the matmuls and convolutions: bf16 (CPU or GPU) or fp16 (CUDA GPUs only); the "
        "contrastive logits, the Gumbel softmax and the losses stay float32",
    )
    cpu: bool = _flag(False, action="store_true", help="train on CPU even if a GPU is present")
    gradient_checkpointing: str | None = _flag(
        None,
        nargs="?",
        const="transformer",
        choices=CHECKPOINTING,
        help="recompute activations in the backward pass to save memory: the transformer's layers (the flag alone; "
        "the conv feature encoder already keeps only its conv outputs), the conv layers' too (all: every convolution "
        "recomputed for 0.5 %% less peak memory on BASE), or the conv layers only",
    )
    compile: str | None = _flag(
        None,
        nargs="?",
        const="inductor",
        metavar="BACKEND",
        help="torch.compile each conv and transformer layer, one graph each (the flag alone: inductor; aot_eager "
        "captures the graphs without generating code)",
    )
    checkpoint_every: int = _flag(0, type=int, help="checkpoint every N updates (0: only at end)")
    keep_checkpoints: int = _flag(2, type=int, help="how many recent checkpoints of this run to keep")
    resume: bool = _flag(False, action="store_true", help="continue from the latest checkpoint in output_dir")
    overwrite_output_dir: bool = _flag(
        False,
        action="store_true",
        help="start afresh in a non-empty output_dir: the previous run's checkpoints, "
        "log, curves and TensorBoard files are deleted, its model replaced",
    )
    seed: int = _flag(1, type=int)
    num_workers: int = _flag(0, type=int)
    malloc_mmap_threshold_kb: int = _flag(
        DEFAULT_MMAP_THRESHOLD_KB,
        type=int,
        help="glibc serves blocks of this many KiB and more with mmap and returns them on free: a fixed 1 MiB took a "
        "BASE step's peak RSS from 2.4 to 1.7 GB; 0 keeps glibc's dynamic threshold, MALLOC_MMAP_THRESHOLD_ in the "
        "environment wins (hf_wav2vec2.training.allocator)",
    )
    cache_dir: str | None = _flag(None)
    log_every: int = _flag(10, type=int)
    report_to: str = _flag("tensorboard", choices=("tensorboard", "none"))
    no_plot: bool = _flag(False, action="store_true", help="skip training_curves.png")

    def __post_init__(self) -> None:
        self.data, self.output_dir = str(self.data), str(self.output_dir)
        self.adam_betas = tuple(self.adam_betas)
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LR[self.preset]
        if self.gumbel_anneal_fraction is not None and not 0 < self.gumbel_anneal_fraction <= 1:
            raise ValueError("--gumbel_anneal_fraction must be in (0, 1]")
        if self.gradient_accumulation_steps < 1 or self.max_updates < 1:
            raise ValueError("--gradient_accumulation_steps and --max_updates must be >= 1")
        if self.gradient_checkpointing not in (None, *CHECKPOINTING):
            raise ValueError(f"--gradient_checkpointing must be one of {', '.join(CHECKPOINTING)}")
        check_mmap_threshold(self.malloc_mmap_threshold_kb)
        if self.resume and self.overwrite_output_dir:
            raise ValueError(
                "--resume continues the run in --output_dir and --overwrite_output_dir replaces it: give one of them"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def argument_parser() -> argparse.ArgumentParser:
    """The parser of ``hf-wav2vec2 pretrain``: one flag per field of :class:`PretrainArguments`."""
    parser = argparse.ArgumentParser(prog="hf-wav2vec2 pretrain", description=DESCRIPTION)
    for spec in dataclasses.fields(PretrainArguments):
        kwargs = dict(spec.metadata["argparse"])
        if spec.metadata["help"]:
            kwargs["help"] = spec.metadata["help"]
        if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        parser.add_argument(f"--{spec.name}", **kwargs)
    return parser


def parse_args(argv: list[str] | None = None) -> PretrainArguments:
    """Command-line options (``hf-wav2vec2 pretrain --help``) as :class:`PretrainArguments`."""
    parser = argument_parser()
    namespace = parser.parse_args(argv)
    try:
        return PretrainArguments(**vars(namespace))
    except ValueError as err:
        parser.error(str(err))  # a usage error (exit status 2), like a malformed flag


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _config_file(path: str) -> dict[str, Any]:
    try:
        overrides = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--config {path}: cannot be read as JSON ({err})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"--config {path}: holds {type(overrides).__name__}, not an object of config fields")
    return overrides


def _check_field_names(overrides: dict[str, Any], source: str, config_class: type) -> None:
    """A misspelt field would silently be stored as an extra attribute and change nothing."""
    known = set(config_class().to_dict()) | set(config_class.attribute_map)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{source}: unknown config field(s) {', '.join(unknown)} (fields of {config_class.__name__})")


def build_config(args: PretrainArguments) -> HfWav2Vec2Config:
    """Preset, then ``--config`` JSON, then ``--config_overrides``, then ``--ablation``; checked before training."""
    from hf_wav2vec2.configuration_hf_wav2vec2 import HfWav2Vec2Config

    overrides = dict(TINY_PRESET) if args.preset == "tiny" else {}
    if args.config:
        from_file = _config_file(args.config)
        _check_field_names(from_file, f"--config {args.config}", HfWav2Vec2Config)
        overrides.update(from_file)
    given = {}
    for item in args.config_overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config_overrides expects KEY=VALUE, got {item!r}")
        given[key] = _parse_value(value)
    _check_field_names(given, "--config_overrides", HfWav2Vec2Config)
    overrides.update(given)
    if args.ablation:
        overrides["quantize_input"], overrides["quantize_targets"] = ABLATIONS[args.ablation]
    fraction = args.gumbel_anneal_fraction
    if fraction is None and args.preset == "tiny" and "gumbel_temperature_decay" not in overrides:
        fraction = TINY_GUMBEL_ANNEAL_FRACTION
    factory = HfWav2Vec2Config.large if args.preset == "large" else HfWav2Vec2Config.base
    config = factory(**overrides)
    if fraction is not None:
        # max_temp * decay**n == min_temp at n = fraction * max_updates
        ratio = config.min_gumbel_temperature / config.max_gumbel_temperature
        config.gumbel_temperature_decay = ratio ** (1.0 / max(1.0, fraction * args.max_updates))
    # Inconsistent overrides fail here, in one line, before the Accelerator starts and the data is indexed.
    config.check_model_consistency("--config_overrides", ("quantizer",))
    return config
