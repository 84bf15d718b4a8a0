"""Self-supervised wav2vec 2.0 pre-training with Accelerate (one CPU, several CPU processes, or GPUs).

The script reads top to bottom like accelerate's ``nlp_example``: :func:`get_dataloader`, the steps of
:func:`training_function` (:func:`set_up`, :func:`resume`, :func:`~.pretrain_update.train_update`, :func:`finish`)
and :func:`main`; one update (forward, backward, its statistics and logged record) is :mod:`.pretrain_update`.
Its arguments are a :class:`~hf_wav2vec2.training.pretrain_args.PretrainArguments` (``parse_args`` makes one from
the command line; Python callers build it directly). Examples::

    # a few minutes on a laptop CPU: the "tiny" preset on a synthetic corpus
    python -c "from hf_wav2vec2.training.synthetic import make_synthetic_corpus as m; m('data/synth', 64)"
    python examples/pretrain.py --data data/synth --output_dir runs/tiny --preset tiny --max_updates 300 \\
        --max_tokens 64000 --max_sample_size 32000 --min_sample_size 16000

    # two CPU processes (gloo) or several GPUs
    accelerate launch --multi_gpu --num_processes 2 examples/pretrain.py --cpu --data ... --output_dir ...

    # the paper's BASE recipe on LibriSpeech (64 GPUs x 1.4M samples in the paper)
    accelerate launch examples/pretrain.py --preset base --data /data/librispeech --output_dir runs/base \\
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

Outputs in ``output_dir`` (which must be empty, unless ``--resume`` continues the run in it or
``--overwrite_output_dir`` replaces it): ``checkpoints/checkpoint-<update>/`` (atomic, every ``--checkpoint_every``
updates and at the end; ``--resume`` continues exactly from the latest one; see :mod:`.checkpoints`),
``train_log.jsonl`` (one JSON object per logged update, plus ``epoch_end`` records with the examples every rank
saw), TensorBoard logs (``--report_to``), ``training_curves.png``, and finally the model
(``HfWav2Vec2ForPreTraining.save_pretrained``) with its feature extractor, which
``HfWav2Vec2ForCTC.from_pretrained(output_dir)`` loads for fine-tuning.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .allocator import set_mmap_threshold
from .checkpoints import (
    RANK_KEYS,
    TRAINER_FILE,
    TRAINER_KEYS,
    CheckpointError,
    check_config,
    checkpoint_update,
    latest_checkpoint,
    load_checkpoint_file,
    load_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .health import TrainingHealth, TrainingHealthWarning
from .pretrain_args import (
    ABLATIONS,
    CHECKPOINTING,
    DEFAULT_LR,
    TINY_PRESET,
    PretrainArguments,
    build_config,
    parse_args,
)
from .pretrain_log import RunLog, plot_curves, read_log
from .pretrain_update import UpdateStats, should_stop, train_update, update_record

# numpy, torch, transformers and the model are imported by the functions that use them, so that
# ``hf-wav2vec2 pretrain --help`` (and a bad flag) answers without the seconds they take to import.

__all__ = [
    "ABLATIONS",
    "DEFAULT_LR",
    "TINY_PRESET",
    "CheckpointError",
    "PretrainArguments",
    "TrainingHealth",
    "TrainingHealthWarning",
    "UpdateStats",
    "build_config",
    "compile_layers",
    "enable_activation_checkpointing",
    "get_dataloader",
    "latest_checkpoint",
    "lr_lambda",
    "main",
    "parse_args",
    "plot_curves",
    "training_function",
]

logger = logging.getLogger(__name__)
#: What a run writes into output_dir, deleted by --overwrite_output_dir (the model files are simply rewritten;
#: "pretrain" is the TensorBoard tracker's folder).
RUN_OUTPUTS = ("checkpoints", "train_log.jsonl", "pretrain_results.json", "training_curves.png", "pretrain")


# ------------------------------------------------------------------------------------------------------------- data


def get_dataloader(args: PretrainArguments, accelerator, config):
    """This process's shard of pre-training batches.

    The loader shards by rank itself and tracks its position for exact resume, so it is *not* passed through
    ``accelerator.prepare`` (that would shard it again); batches are moved with ``.to(device)``.
    """
    from hf_wav2vec2.training.data import BatchingOptions, get_pretraining_dataloader

    normalize = config.feat_extract_norm == "layer" if args.normalize is None else args.normalize
    batching = BatchingOptions(
        max_tokens=args.max_tokens,
        max_sample_size=args.max_sample_size,
        min_sample_size=args.min_sample_size,
        pad=args.pad,
        normalize=normalize,
        seed=args.seed,
    )
    # Every rank scans / caches the corpus; the data module coordinates the cache between ranks.
    return get_pretraining_dataloader(
        args.data,
        batching,
        num_workers=args.num_workers,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
        cache_dir=args.cache_dir,
    )


def lr_lambda(max_updates: int, warmup_ratio: float, decay: str = "linear", power: float = 2.0):
    """Linear warm-up to 1 over ``warmup_ratio * max_updates`` updates, then linear / polynomial decay to 0."""
    warmup = int(round(warmup_ratio * max_updates))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        remaining = max(0.0, (max_updates - step) / max(1, max_updates - warmup))
        return remaining if decay == "linear" else remaining**power

    return factor


# ------------------------------------------------------------------------------------------------- run state


@dataclass
class TrainingState:
    """What a checkpoint records of the run's progress (``trainer.pt``'s ``state``, plain values)."""

    num_updates: int = 0
    epoch: int = 0
    num_skipped_updates: int = 0
    elapsed: float = 0.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> TrainingState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})  # older checkpoints have no run_id


@dataclass
class Run:
    """Everything a pre-training run works with, made by :func:`set_up`."""

    args: PretrainArguments
    config: Any
    accelerator: Any
    model: Any  # as prepared by Accelerate (DDP-wrapped when distributed)
    optimizer: Any
    scheduler: Any
    loader: Any
    output_dir: Path
    state: TrainingState = field(default_factory=TrainingState)
    start_time: float = field(default_factory=time.time)
    stopped_by_budget: bool = False

    @property
    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)

    @property
    def scaler(self):
        return getattr(self.accelerator, "scaler", None)  # fp16's gradient scaler, else None

    def last_update(self) -> int:
        return min(self.args.max_updates, self.args.stop_after or self.args.max_updates)

    def over_time_budget(self) -> bool:
        budget = self.args.max_train_seconds
        return budget is not None and time.time() - self.start_time > budget


# ---------------------------------------------------------------------------------------------------- set up


def enable_activation_checkpointing(model, parts: str = "all") -> None:
    """Recompute activations in the backward pass instead of keeping them: ``parts`` is "conv" (the feature
    encoder's layers, whose long (B, C, L') outputs hold most of a pre-training step's activation memory),
    "transformer" (its layers) or "all"."""
    from hf_wav2vec2 import modules_hf_wav2vec2

    layer = {name: getattr(modules_hf_wav2vec2, name) for names in CHECKPOINTING.values() for name in names}
    every, keep = tuple(layer.values()), tuple(layer[name] for name in CHECKPOINTING[parts])
    model.activation_checkpointing_enable()  # every checkpointable layer, non-reentrant (transformers' default)
    for module in model.modules():
        if isinstance(module, every) and not isinstance(module, keep):
            module.gradient_checkpointing = False


def compile_layers(model, backend: str = "inductor") -> int:
    """``torch.compile`` each conv and transformer layer as one whole graph (``fullgraph``: a break is an error);
    returns how many. Not the whole model: around the layers, LayerDrop's coin, the span masks and distractors
    and the loss over the masked frames have data-dependent branches and shapes that a model graph breaks on."""
    from hf_wav2vec2.modules_hf_wav2vec2 import ConvLayer, EncoderLayer

    layers = [module for module in model.modules() if isinstance(module, (ConvLayer, EncoderLayer))]
    for module in layers:
        module.compile(backend=backend, fullgraph=True)
    return len(layers)


def prepare_output_dir(args: PretrainArguments) -> None:
    """Refuse a non-empty ``output_dir`` unless resuming or told to overwrite (then delete the previous run's
    outputs). Runs on every process before the Accelerator starts: no process has written anything yet, and the
    process group's start-up waits for all of them, so a refused run leaves the folder as it was."""
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output_dir {out}: exists and is not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return
    if args.resume:
        if latest_checkpoint(out) is None and (out / "model.safetensors").exists():
            raise ValueError(
                f"--output_dir {out} holds a saved model but no checkpoint to resume from: pass "
                "--overwrite_output_dir to replace it, or another --output_dir"
            )
        return
    if not args.overwrite_output_dir:
        finished = (out / "pretrain_results.json").exists() or (out / "model.safetensors").exists()
        held = "a finished pre-training run" if finished else f"{', '.join(entries[:3])}{', ...' * (len(entries) > 3)}"
        raise ValueError(
            f"--output_dir {out} is not empty (it holds {held}): pass --resume to continue the run in "
            "it, --overwrite_output_dir to replace it, or another --output_dir"
        )
    if int(os.environ.get("RANK", "0")) == 0:  # one process deletes; the others find it done
        for name in RUN_OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink(missing_ok=True)


