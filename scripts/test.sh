#!/usr/bin/env bash
# What CI runs after set-up (.ci/run): the linters, then the whole test suite. Extra arguments go to pytest.
#
#   bash scripts/test.sh            (after bash scripts/setup.sh --dev)
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest -q "$@"
