"""Our pre-training objective against transformers' ``Wav2Vec2ForPreTraining`` in one neutral training loop (issue 17).

Only the model class differs between the two sides: the same transformers-style config keys, the same random 2 s
crops of the Debian asterisk prompts (every installed language), the same optimizer and schedule, and the same masks
(transformers' ``_compute_mask_indices``, ``min_masks=2``) and distractors (its ``_sample_negative_indices``) from a
seeded numpy state, passed to both models. Each side's summed loss is divided by its number of masked frames.

Held-out accuracy is computed ONE way for both sides (:func:`contrastive_accuracy`): eval mode, 4 fixed batches with
fixed masks and distractors, cosine between ``projected_states`` and ``projected_quantized_states``, distractors
equal to the positive excluded, chance 1 / (1 + K).

Variants of our side (``--sides``): ``ours`` (the config a transformers-format config now gets: no feature penalty,
gradient multiplier 1), ``ours_fairseq`` (fairseq BASE's penalty 10 and multiplier 0.1), ``ours_penalty`` (penalty
10 only), ``ours_gradmult`` (multiplier 0.1 only), ``ours_sampling`` (our model samples its own masks and
distractors), ``ours_torch_sampler`` (our samplers' masks and distractors, drawn outside the model and passed in as
transformers' are: separates the samplers' statistics from the model's own-sampling code path); ``transformers``;
``transformers_torch_sampler`` (transformers' model trained on our samplers' masks and distractors); four sides that
separate our samplers' parts (:func:`step_masks`); four that separate the script's data path: ``ours_script_data``
(our model sampling its own masks, on the project's loader's batches: :func:`script_batches`;
``ours_script_data_full`` without each epoch's last, one-crop batch), ``ours_fairseq_norm`` and
``ours_extractor_norm`` (``ours`` with the crops normalized as fairseq does / as the feature extractor does, instead
of :func:`unit_std`); ``script``: the project's own pre-training script (``examples/pretrain.py``: its batching,
masks, distractors, loss normalization and checkpoints) on the same training clips and config, with the loop's
optimizer, schedule, clipping and crops, evaluated on the same held-out batches at each checkpoint (every
``--eval_every`` updates). ``--init transformers`` loads transformers' initial weights into our class (same
parameter names), ``own`` lets each class initialize itself.

    nice -n 5 python3 benchmarks/objective_vs_transformers.py --updates 800 --seeds 0 1 --variants post_ln pre_ln \
        --sides ours transformers --json runs/objective.jsonl
    python3 benchmarks/objective_vs_transformers.py --report runs/objective.jsonl \
        --markdown benchmarks/results/objective_vs_transformers.md \
        --plot benchmarks/results/objective_vs_transformers.png
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SOUNDS_ROOT = Path("/usr/share/asterisk/sounds")
SAMPLE_RATE = 16_000
VOICES = ("en", "es", "fr", "it", "ru")  # the languages of the recorded runs: 1697 training clips of at least 1 s
# The tiny config, as transformers-style keys given to both classes.
TINY_KEYS = dict(
    hidden_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=512,
    conv_dim=(128,) * 7,
    num_conv_pos_embeddings=64,
    num_conv_pos_embedding_groups=8,
    num_codevectors_per_group=64,
    num_codevector_groups=2,
    codevector_dim=64,
    proj_codevector_dim=64,
    num_negatives=20,
    hidden_dropout=0.0,
    activation_dropout=0.0,
    attention_dropout=0.0,
    feat_proj_dropout=0.0,
    feat_quantizer_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
    mask_time_prob=0.65,
    mask_time_length=10,
    diversity_loss_weight=0.1,
)
VARIANTS = {
    "post_ln": dict(do_stable_layer_norm=False, feat_extract_norm="group", conv_bias=False),
    "pre_ln": dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True),
}
# our side's overrides of the fairseq-only terms, applied after the transformers-format translation
OURS_TERMS = {
    "ours": {},
    "ours_sampling": {},
    "ours_script_data": {},
    "ours_script_data_full": {},
    "ours_fairseq_norm": {},
    "ours_extractor_norm": {},
    "ours_torch_sampler": {},
    "ours_torch_sampler_own_rng": {},
    "ours_torch_draws": {},
    "ours_torch_masks": {},
    "ours_torch_negatives": {},
    "ours_fairseq": dict(feature_penalty_weight=10.0, feature_grad_mult=0.1),
    "ours_penalty": dict(feature_penalty_weight=10.0, feature_grad_mult=1.0),
    "ours_gradmult": dict(feature_penalty_weight=0.0, feature_grad_mult=0.1),
}
# "script": the project's own pre-training script (examples/pretrain.py) on the same clips and config;
# "script_stream2": the same run with another training stream (masks, distractors, Gumbel noise), the same initial
# weights and crops: a second draw of what only the stream decides
SIDES = ("transformers", "transformers_torch_sampler", *OURS_TERMS, "script", "script_stream2")
SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "pretrain.py"
# examples/pretrain.py with the stream seeded from SeedSequence([seed, rank, 2]) instead of the script's [.., 1]
SECOND_STREAM = (
    "import numpy as np, hf_wav2vec2.training.pretrain as p\n"
    "p.training_stream_seed = lambda seed, rank: int(np.random.SeedSequence([seed, rank, 2]).generate_state(1)[0])\n"
    "p.main()\n"
)


# ---------------------------------------------------------------------------------------------------------- data


def load_clips(root: Path = SOUNDS_ROOT, min_seconds: float = 2.0) -> tuple[list[np.ndarray], list[str]]:
    """Every asterisk prompt of every installed voice (``en_US_f_Allison``, ``fr_CA_f_June``, ...: the folders, not
    the language symlinks beside them) at least ``min_seconds`` long, resampled to 16 kHz."""
    import soundfile as sf
    import soxr

    voice_dirs = sorted(p for p in root.glob("*_*_*") if p.is_dir() and not p.is_symlink())
    paths = sorted(p for voice in voice_dirs for p in voice.rglob("*.wav"))
    if not paths:
        raise SystemExit(
            f"objective_vs_transformers: no asterisk prompts under {root} (apt-get install asterisk-core-sounds-en-wav)"
        )
    clips, voices = [], sorted({p.relative_to(root).parts[0] for p in paths})
    for path in paths:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(1)
        if rate != SAMPLE_RATE:
            audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
        if len(audio) >= min_seconds * SAMPLE_RATE:
            clips.append(audio)
    return clips, voices


def split_clips(clips, held_out: int = 40):
    """A fixed held-out set: every (len // held_out)-th clip, the rest for training."""
    step = max(1, len(clips) // held_out)
    test = set(range(0, len(clips), step)[:held_out])
    return [c for i, c in enumerate(clips) if i not in test], [clips[i] for i in sorted(test)]


def unit_std(piece):
    """The loop's normalization: zero mean, unit variance, 1e-7 added to the standard deviation (the project's
    collator's since 2026-12-02: ``normalize_crop``)."""
    return (piece - piece.mean()) / (piece.std() + 1e-7)


def crop_batch(clips, batch_size, samples, rng, normalize=unit_std):
    """Random ``samples``-long crops, each normalized by ``normalize`` (B, samples)."""
    out = np.empty((batch_size, samples), dtype=np.float32)
    for row, index in enumerate(rng.integers(0, len(clips), batch_size)):
        clip = clips[index]
        start = rng.integers(0, len(clip) - samples + 1)
        out[row] = normalize(clip[start : start + samples])
    return torch.from_numpy(out)


def fairseq_normalize(piece):
    """fairseq's normalization (F.layer_norm over the waveform: 1e-5 added to the variance), the project's collator's
    until 2026-12-02: it leaves a near-silent crop almost zero where the loop's scales it to unit variance."""
    return ((piece - piece.mean()) / np.sqrt(piece.var() + 1e-5)).astype(np.float32)


def extractor_normalize(piece):
    """The feature extractor's normalization (transformers': 1e-7 added to the variance)."""
    from hf_wav2vec2.feature_extraction_hf_wav2vec2 import normalize_waveform

    return normalize_waveform(piece)


def script_batches(clips, workdir: Path, seed, batch_size, samples, full_only=False):
    """The project's pre-training loader over the clips as the script reads them (``script_command``'s batching:
    each clip once per epoch, a fresh random crop each epoch, normalized by its collator), epoch after epoch.
    ``full_only``: skip the batches of fewer than ``batch_size`` crops (here each epoch's last, of one crop)."""
    from hf_wav2vec2.training.data import BatchingOptions, get_pretraining_dataloader

    options = BatchingOptions(
        max_tokens=batch_size * samples, max_sample_size=samples, min_sample_size=samples, normalize=True, seed=seed
    )
    loader = get_pretraining_dataloader(
        write_clips(clips, workdir / f"clips_{len(clips)}"), options, rank=0, world_size=1
    )
    for epoch in itertools.count():
        loader.set_epoch(epoch)
        for batch in loader:
            if not full_only or len(batch["input_values"]) == batch_size:
                yield batch["input_values"]


def masks_and_negatives(batch_size, frames, config):
    """transformers' masks (min_masks 2) and distractors among masked frames, from numpy's global state."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    mask = _compute_mask_indices((batch_size, frames), config.mask_time_prob, config.mask_time_length, min_masks=2)
    negatives = _sample_negative_indices((batch_size, frames), config.num_negatives, mask)
    return torch.from_numpy(mask), torch.from_numpy(negatives).long()


def step_masks(side, batch_size, frames, config, generator):
    """One update's (mask, distractors) for ``side``; (None, None) where the model samples its own.

    transformers' numpy draws are made on every side, so the crops and numpy's state advance alike. The sides that
    separate the pre-LN sampler problem: ``*_torch_sampler`` (our samplers on torch's global generator, which the
    Gumbel noise also draws from), ``ours_torch_sampler_own_rng`` (our samplers on their own generator: the Gumbel
    noise sees the stream it sees with numpy masks), ``ours_torch_draws`` (transformers' masks and distractors, plus
    the global-generator draws our samplers would make, thrown away), ``ours_torch_masks`` (our masks, transformers'
    distractors on them) and ``ours_torch_negatives`` (transformers' masks, our distractors on them).
    """
    from hf_wav2vec2.masking_hf_wav2vec2 import compute_mask_indices, sample_negative_indices

    mask, negatives = masks_and_negatives(batch_size, frames, config)
    if side == "ours_sampling" or side.startswith("ours_script_data"):
        return None, None
    shape, prob, span, k = (batch_size, frames), config.mask_time_prob, config.mask_time_length, config.num_negatives
    if side.endswith("_torch_sampler") or side == "ours_torch_sampler_own_rng":
        own = generator if side == "ours_torch_sampler_own_rng" else None
        ours = compute_mask_indices(shape, prob, span, 2, generator=own)
        return ours, sample_negative_indices(ours, k, generator=own)
    if side == "ours_torch_draws":
        sample_negative_indices(compute_mask_indices(shape, prob, span, 2), k)
    elif side == "ours_torch_masks":
        from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices

        mask = compute_mask_indices(shape, prob, span, 2)
        negatives = torch.from_numpy(_sample_negative_indices(shape, k, mask.numpy())).long()
    elif side == "ours_torch_negatives":
        negatives = sample_negative_indices(mask, k)
    return mask, negatives


# ---------------------------------------------------------------------------------------------------------- models


def build_models(side: str, keys: dict, init: str, seed: int):
    """(model, config) for ``side``; both classes see the same transformers-format keys."""
    import transformers

    from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForPreTraining

    theirs_config = transformers.Wav2Vec2Config(**keys)
    torch.manual_seed(seed)
    theirs = transformers.Wav2Vec2ForPreTraining(theirs_config)
    if side.startswith("transformers"):
        return theirs, theirs_config
    config = HfWav2Vec2Config(**theirs_config.to_dict())  # the drop-in path a user of transformers' keys takes
    for name, value in OURS_TERMS[side].items():
        setattr(config, name, value)
    torch.manual_seed(seed)
    ours = HfWav2Vec2ForPreTraining(config)
    if init == "transformers":
        ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, config


@torch.no_grad()
def contrastive_accuracy(projected, quantized, mask, negatives):
    """Fraction of masked frames whose positive has the highest cosine; distractors equal to it excluded."""
    dim = projected.shape[-1]
    predictions = projected.reshape(-1, dim)[mask.reshape(-1)]  # (N, P)
    targets = quantized.reshape(-1, dim)
    positives = targets[mask.reshape(-1)]  # (N, P)
    distractors = targets[negatives.reshape(-1, negatives.shape[-1])[mask.reshape(-1)]]  # (N, K, P)
    candidates = torch.cat([positives[:, None], distractors], 1)  # (N, 1 + K, P)
    cosine = torch.cosine_similarity(predictions[:, None].float(), candidates.float(), dim=-1)
    same = (distractors == positives[:, None]).all(-1)
    cosine[:, 1:] = cosine[:, 1:].masked_fill(same, float("-inf"))
    return float((cosine.argmax(-1) == 0).float().mean())


@torch.no_grad()
def evaluate(model, eval_batches):
    model.eval()
    accuracies = []
    for inputs, mask, negatives in eval_batches:
        out = model(inputs, mask_time_indices=mask, sampled_negative_indices=negatives)
        accuracies.append(contrastive_accuracy(out.projected_states, out.projected_quantized_states, mask, negatives))
    model.train()
    return float(np.mean(accuracies))


def frames_of(model, samples):
    return int(model._get_feat_extract_output_lengths(torch.tensor([samples]))[0])


# ---------------------------------------------------------------------------------------------------------- loop


def new_record(side, variant, seed, init, updates, batch_size, config) -> dict:
    """The fields every run's record starts with, its curve still empty (transformers' config has no penalty or
    conv-gradient fields: its objective is 0 and 1.0)."""
    return dict(
        side=side,
        variant=variant,
        seed=seed,
        init=init,
        updates=updates,
        batch_size=batch_size,
        num_negatives=config.num_negatives,
        feature_penalty_weight=getattr(config, "feature_penalty_weight", 0.0),
        feature_grad_mult=getattr(config, "feature_grad_mult", 1.0),
        curve=[],
    )


def train_one(
    side,
    variant,
    seed,
    train,
    eval_batches,
    *,
    updates,
    keys,
    init="own",
    batch_size=8,
    samples=32_000,
    lr=5e-4,
    eval_every=100,
    workdir=None,
    log=print,
):
    """One run of the neutral loop; returns its record (curves and final numbers). ``workdir``: where
    ``ours_script_data`` writes the clips its loader reads."""
    model, config = build_models(side, keys, init, seed)
    generator = torch.Generator().manual_seed(seed)  # only ours_torch_sampler_own_rng draws from it
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    warmup = max(1, updates // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    crops, frames = np.random.default_rng(seed), frames_of(model, samples)
    np.random.seed(seed)  # masks and distractors: the same sequence for every side of this seed
    record = new_record(side, variant, seed, init, updates, batch_size, config)
    record["curve"].append(dict(update=0, accuracy=evaluate(model, eval_batches)))
    if side.startswith("ours_script_data"):
        full_only = side == "ours_script_data_full"
        from_loader = script_batches(train, Path(workdir or tempfile.mkdtemp()), seed, batch_size, samples, full_only)
        next_inputs = lambda: next(from_loader)  # noqa: E731
    else:
        normalize = {"ours_fairseq_norm": fairseq_normalize, "ours_extractor_norm": extractor_normalize}.get(
            side, unit_std
        )
        next_inputs = lambda: crop_batch(train, batch_size, samples, crops, normalize)  # noqa: E731
    model.train()
    window, started = [], time.perf_counter()
    for step in range(updates):
        model.set_gumbel_temperature(max(2.0 * 0.9995**step, 0.5))
        inputs = next_inputs()
        mask, negatives = step_masks(side, batch_size, frames, config, generator)
        if mask is None:  # ours_sampling: the model samples its own
            out = model(inputs)
            masked = out.mask_time_indices.sum()
        else:
            out = model(inputs, mask_time_indices=mask, sampled_negative_indices=negatives)
            masked = mask.sum()
        (out.loss / masked).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step(), scheduler.step(), optimizer.zero_grad(set_to_none=True)
        window.append((out.contrastive_loss.item() / masked.item(), out.codevector_perplexity.item()))
        if (step + 1) % eval_every == 0 or step + 1 == updates:
            loss, ppl = np.mean(window, 0)
            point = dict(
                update=step + 1,
                accuracy=evaluate(model, eval_batches),
                contrastive_loss=float(loss),
                perplexity=float(ppl),
                seconds_per_update=(time.perf_counter() - started) / (step + 1),
            )
            record["curve"].append(point)
            window = []
            log(
                f"  {side:14s} {variant} seed {seed} update {step + 1:5d}  acc {point['accuracy']:.3f}  "
                f"loss/frame {loss:.3f}  ppl {ppl:.1f}  {point['seconds_per_update']:.2f} s/update"
            )
    record.update(
        record["curve"][-1], accuracy_start=record["curve"][0]["accuracy"], chance=1.0 / (1 + config.num_negatives)
    )
    return record


def fixed_eval_batches(test, keys, batch_size=8, samples=32_000, batches=4):
    """4 held-out batches with their masks and distractors, the same for every run."""
    import transformers

    from hf_wav2vec2.modules_hf_wav2vec2 import conv_output_lengths

    config = transformers.Wav2Vec2Config(**keys)
    frames = int(conv_output_lengths(torch.tensor([samples]), config.conv_kernel, config.conv_stride)[0])
    state = np.random.get_state()
    np.random.seed(12_345)
    rng = np.random.default_rng(12_345)
    out = [
        (crop_batch(test, batch_size, samples, rng), *masks_and_negatives(batch_size, frames, config))
        for _ in range(batches)
    ]
    np.random.set_state(state)
    return out


# ---------------------------------------------------------------------------------------------------------- script


def write_clips(clips, folder: Path) -> Path:
    """The training clips as 16 kHz float wav files (the exact samples the loop crops from), written once."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.wav"))) != len(clips):
        for index, clip in enumerate(clips):
            sf.write(folder / f"{index:05d}.wav", clip, SAMPLE_RATE, subtype="FLOAT")
    return folder


