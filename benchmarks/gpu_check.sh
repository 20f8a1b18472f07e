#!/usr/bin/env bash
# One short run of loopynet on a GPU machine (under 10 minutes; no internet and no ../shared needed).
#
#   bash benchmarks/gpu_check.sh                 # the machine's own python3 and torch
#   PYTHON=/path/to/python bash benchmarks/gpu_check.sh [gpu_check.py options, e.g. --device cpu --quick]
#
# 1. checks that torch sees CUDA (unless --device cpu or auto is passed): else one line, exit 2;
# 2. installs loopynet into that Python without dependencies or downloads
#    (pip install --no-deps --no-build-isolation -e .); if that fails, runs from src/ instead;
# 3. runs benchmarks/gpu_check.py: the book's network at 50 and 100 units and a 2,000-review imdb-rnn
#    epoch on CUDA; prints a table and writes benchmarks/results/gpu_check.json (also to $OUT if set).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

case " $* " in
  *" --device cpu "*|*" --device auto "*) ;;
  *) "$PYTHON" - <<'PY' || exit 2
import sys
try:
    import torch
except ImportError as err:
    sys.exit(f"gpu_check: error: torch is not importable from {sys.executable} ({err})")
if not torch.cuda.is_available():
    why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA device is visible"
    sys.exit(f"gpu_check: error: CUDA is not available ({why}, torch {torch.__version__}); "
             "pass --device cpu to run the same checks on the CPU")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY
  ;;
esac

if ! "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation -e . > /tmp/loopynet-gpu-check-pip.log 2>&1; then
  echo "gpu_check: pip install -e . failed (see /tmp/loopynet-gpu-check-pip.log); running from src/" >&2
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
timeout 570 "$PYTHON" benchmarks/gpu_check.py "$@"
if [ -n "${OUT:-}" ] && [ -d "${OUT}" ] && [ -f benchmarks/results/gpu_check.json ]; then
  cp benchmarks/results/gpu_check.json "$OUT/"
fi
