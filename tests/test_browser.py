"""End to end: the real AlephBet bundle in headless Chromium against the real `lamed serve`.

The page comes from a second local origin (so CORS is exercised) and is made of the
snippet lamed prints (`render_snippet`), loading AlephBet from npm instead of jsDelivr
(tests/browser/package.json pins the same version), and tests/browser/page.html. Without Chromium these tests skip,
unless LAMED_REQUIRE_BROWSER=1 (set by .ci/run), which makes that a failure.
"""

import functools
import json
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import browser_unavailable
from lamed.snippet import ALEPHBET_VERSION, render_snippet
from serve_cli import LamedServe

BROWSER_DIR = Path(__file__).parent / "browser"
BUNDLE = BROWSER_DIR / "node_modules" / "alephbet" / "dist" / "alephbet.min.js"
API_KEY = "browser-test-key-0123456789"
NAMESPACE = "e2e"
EXPERIMENT = "button colour"
# AlephBet keeps its state as JSON under localStorage["alephbet"]; the LamedAdapter's queue
# of unacknowledged events is the JSON string at key "_lamed_queue" in there. It re-sends
# the whole queue on each new event, and (thanks to the snippet's workaround for 0.27.0)
# at each page load.
QUEUE = "JSON.parse(JSON.parse(localStorage.getItem('alephbet') || '{}')._lamed_queue || '[]')"
TIMEOUT_MS = 15000
CDN_BUNDLE = f"https://cdn.jsdelivr.net/npm/alephbet@{ALEPHBET_VERSION}/dist/alephbet.min.js"
SNIPPET_SLOT = "<!-- lamed snippet: tests/test_browser.py serves this page with the snippet lamed prints here -->"
VARIANT = "document.documentElement.dataset.buttonColour"


