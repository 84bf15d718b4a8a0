"""Self-supervised wav2vec 2.0 pre-training with Accelerate (one CPU, several CPU processes, or GPUs).

The script reads top to bottom like accelerate's ``nlp_example``: :func:`parse_args`, :func:`get_dataloader`,
:func:`training_function`, :func:`main`. Examples::

    # a few minutes on a laptop CPU: the "tiny" preset on a synthetic corpus
    python -c "from hf_wav2vec2.training.synthetic import make_synthetic_corpus as m; m('data/synth', 64)"
    python examples/pretrain.py --data data/synth --output_dir runs/tiny --preset tiny --max_updates 300 \
        --max_tokens 64000 --max_sample_size 32000 --min_sample_size 16000

    # two CPU processes (gloo) or several GPUs
    accelerate launch --multi_gpu --num_processes 2 examples/pretrain.py --cpu --data ... --output_dir ...

    # the paper's BASE recipe on LibriSpeech (64 GPUs x 1.4M samples in the paper)
    accelerate launch examples/pretrain.py --preset base --data /data/librispeech --output_dir runs/base \
        --max_updates 400000 --mixed_precision fp16 --checkpoint_every 5000

Recipe (fairseq ``wav2vec2_base_librispeech.yaml``): Adam(0.9, 0.98, eps 1e-6), weight decay 0.01, peak lr 5e-4
reached by a linear warm-up over ``warmup_ratio`` (8 %) of the updates, then linear decay to 0; Gumbel temperature
annealed per update (``config.gumbel_temperature_at``). The model returns the loss *summed* over masked frames;
like fairseq's ``sample_size``, gradients are divided by the number of masked frames summed over every process and
every accumulated micro-batch, so the update does not depend on how the batch is split.

Presets (``--preset``):

* ``tiny``: 4 layers x 256 hidden, 4 heads, FFN 1024, seven 128-channel conv layers with BASE's kernels and
  strides (the conv stack dominates CPU time: 128 channels make an update 1.7x faster than 256), G=2 groups of
  V=64 codewords, codevector 128, projection 128, 50 distractors, dropouts 0.1 (hidden, attention, features),
  layerdrop 0.0, and the Gumbel temperature annealed to its minimum over 70 % of ``--max_updates`` (fairseq's
  per-update decay would barely move in a short run). Default peak lr 1e-3 (a small model tolerates a larger
  one). It learns something (accuracy well above chance) on a 2-core CPU within minutes.
* ``base`` / ``large``: the paper's models (``HfWav2Vec2Config.base()`` / ``.large()``), default lr 5e-4 / 3e-4.

``--config file.json`` and ``--config_overrides key=value ...`` (values parsed as JSON when possible) override any
config field; ``--ablation`` selects one of the paper's Table 4 input/target variants.

Outputs in ``output_dir``: ``checkpoints/checkpoint-<update>/`` (atomic, every ``--checkpoint_every`` updates and
at the end; ``--resume`` continues exactly from the latest one), ``train_log.jsonl`` (one JSON object per logged
update, plus ``epoch_end`` records with the examples every rank saw), TensorBoard logs (``--report_to``),
``training_curves.png``, and finally the model (``HfWav2Vec2ForPreTraining.save_pretrained``) with its feature
extractor, which ``HfWav2Vec2ForCTC.from_pretrained(output_dir)`` loads for fine-tuning.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import random
import shutil
import statistics
import time
import warnings
from collections import deque
from pathlib import Path

from typing import TYPE_CHECKING

# numpy, torch, transformers and the model are imported by the functions that use them, so that
# ``hf-wav2vec2 pretrain --help`` (and a bad flag) answers without the seconds they take to import.
if TYPE_CHECKING:
    from hf_wav2vec2.configuration_hf_wav2vec2 import HfWav2Vec2Config

logger = logging.getLogger(__name__)

# Pre-LN (fairseq layer_norm_first, as LARGE): with post-LN the tiny transformer stayed on the blank-only CTC
# plateau for 3000 fine-tuning updates on the 10-minute split; pre-LN leaves it after about 400 (see
# benchmarks/results/main_job_cpu.md).
TINY_PRESET = dict(
    hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, do_stable_layer_norm=True,
    conv_dim=(128,) * 7, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
    codevector_dim=128, proj_codevector_dim=128, num_codevectors_per_group=64, num_codevector_groups=2,
    num_negatives=50, hidden_dropout=0.1, attention_dropout=0.1, feat_proj_dropout=0.1,
    feat_quantizer_dropout=0.1, activation_dropout=0.0, final_dropout=0.0, layerdrop=0.0,
)
DEFAULT_LR = {"tiny": 1e-3, "base": 5e-4, "large": 3e-4}
#: --ablation -> (quantize_input, quantize_targets), the paper's Table 4 rows (input / targets).
ABLATIONS = {
    "continuous_quantized": (False, True),  # the paper's choice
    "quantized_quantized": (True, True),
    "quantized_continuous": (True, False),
    "continuous_continuous": (False, False),
}
CHECKPOINT_PREFIX = "checkpoint-"


# ------------------------------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (``hf-wav2vec2 pretrain --help``)."""
    p = argparse.ArgumentParser(prog="hf-wav2vec2 pretrain", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="audio folder, fairseq .tsv manifest, or datasets name / path")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--preset", choices=("tiny", "base", "large"), default="base")
    p.add_argument("--config", help="JSON file of config overrides")
    p.add_argument("--config_overrides", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--ablation", choices=tuple(ABLATIONS), default=None,
                   help="input/target quantization variant of the paper's Table 4")
    p.add_argument("--learning_rate", type=float, default=None, help="peak lr (default: tiny 1e-3, base 5e-4, "
                   "large 3e-4)")
    p.add_argument("--gumbel_anneal_fraction", type=float, default=None,
                   help="reach the minimum Gumbel temperature after this fraction of --max_updates (sets the config's "
                   "per-update decay; fairseq's 0.999995 over 400k updates is 0.69). Default: 0.7 for the tiny preset, "
                   "whose runs are short, the config's decay otherwise")
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--adam_betas", type=float, nargs=2, default=(0.9, 0.98))
    p.add_argument("--adam_eps", type=float, default=1e-6)
    p.add_argument("--warmup_ratio", type=float, default=0.08)
    p.add_argument("--lr_decay", choices=("linear", "polynomial"), default="linear")
    p.add_argument("--lr_power", type=float, default=2.0, help="exponent of the polynomial decay")
    p.add_argument("--max_updates", type=int, default=400_000)
    p.add_argument("--stop_after", type=int, default=None,
                   help="stop (checkpoint, save) after this many updates without changing the lr schedule, e.g. to "
                   "split a run into jobs resumed with --resume")
    p.add_argument("--max_train_seconds", type=float, default=None,
                   help="wall-clock budget: stop after the update that exceeds it, checkpoint and save")
    p.add_argument("--max_tokens", type=int, default=1_400_000, help="samples per batch per process")
    p.add_argument("--max_sample_size", type=int, default=250_000)
    p.add_argument("--min_sample_size", type=int, default=32_000)
    p.add_argument("--pad", action="store_true", help="pad batches (attention mask) instead of cropping")
    p.add_argument("--normalize", action="store_true", default=None,
                   help="zero-mean unit-variance inputs (default: on for layer-norm feature encoders)")
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--max_grad_norm", type=float, default=10.0, help="clip (0 disables)")
    p.add_argument("--mixed_precision", choices=("no", "bf16", "fp16"), default="no")
    p.add_argument("--cpu", action="store_true", help="train on CPU even if a GPU is present")
    p.add_argument("--gradient_checkpointing", action="store_true")
    p.add_argument("--checkpoint_every", type=int, default=0, help="checkpoint every N updates (0: only at end)")
    p.add_argument("--keep_checkpoints", type=int, default=2, help="how many recent checkpoints to keep")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num_workers", type=int, default=0)
    p.add_argument("--cache_dir", default=None)
    p.add_argument("--log_every", type=int, default=10)
    p.add_argument("--report_to", choices=("tensorboard", "none"), default="tensorboard")
    p.add_argument("--no_plot", action="store_true", help="skip training_curves.png")
    args = p.parse_args(argv)
    if args.learning_rate is None:
        args.learning_rate = DEFAULT_LR[args.preset]
    if args.gumbel_anneal_fraction is not None and not 0 < args.gumbel_anneal_fraction <= 1:
        p.error("--gumbel_anneal_fraction must be in (0, 1]")
    if args.gradient_accumulation_steps < 1 or args.max_updates < 1:
        p.error("--gradient_accumulation_steps and --max_updates must be >= 1")
    return args


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_config(args: argparse.Namespace) -> HfWav2Vec2Config:
    """Preset, then ``--config`` JSON, then ``--config_overrides``, then ``--ablation``."""
    from hf_wav2vec2.configuration_hf_wav2vec2 import HfWav2Vec2Config

    overrides = dict(TINY_PRESET) if args.preset == "tiny" else {}
    if args.config:
        overrides.update(json.loads(Path(args.config).read_text()))
    for item in args.config_overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config_overrides expects KEY=VALUE, got {item!r}")
        overrides[key] = _parse_value(value)
    if args.ablation:
        overrides["quantize_input"], overrides["quantize_targets"] = ABLATIONS[args.ablation]
    fraction = args.gumbel_anneal_fraction
    if fraction is None and args.preset == "tiny" and "gumbel_temperature_decay" not in overrides:
        fraction = 0.7
    factory = HfWav2Vec2Config.large if args.preset == "large" else HfWav2Vec2Config.base
    config = factory(**overrides)
    if fraction is not None:
        # max_temp * decay**n == min_temp at n = fraction * max_updates
        ratio = config.min_gumbel_temperature / config.max_gumbel_temperature
        config.gumbel_temperature_decay = ratio ** (1.0 / max(1.0, fraction * args.max_updates))
    return config


