"""Screenshots of loopynet's HTML pages (explain, encode --map) in headless Chromium, for docs/.

    .venv/bin/python scripts/explain_screenshots.py PAGE.html OUT.png [PAGE2.html OUT2.png ...] [--width 1200]

Each page is opened from file://, the viewport made as tall as the page (at most --max-height pixels) and
the screenshot written atomically. Uses tests/browser.py's Chromium settings (scripts/install-browser.sh).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loopynet.io.atomic import atomic_file  # noqa: E402
from tests.browser import start_chromium  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", help="PAGE.html OUT.png pairs")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--max-height", type=int, default=6000)
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("give PAGE.html OUT.png pairs")
    with tempfile.TemporaryDirectory() as profile:
        driver = start_chromium(Path(profile))
        try:
            for page, out in zip(args.pairs[::2], args.pairs[1::2]):
                metrics = {"width": args.width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
                driver.get(Path(page).resolve().as_uri())
                height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), args.max_height)
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics | {"height": height})
                with atomic_file(out) as f:
                    f.write(driver.get_screenshot_as_png())
                errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
                print(f"{out}: {page}, {height} px tall, console errors: {len(errors)}")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