def check_mixed_precision(args: PretrainArguments) -> None:
    """fp16 needs a CUDA device: on a CPU accelerate turns it into plain float32 without a word (bf16 autocast
    works there), so a run would not be what was asked for."""
    import torch

    if args.mixed_precision == "fp16" and (args.cpu or not torch.cuda.is_available()):
        where = "--cpu" if args.cpu else "this machine has no CUDA GPU"
        raise ValueError(
            f"--mixed_precision fp16 needs a CUDA GPU ({where}; accelerate would train in float32 instead): use "
            "--mixed_precision bf16 on a CPU"
        )


def set_up(args: PretrainArguments, config) -> Run:
    """The Accelerator, model, data, optimizer and lr schedule of a run."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from hf_wav2vec2.modeling_hf_wav2vec2 import HfWav2Vec2ForPreTraining

    output_dir = Path(args.output_dir)
    # Accumulation is done here, not by Accelerate: normalizing by the masked frames of all micro-batches and all
    # processes needs the counts of every micro-batch, and accelerator.backward would divide by the step count.
    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        log_with="tensorboard" if args.report_to == "tensorboard" else None,
        project_dir=str(output_dir),
    )
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    set_seed(args.seed)  # the same initial weights on every rank (DDP broadcasts rank 0's anyway)
    model = HfWav2Vec2ForPreTraining(config)
    if args.gradient_checkpointing:
        enable_activation_checkpointing(model, args.gradient_checkpointing)
    if args.compile:
        compile_layers(model, args.compile)
    loader = get_dataloader(args, accelerator, config)
    # fairseq's "adam" decays weights decoupled from the gradient, i.e. AdamW.
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=args.learning_rate,
        betas=tuple(args.adam_betas),
        eps=args.adam_eps,
        weight_decay=args.weight_decay,
    )
    # The scheduler is stepped by hand once per real update (AcceleratedScheduler would step num_processes times).
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(args.max_updates, args.warmup_ratio, args.lr_decay, args.lr_power)
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    return Run(args, config, accelerator, model, optimizer, scheduler, loader, output_dir)


def training_stream_seed(seed: int, rank: int) -> int:
    """The seed of a fresh run's dropout, mask and Gumbel stream on ``rank``: one per rank, and never ``seed`` itself.

    Re-seeding with the seed the initial weights were drawn from made the first updates' masks and Gumbel noise
    replay the numbers the weights were drawn from. That correlation is removed here; it was not what slowed the
    script: on the objective benchmark's pre-LN config (2000 updates, 4 seeds) the script reached 0.112 held-out
    accuracy with this seed and 0.127 with the replay, a difference inside the spread between seeds of when a run
    leaves its plateau (benchmarks/results/objective_vs_transformers.md).
    """
    import numpy as np

    return int(np.random.SeedSequence([seed, rank, 1]).generate_state(1)[0])


def resume(run: Run) -> dict | None:
    """Continue from the latest checkpoint with ``--resume`` (else seed a fresh run); returns this process's RNG
    state, which is restored only once the epoch's data iterator exists."""
    from accelerate.utils import set_seed

    checkpoint = latest_checkpoint(run.output_dir) if run.args.resume else None
    if checkpoint is None:
        set_seed(training_stream_seed(run.args.seed, run.accelerator.process_index))
        return None
    rank = run.accelerator.process_index
    trainer = load_checkpoint_file(checkpoint / TRAINER_FILE, TRAINER_KEYS)
    if trainer["world_size"] != run.accelerator.num_processes:
        raise CheckpointError(
            f"{checkpoint} was written by {trainer['world_size']} processes; exact resume needs as many"
        )
    mine = load_checkpoint_file(checkpoint / f"rank{rank}.pt", RANK_KEYS)
    check_config(checkpoint, run.config)
    path = checkpoint / TRAINER_FILE
    load_state(path, "model", run.unwrapped, trainer["model"])
    load_state(path, "optimizer", run.optimizer, trainer["optimizer"])
    load_state(path, "lr scheduler", run.scheduler, trainer["scheduler"])
    if run.scaler is not None and trainer.get("scaler"):
        load_state(path, "gradient scaler", run.scaler, trainer["scaler"])
    load_state(checkpoint / f"rank{rank}.pt", "data loader", run.loader, mine["data"])
    run.state = TrainingState.from_dict(trainer["state"])
    run.start_time = time.time() - run.state.elapsed
    run.accelerator.print(f"resumed from {checkpoint} at update {run.state.num_updates}")
    return mine["rng"]