# ------------------------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------------------------


def get_dataloader(args: argparse.Namespace, accelerator, config: HfWav2Vec2Config):
    """This process's shard of pre-training batches.

    The loader shards by rank itself and tracks its position for exact resume, so it is *not* passed through
    ``accelerator.prepare`` (that would shard it again); batches are moved with ``.to(device)``.
    """
    from hf_wav2vec2.training.data import get_pretraining_dataloader

    normalize = config.feat_extract_norm == "layer" if args.normalize is None else args.normalize
    # Every rank scans / caches the corpus; the data module coordinates the cache between ranks.
    return get_pretraining_dataloader(
        args.data, max_tokens=args.max_tokens, max_sample_size=args.max_sample_size,
        min_sample_size=args.min_sample_size, pad=args.pad, normalize=normalize, num_workers=args.num_workers,
        seed=args.seed, rank=accelerator.process_index, world_size=accelerator.num_processes,
        cache_dir=args.cache_dir,
    )


# ------------------------------------------------------------------------------------------------------------------
# Schedule, checkpoints, logging helpers
# ------------------------------------------------------------------------------------------------------------------


def lr_lambda(max_updates: int, warmup_ratio: float, decay: str = "linear", power: float = 2.0):
    """Linear warm-up to 1 over ``warmup_ratio * max_updates`` updates, then linear / polynomial decay to 0."""
    warmup = int(round(warmup_ratio * max_updates))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        remaining = max(0.0, (max_updates - step) / max(1, max_updates - warmup))
        return remaining if decay == "linear" else remaining**power

    return factor