def script_config(keys: dict) -> dict:
    """The "ours" side's config as the fields that differ from ``HfWav2Vec2Config.base()`` (the script's
    ``--preset base`` plus these as ``--config``), with the loop's Gumbel schedule max(2 x 0.9995^n, 0.5)."""
    import transformers

    from hf_wav2vec2 import HfWav2Vec2Config

    ours = HfWav2Vec2Config(**transformers.Wav2Vec2Config(**keys).to_dict()).to_dict()
    base = HfWav2Vec2Config.base().to_dict()
    meta = {"model_type", "transformers_version", "architectures", "dtype", "torch_dtype"}
    config = {k: v for k, v in sorted(ours.items()) if k not in meta and v != base.get(k)}
    config.update(max_gumbel_temperature=2.0, min_gumbel_temperature=0.5, gumbel_temperature_decay=0.9995)
    return config


def script_command(
    data: Path, config: Path, out: Path, *, updates, seed, batch_size, samples, lr, eval_every, second_stream=False
):
    """examples/pretrain.py with the loop's optimizer, schedule (10 % warm-up, then constant), clipping, batch
    (``batch_size`` crops of ``samples``, each normalized) and a checkpoint every ``eval_every`` updates;
    ``second_stream``: the script's training stream from another seed (:data:`SECOND_STREAM`)."""
    program = ["-c", SECOND_STREAM] if second_stream else [str(SCRIPT)]
    return [
        sys.executable, *program, "--data", str(data), "--output_dir", str(out), "--preset", "base",
        "--config", str(config), "--learning_rate", str(lr), "--adam_betas", "0.9", "0.98", "--adam_eps", "1e-6",
        "--weight_decay", "0.01", "--warmup_ratio", "0.1", "--lr_decay", "polynomial", "--lr_power", "0",
        "--max_updates", str(updates), "--max_tokens", str(batch_size * samples), "--max_sample_size", str(samples),
        "--min_sample_size", str(samples), "--normalize", "--max_grad_norm", "10", "--seed", str(seed), "--cpu",
        "--checkpoint_every", str(eval_every), "--keep_checkpoints", str(updates // eval_every + 2),
        "--report_to", "none", "--no_plot", "--log_every", "1",
    ]  # fmt: skip


def script_one(
    variant, seed, train, eval_batches, *, updates, keys, workdir: Path, threads=1, side="script", log=print, **loop
):
    """One run of the project's pre-training script (its own masks, distractors, batching and loss), evaluated on
    the loop's held-out batches at every checkpoint; returns a record like :func:`train_one`'s. ``side``:
    ``"script"`` or ``"script_stream2"``."""
    import subprocess

    from accelerate.utils import set_seed

    from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForPreTraining
    from hf_wav2vec2.training.checkpoints import checkpoint_update, load_checkpoint_file

    data = write_clips(train, workdir / f"clips_{len(train)}")
    second_stream = side == "script_stream2"
    run = workdir / f"{variant}_{updates}_{seed}_{keys['num_negatives']}{'_stream2' if second_stream else ''}"
    if not (run / "out" / "pretrain_results.json").is_file():  # else a finished run: only evaluate it again
        run.mkdir(parents=True, exist_ok=False)
        (run / "config_overrides.json").write_text(json.dumps(script_config(keys), indent=1))
        command = script_command(
            data, run / "config_overrides.json", run / "out", updates=updates, seed=seed,
            second_stream=second_stream, **loop,
        )  # fmt: skip
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        with (run / "pretrain.log").open("w") as output:
            subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT, check=True)
    config = HfWav2Vec2Config.from_pretrained(run / "out")
    set_seed(seed)  # the script's initial weights: set_seed(seed), then the model
    model = HfWav2Vec2ForPreTraining(config)
    curve = [dict(update=0, accuracy=evaluate(model, eval_batches))]
    logged = [json.loads(line) for line in (run / "out" / "train_log.jsonl").read_text().splitlines()]
    steps = [entry for entry in logged if "update" in entry]  # the log also holds events (an epoch's end, ...)
    saved = {checkpoint_update(path): path for path in (run / "out" / "checkpoints").iterdir()}
    for update, checkpoint in sorted((u, path) for u, path in saved.items() if u is not None):
        model.load_state_dict(load_checkpoint_file(checkpoint / "trainer.pt", ("model",))["model"])
        window = [s for s in steps if update - loop["eval_every"] < s["update"] <= update]
        point = dict(
            update=update,
            accuracy=evaluate(model, eval_batches),
            contrastive_loss=float(np.mean([s["contrastive_loss"] for s in window])),
            perplexity=float(np.mean([s["code_perplexity"] for s in window])),
            seconds_per_update=window[-1]["elapsed"] / update,
        )
        curve.append(point)
        log(f"  {side:14s} {variant} seed {seed} update {update:5d}  acc {point['accuracy']:.3f}  "
            f"loss/frame {point['contrastive_loss']:.3f}  ppl {point['perplexity']:.1f}")  # fmt: skip
    record = new_record(side, variant, seed, "own", updates, loop["batch_size"], config)
    record["curve"] = curve
    record.update(curve[-1], accuracy_start=curve[0]["accuracy"], chance=1.0 / (1 + config.num_negatives))
    return record


