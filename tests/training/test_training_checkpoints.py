"""Pre-training checkpoints and output folders: nothing a user has is overwritten, rotation stays within its run,
damaged checkpoints and full disks are one clear line (tiny models, a synthetic corpus, CPU only)."""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pretrain_micro import logged_losses, pretrain_argv, write_corpus

from hf_wav2vec2.training import checkpoints, pretrain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("checkpoints"), 8, max_seconds=1.0)


def _args(corpus, out, *extra, updates=4):
    return pretrain_argv(corpus, out, updates, "--report_to", "none", "--no_plot", "--checkpoint_every", "2", *extra)


@pytest.fixture(scope="module")
def finished(corpus, tmp_path_factory):
    """A finished 4-update run (checkpoints 2 and 4), copied by the tests that change it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    pretrain.main(_args(corpus, out))
    return out


def _copy(finished, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(finished, target)
    return target


# ---- output folders


def test_a_finished_run_is_not_overwritten_without_a_flag(corpus, finished, tmp_path):
    out = _copy(finished, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(
        ValueError,
        match=rf"--output_dir {re.escape(str(out))} is not empty \(it holds a finished "
        r"pre-training run\): pass --resume .* --overwrite_output_dir to replace it",
    ):
        pretrain.main(_args(corpus, out))
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(SystemExit):  # both flags at once: a usage error
        pretrain.parse_args(_args(corpus, out, "--resume", "--overwrite_output_dir"))


def test_overwrite_replaces_the_previous_run_and_a_resume_continues_the_new_one(corpus, finished, tmp_path):
    out = _copy(finished, tmp_path)
    (out / "notes.txt").write_text("mine")  # not an output of a run: kept
    first = pretrain.main(_args(corpus, out, "--overwrite_output_dir", "--stop_after", "1", "--seed", "7", updates=6))
    assert first["num_updates"] == 1 and (out / "notes.txt").read_text() == "mine"
    # the old run's checkpoints (2 and 4, higher than the new run's 1) are gone, so --resume continues the new run
    assert [p.name for p in checkpoints.list_checkpoints(out)] == ["checkpoint-1"]
    assert sorted(logged_losses(out)) == [1]  # the log starts afresh instead of mixing two runs
    resumed = pretrain.main(_args(corpus, out, "--resume", "--seed", "7", updates=6))
    assert resumed["num_updates"] == 6 and sorted(logged_losses(out)) == [1, 2, 3, 4, 5, 6]


def test_rotation_deletes_only_checkpoints_of_the_current_run(corpus, finished, tmp_path):
    out = _copy(finished, tmp_path)
    foreign = out / "checkpoints" / "checkpoint-1"  # e.g. copied in from another run
    shutil.copytree(out / "checkpoints" / "checkpoint-2", foreign)
    (foreign / checkpoints.RUN_FILE).write_text(json.dumps({"run_id": "another-run", "num_updates": 1}))
    legacy = out / "checkpoints" / "checkpoint-3"  # written before checkpoints carried a run id
    shutil.copytree(out / "checkpoints" / "checkpoint-2", legacy)
    (legacy / checkpoints.RUN_FILE).unlink()
    pretrain.main(_args(corpus, out, "--resume", updates=8))  # saves 6 and 8, keeps two of its own
    names = [p.name for p in checkpoints.list_checkpoints(out)]
    assert names == ["checkpoint-1", "checkpoint-3", "checkpoint-6", "checkpoint-8"]


# ---- damaged checkpoints on --resume


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("name", ["trainer.pt", "rank0.pt"])
@pytest.mark.parametrize(
    "damage, cause",
    [
        (lambda p: p.write_bytes(b""), "the file is empty (0 bytes)"),
        (_truncate, "truncated or damaged ("),
        (lambda p: p.write_bytes(bytes(range(256)) * 20), "not a readable torch checkpoint"),
        (lambda p: p.unlink(), "missing; the checkpoint is incomplete"),
        (lambda p: torch.save({"something": 1}, p), "not a checkpoint of hf-wav2vec2 pretrain (no "),
    ],
)
def test_damaged_checkpoint_files_are_one_clear_error(corpus, finished, tmp_path, name, damage, cause):
    out = _copy(finished, tmp_path)
    target = out / "checkpoints" / "checkpoint-4" / name
    damage(target)
    with pytest.raises(checkpoints.CheckpointError) as error:
        pretrain.main(_args(corpus, out, "--resume", updates=6))
    message = str(error.value)
    assert message.startswith(f"{target}: {cause}") and "\n" not in message


def _resume_with_a_wider_model(corpus, out, message: str):
    with pytest.raises(checkpoints.CheckpointError, match=message):
        pretrain.main(
            _args(corpus, out, "--resume", "--config_overrides", "hidden_size=64", "intermediate_size=128", updates=6)
        )


def test_resume_with_another_config_names_the_differing_fields(corpus, finished, tmp_path):
    _resume_with_a_wider_model(
        corpus,
        _copy(finished, tmp_path),
        r"checkpoint-4: written with another model config: hidden_size=32 \(now 64\), "
        r"intermediate_size=64 \(now 128\); resume with that run's flags",
    )


def test_resume_without_a_saved_config_still_says_what_does_not_fit(corpus, finished, tmp_path):
    out = _copy(finished, tmp_path)
    (out / "checkpoints" / "checkpoint-4" / checkpoints.CONFIG_FILE).unlink()  # as written by older versions
    _resume_with_a_wider_model(
        corpus,
        out,
        r"trainer\.pt: the model state does not fit this run "
        r"\(Error\(s\) in loading state_dict",
    )


def test_the_command_prints_one_line_without_a_traceback(corpus, finished, tmp_path):
    out = _copy(finished, tmp_path)
    (out / "checkpoints" / "checkpoint-4" / "trainer.pt").write_bytes(b"")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pretrain.py"), *_args(corpus, out, "--resume", "--cpu", updates=6)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == (
        f"pretrain: error: {out}/checkpoints/checkpoint-4/trainer.pt: the file is empty (0 bytes); delete its "
        "checkpoint folder to resume from the one before, or start afresh in another --output_dir"
    )


# ---- full disk


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1088 vs 1018"),
    ],
)
def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(corpus, tmp_path, monkeypatch, failure):
    out = tmp_path / "full"
    real_save = torch.save

    def save(obj, path, *args, **kwargs):
        if Path(path).name == "trainer.pt" and ".tmp-checkpoint-4" in str(path):
            raise failure
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(checkpoints.CheckpointError) as error:
        pretrain.main(_args(corpus, out, updates=6))
    message = str(error.value)
    assert message.startswith(
        f"{out}/checkpoints/.tmp-checkpoint-4/trainer.pt: the disk is full; the checkpoint was "
        f"not saved and {out}/checkpoints/checkpoint-2 is kept"
    )
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-2"]  # no half-written folder
    monkeypatch.setattr(torch, "save", real_save)
    resumed = pretrain.main(_args(corpus, out, "--resume", updates=6))
    assert resumed["num_updates"] == 6 and sorted(logged_losses(out))[-1] == 6


# ---- safe loading, checked before training


def test_training_code_loads_nothing_unsafely():
    """Every load in the training package is weights_only=True or numpy without pickles (issue 13)."""
    package = ROOT / "hf_wav2vec2" / "training"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if "pickle.load" in code or "allow_pickle=True" in code or "weights_only=False" in code:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            elif "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders


def test_inconsistent_or_misspelt_config_overrides_fail_before_anything_starts(corpus, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(
        ValueError,
        match=r"--config_overrides: config.codevector_dim \(33\) must be divisible by "
        r"config.num_codevector_groups \(2\)",
    ):
        pretrain.main(_args(corpus, out, "--config_overrides", "codevector_dim=33"))
    with pytest.raises(ValueError, match=r"--config_overrides: unknown config field\(s\) hiden_size"):
        pretrain.main(_args(corpus, out, "--config_overrides", "hiden_size=64"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"--config .*bad\.json: cannot be read as JSON"):
        pretrain.build_config(pretrain.PretrainArguments(data="d", output_dir="o", config=str(tmp_path / "bad.json")))
    assert not out.exists()  # refused before the Accelerator made the folder
