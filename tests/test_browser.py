"""End to end: the real AlephBet bundle in headless Chromium against the real `lamed serve`.

The page comes from a second local origin (so CORS is exercised) and is made of the
snippet `lamed serve` prints, loading AlephBet from serve itself (lamed's copy of the pinned
bundle), and tests/browser/page.html. Every browser context is offline but for loopback: a request
elsewhere (jsDelivr, say) is refused and recorded. The CSP-friendly form runs on a page whose
Content-Security-Policy allows scripts from its own origin only, which serves lamed's two files.
Without Chromium these tests skip, unless LAMED_REQUIRE_BROWSER=1 (set by .ci/run), which makes
that a failure. npm's copy of the bundle (tests/browser/package.json pins the same version) is the
reference that lamed's copy and its integrity hash are checked against.
"""

import json
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import browser_unavailable
from lamed import static_files
from lamed.snippet import ALEPHBET_CDN_URL, ALEPHBET_VERSION, render_csp_snippet, render_snippet
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
SNIPPET_SLOT = "<!-- lamed snippet: tests/test_browser.py serves this page with the snippet lamed prints here -->"
VARIANT = "document.documentElement.dataset.buttonColour"
# Any URL but loopback's: a regular expression, which Playwright matches without stopping the others.
OFFSITE = re.compile(r"^(?!https?://127\.0\.0\.1[:/])")


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


def page_with_snippet(track_url: str, bundle_url: str) -> bytes:
    """tests/browser/page.html with the snippet lamed prints, loading AlephBet from ``bundle_url``."""
    pinned = json.loads((BROWSER_DIR / "package.json").read_text())["dependencies"]["alephbet"]
    assert pinned == ALEPHBET_VERSION, "tests/browser/package.json must pin the AlephBet of lamed/snippet.py"
    page = (BROWSER_DIR / "page.html").read_text()
    assert page.count(SNIPPET_SLOT) == 1
    return page.replace(SNIPPET_SLOT, render_snippet(track_url, NAMESPACE, bundle_url)).encode()


CSP_PAGE = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>lamed under a Content-Security-Policy</title>
  <link rel="stylesheet" href="/page.css">
  {snippet}
</head>
<body>
  <button id="buy" data-lamed-goal="bought">Buy</button>
</body>
</html>
"""
CSP_STYLE = b'html[data-button-colour="red"] #buy { color: red; }\n'


def csp_page(track_url: str, origin: str) -> bytes:
    """A page made of the CSP-friendly snippet, lamed's two files served by the page's own origin."""
    snippet = render_csp_snippet(
        track_url, NAMESPACE, f"{origin}/static/{static_files.BUNDLE}", f"{origin}/static/{static_files.CSP_SCRIPT}"
    )
    return CSP_PAGE.format(snippet=snippet).encode()


@pytest.fixture(scope="module")
def page_origin(server):
    """A second origin that serves the test pages: at /page.html with the REST track URL, at
    /function-url-page.html with serve's function-URL (payload 2.0) path, and under
    ``Content-Security-Policy: default-src 'self'; connect-src <serve>`` the CSP-friendly form
    (/csp-page.html) and the inline one (/inline-csp-page.html), with lamed's files under /static."""
    with ThreadingHTTPServer(("127.0.0.1", 0), QuietFiles) as files:
        origin = f"http://127.0.0.1:{files.server_address[1]}"
        bundle = f"{server.url}/{static_files.BUNDLE}"
        static = {f"/static/{name}": (static_files.FOLDER / name).read_bytes() for name in (static_files.BUNDLE, static_files.CSP_SCRIPT)}
        files.pages = {
            "/page.html": page_with_snippet(f"{server.url}/prod/track", bundle),
            "/function-url-page.html": page_with_snippet(f"{server.url}/function-url/", bundle),
            "/csp-page.html": csp_page(f"{server.url}/prod/track", origin),
            "/inline-csp-page.html": page_with_snippet(f"{server.url}/prod/track", f"{origin}/static/{static_files.BUNDLE}"),
            "/cdn-page.html": page_with_snippet(f"{server.url}/prod/track", ALEPHBET_CDN_URL),
            "/page.css": CSP_STYLE,
            "/favicon.ico": b"",
            **static,
        }
        files.csp = f"default-src 'self'; connect-src {server.url}"
        thread = threading.Thread(target=files.serve_forever, daemon=True)
        thread.start()
        yield origin
        files.shutdown()
        thread.join()


CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript", ".ico": "image/x-icon"}


