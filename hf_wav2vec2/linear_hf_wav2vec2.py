"""``Linear``: ``nn.Linear`` (same parameters, same state dict) whose float32 CPU product can run on oneDNN.

Why: torch's float32 matmul on x86 is MKL's sgemm, and MKL takes its AVX2 code path on AMD processors even where
they have AVX-512; oneDNN, which runs torch's convolutions, dispatches on the instruction set and uses AVX-512
there. On a 2-core AMD EPYC with AVX-512 (Zen 5), BASE-size products (996 x 768 x 3072, forward and backward):
MKL 206-214 GFLOP/s, oneDNN as a 1x1 convolution 392-472 GFLOP/s (``benchmarks/results/performance_cpu.md``).
A row-major (M, K) input is already an NHWC image of M pixels with K channels, so the 1x1 convolution reads it
and writes its (M, N) output without a copy; its backward is oneDNN's too.

When: float32 on the CPU, outside autocast, compilation, tracing and ONNX export (their graphs keep a plain
``linear``: the int8 export quantizes MatMuls), for products of at least ``ONEDNN_MIN_MACS`` multiply-adds (below
it the convolution's set-up costs more than it saves). Whether at all: ``Linear.onednn`` (True, False, or None for
the environment variable ``HF_WAV2VEC2_ONEDNN_LINEAR`` = 1/0, else on for AMD processors with AVX-512 only, the
case measured). The two paths agree to float32 rounding (about 1e-6 relative), not bit for bit.
"""

import functools
import os

import torch
import torch.nn.functional as F
from torch import nn

ONEDNN_MIN_MACS = 1 << 20
_ENV = "HF_WAV2VEC2_ONEDNN_LINEAR"


@functools.cache
def _amd_with_avx512() -> bool:
    if not torch.backends.mkldnn.is_available() or torch.backends.cpu.get_cpu_capability() not in ("AVX512",):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in f)
    except OSError:  # not Linux: the case was measured on Linux only
        return False


def onednn_default() -> bool:
    """Whether ``Linear.onednn = None`` means oneDNN: the environment variable if set (1/0), else the CPU's kind."""
    value = os.environ.get(_ENV, "").strip()
    if value in ("0", "1"):
        return value == "1"
    if value:
        raise ValueError(f"{_ENV} must be 0 or 1, got {value!r}")
    return _amd_with_avx512()


def onednn_wanted(setting: bool | None) -> bool:
    """A class's ``onednn``/``channels_last`` setting, None meaning :func:`onednn_default`."""
    return onednn_default() if setting is None else setting


def eager_cpu_float32(x) -> bool:
    """Whether ``x`` runs eagerly in float32 on a CPU: no trace, compilation, export or autocast (whose graphs and
    casts keep the plain operations). The tracing checks come first: the others would read what a trace records."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return False
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


def onednn_linear(x, weight, bias=None):  # (..., K) x (N, K) -> (..., N) as a 1x1 convolution over NHWC pixels
    rows, k = x.numel() // x.shape[-1], x.shape[-1]
    pixels = x.reshape(1, 1, rows, k).permute(0, 3, 1, 2)  # (1, K, 1, M) with channel stride 1: no copy
    out = F.conv2d(pixels, weight[:, :, None, None], bias)  # (1, N, 1, M), channels-last like its input
    return out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` whose float32 CPU forward (and so backward) may run on oneDNN (see the module docstring)."""

    onednn: bool | None = None

    def forward(self, x):
        if self._uses_onednn(x):
            return onednn_linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)

    def _uses_onednn(self, x) -> bool:
        weight = self.weight
        if not eager_cpu_float32(x) or weight.dtype != torch.float32 or x.dim() < 2:
            return False
        if type(weight) is not nn.Parameter or not x.is_contiguous():  # tensor subclasses (quantized, sharded)
            return False
        if x.numel() * weight.shape[0] < ONEDNN_MIN_MACS:  # rows x K x N
            return False
        return onednn_wanted(self.onednn)
