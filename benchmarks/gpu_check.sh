#!/usr/bin/env bash
# Issue 15's GPU checks as one short run (sized for a few minutes on one H200; not run on a GPU yet), for a session
# lent a device machine:
#   bash benchmarks/gpu_check.sh OUT_DIR
# writes OUT_DIR/environment.txt, device.md / device.json (bench_device.py: fp32 and bf16 autocast, compiled layers,
# MFU against the probe and the datasheet peak) and cuda_tests.txt (the test suite's CUDA cases).
# DEVICE, SIZE, AUDIO_SECONDS, BATCH, COMPILE and PEAK_TFLOPS override the defaults (the tests run it on a CPU with
# DEVICE=cpu SIZE=tiny COMPILE=aot_eager).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: gpu_check.sh OUT_DIR}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout, installed or not
DEVICE=${DEVICE:-cuda} SIZE=${SIZE:-base} AUDIO_SECONDS=${AUDIO_SECONDS:-15} BATCH=${BATCH:-8}
COMPILE=${COMPILE:-inductor} PEAK_TFLOPS=${PEAK_TFLOPS:-989}  # H100/H200 SXM dense bf16
{
    date -u
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else ''); \
print('transformers', transformers.__version__)"
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv 2>/dev/null || true
} > "$out/environment.txt" 2>&1
cat "$out/environment.txt"
python3 benchmarks/bench_device.py --device "$DEVICE" --size "$SIZE" --seconds "$AUDIO_SECONDS" \
    --batch "$BATCH" \
    --precisions fp32 bf16 --compile "$COMPILE" --peak_tflops "$PEAK_TFLOPS" \
    --json "$out/device.json" --out "$out/device.md"
if [ "$DEVICE" = cuda ]; then  # the tests parametrized over devices run their CUDA cases
    python3 -m pytest -q tests/test_modeling_hf_wav2vec2.py -k cuda > "$out/cuda_tests.txt" 2>&1 || true
    tail -3 "$out/cuda_tests.txt"
fi
