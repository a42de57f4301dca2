"""The README's picture is of the current dashboard, and the dashboard fits a desktop and a phone.

docs/make_dashboard_png.py serves seeded events with serve's own server and screenshots its page
in Chromium, writing the digest of the page into the PNG. Here the same page is built again: a
digest that differs means the committed picture is stale. Then the page is opened at 1280 px and
at 390 px (a phone): nothing overflows the page sideways (a table or chart that is too wide
scrolls inside its card; at 1280 px no table needs to), the phone's table headings are no tall band,
and the charts' text stays legible.
"""

import importlib.util
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
spec = importlib.util.spec_from_file_location("make_dashboard_png", DOCS / "make_dashboard_png.py")
picture = importlib.util.module_from_spec(spec)
spec.loader.exec_module(picture)

SMALLEST_TEXT_PX = 10
# For each element of the page: how far it reaches past the right edge of the viewport, unless a
# scrolling box holds it; the smallest rendered font size of a chart's text.
LAYOUT = """() => {
  const scrolls = element => {
    for (let box = element.parentElement; box; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if ((overflow === "auto" || overflow === "scroll") && box.scrollWidth > box.clientWidth) return true;
    }
    return false;
  };
  const past = [...document.querySelectorAll("main *")]
    .filter(element => element.getBoundingClientRect().right > innerWidth + 0.5 && !scrolls(element))
    .map(element => element.tagName + "." + element.className.baseVal + element.className);
  const sizes = [...document.querySelectorAll("svg text")].map(text => {
    const scale = text.ownerSVGElement.getBoundingClientRect().width / text.ownerSVGElement.viewBox.baseVal.width;
    return parseFloat(getComputedStyle(text).fontSize) * scale;
  });
  const wraps = [...document.querySelectorAll(".table-wrap")].map(wrap => ({
    sideways: wrap.scrollWidth - wrap.clientWidth, overflowX: getComputedStyle(wrap).overflowX,
    headings: wrap.querySelector("thead").getBoundingClientRect().height,
    row: wrap.querySelector("tbody tr").getBoundingClientRect().height}));
  return {pageWidth: document.documentElement.scrollWidth, past: past, smallestText: Math.min(...sizes),
          texts: sizes.length, tables: document.querySelectorAll("table").length, wraps: wraps};
}"""


@pytest.fixture(scope="module")
def dashboard_url():
    with picture.dashboard_server() as url:
        yield url


def test_the_readme_picture_is_of_the_current_page(dashboard_url):
    committed = picture.text_chunk(picture.OUTPUT.read_bytes(), picture.DIGEST_KEY)
    assert committed == picture.page_digest(dashboard_url), (
        "docs/dashboard.png is not a picture of the current dashboard: run `python docs/make_dashboard_png.py`"
    )


def test_the_picture_shows_always_valid_decisions_and_the_chart_over_time(dashboard_url, chromium):
    page = picture.open_dashboard(chromium, dashboard_url, picture.WIDTH)
    try:
        verdicts = page.locator("li.verdict").all_inner_texts()
        assert any("more than control" in text for text in verdicts) and any("less than control" in text for text in verdicts)
        assert page.locator("svg.trend").count() == 2 and page.locator("svg.trend .decision.winner").count() == 1
        assert page.locator("th.group.sequential").first.inner_text() == "Always valid: decides"
    finally:
        page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_dashboard_fits_the_screen_with_legible_charts(dashboard_url, chromium, width, tmp_path):
    page = picture.open_dashboard(chromium, dashboard_url, width)
    try:
        page.screenshot(path=str(tmp_path / f"dashboard-{width}.png"), full_page=True)
        layout = page.evaluate(LAYOUT)
        assert layout["tables"] == 2 and layout["texts"] > 20
        assert layout["pageWidth"] <= width and layout["past"] == [], layout
        assert layout["smallestText"] >= SMALLEST_TEXT_PX, layout
        wraps = layout["wraps"]
        assert len(wraps) == 2 and all(wrap["overflowX"] == "auto" for wrap in wraps), wraps
        if width == 1280:  # a desktop shows every column: nothing to scroll to
            assert all(wrap["sideways"] == 0 for wrap in wraps), wraps
        else:  # the tables are wider than a phone: they scroll in their card, under one line of headings a group
            assert all(wrap["sideways"] > 0 and wrap["headings"] < 2.5 * wrap["row"] for wrap in wraps), wraps
    finally:
        page.close()


def test_one_colour_per_variant_across_a_card(dashboard_url, chromium):
    """A variant's bar and its line over time are drawn in the same colour, and no two variants share one."""
    page = picture.open_dashboard(chromium, dashboard_url, picture.WIDTH)
    try:
        card = page.locator("section.card", has_text="button colour")
        bars = {group.locator("text.label").text_content(): group.locator("rect.bar").evaluate("bar => getComputedStyle(bar).fill")
                for group in card.locator("svg.chart g.variant").all()}  # fmt: skip
        lines = {group.locator("title").first.text_content(): group.locator("polyline.line").evaluate(
            "line => getComputedStyle(line).stroke") for group in card.locator("svg.trend > g.series").all()}  # fmt: skip
        assert set(bars) == {"control", "red", "tiny"} and bars == lines
        assert len(set(bars.values())) == 3
    finally:
        page.close()