# ------------------------------------------------------------------------------------------------------ the loop


def micro_batch_groups(run: Run, resume_rng: dict | None, log: RunLog) -> Iterator[list[dict]]:
    """The loader's batches in groups of ``--gradient_accumulation_steps``, epoch after epoch (a partial group
    carries over into the next epoch, as in fairseq)."""
    group: list[dict] = []
    while True:
        run.loader.set_epoch(run.state.epoch)
        batches = iter(run.loader)
        # Fetching the first batch creates the DataLoader iterator, which draws a seed from torch's RNG; the saved
        # RNG state was taken after that draw, so it is restored only now.
        first = next(batches, None)
        if resume_rng is not None:
            set_rng_state(resume_rng)
            resume_rng = None
        for batch in itertools.chain([] if first is None else [first], batches):
            group.append(batch)
            if len(group) == run.args.gradient_accumulation_steps:
                yield group
                group = []
        log_epoch_examples(run, log)
        run.state.epoch += 1


def log_epoch_examples(run: Run, log: RunLog) -> None:
    """Record which examples each rank was planned this epoch (tests check each is seen exactly once)."""
    sampler = run.loader.batch_sampler
    if not hasattr(sampler, "rank_batches"):
        return
    mine = [int(r.index) for b in sampler.rank_batches(run.state.epoch) for r in b]
    from accelerate.utils import gather_object

    per_rank = gather_object([mine]) if run.accelerator.num_processes > 1 else [mine]
    log.write(
        {
            "event": "epoch_end",
            "epoch": run.state.epoch,
            "examples_per_rank": per_rank,
            "num_examples": len(run.loader.dataset),
        }
    )


