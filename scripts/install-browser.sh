#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages `chromium`, `chromium-driver`) for the
# browser tests (tests/browser.py). Idempotent: does nothing when both are already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver > /dev/null
/usr/bin/chromium --version
