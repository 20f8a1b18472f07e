#!/usr/bin/env bash
# Set up .venv and run the test suite (unit + integration on slices of the real data in
# ../shared/data, or $LOOPYNET_SHARED_DATA). Full-size runs are marked `slow` and not selected.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
