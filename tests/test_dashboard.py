"""`lamed dashboard` and the live page of `lamed serve`: the file's content, then both pages
in headless Chromium against a real `lamed serve` seeded with track calls."""

import base64
import json
import os
import re
import subprocess
import sys

import pytest
import requests
from click.testing import CliRunner

from lamed import dashboard
from lamed.cli import cli
from results_api import API_KEY, BUTTON, HEADLINE, seed, server  # noqa: F401 (server is a fixture)
from serve_cli import lamed_command

ISOLATED = {"LAMED_API_KEY": None, "LAMED_ENDPOINT": None, "LAMED_CONFIG": None}
HOSTILE = '<img src=x onerror="document.title=\'owned\'">'
SRM = {"a": (350, {"click": 35}), "b": (150, {"click": 15})}  # always-valid SRM p = 1.5e-10


@pytest.fixture(scope="module")
def seeded(server, redis_server):
    redis_server.client().flushall()
    seed(server.url, "button colour", BUTTON)
    seed(server.url, "split", SRM)
    seed(server.url, HOSTILE, {"control": (2, {})})
    seed(server.url, "waiting", {"control": (4, {})})
    seed(server.url, "headline", HEADLINE)
    seed(server.url, "banner", {"control": (10, {}), "big": (10, {"click": 2})})  # the control never converts
    return f"{server.url}/prod/experiments"


@pytest.fixture(scope="module")
def page_file(seeded, tmp_path_factory):
    """The dashboard file `lamed dashboard` writes, and what it printed."""
    output = tmp_path_factory.mktemp("dashboard") / "results.html"
    args = ["dashboard", "--endpoint", seeded, "--api-key", API_KEY, "--output", str(output), "--no-open"]
    result = CliRunner().invoke(cli, args, env=ISOLATED)
    assert result.exit_code == 0, result.output
    return output, result.output


@pytest.fixture
def page(chromium):
    """A fresh page that records console errors, page errors and every request."""
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    opened.problems, opened.requests = [], []
    opened.on("console", lambda message: message.type == "error" and opened.problems.append(message.text))
    opened.on("pageerror", lambda error: opened.problems.append(str(error)))
    opened.on("request", lambda request: opened.requests.append(request.url))
    yield opened
    context.close()


def drawn(elements) -> list:
    """Bounding boxes of the located elements that are drawn with a non-zero size."""
    boxes = [elements.nth(index).bounding_box() for index in range(elements.count())]
    return [box for box in boxes if box and (box["width"] > 0 or box["height"] > 0)]


# -- the file ---------------------------------------------------------------------------------


