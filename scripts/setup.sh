#!/usr/bin/env bash
# Set up a local environment for foleykit in ./.venv (idempotent).
#
#   bash scripts/setup.sh          # runtime: generate, controls, eval
#   bash scripts/setup.sh --dev    # + training, web app and test tools (what CI uses)
#
# Where no NVIDIA GPU is present, the CPU build of PyTorch is installed first so that
# resolving `torch>=2.4` never pulls a multi-GB CUDA build. Override with FOLEYKIT_TORCH_SPEC.
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
  else
    # CPU machine: the pinned CPU wheel (on local disk on the reference machines).
    spec="${FOLEYKIT_TORCH_SPEC:-torch==2.13.0}"
  fi
  echo "setup.sh: installing $spec" >&2
  "$VPY" -m pip install -q "$spec"
fi

"$VPY" -m pip install -q -e ".${extras}"
# aisfx (packaged sound-effect embedder, CC BY 4.0) pins ancient numpy/librosa in its metadata,
# so it is installed without its declared dependencies (ours already cover what it needs).
if ! "$VPY" -c "import aisfx" >/dev/null 2>&1; then
  "$VPY" -m pip install -q --no-deps "aisfx>=0.1.2"
fi

if [ "$extras" = "[train,app,dev]" ] && [ -z "${FOLEYKIT_SKIP_BROWSER:-}" ]; then
  # Headless Chromium for the web-app test (Debian package; never a tool-downloaded browser).
  if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup.sh: chromium could not be installed; browser tests will be skipped" >&2
  fi
fi
echo "setup.sh: ready (.venv)" >&2