def _rng_state() -> dict:
    import numpy as np
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    # plain Python values and tensors only, so that resuming can load with torch.load(weights_only=True)
    state = {"python": random.getstate(), "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _load_checkpoint_file(path: Path) -> dict:
    """A checkpoint file, unpickled safely (tensors and plain Python values only)."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path}: holds objects that cannot be loaded safely (a checkpoint written before "
                         f"hf-wav2vec2 stored plain RNG states?); resume from a newer checkpoint or start without "
                         f"--resume in another --output_dir") from None


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint with the highest update count (temporary folders are ignored)."""
    root = Path(output_dir) / "checkpoints"
    found = [p for p in root.glob(f"{CHECKPOINT_PREFIX}*") if p.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return max(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]), default=None)


def save_checkpoint(accelerator, output_dir, model, optimizer, scheduler, scaler_state, loader, state: dict,
                    keep: int) -> Path:
    """Write ``checkpoints/checkpoint-<update>`` atomically: everything goes to a temporary folder that is renamed
    only once every rank has written its RNG state, so an interrupted save never looks like a checkpoint."""
    import torch

    root = Path(output_dir) / "checkpoints"
    final = root / f"{CHECKPOINT_PREFIX}{state['num_updates']}"
    tmp = root / f".tmp-{CHECKPOINT_PREFIX}{state['num_updates']}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    # RNG and data position differ per rank (different dropout streams and shards).
    torch.save({"rng": _rng_state(), "data": loader.state_dict()}, tmp / f"rank{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        torch.save(
            {
                "model": accelerator.unwrap_model(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler_state,
                "state": state,
                "world_size": accelerator.num_processes,
            },
            tmp / "trainer.pt",
        )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        old = sorted((p for p in root.glob(f"{CHECKPOINT_PREFIX}*") if p.name[len(CHECKPOINT_PREFIX):].isdigit()),
                     key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))
        for stale in old[: max(0, len(old) - max(1, keep))]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def plot_curves(records: list[dict], path: Path) -> None:
    """Training curves (per-frame loss, accuracy, perplexities, lr / temperature) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return
    x = [r["update"] for r in records]
    panels = [
        ("loss per masked frame", ["loss", "contrastive_loss"]),
        ("contrastive accuracy", ["accuracy"]),
        ("codebook perplexity", ["code_perplexity", "prob_perplexity"]),
        ("Gumbel temperature (left) / lr (right)", ["gumbel_temperature"]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (title, keys) in zip(axes.flat, panels):
        for key in keys:
            values = [r.get(key, float("nan")) for r in records]
            smooth = len(values) >= 20 and key != "gumbel_temperature"
            line, = ax.plot(x, values, label=key, alpha=0.45 if smooth else 1.0)
            if smooth:
                # batches differ a lot in length, so per-update values are noisy: add a running mean
                ax.plot(x, _running_mean(values, max(5, len(values) // 20)), color=line.get_color(),
                        label=f"{key} (running mean)")
        ax.set_title(title)
        ax.set_xlabel("update")
        ax.legend(fontsize=8)
    lr_axis = axes.flat[3].twinx()
    lr_axis.plot(x, [r.get("lr", float("nan")) for r in records], color="tab:red", label="lr")
    lr_axis.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _running_mean(values: list[float], window: int) -> list[float]:
    """Mean of the last ``window`` finite values at each position (NaN until one is seen)."""
    out, recent = [], deque(maxlen=window)
    for value in values:
        if math.isfinite(value):
            recent.append(value)
        out.append(sum(recent) / len(recent) if recent else float("nan"))
    return out


# Indices of the reduced per-update statistics vector (one all-reduce per update).
_STATS = ("num_masked", "loss", "contrastive", "diversity", "feature_penalty", "code_ppl", "prob_ppl", "correct",
          "micro_batches", "nonfinite", "samples", "over_budget")


# ------------------------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------------------------


class TrainingHealthWarning(UserWarning):
    """A known pre-training failure mode seen in the logged metrics (see :class:`TrainingHealth`)."""


class TrainingHealth:
    """Checks each update's metrics for known wav2vec 2.0 pre-training failure modes; pure Python, no torch.

    The training loop calls :meth:`update` once per update with the global metrics it logs. Kinds of problem:

    * ``codebook_collapse``: after the lr warm-up, the code perplexity (distinct codewords used in the batch) is
      below ``collapse_fraction`` (10 %) of G*V; with accuracy above ``trivial_accuracy`` (0.95) the message adds
      that the task has become trivial (the model solves it with a handful of codewords).
    * ``grad_norm_explosion``: the (pre-clipping) gradient norm is over ``spike_factor`` (100x) the median of the
      last ``history`` finite norms, once at least ``min_history`` (10) are known.
    * ``contrastive_loss_vanished``: the contrastive loss per masked frame is below ``zero_loss`` (1e-3), i.e. the
      positive gets essentially all the probability mass (identical / collapsed targets).

    Updates whose loss is not finite (skipped updates) are ignored. Each kind is warned (a
    :class:`TrainingHealthWarning`) at most once per ``log_every`` updates; ``counts`` holds, per kind, on how many
    updates the condition held (rate-limited or not) and ``emitted`` how many warnings were issued.
    """

    KINDS = ("codebook_collapse", "grad_norm_explosion", "contrastive_loss_vanished")

    def __init__(self, num_vars: int, *, warmup_updates: int = 0, log_every: int = 10, uses_quantizer: bool = True,
                 history: int = 100, min_history: int = 10, spike_factor: float = 100.0,
                 collapse_fraction: float = 0.1, trivial_accuracy: float = 0.95, zero_loss: float = 1e-3):
        self.num_vars = num_vars
        self.warmup_updates = warmup_updates
        self.log_every = max(1, int(log_every))
        self.uses_quantizer = uses_quantizer
        self.min_history = min_history
        self.spike_factor = spike_factor
        self.collapse_fraction = collapse_fraction
        self.trivial_accuracy = trivial_accuracy
        self.zero_loss = zero_loss
        self.grad_norms: deque[float] = deque(maxlen=history)
        self.counts = dict.fromkeys(self.KINDS, 0)
        self.emitted = dict.fromkeys(self.KINDS, 0)
        self._last_emitted: dict[str, int] = {}

    def update(self, update: int, *, code_perplexity: float, accuracy: float, grad_norm: float,
               contrastive_loss: float | None = None, finite: bool = True, emit: bool = True) -> list[tuple[str, str]]:
        """Check one update; returns the ``(kind, message)`` pairs warned about now (after rate limiting), which
        are also issued with :func:`warnings.warn` unless ``emit`` is false."""
        if not finite:
            return []
        found = []
        if self.uses_quantizer and update > self.warmup_updates and \
                code_perplexity < self.collapse_fraction * self.num_vars:
            hint = " while accuracy is near 1 (trivial task)" if accuracy > self.trivial_accuracy else ""
            found.append(("codebook_collapse", (f"codebook collapse? code perplexity {code_perplexity:.1f} < "
                          f"{self.collapse_fraction:.0%} of G*V={self.num_vars}{hint} at update {update}")))
        if math.isfinite(grad_norm):
            if len(self.grad_norms) >= self.min_history:
                median = statistics.median(self.grad_norms)
                if grad_norm > self.spike_factor * median:
                    found.append(("grad_norm_explosion", (f"gradient norm {grad_norm:.3g} at update {update} is "
                                  f"over {self.spike_factor:g}x the running median {median:.3g}")))
            self.grad_norms.append(grad_norm)
        if contrastive_loss is not None and contrastive_loss < self.zero_loss:
            found.append(("contrastive_loss_vanished", (f"contrastive loss {contrastive_loss:.2e} per masked "
                          f"frame at update {update}: the task has become trivial (collapsed targets?)")))
        issued = []
        for kind, message in found:
            self.counts[kind] += 1
            previous = self._last_emitted.get(kind)
            if previous is not None and update - previous < self.log_every:
                continue
            self._last_emitted[kind] = update
            self.emitted[kind] += 1
            issued.append((kind, message))
            if emit:
                warnings.warn(message, TrainingHealthWarning, stacklevel=2)
        return issued


def training_function(args: argparse.Namespace) -> dict:
    """Pre-train; returns the final metrics and output paths."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    import hf_wav2vec2
    from hf_wav2vec2.feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from hf_wav2vec2.modeling_hf_wav2vec2 import HfWav2Vec2ForPreTraining

    # save_pretrained writes the auto_map and the code only for registered classes; the hf-wav2vec2 command defers
    # registration to here (see hf_wav2vec2.register)
    hf_wav2vec2.register()

    output_dir = Path(args.output_dir)
    use_tb = args.report_to == "tensorboard"
    # Accumulation is done here, not by Accelerate: normalizing by the masked frames of all micro-batches and all
    # processes needs the counts of every micro-batch, and accelerator.backward would divide by the step count.
    accelerator = Accelerator(cpu=args.cpu, mixed_precision=args.mixed_precision,
                              log_with="tensorboard" if use_tb else None, project_dir=str(output_dir))
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    set_seed(args.seed)  # the same initial weights on every rank (DDP broadcasts rank 0's anyway)
    config = build_config(args)
    model = HfWav2Vec2ForPreTraining(config)
    if args.gradient_checkpointing:
        try:
            model.gradient_checkpointing_enable()
        except (ValueError, AttributeError) as err:
            warnings.warn(f"gradient checkpointing unavailable: {err}")
    loader = get_dataloader(args, accelerator, config)

    # fairseq's "adam" decays weights decoupled from the gradient, i.e. AdamW.
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, betas=tuple(args.adam_betas),
                                  eps=args.adam_eps, weight_decay=args.weight_decay)
    # The scheduler is stepped by hand once per real update (AcceleratedScheduler would step num_processes times).
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(args.max_updates, args.warmup_ratio, args.lr_decay, args.lr_power))
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    scaler = getattr(accelerator, "scaler", None)

    state = {"num_updates": 0, "epoch": 0, "num_skipped_updates": 0, "elapsed": 0.0}
    resume_rng = None
    if args.resume and (ckpt := latest_checkpoint(output_dir)) is not None:
        trainer = _load_checkpoint_file(ckpt / "trainer.pt")
        if trainer["world_size"] != accelerator.num_processes:
            raise ValueError(f"{ckpt} was written by {trainer['world_size']} processes; exact resume needs as many")
        unwrapped.load_state_dict(trainer["model"])
        optimizer.load_state_dict(trainer["optimizer"])
        scheduler.load_state_dict(trainer["scheduler"])
        if scaler is not None and trainer.get("scaler"):
            scaler.load_state_dict(trainer["scaler"])
        state.update(trainer["state"])
        mine = _load_checkpoint_file(ckpt / f"rank{accelerator.process_index}.pt")
        loader.load_state_dict(mine["data"])
        # Restored only after the epoch's iterator exists: creating a DataLoader iterator draws from torch's RNG.
        resume_rng = mine["rng"]
        accelerator.print(f"resumed from {ckpt} at update {state['num_updates']}")
    else:
        # Different dropout / mask / distractor streams per rank, reproducible from the seed.
        set_seed(args.seed + accelerator.process_index)

    if use_tb:
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items()}
        accelerator.init_trackers("pretrain", config=hparams)
    log_path = output_dir / "train_log.jsonl"
    log_file = open(log_path, "a") if accelerator.is_main_process else None

    def write_log(record: dict) -> None:
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    health = TrainingHealth(config.num_codevector_groups * config.num_codevectors_per_group,
                            warmup_updates=int(round(args.warmup_ratio * args.max_updates)),
                            log_every=args.log_every, uses_quantizer=config.quantize_input or config.quantize_targets)
    records: list[dict] = []
    last = {}
    stop = state["num_updates"] >= min(args.max_updates, args.stop_after or args.max_updates)
    last_written = None
    stopped_by_budget = False
    start_time = time.time() - state["elapsed"]
    progress = tqdm(total=args.max_updates, initial=state["num_updates"], disable=not accelerator.is_main_process,
                    desc="pretrain", dynamic_ncols=True)
    micro: list[dict] = []
    step_start = time.time()

    while not stop:
        loader.set_epoch(state["epoch"])
        batches = iter(loader)
        # Fetching the first batch creates the DataLoader iterator, which draws a seed from torch's RNG; the saved
        # RNG state was taken after that draw, so it is restored only now.
        first = next(batches, None)
        if resume_rng is not None:
            _set_rng_state(resume_rng)
            resume_rng = None
        for batch in itertools.chain([] if first is None else [first], batches):
            micro.append(batch)
            if len(micro) < args.gradient_accumulation_steps:
                continue
            # ---- one update: forward/backward over the micro-batches, gradients synced on the last one
            unwrapped.set_gumbel_temperature(config.gumbel_temperature_at(state["num_updates"]))
            model.train()
            stats = torch.zeros(len(_STATS), dtype=torch.float64)
            grad_scale = None  # a constant factor that keeps the summed loss's gradients O(1) (fp16 range)
            for i, mb in enumerate(micro):
                inputs = mb["input_values"].to(accelerator.device)
                mask = mb.get("attention_mask")
                mask = mask.to(accelerator.device) if mask is not None else None
                sync = accelerator.no_sync(model) if i < len(micro) - 1 else _nullcontext()
                with sync, accelerator.autocast():
                    out = model(inputs, attention_mask=mask)
                    n = int(out.num_masked)
                    if grad_scale is None:
                        grad_scale = 1.0 / max(1, n * len(micro) * accelerator.num_processes)
                    accelerator.backward(out.loss * grad_scale)
                loss_value = float(out.loss.detach())
                finite = math.isfinite(loss_value)
                stats += torch.tensor([
                    n, loss_value if finite else 0.0, float(out.contrastive_loss.detach()) if finite else 0.0,
                    float(out.diversity_loss.detach()), float(out.feature_penalty.detach()),
                    float(out.code_perplexity.detach()), float(out.prob_perplexity.detach()), float(out.accuracy) * n, 1.0, 0.0 if finite else 1.0,
                    float(mb["lengths"].sum()), 0.0,
                ], dtype=torch.float64)
            micro = []
            over = args.max_train_seconds is not None and time.time() - start_time > args.max_train_seconds
            stats[_STATS.index("over_budget")] = float(over)
            # One all-reduce gives every rank the global masked-frame count (fairseq's sample_size), the NaN
            # verdict and the stop decision, so all ranks take identical decisions.
            total = accelerator.reduce(stats.to(accelerator.device), reduction="sum").cpu()
            s = dict(zip(_STATS, total.tolist()))

            skipped = s["nonfinite"] > 0 or s["num_masked"] == 0
            grad_norm = float("nan")
            if not skipped:
                # DDP averaged the gradients of (loss * grad_scale) over ranks; rescale to sum(loss) / sum(masked).
                factor = accelerator.num_processes / (s["num_masked"] * grad_scale)
                for param in model.parameters():
                    if param.grad is not None:
                        param.grad.mul_(factor)
                if args.max_grad_norm and args.max_grad_norm > 0:
                    grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm))
                else:
                    grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), float("inf")))
                if not math.isfinite(grad_norm) and scaler is None:
                    skipped = True  # fp16's scaler handles overflow itself (skips and lowers the scale)
            if skipped:
                state["num_skipped_updates"] += 1
                if accelerator.is_main_process:  # every rank takes the same decision: say it once
                    warnings.warn(f"non-finite loss or gradient at update {state['num_updates']}: update skipped "
                                  f"({state['num_skipped_updates']} so far)")
                optimizer.zero_grad(set_to_none=True)
            else:
                optimizer.step()
                if not accelerator.optimizer_step_was_skipped:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["num_updates"] += 1
                progress.update(1)

            # ---- metrics (global per-frame averages)
            now = time.time()
            frames = max(1.0, s["num_masked"])
            mbs = max(1.0, s["micro_batches"])
            last = {
                "update": state["num_updates"], "epoch": state["epoch"],
                "loss": s["loss"] / frames, "contrastive_loss": s["contrastive"] / frames,
                "diversity_loss": s["diversity"] / mbs, "feature_penalty": s["feature_penalty"] / mbs,
                "code_perplexity": s["code_ppl"] / mbs, "prob_perplexity": s["prob_ppl"] / mbs,
                "accuracy": s["correct"] / frames, "num_masked": int(s["num_masked"]),
                "gumbel_temperature": unwrapped.quantizer.temperature, "lr": scheduler.get_last_lr()[0],
                "grad_norm": grad_norm, "audio_seconds_per_second": s["samples"] / 16000 / max(1e-9, now - step_start),
                "skipped_updates": state["num_skipped_updates"], "elapsed": now - start_time,
            }
            step_start = now
            health.update(last["update"], code_perplexity=last["code_perplexity"], accuracy=last["accuracy"],
                          grad_norm=grad_norm, contrastive_loss=last["contrastive_loss"], finite=not skipped,
                          emit=accelerator.is_main_process)  # global metrics: the same warnings on every rank
            if not skipped:
                records.append(last)
                if state["num_updates"] % max(1, args.log_every) == 0 or state["num_updates"] == 1:
                    write_log(last)
                    last_written = last["update"]
                    if use_tb:
                        accelerator.log({f"train/{k}": v for k, v in last.items()
                                         if k not in ("update", "epoch") and math.isfinite(v)},
                                        step=state["num_updates"])
                progress.set_postfix(loss=f"{last['loss']:.3f}", acc=f"{last['accuracy']:.3f}",
                                     ppl=f"{last['code_perplexity']:.1f}", lr=f"{last['lr']:.2e}")

            if args.checkpoint_every and not skipped and state["num_updates"] % args.checkpoint_every == 0:
                state["elapsed"] = time.time() - start_time
                save_checkpoint(accelerator, output_dir, model, optimizer, scheduler,
                                scaler.state_dict() if scaler is not None else None, loader, state,
                                args.keep_checkpoints)
            if s["over_budget"] > 0:
                stopped_by_budget = True
                accelerator.print(f"time budget of {args.max_train_seconds}s reached at update {state['num_updates']}")
            if stopped_by_budget or state["num_updates"] >= args.max_updates or \
                    (args.stop_after is not None and state["num_updates"] >= args.stop_after):
                stop = True
                break
        else:
            # The epoch is exhausted (a partial accumulation group carries over, as in fairseq).
            _log_epoch_examples(accelerator, loader, state["epoch"], write_log)
            state["epoch"] += 1
    progress.close()

    # ---- final checkpoint (for --resume), model, feature extractor, plot
    state["elapsed"] = time.time() - start_time
    if latest_checkpoint(output_dir) is None or \
            int(latest_checkpoint(output_dir).name[len(CHECKPOINT_PREFIX):]) != state["num_updates"]:
        save_checkpoint(accelerator, output_dir, model, optimizer, scheduler,
                        scaler.state_dict() if scaler is not None else None, loader, state, args.keep_checkpoints)
    dataset = loader.dataset
    skipped_files = int(getattr(dataset, "num_skipped", 0))
    too_short = int(getattr(dataset, "num_too_short", 0))
    accelerator.print(f"data: {len(dataset)} examples used, {skipped_files} undecodable files skipped, "
                      f"{too_short} shorter than min_sample_size={args.min_sample_size}")
    if records and last_written != records[-1]["update"]:
        write_log(records[-1])  # the curves end at the last update
    result = {
        **{k: v for k, v in (records[-1] if records else {}).items()},
        "num_updates": state["num_updates"], "num_skipped_updates": state["num_skipped_updates"],
        "stopped_by_time_budget": stopped_by_budget, "num_examples": len(dataset),
        "num_skipped_files": skipped_files, "num_too_short_files": too_short,
        # what indexing kept and dropped, per reason (logged at start-up; None for streaming datasets)
        "data_selection": selection.to_dict() if (selection := getattr(dataset, "selection", None)) else None,
        "output_dir": str(output_dir), "log_file": str(log_path),
        "checkpoint": str(latest_checkpoint(output_dir)), "world_size": accelerator.num_processes,
        "health_warnings": dict(health.counts),
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped.save_pretrained(output_dir)
        HfWav2Vec2FeatureExtractor.for_config(config).save_pretrained(output_dir)
        if not args.no_plot:
            plot_curves(_read_log(log_path), output_dir / "training_curves.png")
            result["plot"] = str(output_dir / "training_curves.png")
        (output_dir / "pretrain_results.json").write_text(json.dumps(result, indent=2))
        log_file.close()
    # end_training also destroys the process group, so it comes after the last barrier (a barrier after it raised
    # "Default process group has not been initialized" on every rank and made a finished run exit 1).
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _log_epoch_examples(accelerator, loader, epoch: int, write_log) -> None:
    """Record which examples each rank was planned this epoch (tests check each is seen exactly once)."""
    sampler = loader.batch_sampler
    if not hasattr(sampler, "rank_batches"):
        return
    mine = [int(r.index) for b in sampler.rank_batches(epoch) for r in b]
    from accelerate.utils import gather_object

    per_rank = gather_object([mine]) if accelerator.num_processes > 1 else [mine]
    write_log({"event": "epoch_end", "epoch": epoch, "examples_per_rank": per_rank,
               "num_examples": len(loader.dataset)})


def _read_log(path: Path) -> list[dict]:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    seen = {}
    for row in rows:  # after a resume the log may repeat updates; keep the latest of each
        if "update" in row and "event" not in row:
            seen[row["update"]] = row
    return [seen[k] for k in sorted(seen)]


def main(argv=None) -> dict:
    """Entry point of ``hf-wav2vec2 pretrain`` and ``examples/pretrain.py``; returns the final metrics."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
