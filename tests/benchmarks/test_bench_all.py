"""Smoke test of benchmarks/bench_all.py on a tiny model: every section runs and lands in the report (no timing
assertions: speed goals live in the benchmark's output, not in tests)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_all.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_all  # noqa: E402

from hf_wav2vec2.linear_hf_wav2vec2 import onednn_default  # noqa: E402
from hf_wav2vec2.training.allocator import environment_setting  # noqa: E402


def test_tiny_run_writes_every_section(tmp_path):
    out = tmp_path / "perf.md"
    command = [
        sys.executable,
        str(SCRIPT),
        "--size",
        "tiny",
        "--repeats",
        "1",
        "--batches",
        "1,2",
        "--seconds",
        "1.5",
        "--train-batch",
        "2",
        "--train-seconds",
        "1",
        "--pretrain-rounds",
        "1",
        "--scaling-seconds",
        "1,2",
        "--long-seconds",
        "6",
        "--chunk-lengths",
        "2,3",
        "--accuracy-clips",
        "3",
        "--skip",
        "import",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    for heading in ("## CTC forward", "## Pre-training step", "## Fine-tuning step", "## Scaling with audio length"):
        assert heading in report
    for implementation in (
        "transformers",
        "hf-wav2vec2",
        "ONNX Runtime fp32",
        "ONNX Runtime int8",
        bench_all.INT8_CONV_STACK,
    ):
        assert f"| {implementation} |" in report
    assert "## Start-up" not in report  # skipped
    assert "## int8 accuracy on real speech" in report
    assert out.with_suffix(".png").stat().st_size > 1000
    results = json.loads(out.with_suffix(".json").read_text())
    rows = 6  # ours also with MKL's products where oneDNN's are the default, else with oneDNN's convolutions
    assert results["onednn_default"] == onednn_default()
    assert [r["batch"] for r in results["forward"]] == [1] * rows + [2] * rows
    # fp32 ONNX and ours agree with transformers frame by frame (same weights); int8 need not
    assert all(r["argmax_agreement"] >= 0.99 for r in results["forward"] if "int8" not in r["impl"])
    assert [r["seconds"] for r in results["scaling"]] == [1.0, 2.0]
    assert all(r["peak_rss_mb"] > 0 for r in results["scaling"])
    pretrain = results["pretrain"]
    variant = "hf-wav2vec2, MKL products" if onednn_default() else "hf-wav2vec2, oneDNN convolutions"
    assert variant in {r["impl"] for r in results["forward"]} and variant in results["finetune"]
    assert set(bench_all.PRETRAIN_IMPLS) == {
        "transformers",
        "hf-wav2vec2",
        "transformers, checkpointed",
        "hf-wav2vec2, checkpointed",
        "hf-wav2vec2, conv activations kept",
        "transformers, BASE dropouts",
        "hf-wav2vec2, BASE dropouts",
        "hf-wav2vec2, MKL products",
        "hf-wav2vec2, oneDNN convolutions",
        "transformers, 1 MiB mmap threshold",
        "hf-wav2vec2, 1 MiB mmap threshold",
    }
    assert set(pretrain) == set(bench_all.PRETRAIN_IMPLS) - {
        "hf-wav2vec2, MKL products",
        "hf-wav2vec2, oneDNN convolutions",
    } | {variant}
    for impl in ("transformers", "hf-wav2vec2"):  # recomputing activations changes no loss
        assert pretrain[f"{impl}, checkpointed"]["loss"] == pytest.approx(pretrain[impl]["loss"], rel=1e-5), impl
    # bit-exact where the conv stack runs on oneDNN's convolutions either way; else float32 rounding
    kept_loss = pretrain["hf-wav2vec2, conv activations kept"]["loss"]
    assert kept_loss == pytest.approx(pretrain["hf-wav2vec2"]["loss"], rel=0 if onednn_default() else 1e-5)
    assert "With activation checkpointing (transformers: its conv and transformer layers" in report
    assert "Without recomputing the conv stack's norms and GELUs" in report
    assert "With the BASE recipe's dropouts" in report
    assert pretrain[variant]["loss"] == pytest.approx(pretrain["hf-wav2vec2"]["loss"], rel=1e-5)
    if onednn_default():
        assert "Ours with every `Linear` on torch's matmul (MKL" in report
    else:
        assert "Ours with the conv stack on oneDNN's convolutions (`FeatureEncoder.frame_products = False`)" in report
    for impl in ("transformers", "hf-wav2vec2"):  # the dropouts act: another loss than without
        assert pretrain[f"{impl}, BASE dropouts"]["loss"] != pretrain[impl]["loss"], impl
    for impl in ("transformers", "hf-wav2vec2"):  # where memory comes from changes no arithmetic
        fixed = pretrain[f"{impl}, 1 MiB mmap threshold"]
        assert fixed["loss"] == pytest.approx(pretrain[impl]["loss"], rel=1e-5), impl
        if environment_setting() is None:  # else the environment's threshold wins in every row
            assert fixed["allocator"].startswith("malloc: blocks of 1024 KiB and more are mmapped"), impl
            assert (
                pretrain[impl]["allocator"] == "malloc: glibc's dynamic mmap threshold (--malloc_mmap_threshold_kb 0)"
            ), impl
    assert "With glibc's mmap threshold fixed at 1 MiB in both processes" in report


def test_flop_count_of_base_matches_the_known_figure():
    """About 148 GFLOP per 10 s for BASE (conv stack a third); attention's share grows with length."""
    from transformers import Wav2Vec2Config

    config = Wav2Vec2Config()
    ten = bench_all.forward_flops(config, 160000)
    assert ten["frames"] == 499
    assert 140e9 < ten["total"] < 156e9
    assert 0.3 < ten["conv"] / ten["total"] < 0.36
    minute = bench_all.forward_flops(config, 60 * 160000 // 10)
    assert minute["attention"] / minute["total"] > 3 * ten["attention"] / ten["total"]


def test_pretrain_variants_choose_the_rows():
    products = "hf-wav2vec2, MKL products" if onednn_default() else "hf-wav2vec2, oneDNN convolutions"
    assert bench_all.pretrain_rows(set()) == ["transformers", "hf-wav2vec2"]
    assert bench_all.pretrain_rows({"mmap"}) == [
        "transformers",
        "hf-wav2vec2",
        "transformers, 1 MiB mmap threshold",
        "hf-wav2vec2, 1 MiB mmap threshold",
    ]
    assert bench_all.pretrain_rows({"products", "conv_kept"}) == [
        "transformers",
        "hf-wav2vec2",
        "hf-wav2vec2, conv activations kept",
        products,
    ]
    every = bench_all.pretrain_rows(set(bench_all.PRETRAIN_VARIANTS))
    other_products = {"hf-wav2vec2, MKL products", "hf-wav2vec2, oneDNN convolutions"} - {products}
    assert every == [r for r in bench_all.PRETRAIN_IMPLS if r not in other_products]
    assert bench_all.parse_args([]).pretrain_variants == set(bench_all.PRETRAIN_VARIANTS)


def test_unknown_pretrain_variant_is_an_error(capsys):
    with pytest.raises(SystemExit):
        bench_all.parse_args(["--pretrain-variants", "mmap,fast"])
    assert "--pretrain-variants: unknown variant(s) fast" in capsys.readouterr().err


def test_unknown_section_is_an_error(capsys):
    with pytest.raises(SystemExit):
        bench_all.parse_args(["--skip", "forward,speed"])
    assert "--skip: unknown section(s) speed" in capsys.readouterr().err
