"""Facts about the machine a benchmark ran on, for the reports in ``benchmarks/results/``."""

import platform

import torch


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def cpu_description() -> str:
    """CPU model, its vector instructions as torch dispatches them (AVX2, AVX512, ...) and which product backend
    ``hf_wav2vec2.linear_hf_wav2vec2`` picks by default: results differ across these."""
    from hf_wav2vec2.linear_hf_wav2vec2 import onednn_default

    products = "oneDNN" if onednn_default() else "MKL"
    return f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()}, float32 products on {products})"