# ---------------------------------------------------------------------------------------------------------- report


def paired_difference(runs, reference):
    """End accuracy of ``runs`` minus ``reference``'s over the seeds both have: (mean, standard error, seeds), or
    None with fewer than two. Runs of one seed share the crops, masks and distractors, so the seed-to-seed spread
    of when a run starts to rise largely cancels."""
    theirs = {r["seed"]: r["accuracy"] for r in reference}
    differences = [r["accuracy"] - theirs[r["seed"]] for r in runs if r["seed"] in theirs]
    if len(differences) < 2:
        return None
    return float(np.mean(differences)), float(np.std(differences, ddof=1) / np.sqrt(len(differences))), len(differences)


def report(records, markdown=None, plot=None):
    """Means over seeds per (variant, K, crop, updates, init, side): start -> end accuracy, the mean of every
    evaluation after the start (how fast a side learns, not only where it ends), loss, ppl, s/update."""
    groups = {}
    for r in records:
        key = (r["variant"], r["num_negatives"], r.get("crop_seconds", 2.0), r["updates"], r["init"], r["side"])
        groups.setdefault(key, []).append(r)
    lines = [
        "| variant | K | crop s | updates | init | side | seeds | held-out acc start -> end (per seed) | "
        "mean end acc | minus transformers', same seeds (mean +- s.e., n) | mean acc over the curve | chance | "
        "loss/frame | code ppl | s/update |",
        "|" + "---|" * 15,
    ]
    for (variant, k, crop, updates, init, side), rs in sorted(groups.items()):
        by_seed = sorted(rs, key=lambda r: r["seed"])
        per_seed = ", ".join(f"{r['accuracy_start']:.3f}->{r['accuracy']:.3f}" for r in by_seed)
        reference = groups.get((variant, k, crop, updates, "own", "transformers"), [])
        difference = paired_difference(rs, reference) if side != "transformers" else None
        lines.append(
            f"| {variant} | {k} | {crop:g} | {updates} | {init} | {side} | {len(rs)} | {per_seed} | "
            f"{np.mean([r['accuracy'] for r in rs]):.3f} | "
            + ("" if difference is None else "{:+.3f} +- {:.3f}, {}".format(*difference))
            + " | "
            f"{np.mean([p['accuracy'] for r in rs for p in r['curve'][1:]]):.3f} | {rs[0]['chance']:.3f} | "
            f"{np.mean([r['contrastive_loss'] for r in rs]):.3f} | "
            f"{np.mean([r['perplexity'] for r in rs]):.1f} | "
            f"{np.mean([r['seconds_per_update'] for r in rs]):.2f} |"
        )
    table = "\n".join(lines)
    if markdown:
        Path(markdown).write_text(table + "\n")
    if plot:
        plot_curves(records, plot)
    return table


