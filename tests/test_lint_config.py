"""The lint setup agrees with itself (one ruff version in pre-commit, CI and the test extra; CI runs both ruff
checks), and the tree is clean by it: .ci/run runs the suite, so a lint finding fails CI there too."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff_pins() -> dict[str, str]:
    """The ruff version each lint entry point installs, by file."""
    pre_commit = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    ci = (ROOT / ".github/workflows/ci.yml").read_text(encoding="utf-8")
    hook = re.search(r"astral-sh/ruff-pre-commit\s+rev:\s*v?([\d.]+)", pre_commit)
    pip = re.search(r"pip install ruff==([\d.]+)", ci)
    extra = re.search(r'^test = \[.*"ruff==([\d.]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    assert hook and pip and extra, "ruff is pinned in .pre-commit-config.yaml (rev), ci.yml and the test extra"
    return {"pre-commit": hook[1], "ci": pip[1], "test extra": extra[1]}


def test_the_tree_is_lint_and_format_clean():
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout[-3000:]}{done.stderr[-1000:]}"


def test_one_ruff_version_everywhere():
    pins = ruff_pins()
    assert len(set(pins.values())) == 1, pins


def test_ci_lint_job_checks_and_format_checks():
    ci = (ROOT / ".github/workflows/ci.yml").read_text(encoding="utf-8")
    lint_job = ci.split("  lint:", 1)[1].split("\n  test:", 1)[0]
    assert "ruff check ." in lint_job and "ruff format --check ." in lint_job
    assert "\n  test:" in ci  # the tests stay a job of their own beside the lint


def test_pre_commit_runs_linter_and_formatter():
    hooks = re.findall(r"-\s*id:\s*(\S+)", (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    assert hooks == ["ruff-check", "ruff-format"]  # the linter's fixes first, then the formatter


def test_ruff_settings_cover_lint_and_format():
    # pyproject.toml read as text: tomllib is 3.11+, and the package supports 3.10
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^\[(tool\.ruff[\w.]*)\]\n(.*?)(?=^\[|\Z)", text, flags=re.M | re.S))
    assert re.search(r"^line-length = 120$", sections["tool.ruff"], flags=re.M)
    assert re.search(r'^select = \["E", "F", "W", "I", "B"\]$', sections["tool.ruff.lint"], flags=re.M)
    assert 'quote-style = "double"' in sections["tool.ruff.format"]
    assert 'indent-style = "space"' in sections["tool.ruff.format"]