def checkpoint(run: Run) -> None:
    """Save ``checkpoints/checkpoint-<update>`` of this run (see :func:`~.checkpoints.save_checkpoint`)."""
    run.state.elapsed = time.time() - run.start_time
    scaler = run.scaler

    def trainer_state() -> dict:
        return {
            "model": run.unwrapped.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "state": dataclasses.asdict(run.state),
            "world_size": run.accelerator.num_processes,
        }

    save_checkpoint(
        run.accelerator,
        run.output_dir,
        num_updates=run.state.num_updates,
        run_id=run.state.run_id,
        rank_state={"rng": rng_state(), "data": run.loader.state_dict()},
        trainer_state=trainer_state,
        config_json=run.config.to_json_string(use_diff=False),
        keep=run.args.keep_checkpoints,
    )


def open_log(run: Run) -> RunLog:
    from tqdm.auto import tqdm

    accelerator, args = run.accelerator, run.args
    tracker = None
    if args.report_to == "tensorboard":
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in args.to_dict().items()}
        accelerator.init_trackers("pretrain", config=hparams)
        tracker = lambda values, step: accelerator.log(values, step=step)  # noqa: E731
    progress = tqdm(
        total=args.max_updates,
        initial=run.state.num_updates,
        disable=not accelerator.is_main_process,
        desc="pretrain",
        dynamic_ncols=True,
    )
    health = TrainingHealth(
        run.config.num_codevector_groups * run.config.num_codevectors_per_group,
        warmup_updates=int(round(args.warmup_ratio * args.max_updates)),
        log_every=args.log_every,
        uses_quantizer=run.config.quantize_input or run.config.quantize_targets,
    )
    path = run.output_dir / "train_log.jsonl" if accelerator.is_main_process else None
    return RunLog(path, health, log_every=args.log_every, tracker=tracker, progress=progress)


