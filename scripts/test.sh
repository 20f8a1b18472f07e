#!/usr/bin/env bash
# Set up .venv and run the test suite (unit + integration on slices of the real data in
# ../shared/data, or $LOOPYNET_SHARED_DATA). Full-size runs are marked `slow` and not selected.
set -euo pipefail
if [ -n "${LOOPYNET_SHARED_DATA:-}" ]; then  # relative to where the script is called from
  LOOPYNET_SHARED_DATA=$(realpath -m "$LOOPYNET_SHARED_DATA")
  export LOOPYNET_SHARED_DATA
fi
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
