"""Checkpoints of a pre-training run: atomic saves, rotation within the run, and safe, checked loading.

``output_dir/checkpoints/checkpoint-<update>/`` holds ``trainer.pt`` (model, optimizer, scheduler, scaler and
training state; written by the main process), ``rank<r>.pt`` (RNG state and data position of process ``r``),
``config.json`` (the model config, so that a resume with another one names the fields that differ) and
``run.json`` (the run's id: rotation deletes only checkpoints of the run that wrote them). Everything is written to
a temporary folder that is renamed once every process has written its part, so an interrupted or failed save
(a full disk) never looks like a checkpoint and the previous one is kept.

Loading is ``torch.load(weights_only=True)`` only: a checkpoint holds tensors and plain Python values (the RNG
states are stored as such), so nothing needs allow-listing and a crafted file cannot run code. A damaged file is a
:class:`CheckpointError`: one line naming the file and the cause.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_FILE = "trainer.pt"
CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
TRAINER_KEYS = ("model", "optimizer", "scheduler", "state", "world_size")
RANK_KEYS = ("rng", "data")
# Config fields that may differ between the jobs of one run: the Gumbel decay is a schedule derived from
# --max_updates (as the lr schedule is), the rest is bookkeeping.
RESUMABLE_CONFIG_CHANGES = frozenset(
    {
        "gumbel_temperature_decay",
        "transformers_version",
        "architectures",
        "_name_or_path",
        "auto_map",
        "dtype",
        "torch_dtype",
    }
)
_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# What torch's zip writer says when a write comes up short ("[enforce fail at inline_container.cc:...] unexpected
# pos ..."): the disk filled up under it.
_DISK_FULL_TEXTS = ("unexpected pos", "No space left on device", "Disk quota exceeded")


class CheckpointError(ValueError):
    """A checkpoint cannot be written or used; the message names the file and the cause in one line."""


# ----------------------------------------------------------------------------------------------------- listing


def checkpoint_update(path: Path | None) -> int | None:
    """The update count in a checkpoint folder's name (None for other names, or no path)."""
    if path is None or not path.name.startswith(CHECKPOINT_PREFIX):
        return None
    digits = path.name[len(CHECKPOINT_PREFIX) :]
    return int(digits) if digits.isdigit() else None


def run_id_of(checkpoint: Path) -> str | None:
    """The id of the run that wrote ``checkpoint`` (None when unknown: written before run ids, or damaged)."""
    try:
        return json.loads((checkpoint / RUN_FILE).read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def list_checkpoints(output_dir: str | os.PathLike, run_id: str | None = None) -> list[Path]:
    """Complete checkpoints (temporary folders are ignored) in update order; with ``run_id``, that run's only."""
    found = [
        p for p in (Path(output_dir) / "checkpoints").glob(f"{CHECKPOINT_PREFIX}*") if checkpoint_update(p) is not None
    ]
    if run_id is not None:
        found = [p for p in found if run_id_of(p) == run_id]
    return sorted(found, key=checkpoint_update)


def latest_checkpoint(output_dir: str | os.PathLike, run_id: str | None = None) -> Path | None:
    """The complete checkpoint with the highest update count (of run ``run_id``, if given)."""
    found = list_checkpoints(output_dir, run_id)
    return found[-1] if found else None


# ------------------------------------------------------------------------------------------------------ RNG state


def rng_state() -> dict:
    import numpy as np
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    # plain Python values and tensors only, so that resuming can load with torch.load(weights_only=True)
    state = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------------------- loading


def _damaged(path: Path, cause: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: {cause}; delete its checkpoint folder to resume from the one before, or start "
        f"afresh in another --output_dir"
    )


def _load_error(path: Path, err: Exception) -> CheckpointError:
    import pickle

    if isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err):
        return CheckpointError(
            f"{path}: holds objects that cannot be loaded safely (a checkpoint written before "
            f"hf-wav2vec2 stored plain RNG states?); resume from a newer checkpoint or start "
            f"without --resume in another --output_dir"
        )
    first_line = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
    cause = f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__
    with open(path, "rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # what torch.save writes
    if is_zip or isinstance(err, EOFError):
        # a cut-off zip fails in many ways ("failed finding central directory", "[Errno 22] Invalid argument")
        return _damaged(path, f"truncated or damaged ({cause})")
    return _damaged(path, f"not a readable torch checkpoint ({cause})")


def load_checkpoint_file(path: Path, keys: tuple[str, ...] = ()) -> dict:
    """A checkpoint file, unpickled safely (tensors and plain Python values only), holding at least ``keys``."""
    import torch

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: missing; the checkpoint is incomplete (delete its folder to resume from the one before)"
        ) from None
    if size == 0:
        raise _damaged(path, "the file is empty (0 bytes)")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever a damaged file raises, the user needs one line
        raise _load_error(path, err) from None
    missing = [key for key in keys if not isinstance(content, dict) or key not in content]
    if missing:
        raise _damaged(path, f"not a checkpoint of hf-wav2vec2 pretrain (no {', '.join(missing)})")
    return content


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``field=saved (now current)`` for every config field that differs, schedules and bookkeeping aside."""
    # JSON round trip: tuples and lists compare equal, as they are in config.json
    saved, current = json.loads(json.dumps(saved)), json.loads(json.dumps(current))
    names = sorted((set(saved) | set(current)) - RESUMABLE_CONFIG_CHANGES)
    return [
        f"{name}={saved.get(name)!r} (now {current.get(name)!r})"
        for name in names
        if saved.get(name) != current.get(name)
    ]


def check_config(checkpoint: Path, config: Any) -> None:
    """Refuse to resume ``checkpoint`` with another model config, naming the differing fields."""
    path = checkpoint / CONFIG_FILE
    if not path.exists():
        return  # written before checkpoints kept their config: load_state_dict checks the shapes at least
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(path, f"not readable as JSON ({err})") from None
    differences = config_differences(saved, config.to_dict())
    if differences:
        raise CheckpointError(
            f"{checkpoint}: written with another model config: {', '.join(differences)}; resume "
            f"with that run's flags (--preset, --config, --config_overrides) or start afresh in "
            f"another --output_dir"
        )


def load_state(path: Path, what: str, target: Any, state: Any) -> None:
    """``target.load_state_dict(state)``, its failure (shapes, keys, groups) told in one line naming ``path``."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        first_line = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: the {what} state does not fit this run ({first_line})") from None


