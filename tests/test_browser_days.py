"""The real AlephBet client in headless Chromium counting through the real `lamed serve` over two
simulated UTC days. The clock is Debian's libfaketime preloaded into the `lamed serve` process
(and so its embedded redis-server): its FAKETIME_TIMESTAMP_FILE is re-read on every clock call
(FAKETIME_NO_CACHE), so the test moves serve's wall clock past midnight by rewriting the file.
Its monotonic clock moves with it (with FAKETIME_DONT_FAKE_MONOTONIC, libfaketime's own sleeps
fail with EINVAL): a jump forward only makes serve's deadlines expire sooner. Nothing of lamed is
replaced.
"""

import glob

import pytest
import requests

from conftest import browser_unavailable
from serve_cli import LamedServe
from test_browser import API_KEY, EXPERIMENT, NAMESPACE, Visitor, page_origin  # noqa: F401

LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
DAY_1, DAY_2 = "2026-03-01", "2026-03-02"


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory):
    if not LIBFAKETIME:
        browser_unavailable("libfaketime not found: apt-get install faketime")
    path = tmp_path_factory.mktemp("clock") / "faketime"
    path.write_text(f"@{DAY_1} 22:00:00\n")  # "@": starts there and runs on
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, clock_file):
    """`lamed serve` whose wall clock is the test's (page_origin of test_browser serves its track URL)."""
    clock = {"LD_PRELOAD": LIBFAKETIME[0], "FAKETIME_TIMESTAMP_FILE": str(clock_file),
             "FAKETIME_NO_CACHE": "1"}  # fmt: skip
    running = LamedServe(tmp_path_factory.mktemp("home"), env={"LAMED_API_KEY": API_KEY, **clock}).start()
    yield running
    running.stop()


def entry(server, **params) -> dict | None:
    response = requests.get(f"{server.url}/prod/experiments", params={"namespace": NAMESPACE, **params},
                            headers={"x-api-key": API_KEY}, timeout=5)  # fmt: skip
    assert response.status_code == 200, response.text
    return next((item for item in response.json()[1:] if item["experiment"] == EXPERIMENT), None)


def add(daily: dict, day: str, event: str, variant: str) -> None:
    variants = daily.setdefault(day, {}).setdefault(event, {})
    variants[variant] = variants.get(variant, 0) + 1


def test_alephbet_events_count_on_the_utc_day_serve_counted_them(chromium, page_origin, server, clock_file):  # noqa: F811
    opened, expected = [], {}

    def visitor():
        opened.append(Visitor(chromium, page_origin, server))
        return opened[-1]

    try:
        first, second = visitor(), visitor()
        a = first.visit()
        first.buy()
        b = second.visit()
        for event, variant in (("participate", a), ("bought", a), ("participate", b)):
            add(expected, DAY_1, event, variant)
        assert entry(server, days="1")["daily"] == expected

        clock_file.write_text(f"@{DAY_2} 02:00:00\n")  # past midnight, UTC
        second.buy()
        assert first.visit() == a  # a reload counts nothing new, on any day
        third = visitor()
        c = third.visit()
        third.page.click("#engage")
        third.delivered()
        for event, variant in (("bought", b), ("participate", c), ("engaged", c)):
            add(expected, DAY_2, event, variant)
        dated = entry(server, days="1")
        assert dated["daily"] == expected
        # Lamed's shape by default: the same entry without the days.
        assert entry(server) == {key: value for key, value in dated.items() if key != "daily"}
        assert sum(v["trials"] for v in dated["variants"]) == 3
        assert all(not visitor.errors for visitor in opened)
    finally:
        for opened_visitor in opened:
            opened_visitor.close()
