"""glibc's mmap threshold (hf_wav2vec2.training.allocator): each check runs in a fresh interpreter, because the
threshold is process-wide and glibc's dynamic threshold remembers every free."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from hf_wav2vec2.training import allocator
from hf_wav2vec2.training.allocator import check_mmap_threshold, set_mmap_threshold
from hf_wav2vec2.training.pretrain_args import parse_args

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt and mallinfo2 are glibc's")

# mallinfo2().hblks counts the blocks glibc holds with mmap: a 2 MiB block either adds one or lands on the heap
PROBE = """
import ctypes, importlib.util
# the module alone, by its path: importing the package would take seconds per probe
spec = importlib.util.spec_from_file_location("allocator", ALLOCATOR_PATH)
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
set_mmap_threshold = allocator.set_mmap_threshold
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def mmapped(nbytes):
    before = libc.mallinfo2().hblks
    block = libc.malloc(nbytes)
    counted = libc.mallinfo2().hblks - before
    libc.free(block)
    return counted == 1
"""


def _run(body: str, env_extra: dict | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")}
    env.update(env_extra or {})
    code = f"ALLOCATOR_PATH = {allocator.__file__!r}\n" + PROBE + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


@glibc_only
def test_the_threshold_decides_whether_a_2_mib_block_is_mmapped():
    # one process each: a block freed on the heap stays there for the next malloc, whatever the threshold
    above = _run("print(set_mmap_threshold(4096)); print(mmapped(2 << 20))")
    assert above[0].startswith("malloc: blocks of 4096 KiB") and above[1] == "False"
    below = _run("print(set_mmap_threshold(1024)); print(mmapped(2 << 20))")
    assert below[0].startswith("malloc: blocks of 1024 KiB") and below[1] == "True"


@glibc_only
def test_a_fixed_threshold_stops_glibc_moving_freed_blocks_onto_the_heap():
    # glibc's dynamic threshold rises to the size of each freed mmapped block, so the second 2 MiB block is heap
    dynamic = _run("print(set_mmap_threshold(0)); print(mmapped(2 << 20), mmapped(2 << 20))")
    assert dynamic[0] == "malloc: glibc's dynamic mmap threshold (--malloc_mmap_threshold_kb 0)"
    assert dynamic[1] == "True False"
    fixed = _run("set_mmap_threshold(1024); print(mmapped(2 << 20), mmapped(2 << 20), mmapped(2 << 20))")
    assert fixed[0] == "True True True"


@glibc_only
def test_a_threshold_set_in_the_environment_is_kept():
    lines = _run("print(set_mmap_threshold(1024)); print(mmapped(2 << 20))", {"MALLOC_MMAP_THRESHOLD_": "8388608"})
    assert lines[0] == "malloc: the mmap threshold MALLOC_MMAP_THRESHOLD_ sets is kept" and lines[1] == "False"
    # 0 under the user's setting is not glibc's dynamic threshold either: the description says whose it is
    zero = _run("print(set_mmap_threshold(0)); print(mmapped(2 << 20))", {"MALLOC_MMAP_THRESHOLD_": "1048576"})
    assert zero[0] == "malloc: the mmap threshold MALLOC_MMAP_THRESHOLD_ sets is kept" and zero[1] == "True"


@pytest.mark.parametrize("bad", [-1, 32 * 1024 + 1, True, "1", 1.5])
def test_bad_thresholds_are_refused_in_one_line(bad):
    with pytest.raises(ValueError, match=r"^--malloc_mmap_threshold_kb must be an integer from 0 .* to 32768, got"):
        check_mmap_threshold(bad)
    with pytest.raises(ValueError, match="must be an integer"):
        set_mmap_threshold(bad)


def test_the_pretrain_flag_is_checked_at_parse_time(tmp_path, capsys):
    argv = ["--data", str(tmp_path / "m.tsv"), "--output_dir", str(tmp_path / "out")]
    assert parse_args(argv).malloc_mmap_threshold_kb == 1024
    assert parse_args([*argv, "--malloc_mmap_threshold_kb", "0"]).malloc_mmap_threshold_kb == 0
    with pytest.raises(SystemExit) as exit_info:
        parse_args([*argv, "--malloc_mmap_threshold_kb", "40000"])
    assert exit_info.value.code == 2
    assert "--malloc_mmap_threshold_kb must be an integer from 0" in capsys.readouterr().err
