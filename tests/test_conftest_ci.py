"""The suite's own rule (tests/conftest.py): under CI=true a skipped test fails, unless marked skip_ok_in_ci."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE = """
import pytest

@pytest.mark.skipif(True, reason="needs a package setup.sh installs")
def test_marker_skip():
    pass

def test_importorskip():
    pytest.importorskip("no_such_module_for_this_test")

@pytest.mark.skip_ok_in_ci
@pytest.mark.skipif(True, reason="needs a GPU")
def test_allowed_skip():
    pass

@pytest.mark.xfail(reason="known failure")
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


def _run(folder: Path, ci: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout.splitlines()[-1]


def test_skips_fail_under_ci_and_stay_skips_elsewhere(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    assert _run(tmp_path, "true").startswith("1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error")
    assert _run(tmp_path, None).startswith("1 passed, 3 skipped, 1 xfailed")
    assert _run(tmp_path, "false").startswith("1 passed, 3 skipped, 1 xfailed")
