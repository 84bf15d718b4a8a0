"""benchmarks/bench_device.py, the GPU check, run on the CPU at the tiny size: every row measured, compiled layers
giving our loss, the report written."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_device  # noqa: E402


def test_device_benchmark_measures_both_packages_and_the_compiled_layers(tmp_path):
    results = bench_device.main(
        ["--device", "cpu", "--size", "tiny", "--seconds", "1", "--batch", "2", "--repeats", "1"]
        + ["--precisions", "fp32", "bf16", "--compile", "aot_eager", "--probe_size", "256"]
        + ["--json", str(tmp_path / "r.json"), "--out", str(tmp_path / "r.md")]
    )
    assert json.loads((tmp_path / "r.json").read_text())["size"] == "tiny"
    names = {"ctc transformers", "ctc ours", "pretrain transformers", "pretrain ours", "pretrain ours compiled"}
    step_flop = 3 * 2 * results["flops"]["total"]
    for precision in ("fp32", "bf16"):
        rows = results[precision]["rows"]
        assert set(rows) == names and all(row["seconds"] > 0 for row in rows.values())
        assert math.isclose(rows["pretrain ours"]["tflops"], step_flop / rows["pretrain ours"]["seconds"] / 1e12)
        assert results[precision]["probe_tflops"] > 0
        # same weights, masks, distractors and Gumbel noise: compiling the layers changes no number
        ours, compiled = rows["pretrain ours"]["loss"], rows["pretrain ours compiled"]["loss"]
        assert math.isfinite(ours) and math.isclose(ours, compiled, rel_tol=1e-5)
    text = (tmp_path / "r.md").read_text()
    assert "| bf16 | pre-training step |" in text and "fp32 pre-training losses: transformers" in text


def test_gpu_check_script_runs_end_to_end_on_a_cpu(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ, DEVICE="cpu", SIZE="tiny", AUDIO_SECONDS="1", BATCH="2", COMPILE="aot_eager", OMP_NUM_THREADS="1"
    )
    proc = subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu_check.sh"), str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch" in (tmp_path / "environment.txt").read_text()
    results = json.loads((tmp_path / "device.json").read_text())
    assert (results["device"], results["size"], results["seconds"], results["batch"]) == (
        "CPU (1 threads)",
        "tiny",
        1,
        2,
    )
    assert results["bf16"]["rows"]["pretrain ours compiled"]["of_datasheet"] > 0
    assert "| fp32 | CTC forward |" in (tmp_path / "device.md").read_text()
