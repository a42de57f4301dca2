"""Makes ``docs/dashboard.png``, the README's picture: the real `lamed serve` dashboard page.

Starts `lamed serve` (embedded Redis, HOME in a temporary folder), sends AlephBet's events
for two experiments through /prod/track (seeded, so the picture is the same each run),
opens ``/`` in headless Chromium (Debian's, or CHROMIUM_PATH), enters the key and takes a
full-page screenshot.

    python docs/make_dashboard_png.py
"""

import os
import random
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import CHROMIUM_ARGS  # noqa: E402
from serve_cli import LamedServe  # noqa: E402

OUTPUT = HERE / "dashboard.png"
API_KEY = "dashboard-picture-key-0123"
# experiment -> goal, {variant: (participants, conversion rate)}
EXPERIMENTS = {
    "button colour": ("bought", {"control": (1200, 0.100), "red": (1200, 0.140), "green": (1200, 0.097)}),
    "headline": ("signed up", {"control": (900, 0.210), "short": (900, 0.226)}),
}


def events() -> list[dict]:
    rng = random.Random(13)
    sent = []
    for experiment, (goal, variants) in EXPERIMENTS.items():
        for variant, (participants, rate) in variants.items():
            for number in range(participants):
                uuid = f"{experiment}-{variant}-{number}"
                sent.append({"experiment": experiment, "variant": variant, "event": "participate", "uuid": uuid})
                if rng.random() < rate:
                    sent.append({"experiment": experiment, "variant": variant, "event": goal, "uuid": uuid})
    return sent


def main() -> None:
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not chromium:
        sys.exit("no Chromium: install Debian's `chromium` or set CHROMIUM_PATH")
    with tempfile.TemporaryDirectory() as home, LamedServe(Path(home), "--api-key", API_KEY) as server:
        with requests.Session() as session, ThreadPoolExecutor(8) as pool:
            answers = pool.map(lambda query: session.get(f"{server.url}/prod/track", params=query, timeout=10), events())
            assert all(answer.status_code == 200 for answer in answers)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 800}, device_scale_factor=1)
            page.goto(f"{server.url}/")
            page.locator("#key").fill(API_KEY)
            page.get_by_role("button", name="Show results").click()
            page.locator("section.card", has_text="headline").wait_for()
            page.screenshot(path=str(OUTPUT), full_page=True)
            browser.close()
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