def plot_curves(records, path):
    """One panel per (variant, K, crop, updates): each side's held-out accuracy per seed (thin) and its mean (thick).
    K and the crop change the chance level, so runs that differ in them never share a panel or a mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def panel(r):
        return r["variant"], r["num_negatives"], r.get("crop_seconds", 2.0), r["updates"]

    panels = sorted({panel(r) for r in records})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (variant, k, crop, updates) in zip(axes[0], panels, strict=True):
        runs = [r for r in records if panel(r) == (variant, k, crop, updates)]
        for index, side in enumerate(sorted({(r["side"], r["init"]) for r in runs})):
            mine = [r for r in runs if (r["side"], r["init"]) == side]
            color = f"C{index}"
            for r in mine:
                ax.plot([p["update"] for p in r["curve"]], [p["accuracy"] for p in r["curve"]], color=color, lw=0.6)
            shared = min(len(r["curve"]) for r in mine)  # the mean over seeds where every seed was evaluated
            ax.plot(
                [p["update"] for p in mine[0]["curve"][:shared]],
                [np.mean([r["curve"][i]["accuracy"] for r in mine]) for i in range(shared)],
                color=color,
                lw=2.2,
                label=f"{side[0]} ({side[1]} init), mean of {len(mine)}",
            )
        ax.axhline(runs[0]["chance"], color="grey", linewidth=0.8)
        title = f"{variant}, K = {k}, {crop:g} s crops, {updates} updates"
        ax.set(title=title, xlabel="update", ylabel="held-out contrastive accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, nargs="+", default=[800])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["post_ln", "pre_ln"])
    parser.add_argument("--negatives", type=int, nargs="+", default=[20])
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=["ours", "transformers"])
    parser.add_argument("--init", choices=("own", "transformers"), default="own")
    parser.add_argument("--crop_seconds", type=float, default=2.0, help="length of the random training crops")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--eval_every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (runs are sequential)")
    parser.add_argument(
        "--workdir", type=Path, help="--sides script: where its clips, runs and checkpoints go (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, help="append each run's record to this JSON-lines file")
    parser.add_argument("--report", type=Path, help="only print the table of an existing JSON-lines file")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plot", type=Path)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        records = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
        print(report(records, args.markdown, args.plot))
        return records
    torch.set_num_threads(args.threads)
    samples = int(args.crop_seconds * SAMPLE_RATE)
    clips, voices = load_clips(min_seconds=args.crop_seconds)
    if len(voices) < len(VOICES):  # a run on fewer voices trains on other clips than the recorded results
        missing = sorted(set(VOICES) - {v.split("_")[0] for v in voices})
        print(f"objective_vs_transformers: WARNING: no asterisk prompts for {', '.join(missing)}; the recorded "
              f"results trained on all of {', '.join(VOICES)} (scripts/setup.sh installs them)")  # fmt: skip
    train, test = split_clips(clips)
    print(
        f"{len(train)} training and {len(test)} held-out clips >= {args.crop_seconds:g} s from {', '.join(voices)}",
        flush=True,
    )
    records = []
    for variant in args.variants:
        for k in args.negatives:
            keys = dict(TINY_KEYS, num_negatives=k, **VARIANTS[variant])
            eval_batches = fixed_eval_batches(test, keys, args.batch_size, samples)
            for updates in args.updates:
                for seed in args.seeds:
                    for side in args.sides:
                        common = dict(updates=updates, keys=keys, eval_every=args.eval_every, samples=samples)
                        common.update(batch_size=args.batch_size, log=lambda s: print(s, flush=True))
                        if side.startswith("script"):
                            workdir = args.workdir or Path(tempfile.mkdtemp(prefix="objective_script_"))
                            record = script_one(
                                variant, seed, train, eval_batches, workdir=workdir, threads=args.threads, lr=5e-4,
                                side=side, **common,
                            )  # fmt: skip
                        else:
                            record = train_one(
                                side, variant, seed, train, eval_batches, init=args.init, workdir=args.workdir,
                                **common,
                            )  # fmt: skip
                        record.update(voices=voices, crop_seconds=args.crop_seconds)
                        records.append(record)
                        if args.json:
                            with args.json.open("a") as f:
                                f.write(json.dumps(record) + "\n")
    print(report(records, args.markdown, args.plot))
    return records


if __name__ == "__main__":
    sys.exit(main() and 0)
