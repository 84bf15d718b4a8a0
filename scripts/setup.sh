#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Python 3.11 (run as root, or with sudo available).
# Installs the CPU build of torch FIRST: an unpinned torch requirement on a machine without torch pulls a
# multi-GB CUDA build. On a GPU machine, install your CUDA torch yourself before running this script.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

# System packages: real recorded English speech (asterisk prompts, CC-BY-SA 3.0) for the demo, tests and
# benchmarks, with its transcripts package (--no-install-recommends does not pull it in; where /usr/share/doc is
# excluded, the copy shipped in hf_wav2vec2/corpora/data/ is used); the Spanish prompts (same speaker) for the
# keyword-spotting benchmark's digits, with their transcripts (the new language of benchmarks/bench_mms_adapters.py);
# the French, Italian and Russian prompts (about 25 MB each installed), which with English and Spanish are the five
# voices the pre-training objective benchmark (benchmarks/objective_vs_transformers.py) trains on; ffmpeg to decode
# formats libsndfile cannot; chromium for the demo page's browser test (tests/examples/test_app.py).
need_apt=()
for pkg in asterisk-core-sounds-en-wav asterisk-core-sounds-en asterisk-core-sounds-es-wav asterisk-core-sounds-es \
           asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav ffmpeg chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
    else
        echo "setup.sh: please install ${need_apt[*]} with your package manager" >&2
    fi
fi

if ! $PYTHON -c "import torch" >/dev/null 2>&1; then
    $PYTHON -m pip install -q "torch==2.13.0"
fi
$PYTHON -m pip install -q -e ".[train,lm,test,demo,onnx]"