def test_the_file_is_self_contained_and_keeps_no_key(page_file):
    path, printed = page_file
    assert printed.strip() == f"wrote the dashboard of 6 experiments in namespace 'alephbet' to {path}"
    html = path.read_text()
    assert API_KEY not in html
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(|@import|<script|<link|<iframe|<object", html, re.IGNORECASE)
    assert "default-src 'none'" in html  # the page itself forbids any request
    assert HOSTILE not in html and "&lt;img src=x" in html
    assert "bold converts 100.0% more than control" in html and "20.00%" in html


def test_the_file_in_chromium_shows_figures_charts_and_warnings(page_file, page):
    path, _ = page_file
    page.goto(path.as_uri())
    assert page.problems == []
    assert page.requests == [path.as_uri()]  # nothing fetched beyond the file itself
    cards = page.locator("section.card")
    assert cards.count() == 6
    button = page.locator("section.card", has_text="button colour")
    text = button.inner_text()
    for figure in ("200", "40", "20.00%", "10.00%", "+100.0%", "baseline"):
        assert figure in text
    interval = r"\[[-+]\d+\.\d%, [-+]\d+\.\d%\]"
    assert re.search(rf"red: no clear difference yet \(uplift {interval}, always-valid p = 0\.\d+\)", text)
    assert "green: not enough data yet (fewer than 100 participants on a side)" in text
    headline = page.locator("section.card", has_text="headline").inner_text()
    # a winner and a loser, each read the right way round, with a positive magnitude
    assert re.search(rf"bold converts 100\.0% more than control \(uplift {interval}, always-valid p < 0\.001\)", headline)
    assert re.search(rf"quiet converts 66\.7% less than control \(uplift {interval}, always-valid p < 0\.001\)", headline)
    assert re.search(r"bold converts \S+ more than control \(uplift \[\+[\d.]+%, \+[\d.]+%\]", headline)  # above 0
    assert re.search(r"quiet converts \S+ less than control \(uplift \[-[\d.]+%, -[\d.]+%\]", headline)  # below 0
    # One bar per variant with a rate, each with its interval (a line and two caps), and a legend.
    assert len(drawn(button.locator("svg.chart rect.bar"))) == 3
    assert len(drawn(button.locator("svg.chart g.variant line.ci"))) == 3 * 3
    assert len(drawn(button.locator("svg.chart line.control-line"))) == 2  # the line and its legend entry
    assert button.locator("svg.chart g.legend text").all_text_contents() == ["95% interval of the rate", "the control's rate"]
    assert "one UTC day so far" in button.locator("p.trend-note").inner_text()  # no chart over time of a single day
    split = page.locator("section.card", has_text="split").inner_text()
    assert "sample ratio mismatch (always-valid p < 0.001)" in split
    waiting = page.locator("section.card", has_text="waiting").inner_text()
    assert "No goal reached yet" in waiting and "control 4" in waiting
    # Notes are sentences; participants list the control first.
    banner = page.locator("section.card", has_text="banner")
    assert banner.locator("p.note").all_inner_texts()[0] == (
        "No uplift, fixed-horizon uplift interval or always-valid uplift interval for big: the control has a 0% rate.")
    assert banner.locator(".pill").all_inner_texts()[0].startswith("control")
    assert page.locator("section.card", has_text="headline").locator(".pill").all_inner_texts() == [
        "control 400", "bold 400", "quiet 400"]
    # The hostile experiment name is text, not markup.
    assert page.locator("img").count() == 0 and page.title() != "owned"
    assert page.get_by_text(HOSTILE).count() == 1


PIXEL_AT = """async ([png, points]) => {
  const image = new Image();
  image.src = "data:image/png;base64," + png;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  return points.map(([x, y]) => Array.from(context.getImageData(Math.round(x), Math.round(y), 1, 1).data.slice(0, 3)));
}"""


def rgb(css: str) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", css)[:3]]


def test_the_dashboard_screenshot_shows_each_variant_in_its_colour_and_unique_headers(page_file, page, tmp_path):
    """Pixels of a real screenshot: every bar is drawn in its variant's colour, no two variants
    share one (tests/test_screenshot.py: the same colour as the variant's line over time), and no
    table repeats a header."""
    path, _ = page_file
    page.set_viewport_size({"width": 1300, "height": 900})
    page.goto(path.as_uri())
    for table in page.locator("table").all():
        headers = [text.strip() for text in table.locator("thead th").all_inner_texts() if text.strip()]
        assert len(headers) == len(set(headers)) == 16, headers
    goal = page.locator("section.card", has_text="headline").locator(".goal")
    goal.scroll_into_view_if_needed()
    shot = goal.screenshot(path=str(tmp_path / "headline.png"))
    origin = goal.bounding_box()
    chart = goal.locator("svg.chart")
    assert chart.bounding_box()["height"] > 100

    def inside(element):
        """A point well inside the element, clear of the lines drawn over a bar (its interval
        across the middle, the control's rate at half the winner's length)."""
        box = element.bounding_box()
        return [box["x"] - origin["x"] + box["width"] * 0.25, box["y"] - origin["y"] + box["height"] * 0.75]

    bars = {}
    for group in chart.locator("g.variant").all():
        bar = group.locator("rect.bar")
        bars[group.locator("text.label").text_content()] = (inside(bar), rgb(bar.evaluate("element => getComputedStyle(element).fill")))
    assert set(bars) == {"control", "bold", "quiet"}
    blank = [2, 2]  # the goal's top left corner: the card's background
    with page.context.new_page() as decoder:
        pixels = decoder.evaluate(PIXEL_AT, [base64.b64encode(shot).decode(), [*(point for point, _ in bars.values()), blank]])
    drawn_bars, background = pixels[:-1], pixels[-1]
    for (label, (_, colour)), bar_pixel in zip(bars.items(), drawn_bars):
        assert bar_pixel == colour != background, label  # the bar is drawn, in its variant's colour
    assert len({tuple(pixel) for pixel in drawn_bars}) == 3  # three variants, three colours


def test_dashboard_opens_the_file_in_the_browser(seeded, tmp_path):
    opened = tmp_path / "opened"
    recorder = tmp_path / "browser.py"
    recorder.write_text(f"import sys, pathlib; pathlib.Path({str(opened)!r}).write_text(sys.argv[1])")
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    env["BROWSER"] = f"{sys.executable} {recorder} %s"
    done = subprocess.run(
        [*lamed_command(), "dashboard", "--endpoint", seeded, "--api-key", API_KEY],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = tmp_path / "lamed-dashboard.html"
    assert written.is_file() and str(written) in done.stdout
    assert opened.read_text() == written.as_uri()


def test_dashboard_errors_are_one_line(seeded, tmp_path):
    args = ["dashboard", "--endpoint", seeded, "--api-key", "wrong", "--output", str(tmp_path / "d.html")]
    result = CliRunner().invoke(cli, args, env=ISOLATED)
    assert result.exit_code == 1
    assert result.output == f"Error: {seeded} refused the request (HTTP 403): pass the right --api-key\n"
    assert not (tmp_path / "d.html").exists()


def test_chart_axis_ends_on_a_round_value():
    assert dashboard._axis_max(0.151) == (0.2, 0.05)
    assert dashboard._axis_max(0.0087) == (0.01, 0.002)
    assert dashboard._axis_max(1.0) == (1.0, 0.2)


# -- live on lamed serve ----------------------------------------------------------------------


def test_the_live_content_needs_the_key_and_reads_through_the_handlers(seeded, server):
    assert requests.get(f"{server.url}/dashboard", timeout=5).status_code == 403
    shell = requests.get(f"{server.url}/", timeout=5)
    assert shell.status_code == 200 and shell.headers["Content-Type"].startswith("text/html")
    assert "script-src 'nonce-" in shell.headers["Content-Security-Policy"]
    assert API_KEY not in shell.text and "button colour" not in shell.text
    content = requests.get(f"{server.url}/prod/dashboard?namespace=alephbet", headers={"x-api-key": API_KEY}, timeout=5)
    assert content.status_code == 200 and "<html" not in content.text
    assert 'data-delete="button colour"' in content.text and API_KEY not in content.text
    bad = requests.get(f"{server.url}/dashboard?namespace=a:b", headers={"x-api-key": API_KEY}, timeout=5)
    assert (bad.status_code, bad.json()) == (400, {"error": "parameter 'namespace' must not contain ':'"})


def test_the_live_page_asks_for_the_key_once_and_deletes_after_confirming(seeded, server, page, redis_server):
    page.goto(f"{server.url}/")
    key = page.locator("#key")
    key.fill("wrong-key")
    page.get_by_role("button", name="Show results").click()
    refused = page.get_by_text("That key was refused")
    refused.wait_for()
    assert refused.inner_text() == "That key was refused: enter the API key that lamed serve printed when it started."
    key.fill(API_KEY)
    page.get_by_role("button", name="Show results").click()
    card = page.locator("section.card", has_text="button colour")
    card.wait_for()
    assert page.problems == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"]
    page.problems.clear()
    assert page.evaluate("sessionStorage.getItem('lamed.apiKey')") == API_KEY
    assert drawn(card.locator("svg.chart rect.bar"))
    page.reload()  # the key is kept for the session: no second prompt
    card.wait_for()
    assert page.locator("#keyform").is_hidden()

    answers = iter([False, True])
    dialogs = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.accept() if next(answers) else dialog.dismiss()

    page.on("dialog", on_dialog)
    card.get_by_role("button", name="Delete").click()
    assert len(dialogs) == 1 and "button colour" in dialogs[0]
    assert card.count() == 1  # dismissed: nothing deleted
    assert redis_server.client().sismember("alephbet:experiments", "button colour")
    with page.expect_response(lambda response: "/delete?" in response.url) as deleted:
        card.get_by_role("button", name="Delete").click()
    assert deleted.value.status == 200
    card.wait_for(state="detached")
    assert page.locator("section.card", has_text="split").count() == 1
    assert b"button colour" not in redis_server.client().smembers("alephbet:experiments")
    assert page.problems == [] and page.title() != "owned"
    assert all(url.startswith(server.url) for url in page.requests)
    body = json.loads(requests.get(seeded, headers={"x-api-key": API_KEY}, timeout=5).text)
    assert "button colour" not in [entry.get("experiment") for entry in body]
