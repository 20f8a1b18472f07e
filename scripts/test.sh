#!/usr/bin/env bash
# Set up .venv and run the test suite: pyproject's addopts select the `unit` tests (tiny fixtures) and
# the `integration` tests (slices of the real data in ../shared/data, or $LOOPYNET_SHARED_DATA), not the
# full-size runs marked `slow` (-m slow runs those; -m unit only the unit tests).
set -euo pipefail
if [ -n "${LOOPYNET_SHARED_DATA:-}" ]; then  # relative to where the script is called from
  LOOPYNET_SHARED_DATA=$(realpath -m "$LOOPYNET_SHARED_DATA")
  export LOOPYNET_SHARED_DATA
fi
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-browser.sh  # headless Chromium for the page tests (tests/browser.py)
.venv/bin/python -m pytest "$@"
