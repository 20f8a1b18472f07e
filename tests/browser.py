"""Headless Chromium for page tests: the `chromium_driver` fixture (selenium WebDriver).

The browser is the Debian `chromium` package and its driver `chromium-driver` (/usr/bin/chromium,
/usr/bin/chromedriver), installed by scripts/install-browser.sh, which scripts/test.sh runs. A missing
browser fails the test (never a silent skip). Every test gets a fresh profile (--user-data-dir) and a
browser that reaches nothing on its own (no sync, component updates or background networking).
Registered for every test by `pytest_plugins = ["tests.browser"]` in tests/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1200,900")


@pytest.fixture
def chromium_driver(tmp_path):
    """A selenium Chrome WebDriver on headless Chromium with a fresh profile; its browser log (console
    messages) is readable with `driver.get_log("browser")`. Quit after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert path.is_file() and os.access(path, os.X_OK), f"{path} is missing: run scripts/install-browser.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
