"""Start-up of the hf-wav2vec2 command: --help, subcommand --help and usage errors answer without importing torch or
transformers (seconds), while ``import hf_wav2vec2`` anywhere else still registers the Auto classes and the ASR
pipeline at once, and the command registers them before it uses a model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers")
# What pip writes for the console script hf_wav2vec2.cli:main (used when the installed one cannot be found).
LAUNCHER = """import re
import sys
from hf_wav2vec2.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


@pytest.fixture(scope="module")
def console_script(tmp_path_factory):
    """The installed ``hf-wav2vec2`` launcher (a Python file run by this interpreter), or pip's launcher text in a
    file of that name. (A pyenv shim on PATH is a shell script, so PATH is not searched.)"""
    installed = Path(sysconfig.get_path("scripts")) / "hf-wav2vec2"
    if installed.is_file() and "hf_wav2vec2.cli" in installed.read_text(errors="replace"):
        return installed
    script = tmp_path_factory.mktemp("bin") / "hf-wav2vec2"
    script.write_text(LAUNCHER)
    return script


def _env():
    # the checkout first, as for the tests themselves (an installed copy would answer for another tree)
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), HF_HUB_OFFLINE="1"
    )


def _run_importtime(command, cwd=None):
    """Run ``python -X importtime COMMAND...``; returns (completed process, set of top-level modules imported)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, timeout=300, env=_env(), cwd=cwd
    )
    imported = set()
    for line in completed.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            imported.add(name.split(".")[0])
    return completed, imported


@pytest.mark.parametrize(
    "args, status",
    [
        (["--help"], 0),
        (["transcribe", "--help"], 0),
        (["evaluate", "--help"], 0),
        (["convert", "--help"], 0),
        (["push", "--help"], 0),  # the Hub client and torch load only to publish
        (["build-lm", "--help"], 0),
        (["classify", "--help"], 0),
        (["pretrain", "--help"], 0),
        (["classify", "a.wav"], 2),  # --model missing
        (["transcribe"], 2),  # usage error: FILE and --model missing
        (["transcribe", "a.wav", "--format", "doc"], 2),
        (["pretrain", "--data", "d"], 2),  # --output_dir missing
        (["push", "no-such-dir", "me/x"], 2),  # checked by argparse types, before any import
        (["evaluate", "no-such-data", "-m", "m"], 2),
        (["no-such-command"], 2),
    ],
)
def test_console_script_answers_without_torch_or_transformers(console_script, args, status):
    completed, imported = _run_importtime([str(console_script), *args])
    assert completed.returncode == status, completed.stderr[-2000:]
    assert "usage: hf-wav2vec2" in (completed.stdout if status == 0 else completed.stderr)
    assert "Traceback" not in completed.stderr
    assert "hf_wav2vec2" in imported  # the parsing really ran through the package
    assert not imported & set(HEAVY), f"hf-wav2vec2 {' '.join(args)} imported {sorted(imported & set(HEAVY))}"


def test_help_lists_every_command_without_importing_them(console_script):
    """The training commands (finetune, finetune-classification) parse their own arguments with transformers; the
    top-level --help names them without importing that."""
    completed, imported = _run_importtime([str(console_script), "--help"])
    for name in ("classify", "finetune", "finetune-classification", "pretrain"):
        assert re.search(rf"^ +{name}(\s|$)", completed.stdout, re.MULTILINE), completed.stdout
    assert not imported & set(HEAVY)
    assert "hf_wav2vec2.training" not in completed.stderr  # -X importtime lists every module imported


def test_python_m_cli_help_is_fast_too():
    completed, imported = _run_importtime(["-m", "hf_wav2vec2.cli", "--help"])
    assert completed.returncode == 0 and "usage: hf-wav2vec2" in completed.stdout
    assert not imported & set(HEAVY)


def test_build_lm_runs_without_torch(console_script, tmp_path):
    (tmp_path / "text.txt").write_text("THE CAT SAT\nTHE CAT ATE\n")
    completed, imported = _run_importtime(
        [str(console_script), "build-lm", str(tmp_path / "text.txt"), str(tmp_path / "lm.arpa"), "--order", "2"]
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "\\data\\" in (tmp_path / "lm.arpa").read_text()
    assert not imported & set(HEAVY)


def _python(code: str, argv0: str | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; with ``argv0``, sys.argv[0] is that before anything is imported."""
    prelude = f"import sys; sys.argv[0] = {argv0!r}\n" if argv0 else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=300, env=_env()
    )