def finish(run: Run, log: RunLog) -> dict:
    """Final checkpoint (for --resume), summary, model, feature extractor and plot; ends the process group."""
    from hf_wav2vec2.feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor

    accelerator, output_dir = run.accelerator, run.output_dir
    if checkpoint_update(latest_checkpoint(output_dir, run.state.run_id)) != run.state.num_updates:
        checkpoint(run)
    dataset = run.loader.dataset
    skipped_files, too_short = int(getattr(dataset, "num_skipped", 0)), int(getattr(dataset, "num_too_short", 0))
    accelerator.print(
        f"data: {len(dataset)} examples used, {skipped_files} undecodable files skipped, "
        f"{too_short} shorter than min_sample_size={run.args.min_sample_size}"
    )
    log.finish()
    selection = getattr(dataset, "selection", None)  # None for streaming datasets
    result = {
        **(log.last or {}),
        "num_updates": run.state.num_updates,
        "num_skipped_updates": run.state.num_skipped_updates,
        "stopped_by_time_budget": run.stopped_by_budget,
        "num_examples": len(dataset),
        "num_skipped_files": skipped_files,
        "num_too_short_files": too_short,
        # what indexing kept and dropped, per reason (logged at start-up)
        "data_selection": selection.to_dict() if selection else None,
        "output_dir": str(output_dir),
        "log_file": str(output_dir / "train_log.jsonl"),
        "checkpoint": str(latest_checkpoint(output_dir, run.state.run_id)),
        "world_size": accelerator.num_processes,
        "health_warnings": dict(log.health.counts),
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        run.unwrapped.save_pretrained(output_dir)
        HfWav2Vec2FeatureExtractor.for_config(run.config).save_pretrained(output_dir)
        if not run.args.no_plot:
            plot_curves(read_log(output_dir / "train_log.jsonl"), output_dir / "training_curves.png")
            result["plot"] = str(output_dir / "training_curves.png")
        (output_dir / "pretrain_results.json").write_text(json.dumps(result, indent=2))
    # end_training also destroys the process group, so it comes after the last barrier (a barrier after it raised
    # "Default process group has not been initialized" on every rank and made a finished run exit 1).
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


def training_function(args: PretrainArguments) -> dict:
    """Pre-train; returns the final metrics and output paths."""
    import hf_wav2vec2

    # save_pretrained writes the auto_map and the code only for registered classes; the hf-wav2vec2 command defers
    # registration to here (see hf_wav2vec2.register)
    hf_wav2vec2.register()
    # before the model and the data exist, so that every activation block is allocated under the fixed threshold
    logger.info(set_mmap_threshold(args.malloc_mmap_threshold_kb))
    config = build_config(args)  # a bad config fails before anything starts
    check_mixed_precision(args)
    prepare_output_dir(args)
    run = set_up(args, config)
    resume_rng = resume(run)
    with open_log(run) as log:
        step_start = time.time()
        if run.state.num_updates < run.last_update():
            for micro in micro_batch_groups(run, resume_rng, log):
                stats, grad_norm, skipped = train_update(run, micro)
                log.update(
                    update_record(run, stats, grad_norm, time.time() - step_start),
                    skipped,
                    emit=run.accelerator.is_main_process,
                )  # global metrics: the same warnings on every rank
                step_start = time.time()
                if args.checkpoint_every and not skipped and run.state.num_updates % args.checkpoint_every == 0:
                    checkpoint(run)
                if should_stop(run, stats):
                    break
        return finish(run, log)


def main(argv: list[str] | None = None) -> dict:
    """Entry point of ``hf-wav2vec2 pretrain`` and ``examples/pretrain.py``; returns the final metrics."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