class QuietFiles(BaseHTTPRequestHandler):
    def do_GET(self):
        path = urlsplit(self.path).path
        page = self.server.pages.get(path)
        if page is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES[Path(path).suffix])
        if "csp" in path:
            self.send_header("Content-Security-Policy", self.server.csp)
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
        self.offsite = []  # requests beyond loopback: refused, as offline
        self.context.route(OFFSITE, self._refuse)

    def _refuse(self, route) -> None:
        self.offsite.append(route.request.url)
        route.abort("internetdisconnected")

    def visit(self) -> str:
        """Load (or reload) the page, wait until AlephBet's queue is delivered; the variant."""
        self.page.goto(self.url)
        self.delivered()
        return self.page.evaluate(VARIANT)

    def delivered(self) -> None:
        """AlephBet drops an event from its queue only on HTTP 200: wait for an empty queue."""
        self.wait_until(f"{QUEUE}.length === 0")

    def wait_until(self, condition: str) -> None:
        """Wait in the page until the JavaScript ``condition`` holds. Not with wait_for_function, whose
        polling compiles the condition with eval, which the CSP page's policy refuses: here the
        condition is part of the function page.evaluate compiles (outside the page's policy)."""
        self.page.evaluate(f"""() => new Promise((resolve, reject) => {{
            const deadline = Date.now() + {TIMEOUT_MS};
            const poll = () => ({condition}) ? resolve()
                : Date.now() > deadline ? reject(new Error({json.dumps("timed out waiting for " + condition)}))
                : setTimeout(poll, 20);
            poll();
        }})""")

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
    visitor.wait_until(f"{QUEUE}.length > 0")
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
    visitor.page.on("request", lambda request: request.url.startswith(server.url) and request.resource_type != "script"
                    and tracked.append(urlsplit(request.url).path))  # fmt: skip
    variant = visitor.visit()
    add(expected, "participate", variant)
    await_counts(server, expected)
    visitor.buy()
    add(expected, "bought", variant)
    await_counts(server, expected)
    assert visitor.visit() == variant  # a reload counts nothing new
    await_counts(server, expected)
    assert tracked and set(tracked) == {"/function-url/"} and visitor.errors == []


def test_the_snippet_counts_offline_through_serves_own_bundle(visitors, server):
    """No CDN: the page's only requests beyond its own origin go to `lamed serve`, bundle included."""
    expected = experiments(server)
    visitor = visitors()
    scripts = []
    visitor.page.on("request", lambda request: request.resource_type == "script" and scripts.append(request.url))
    variant = visitor.visit()
    add(expected, "participate", variant)
    visitor.buy()
    add(expected, "bought", variant)
    await_counts(server, expected)
    assert scripts == [f"{server.url}/{static_files.BUNDLE}"]
    assert visitor.offsite == [] and visitor.errors == []


def test_offline_the_cdn_snippet_says_that_alephbet_did_not_load(visitors, server):
    """Where jsDelivr cannot be reached, the deploy snippet counts nothing, and says why."""
    expected = experiments(server)
    visitor = visitors("/cdn-page.html")
    visitor.page.goto(visitor.url)
    assert visitor.offsite == [ALEPHBET_CDN_URL]
    assert any(error.startswith(f"lamed: AlephBet did not load from {ALEPHBET_CDN_URL} (offline, blocked,")
               for error in visitor.errors), visitor.errors  # fmt: skip
    assert experiments(server) == expected


def test_the_csp_friendly_form_counts_under_a_content_security_policy(visitors, server):
    expected = experiments(server)
    visitor = visitors("/csp-page.html")
    variant = visitor.visit()
    assert variant in ("control", "red")
    colour = visitor.page.evaluate("getComputedStyle(document.querySelector('#buy')).color")
    assert (colour == "rgb(255, 0, 0)") == (variant == "red"), colour  # the page's stylesheet, on the attribute hook
    add(expected, "participate", variant)
    await_counts(server, expected)
    visitor.buy()  # data-lamed-goal="bought"
    add(expected, "bought", variant)
    await_counts(server, expected)
    assert visitor.visit() == variant
    await_counts(server, expected)
    assert visitor.errors == [] and visitor.offsite == []


def test_that_policy_refuses_the_inline_snippet(visitors, server):
    """The control of the test above: the same policy does refuse the inline form."""
    expected = experiments(server)
    visitor = visitors("/inline-csp-page.html")
    visitor.page.goto(visitor.url)
    assert visitor.page.evaluate(VARIANT) is None
    assert any("Content Security Policy" in error for error in visitor.errors), visitor.errors
    assert experiments(server) == expected


def test_lameds_copy_of_the_bundle_is_npms_pinned_file(alephbet_bundle):
    assert (static_files.FOLDER / static_files.BUNDLE).read_bytes() == alephbet_bundle.read_bytes()
