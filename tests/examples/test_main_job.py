"""A tiny end-to-end run of the README's main job: export, pre-train, fine-tune, evaluate, save."""

import json
import sys
from pathlib import Path

import pytest

from hf_wav2vec2.corpora import asterisk

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

pytestmark = pytest.mark.skipif(
    not asterisk.is_installed(), reason=f"needs the Debian package {asterisk.DEBIAN_PACKAGE} (scripts/setup.sh)"
)


def test_quick_main_job_runs_every_stage(tmp_path, capsys):
    import main_job

    summary = main_job.main(["--quick", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "WER" in out and "pipeline('automatic-speech-recognition'" in out
    row = summary["results"]["pretrained"]
    assert 0.0 <= row["cer"] and 0.0 <= row["wer"]
    saved = json.loads((tmp_path / "main_job_results.json").read_text())
    assert saved["results"]["pretrained"]["wer"] == row["wer"]
    assert 0.0 <= row["pipeline"]["cer"] and "clip by clip (pipeline)" in out
    # the fine-tuned model loads through the stock pipeline by path
    from transformers import pipeline

    import hf_wav2vec2  # noqa: F401

    asr = pipeline("automatic-speech-recognition", model=str(tmp_path / "ctc"))
    wav = sorted((tmp_path / "data" / "test").glob("**/*.wav"))[0]
    assert isinstance(asr(str(wav))["text"], str)
    # a second run reuses the finished pre-training and only fine-tunes again
    before = (tmp_path / "pretrained" / "model.safetensors").stat().st_mtime_ns
    again = main_job.main(["--quick", "--workdir", str(tmp_path)])
    assert "reusing the finished pre-training" in capsys.readouterr().out
    assert (tmp_path / "pretrained" / "model.safetensors").stat().st_mtime_ns == before
    assert again["pretrain"]["num_updates"] == summary["pretrain"]["num_updates"]
    # ... unless it is another architecture than the preset builds now (a run from before the tiny preset was pre-LN)
    config_file = tmp_path / "pretrained" / "config.json"
    post_ln = config_file.read_text().replace('"do_stable_layer_norm": true', '"do_stable_layer_norm": false')
    config_file.write_text(post_ln)
    main_job.main(["--quick", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "is another architecture (do_stable_layer_norm=False (preset: True))" in out and "reusing" not in out
    assert json.loads(config_file.read_text())["do_stable_layer_norm"] is True
