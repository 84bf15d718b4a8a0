"""glibc's mmap threshold for training processes: the one setting that decides how much of a step's peak is heap.

glibc serves a ``malloc`` at or above the *mmap threshold* with its own ``mmap`` and returns it to the system on
``free``; smaller blocks come from the heap, where freed space is kept for reuse. The threshold starts at 128 KiB
and, by default, rises to the size of each mmapped block that is freed, up to 32 MiB. A training step frees
activations of a few MB each (BASE: hidden states 3 MB, feed-forward and attention blocks about 12 MB), so after a
few steps nearly all of them come from the heap, and the heap's free-but-fragmented space adds to the peak. On a
BASE pre-training step (4 x 5 s, fp32, 2-core EPYC) a fixed 1 MiB threshold took the peak RSS from 2437 MB to
1732 MB at a few per cent more system time (benchmarks/results/performance_cpu.md, session 19).

glibc reads ``MALLOC_MMAP_THRESHOLD_`` (and ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...``) at start-up; a user
who set either keeps it. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

#: ``hf-wav2vec2 pretrain``'s default (``--malloc_mmap_threshold_kb``); the fine-tuning commands' is 0, glibc's own
DEFAULT_MMAP_THRESHOLD_KB = 1024
#: glibc refuses thresholds above its DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB on 64-bit systems
MAX_MMAP_THRESHOLD_KB = 32 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


def check_mmap_threshold(kb: int, flag: str = "--malloc_mmap_threshold_kb") -> None:
    """Raise a one-line ``ValueError`` unless ``kb`` is a threshold glibc takes (0 keeps glibc's own)."""
    if isinstance(kb, bool) or not isinstance(kb, int) or not 0 <= kb <= MAX_MMAP_THRESHOLD_KB:
        raise ValueError(
            f"{flag} must be an integer from 0 (glibc's dynamic threshold) to {MAX_MMAP_THRESHOLD_KB}, got {kb!r}"
        )


def environment_setting() -> str | None:
    """The environment variable that already sets glibc's threshold, if any."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return "MALLOC_MMAP_THRESHOLD_"
    if "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    return None


def set_mmap_threshold(kb: int) -> str:
    """Fix glibc's mmap threshold at ``kb`` KiB for the rest of this process (and the data workers it forks).

    Returns what was done, in words (the training CLIs log it). ``kb == 0``, a threshold set in the environment and
    a C library other than glibc change nothing.
    """
    check_mmap_threshold(kb)
    variable = environment_setting()  # first: under the user's setting, even 0 does not mean glibc's dynamic threshold
    if variable:
        return f"malloc: the mmap threshold {variable} sets is kept"
    if kb == 0:
        return "malloc: glibc's dynamic mmap threshold (--malloc_mmap_threshold_kb 0)"
    if platform.libc_ver()[0] != "glibc":
        return "malloc: not glibc, the allocator is left as it is"
    libc = ctypes.CDLL(None)  # the C library this Python already runs on
    if libc.mallopt(_M_MMAP_THRESHOLD, kb * 1024) != 1:
        raise RuntimeError(f"glibc's mallopt refused an mmap threshold of {kb} KiB")
    return f"malloc: blocks of {kb} KiB and more are mmapped and returned on free (--malloc_mmap_threshold_kb)"