REGISTERED = """
from transformers import AutoConfig, AutoModelForCTC
from transformers.pipelines import PIPELINE_REGISTRY
config = AutoConfig.for_model("hf_wav2vec2")
tasks = PIPELINE_REGISTRY.supported_tasks
print(json.dumps({
    "config": type(config).__name__,
    "ctc": AutoModelForCTC._model_mapping[type(config)].__name__,
    "asr_impl_module": tasks["automatic-speech-recognition"]["impl"].__module__,
    "own_task": "hf-wav2vec2-asr" in tasks,
}))
"""
EXPECTED = {
    "config": "HfWav2Vec2Config",
    "ctc": "HfWav2Vec2ForCTC",
    "asr_impl_module": "hf_wav2vec2.pipeline_hf_wav2vec2",
    "own_task": True,
}


def test_plain_import_registers_the_auto_classes_and_the_pipeline():
    completed = _python(
        "import json, sys\nimport hf_wav2vec2\nassert 'torch' in sys.modules and hf_wav2vec2._registered\n" + REGISTERED
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == EXPECTED


@pytest.mark.parametrize(
    "first_use",
    [
        "hf_wav2vec2.HfWav2Vec2ForCTC",
        "hf_wav2vec2.register(); hf_wav2vec2.register()",
        "from hf_wav2vec2 import asr_pipeline",
    ],
)
def test_console_script_process_registers_on_first_use(first_use):
    code = (
        "import json, sys\nimport hf_wav2vec2\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules, 'registration was not deferred'\n"
        "from transformers import AutoConfig\n"
        "try:\n    AutoConfig.for_model('hf_wav2vec2')\nexcept ValueError:\n    pass\n"
        "else:\n    raise SystemExit('registered too early')\n"
        f"{first_use}\n" + REGISTERED
    )
    completed = _python(code, argv0="/usr/local/bin/hf-wav2vec2")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == EXPECTED


def test_import_after_transformers_registers_even_in_the_console_script():
    # whoever imported transformers first may already rely on the registration
    completed = _python(
        "import json, transformers\nimport hf_wav2vec2\n" + REGISTERED, argv0="/usr/local/bin/hf-wav2vec2"
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == EXPECTED


def test_public_names_and_submodules_resolve():
    import hf_wav2vec2
    from hf_wav2vec2 import modeling_hf_wav2vec2

    for name in hf_wav2vec2.__all__:
        assert getattr(hf_wav2vec2, name) is not None
        assert name in dir(hf_wav2vec2)
    assert hf_wav2vec2.compute_mask_indices is modeling_hf_wav2vec2.compute_mask_indices
    assert hf_wav2vec2.transcribe.asr_pipeline is hf_wav2vec2.asr_pipeline  # submodules, as after an eager import
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        hf_wav2vec2.NoSuchName  # noqa: B018 - the attribute access is what is under test


def test_pretrain_from_the_console_script_saves_a_registered_model(console_script, tmp_path):
    """hf-wav2vec2 pretrain defers registration to the training function: the saved model must still carry the
    auto_map and the modeling code that let AutoModel load it with trust_remote_code."""
    from pretrain_micro import pretrain_argv, write_corpus

    corpus = write_corpus(tmp_path, 4, 0.8, num_negatives=5)  # the pre-training tests' micro run
    out = tmp_path / "run"
    completed = subprocess.run(
        [
            sys.executable,
            str(console_script),
            "pretrain",
            *pretrain_argv(corpus, out, 2, "--report_to", "none", "--no_plot", "--cpu"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(_env(), OMP_NUM_THREADS="1"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModelForPreTraining"].endswith("HfWav2Vec2ForPreTraining")
    assert (out / "modeling_hf_wav2vec2.py").is_file()
