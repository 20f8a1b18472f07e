#!/usr/bin/env bash
# Create .venv (if missing) and install loopynet with its test extras.
# torch is pinned to 2.13.0: the CPU build stored on this machine (any other spec may pull a
# multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# pip's output without its "WARNING: Location ..." noise; a failing pip still fails this script
# (grep's own status is ignored: it is 1 when every line was filtered out).
pip_install() {
  local status=0
  .venv/bin/python -m pip install --quiet "$@" > .venv/pip.log 2>&1 || status=$?
  grep -v "^WARNING: Location" .venv/pip.log || true
  return "$status"
}
pip_install --upgrade pip
pip_install "torch==2.13.0" -e ".[test]"
.venv/bin/python -c "
import loopynet, torch
assert torch.__version__.split('+')[0] == '2.13.0', f'torch {torch.__version__} installed, loopynet pins 2.13.0'
print(f'loopynet {loopynet.__version__}, torch {torch.__version__}')"