# -------------------------------------------------------------------------------------------------------- saving


def describe_write_error(path: Path, err: BaseException) -> str:
    if getattr(err, "errno", None) in _DISK_FULL_ERRNOS or any(text in str(err) for text in _DISK_FULL_TEXTS):
        return f"{path}: the disk is full"
    return f"{path}: cannot be written ({type(err).__name__}: {str(err).strip().splitlines()[0][:160]})"


def _write_parts(
    accelerator,
    tmp: Path,
    rank_state: dict,
    trainer_state: Callable[[], dict],
    config_json: str,
    run_id: str,
    num_updates: int,
) -> str | None:
    """Write this process's part of the checkpoint into ``tmp``; returns why it failed (None: written)."""
    import torch

    path = tmp / f"rank{accelerator.process_index}.pt"
    try:
        # RNG and data position differ per rank (different dropout streams and shards).
        torch.save(rank_state, path)
        if accelerator.is_main_process:
            path = tmp / TRAINER_FILE
            torch.save(trainer_state(), path)
            path = tmp / CONFIG_FILE
            path.write_text(config_json, encoding="utf-8")
            path = tmp / RUN_FILE
            path.write_text(json.dumps({"run_id": run_id, "num_updates": num_updates}), encoding="utf-8")
    except (OSError, RuntimeError) as err:
        return describe_write_error(path, err)
    return None


def _failures(accelerator, failed: bool) -> int:
    """How many processes failed to write their part (every process must take the same decision)."""
    if accelerator.num_processes == 1:
        return int(failed)
    import torch

    count = torch.tensor([1.0 if failed else 0.0], device=accelerator.device)
    return int(accelerator.reduce(count, reduction="sum").item())


def rotate_checkpoints(output_dir: str | os.PathLike, run_id: str, keep: int) -> None:
    """Delete this run's checkpoints but the ``keep`` latest; other runs' checkpoints are never touched."""
    mine = list_checkpoints(output_dir, run_id)
    for stale in mine[: max(0, len(mine) - max(1, keep))]:
        shutil.rmtree(stale, ignore_errors=True)


def save_checkpoint(
    accelerator,
    output_dir: str | os.PathLike,
    *,
    num_updates: int,
    run_id: str,
    rank_state: dict,
    trainer_state: Callable[[], dict],
    config_json: str,
    keep: int,
) -> Path:
    """Write ``checkpoints/checkpoint-<num_updates>`` atomically, then rotate this run's checkpoints.

    ``trainer_state`` is called on the main process only. If any process fails to write its part (a full disk),
    nothing is renamed or rotated, every process raises :class:`CheckpointError` and the previous checkpoint stays.
    """
    root = Path(output_dir) / "checkpoints"
    final = root / f"{CHECKPOINT_PREFIX}{num_updates}"
    tmp = root / f".tmp-{CHECKPOINT_PREFIX}{num_updates}"
    if final.exists() and run_id_of(final) != run_id:  # checked by every process: all of them stop alike
        raise CheckpointError(f"{final}: was written by another run and is not replaced; move it out of {root}")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    error = _write_parts(accelerator, tmp, rank_state, trainer_state, config_json, run_id, num_updates)
    if _failures(accelerator, error is not None):
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(output_dir, run_id)
        kept = f"{previous} is kept" if previous is not None else "no earlier checkpoint of this run exists"
        raise CheckpointError(
            f"{error or f'{final}: another process could not write its part'}; the checkpoint "
            f"was not saved and {kept} (free space, then --resume)"
        )
    if accelerator.is_main_process:
        if final.exists():  # the same update saved again (the final save of a run that just checkpointed)
            shutil.rmtree(final)
        os.replace(tmp, final)
        rotate_checkpoints(output_dir, run_id, keep)
    accelerator.wait_for_everyone()
    return final
