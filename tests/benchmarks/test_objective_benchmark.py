"""benchmarks/objective_vs_transformers.py on a tiny config and synthetic audio: a handful of updates, no timing."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import NO_DROPOUT, TINY

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "objective_vs_transformers", ROOT / "benchmarks" / "objective_vs_transformers.py"
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

KEYS = dict({k: v for k, v in TINY.items() if k != "vocab_size"}, **NO_DROPOUT, mask_time_prob=0.5, mask_time_length=2)
SAMPLES = 1600  # 0.1 s: 39 frames with TINY's 3 conv layers


def _clips(count=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(2 * SAMPLES) / 16_000
    return [
        (np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
        for _ in range(count)
    ]


def _eval_batches(keys):
    return bench.fixed_eval_batches(_clips(4, seed=1), keys, batch_size=2, samples=SAMPLES, batches=2)


def test_accuracy_is_the_share_of_frames_whose_positive_wins():
    quantized = torch.eye(6)[None]  # (1, T=6, P=6): frame t's target is unit vector t
    projected = quantized.clone()
    projected[0, 3] = quantized[0, 5]  # frame 3 predicts frame 5's target
    mask = torch.tensor([[True, False, True, True, False, False]])
    negatives = torch.tensor([[[1, 5]] * 6])  # every frame's distractors: frames 1 and 5
    assert bench.contrastive_accuracy(projected, quantized, mask, negatives) == pytest.approx(2 / 3)
    # a distractor identical to the positive is excluded, not counted as a win of the distractor
    quantized[0, 1] = quantized[0, 0]
    projected[0, 0] = quantized[0, 0] + 0.01 * quantized[0, 1]
    assert bench.contrastive_accuracy(projected, quantized, mask, negatives) == pytest.approx(2 / 3)


def test_eval_batches_are_the_same_for_every_run_and_leave_numpy_state_alone():
    np.random.seed(7)
    before = np.random.random()
    np.random.seed(7)
    first, second = _eval_batches(KEYS), _eval_batches(KEYS)
    assert np.random.random() == before
    for (a, ma, na), (b, mb, nb) in zip(first, second, strict=True):
        assert torch.equal(a, b) and torch.equal(ma, mb) and torch.equal(na, nb)
        assert ma.sum(-1).min() >= 2  # min_masks 2
        rows = nb.view(-1, nb.shape[-1])[ma.view(-1)]  # the distractors of masked frames are masked frames
        assert ma.view(-1)[rows.reshape(-1)].all()


def test_same_init_loads_transformers_weights_into_ours():
    theirs, _ = bench.build_models("transformers", KEYS, "own", seed=3)
    ours, config = bench.build_models("ours_fairseq", KEYS, "transformers", seed=3)
    assert (config.feature_penalty_weight, config.feature_grad_mult) == (10.0, 0.1)
    for name, value in theirs.state_dict().items():
        assert torch.equal(value, ours.state_dict()[name]), name
    _, plain = bench.build_models("ours", KEYS, "own", seed=3)
    assert (plain.feature_penalty_weight, plain.feature_grad_mult) == (0.0, 1.0)  # a transformers-format config


@pytest.mark.parametrize(
    "side",
    [
        "ours",
        "transformers",
        "ours_sampling",
        "ours_torch_sampler",
        "transformers_torch_sampler",
        "ours_script_data",
        "ours_script_data_full",
        "ours_fairseq_norm",
        "ours_extractor_norm",
    ],
)
def test_a_few_updates_of_each_side(side, tmp_path):
    eval_batches = _eval_batches(KEYS)
    record = bench.train_one(
        side,
        "post_ln",
        0,
        _clips(),
        eval_batches,
        updates=4,
        keys=KEYS,
        batch_size=2,
        samples=SAMPLES,
        eval_every=2,
        workdir=tmp_path,
        log=lambda s: None,
    )
    assert [p["update"] for p in record["curve"]] == [0, 2, 4]
    for point in record["curve"][1:]:
        assert 0.0 <= point["accuracy"] <= 1.0 and math.isfinite(point["contrastive_loss"]) and point["perplexity"] > 0
    assert record["chance"] == pytest.approx(1 / (1 + KEYS["num_negatives"]))


def _step(side, numpy_seed=5, torch_seed=6, generator_seed=7):
    import transformers

    config = transformers.Wav2Vec2Config(**KEYS)
    np.random.seed(numpy_seed)
    torch.manual_seed(torch_seed)
    mask, negatives = bench.step_masks(side, 3, 30, config, torch.Generator().manual_seed(generator_seed))
    return mask, negatives, torch.rand(())  # the next draw tells how far torch's global generator advanced


def _distractors_are_other_masked_frames(mask, negatives):
    batch, frames = mask.shape
    for b, t in mask.nonzero().tolist():
        drawn = negatives[b, t] - b * frames  # flattened indices of row b
        assert mask[b][drawn].all() and (drawn != t).all()


@pytest.mark.parametrize(
    "side", ["ours_torch_sampler_own_rng", "ours_torch_draws", "ours_torch_masks", "ours_torch_negatives"]
)
def test_sides_that_separate_the_samplers_draw_what_they_say(side):
    numpy_mask, numpy_negatives, untouched = _step("ours")
    mask, negatives, after = _step(side)
    _distractors_are_other_masked_frames(mask, negatives)
    assert mask.sum(1).min() >= 2
    # which generator each side draws from: our samplers on torch's global one advance it, own_rng and numpy do not
    assert (after == untouched) == (side == "ours_torch_sampler_own_rng")
    if side == "ours_torch_draws":  # transformers' masks and distractors, the global draws thrown away
        assert torch.equal(mask, numpy_mask) and torch.equal(negatives, numpy_negatives)
    if side == "ours_torch_negatives":  # transformers' masks, our distractors on them
        assert torch.equal(mask, numpy_mask) and not torch.equal(negatives, numpy_negatives)
    if side in ("ours_torch_masks", "ours_torch_sampler_own_rng"):
        assert not torch.equal(mask, numpy_mask)
    if side == "ours_torch_sampler_own_rng":  # the same generator seed gives the same draws
        again, again_negatives, _ = _step(side, numpy_seed=1, torch_seed=2)
        assert torch.equal(mask, again) and torch.equal(negatives, again_negatives)


def test_same_seed_same_masks_means_same_run_for_identical_models():
    # ours with transformers' init and terms is transformers' objective: the loop must feed both the same data
    eval_batches = _eval_batches(KEYS)
    runs = [
        bench.train_one(
            side,
            "post_ln",
            0,
            _clips(),
            eval_batches,
            updates=2,
            keys=KEYS,
            init="transformers",
            batch_size=2,
            samples=SAMPLES,
            eval_every=2,
            log=lambda s: None,
        )
        for side in ("ours", "transformers")
    ]
    assert runs[0]["contrastive_loss"] == pytest.approx(runs[1]["contrastive_loss"], rel=0.05)


def test_report_and_plot_from_json_lines(tmp_path):
    eval_batches = _eval_batches(KEYS)
    lines = tmp_path / "runs.jsonl"
    for seed in (0, 1):
        record = bench.train_one(
            "transformers",
            "post_ln",
            seed,
            _clips(),
            eval_batches,
            updates=2,
            keys=KEYS,
            batch_size=2,
            samples=SAMPLES,
            eval_every=2,
            log=lambda s: None,
        )
        record["crop_seconds"] = SAMPLES / 16_000
        lines.open("a").write(json.dumps(record) + "\n")
    argv = ["--report", str(lines), "--markdown", str(tmp_path / "t.md"), "--plot", str(tmp_path / "c.png")]
    table = bench.main(argv)
    text = (tmp_path / "t.md").read_text()
    assert "| post_ln | 6 | 0.1 | 2 | own | transformers | 2 |" in text and (tmp_path / "c.png").stat().st_size > 0
    assert len(table) == 2


def test_paired_difference_uses_the_common_seeds_only():
    ours = [dict(seed=seed, accuracy=acc) for seed, acc in ((0, 0.10), (1, 0.12), (2, 0.20), (7, 0.5))]
    theirs = [dict(seed=seed, accuracy=acc) for seed, acc in ((0, 0.11), (1, 0.10), (2, 0.17), (3, 0.9))]
    mean, error, seeds = bench.paired_difference(ours, theirs)
    assert seeds == 3 and mean == pytest.approx(0.04 / 3)
    assert error == pytest.approx(np.std([-0.01, 0.02, 0.03], ddof=1) / np.sqrt(3))
    assert bench.paired_difference(ours[:1], theirs) is None


def test_script_config_is_the_loops_config_of_our_side():
    from hf_wav2vec2 import HfWav2Vec2Config

    _, loop = bench.build_models("ours", KEYS, "own", seed=0)
    script = HfWav2Vec2Config.base(**bench.script_config(KEYS))  # what the script's --preset base --config builds
    gumbel = {"max_gumbel_temperature": 2.0, "min_gumbel_temperature": 0.5, "gumbel_temperature_decay": 0.9995}
    for name, value in script.to_dict().items():
        if name not in gumbel and name != "transformers_version":
            assert value == getattr(loop, name), name
    assert {name: getattr(script, name) for name in gumbel} == gumbel  # the loop's max(2 x 0.9995^n, 0.5)


def test_script_side_runs_the_pretraining_script_and_evaluates_its_checkpoints(tmp_path):
    eval_batches = _eval_batches(KEYS)
    # 12 clips in batches of 2: 8 updates cross an epoch's end, whose event the script logs beside the updates
    run = dict(updates=8, keys=KEYS, workdir=tmp_path, lr=5e-4, batch_size=2, samples=SAMPLES, eval_every=4)
    record = bench.script_one("post_ln", 0, _clips(), eval_batches, log=lambda s: None, **run)
    assert [p["update"] for p in record["curve"]] == [0, 4, 8]
    loop = bench.train_one(
        "ours", "post_ln", 0, _clips(), eval_batches, updates=2, keys=KEYS, batch_size=2, samples=SAMPLES,
        eval_every=2, log=lambda s: None,
    )  # fmt: skip
    # the script starts from the same weights as the loop's side (same seed), so from the same held-out accuracy
    assert record["accuracy_start"] == loop["accuracy_start"]
    out = tmp_path / "post_ln_8_0_6" / "out"
    trained = torch.load(out / "checkpoints" / "checkpoint-8" / "trainer.pt", weights_only=True)["model"]
    initial, _ = bench.build_models("ours", KEYS, "own", seed=0)
    changed = [k for k, v in initial.state_dict().items() if not torch.equal(v, trained[k])]
    assert "project_q.weight" in changed and len(changed) > 10  # the script trained the weights it was given
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [s["update"] for s in log if "update" in s] == list(range(1, 9)) and any("event" in s for s in log)
    assert all(s["num_masked"] > 0 for s in log if "update" in s)
    assert (record["feature_penalty_weight"], record["feature_grad_mult"]) == (0.0, 1.0)
    # a finished run is evaluated again, not retrained
    (out / "checkpoints" / "checkpoint-4").rename(out / "checkpoints" / "moved-4")
    again = bench.script_one("post_ln", 0, _clips(), eval_batches, log=lambda s: None, **run)
    assert [p["update"] for p in again["curve"]] == [0, 8] and again["accuracy"] == record["accuracy"]


def test_script_stream2_is_the_script_from_the_same_weights_and_crops_with_another_stream(tmp_path):
    eval_batches = _eval_batches(KEYS)
    run = dict(updates=2, keys=KEYS, workdir=tmp_path, lr=5e-4, batch_size=2, samples=SAMPLES, eval_every=2)
    first = bench.script_one("post_ln", 0, _clips(), eval_batches, log=lambda s: None, **run)
    second = bench.script_one("post_ln", 0, _clips(), eval_batches, side="script_stream2", log=lambda s: None, **run)
    assert (first["side"], second["side"]) == ("script", "script_stream2")
    assert second["accuracy_start"] == first["accuracy_start"]  # the same initial weights

    def logged(name):
        lines = (tmp_path / name / "out" / "train_log.jsonl").read_text().splitlines()
        return [entry for entry in map(json.loads, lines) if "update" in entry]

    one, two = logged("post_ln_2_0_6"), logged("post_ln_2_0_6_stream2")
    assert len(one) == len(two) == 2
    # another stream: other masks, so another number of masked frames or another loss on the same first batch
    assert (one[0]["num_masked"], one[0]["loss"]) != (two[0]["num_masked"], two[0]["loss"])


def test_script_batches_are_the_project_loaders_epochs_normalized_as_its_collator(tmp_path):
    clips = _clips(5)
    batches = bench.script_batches(clips, tmp_path, 0, 2, SAMPLES)
    epoch = [next(batches) for _ in range(3)]  # 5 clips in batches of 2: 2 + 2 + 1 (shuffled), then the next epoch
    assert sorted(tuple(b.shape) for b in epoch) == [(1, SAMPLES), (2, SAMPLES), (2, SAMPLES)]
    assert len(list((tmp_path / "clips_5").glob("*.wav"))) == 5
    rows = torch.cat(epoch)
    assert torch.allclose(rows.mean(1), torch.zeros(5), atol=1e-4)
    assert torch.allclose(rows.var(1, unbiased=False), torch.ones(5), atol=1e-3)
    # each clip once per epoch: the crops of an epoch come from 5 different clips (their frequencies differ)
    peaks = {int(np.abs(np.fft.rfft(row.numpy())).argmax()) for row in rows}
    assert len(peaks) == 5
    assert next(batches).shape[1] == SAMPLES


def test_script_batches_full_only_skips_each_epochs_short_batch(tmp_path):
    every = bench.script_batches(_clips(5), tmp_path, 0, 2, SAMPLES)
    full = bench.script_batches(_clips(5), tmp_path, 0, 2, SAMPLES, full_only=True)
    kept = [b for b in (next(every) for _ in range(6)) if len(b) == 2]  # two epochs: 2 + 2 + 1 each
    assert len(kept) == 4
    for batch in kept:  # the same batches, in the same order, without the 1-crop ones
        assert torch.equal(next(full), batch)


def test_normalizations_of_a_near_silent_crop():
    from hf_wav2vec2.training.data.collate import PretrainingCollator

    quiet = (1e-5 * np.random.default_rng(0).standard_normal(SAMPLES)).astype(np.float32)  # variance 1e-10
    collated = PretrainingCollator(normalize=True)([{"input_values": quiet}])["input_values"][0]
    assert np.allclose(bench.unit_std(quiet), collated.numpy(), atol=1e-5)  # the collator's since 2026-12-02
    assert bench.unit_std(quiet).var() > 0.95  # the loop's: near-silence at unit scale
    assert bench.fairseq_normalize(quiet).var() < 1e-4  # fairseq's: left almost zero
    assert 1e-4 < bench.extractor_normalize(quiet).var() < 1e-2
    loud = 0.1 * quiet / quiet.std()
    for normalize in (bench.fairseq_normalize, bench.extractor_normalize):  # a speech-level crop: alike
        assert np.allclose(normalize(loud), bench.unit_std(loud), rtol=1e-3, atol=1e-4)  # within 0.1 %