@pytest.fixture(scope="session")
def alephbet_bundle():
    """Install the pinned AlephBet with npm (`npm ci` from the lock file) unless it is there."""
    if not BUNDLE.exists():
        npm = shutil.which("npm")
        if not npm:
            browser_unavailable("npm not found: install Node.js to fetch the AlephBet bundle")
        command = [npm, "ci" if (BROWSER_DIR / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
        result = subprocess.run(command, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return BUNDLE


def page_with_snippet(track_url: str) -> bytes:
    """tests/browser/page.html with the snippet lamed prints, loading AlephBet from node_modules."""
    pinned = json.loads((BROWSER_DIR / "package.json").read_text())["dependencies"]["alephbet"]
    assert pinned == ALEPHBET_VERSION, "tests/browser/package.json must pin the AlephBet of lamed/snippet.py"
    snippet = render_snippet(track_url, NAMESPACE)
    assert CDN_BUNDLE in snippet
    page = (BROWSER_DIR / "page.html").read_text()
    assert page.count(SNIPPET_SLOT) == 1
    local = str(BUNDLE.relative_to(BROWSER_DIR))
    return page.replace(SNIPPET_SLOT, snippet.replace(CDN_BUNDLE, local)).encode()


@pytest.fixture(scope="module")
def page_origin(alephbet_bundle, server):
    """A second origin that serves node_modules and the test page: at /page.html with the REST
    track URL, at /function-url-page.html with serve's function-URL (payload 2.0) path."""
    handler = functools.partial(QuietFiles, directory=str(BROWSER_DIR))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as files:
        files.pages = {
            "/page.html": page_with_snippet(f"{server.url}/prod/track"),
            "/function-url-page.html": page_with_snippet(f"{server.url}/function-url/"),
        }
        thread = threading.Thread(target=files.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{files.server_address[1]}"
        files.shutdown()
        thread.join()


class QuietFiles(SimpleHTTPRequestHandler):
    def do_GET(self):
        page = self.server.pages.get(urlsplit(self.path).path)
        if page is None:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real `lamed serve` on its embedded Redis, with HOME in a temporary folder."""
    running = LamedServe(tmp_path_factory.mktemp("home"), env={"LAMED_API_KEY": API_KEY}).start()
    yield running
    running.stop()


def experiments(server) -> dict:
    """{(event, variant): count} of the test experiment, read from /prod/experiments."""
    response = requests.get(
        f"{server.url}/prod/experiments", params={"namespace": NAMESPACE},
        headers={"x-api-key": API_KEY}, timeout=5,
    )
    assert response.status_code == 200, response.text
    counts = {}
    for entry in response.json()[1:]:
        if entry["experiment"] == EXPERIMENT:
            counts.update({("participate", v["label"]): v["trials"] for v in entry["variants"]})
            for goal in entry["goals"]:
                counts.update({(goal["goal"], r["label"]): r["successes"] for r in goal["results"]})
    return {key: count for key, count in counts.items() if count}


def await_counts(server, expected: dict, timeout: float = 10.0) -> None:
    """Poll /experiments until it shows exactly ``expected``, with a deadline."""
    deadline = time.monotonic() + timeout
    while (seen := experiments(server)) != expected:
        assert time.monotonic() < deadline, f"/experiments shows {seen}, expected {expected}"
        time.sleep(0.05)


class Visitor:
    """One browser context (its own localStorage) on the test page."""

    def __init__(self, chromium, page_origin, server, page="/page.html"):
        self.context = chromium.new_context()
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.url = f"{page_origin}{page}"

    def visit(self) -> str:
        """Load (or reload) the page, wait until AlephBet's queue is delivered; the variant."""
        self.page.goto(self.url)
        self.delivered()
        return self.page.evaluate(VARIANT)

    def delivered(self) -> None:
        """AlephBet drops an event from its queue only on HTTP 200: wait for an empty queue."""
        self.page.wait_for_function(f"{QUEUE}.length === 0", timeout=TIMEOUT_MS)

    def buy(self) -> None:
        """Reach the goal (click #buy) and wait until AlephBet has delivered its event."""
        self.page.click("#buy")
        self.delivered()

    def sent_events(self) -> list:
        """A list that fills with the event of each track request this page sends from now on."""
        events = []
        self.page.on("request", lambda request: "/prod/track?" in request.url and events.append(
            parse_qs(urlsplit(request.url).query)["event"][0]))
        return events

    def queue(self) -> list:
        return self.page.evaluate(QUEUE)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitors(chromium, page_origin, server):
    opened = []

    def open_visitor(page="/page.html"):
        opened.append(Visitor(chromium, page_origin, server, page))
        return opened[-1]

    yield open_visitor
    for visitor in opened:
        visitor.close()


def add(expected: dict, event: str, variant: str) -> None:
    expected[event, variant] = expected.get((event, variant), 0) + 1


def test_alephbet_counts_participants_and_goals_exactly(visitors, server):
    expected = experiments(server)
    first = visitors()
    variant = first.visit()
    assert variant in ("control", "red")
    colour = first.page.evaluate("getComputedStyle(document.querySelector('#buy')).color")
    assert (colour == "rgb(255, 0, 0)") == (variant == "red"), colour
    add(expected, "participate", variant)
    await_counts(server, expected)

    first.buy()
    add(expected, "bought", variant)
    await_counts(server, expected)

    # Reloads keep the variant and count nothing new; a second click is no new conversion.
    assert first.visit() == variant
    first.page.click("#buy")
    assert first.visit() == variant
    await_counts(server, expected)

    # AlephBet re-sends its whole queue on every event until each gets HTTP 200: two goals
    # in one tick send "bought" twice, and the server counts it once.
    second = visitors()
    other = second.visit()
    add(expected, "participate", other)
    events = second.sent_events()
    second.page.evaluate("bought.complete(); engaged.complete();")
    second.delivered()
    assert sorted(events) == ["bought", "bought", "engaged"]
    add(expected, "bought", other)
    add(expected, "engaged", other)
    await_counts(server, expected)
    assert first.errors == [] and second.errors == []


def buy_while_the_server_is_down(visitor, server) -> None:
    """Stop the server, click #buy: the goal stays in AlephBet's queue."""
    assert server.stop() == 0
    visitor.page.click("#buy")
    visitor.page.wait_for_function(f"{QUEUE}.length > 0", timeout=TIMEOUT_MS)
    assert [item["properties"]["event"] for item in visitor.queue()] == ["bought"]


def test_counts_survive_a_restart_and_a_goal_queued_while_down_arrives_after_it(visitors, server):
    visitor = visitors()
    variant = visitor.visit()
    expected = experiments(server)
    assert expected[("participate", variant)] >= 1

    buy_while_the_server_is_down(visitor, server)
    server.start()  # same HOME, same port: the embedded Redis reloads its append-only file
    assert experiments(server) == expected
    visitor.page.click("#engage")  # the next event flushes the queue: both reach the server
    visitor.delivered()
    add(expected, "bought", variant)
    add(expected, "engaged", variant)
    await_counts(server, expected)
    assert visitor.visit() == variant
    await_counts(server, expected)


def test_a_goal_left_unsent_by_one_page_is_sent_by_the_next_page_load(visitors, server):
    visitor = visitors()
    variant = visitor.visit()
    expected = experiments(server)

    buy_while_the_server_is_down(visitor, server)
    server.start()
    assert experiments(server) == expected
    sent = visitor.sent_events()
    visitor.page.goto(visitor.url)  # a new page load, and no new event on it
    add(expected, "bought", variant)
    await_counts(server, expected)
    visitor.delivered()
    assert sent == ["bought"]
    assert visitor.visit() == variant  # nothing left to send: counted exactly once
    await_counts(server, expected)


def test_alephbet_counts_through_the_function_url_path(visitors, server):
    """The same client and snippet on a Lambda function URL: serve hands lamed.track payload 2.0 events."""
    expected = experiments(server)
    visitor = visitors("/function-url-page.html")
    tracked = []
    visitor.page.on("request", lambda request: request.url.startswith(server.url) and tracked.append(urlsplit(request.url).path))
    variant = visitor.visit()
    add(expected, "participate", variant)
    await_counts(server, expected)
    visitor.buy()
    add(expected, "bought", variant)
    await_counts(server, expected)
    assert visitor.visit() == variant  # a reload counts nothing new
    await_counts(server, expected)
    assert tracked and set(tracked) == {"/function-url/"} and visitor.errors == []
