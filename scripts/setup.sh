#!/usr/bin/env bash
# Create .venv (if missing) and install loopynet with its test extras.
# torch is pinned to 2.13.0: the CPU build stored on this machine (any other spec may pull a
# multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import loopynet, torch; print(f'loopynet {loopynet.__version__}, torch {torch.__version__}')"
