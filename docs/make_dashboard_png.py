"""Makes ``docs/dashboard.png``, the README's picture: the real `lamed serve` dashboard page.

Counts AlephBet's events for two experiments over 14 UTC days through serve's own store (its
clock set to each day in turn; seeded, so the page is the same each run) on an embedded Redis,
serves them with serve's own server, opens ``/`` in headless Chromium (Debian's, or
CHROMIUM_PATH), enters the key and takes a full-page screenshot. The PNG carries the digest of the
page it shows (a tEXt chunk): tests/test_screenshot.py builds the same page and fails when the
committed picture is not of it.

    python docs/make_dashboard_png.py
"""

import hashlib
import os
import random
import re
import shutil
import struct
import sys
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "dashboard.png"
API_KEY = "dashboard-picture-key-0123"
WIDTH = 1280
FIRST_DAY = datetime(2026, 3, 1, 9, tzinfo=timezone.utc).timestamp()
DAYS = 14
# experiment -> goal, {variant: (participants a day, conversion rate)}
EXPERIMENTS = {
    "button colour": ("bought", {"control": (150, 0.100), "red": (150, 0.140), "tiny": (150, 0.060)}),
    "headline": ("signed up", {"control": (100, 0.210), "short": (100, 0.226)}),
}
DIGEST_KEY = b"lamed-page-sha256"


class Clock:
    """The time serve's store counts at: the day being seeded."""

    now = FIRST_DAY

    def __call__(self) -> float:
        return self.now


def seed(store, clock: Clock) -> None:
    """Each day's participants and conversions, counted by the store as /track would."""
    rng = random.Random(13)
    for day in range(DAYS):
        clock.now = FIRST_DAY + day * 86400
        for experiment, (goal, variants) in EXPERIMENTS.items():
            for variant, (participants, rate) in variants.items():
                for number in range(participants):
                    uuid = f"{experiment}-{variant}-{day}-{number}"
                    store.track("alephbet", experiment, variant, "participate", uuid)
                    if rng.random() < rate:
                        store.track("alephbet", experiment, variant, goal, uuid)


@contextmanager
def dashboard_server():
    """serve's server, on an embedded Redis seeded with the picture's events: yields its URL."""
    from lamed import handlers
    from lamed.redis_server import RedisServer
    from lamed.serve import make_server
    from lamed.store import Store

    clock = Clock()
    with RedisServer() as redis_server:
        store = Store(redis_server.client(), clock=clock)
        seed(store, clock)
        try:
            with make_server("127.0.0.1", 0, API_KEY, store) as server:
                yield server.start().url
        finally:
            handlers.use_store(None)


def page_digest(url: str) -> str:
    """SHA-256 of what the page is made of: ``/`` (its nonce left out) and ``/dashboard`` (its time left out)."""
    page = requests.get(f"{url}/?namespace=alephbet", timeout=30).text
    content = requests.get(f"{url}/dashboard?namespace=alephbet", headers={"x-api-key": API_KEY}, timeout=30).text
    page = re.sub(r'nonce="[^"]*"', "", page)
    content = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "", content)
    return hashlib.sha256(f"{page}\n{content}".encode()).hexdigest()


def open_dashboard(browser, url: str, width: int, height: int = 800):
    """A page on the dashboard at ``width`` px, key entered, results shown."""
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
    page.goto(f"{url}/?namespace=alephbet")
    page.locator("#key").fill(API_KEY)
    page.get_by_role("button", name="Show results").click()
    page.locator("section.card", has_text="headline").wait_for()
    return page


def with_text_chunk(png: bytes, key: bytes, text: str) -> bytes:
    """``png`` with a tEXt chunk ``key``: ``text`` after its header chunk."""
    data = key + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    end_of_header = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13 bytes and CRC
    return png[:end_of_header] + chunk + png[end_of_header:]


def text_chunk(png: bytes, key: bytes) -> str | None:
    """The text of the PNG's tEXt chunk ``key``, or None."""
    position = 8
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        data = png[position + 8 : position + 8 + length]
        if kind == b"tEXt" and data.startswith(key + b"\0"):
            return data[len(key) + 1 :].decode("latin-1")
        position += 12 + length
    return None


def main() -> None:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM_ARGS

    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not chromium:
        sys.exit("no Chromium: install Debian's `chromium` or set CHROMIUM_PATH")
    with dashboard_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        png = open_dashboard(browser, url, WIDTH).screenshot(full_page=True)
        browser.close()
        OUTPUT.write_bytes(with_text_chunk(png, DIGEST_KEY, page_digest(url)))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
