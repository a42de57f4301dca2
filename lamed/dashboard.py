"""Results -> a self-contained HTML dashboard (Jinja2), as a file or live on ``lamed serve``.

One template renders both: the file written by ``lamed dashboard`` (inline CSS and
SVG, no script, no external request, never the API key) and, on ``lamed serve``,
the page at ``/`` that asks for the key once and fetches ``/dashboard``, the same
content rendered from serve's own ``lamed.all`` handler, with a Delete button per
experiment. Chart geometry is computed here; the template only places it.
"""

import json
import math
import secrets
from datetime import datetime, timezone

import jinja2
import markupsafe

from lamed import handlers, report
from lamed.config import DEFAULT_NAMESPACE
from lamed.names import printable

TEMPLATE = "dashboard.html.j2"
DEFAULT_OUTPUT = "lamed-dashboard.html"

# Chart geometry, in SVG user units (the SVG scales to the card's width).
CHART_WIDTH = 640
LABEL_RIGHT = 112
PLOT_LEFT = 120
PLOT_RIGHT = 560
ROW_HEIGHT = 30
BAR_HEIGHT = 14
AXIS_HEIGHT = 26
LEGEND_ROW_HEIGHT = 20
LEGEND_SWATCH = 12
LEGEND_CHAR_WIDTH = 7  # a generous average for 12px system-ui text
LEGEND_GAP = 22
MAX_LABEL_CHARS = 16
NICE_STEPS = (1, 2, 2.5, 5)
MAX_TICKS = 5
# The table's headings that are shortened so that a desktop shows every column: the full heading is
# the cell's title and the key under the table.
SHORT_HEADINGS = {
    "Fixed-horizon p-value": "Fixed p",
    "Fixed-horizon uplift 95% interval": "Fixed uplift 95% interval",
    "Fixed-horizon chance to beat control": "Fixed chance to beat",
    "Participants still needed per variant": "Still needed per variant",
    "Days remaining at current traffic": "Days left",
}

HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _shown(value):
    """Every text the page shows, control characters escaped (names may hold what a stranger sent);
    markup (the tojson of a name a Delete button sends back as it is) passes."""
    return printable(value) if isinstance(value, str) and not isinstance(value, markupsafe.Markup) else value


_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("lamed", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=_shown,
)
_environment.filters.update(percent=report.percent, interval=report.interval, p_text=report.p_text)


# -- the view ---------------------------------------------------------------------------


def _axis_max(highest: float) -> tuple[float, float]:
    """A round axis end above ``highest`` and its tick step (at most MAX_TICKS ticks)."""
    magnitude = 10 ** math.floor(math.log10(highest))
    steps = (nice * scale for scale in (magnitude / 10, magnitude) for nice in NICE_STEPS)
    step = next(step for step in steps if math.ceil(highest / step - 1e-9) <= MAX_TICKS)
    return math.ceil(highest / step - 1e-9) * step, step


def _tick_label(value: float) -> str:
    return f"{round(value * 100, 6):g}%"


# A variant's colour, the same in both charts of a card: classes series-0 .. series-5, the control
# always series-0; none is a verdict's colour (the verdicts above the charts have those).
SERIES_COLOURS = 6


def variant_colours(control: str | None, labels) -> dict[str, str]:
    """Each variant's colour class: the control first, then the others in the order given."""
    ordered = list(dict.fromkeys([*([control] if control in labels else []), *labels]))
    return {label: f"series-{number % SERIES_COLOURS}" for number, label in enumerate(ordered)}


def legend(entries: list[tuple[str, str]], top: float) -> list[dict]:
    """Legend items ``(kind, text)`` laid out left to right from the chart's left edge, wrapping
    at CHART_WIDTH: ``{kind, text, x, y}`` (x, y: the swatch's top left; the text follows it)."""
    items, x, y = [], 0, top
    for kind, text in entries:
        width = LEGEND_SWATCH + 6 + len(text) * LEGEND_CHAR_WIDTH
        if x and x + width > CHART_WIDTH:
            x, y = 0, y + LEGEND_ROW_HEIGHT
        items.append({"kind": kind, "text": text, "x": x, "y": y})
        x += width + LEGEND_GAP
    return items


def chart(goal: dict, experiment: dict, verdicts: list, colours: dict) -> dict | None:
    """Bars of each variant's rate, in its colour, with its Wilson interval, and a legend of
    the marks; None when no variant has a rate."""
    rated = [row for row in goal["variants"] if row["rate"] is not None]
    if not rated:
        return None
    axis_max, step = _axis_max(max(row["rate_ci"][1] for row in rated))  # a rate always has its interval
    width = PLOT_RIGHT - PLOT_LEFT

    def x(value: float) -> float:
        return round(PLOT_LEFT + width * min(max(value, 0.0), axis_max) / axis_max, 2)

    bars = []
    for index, (row, row_verdict) in enumerate(zip(goal["variants"], verdicts)):
        middle = index * ROW_HEIGHT + ROW_HEIGHT / 2
        label = row["label"]
        bar = {
            "label": label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…",
            "full_label": label,
            "kind": row_verdict.kind,
            "colour": colours[label],
            "y": middle,
            "bar_y": middle - BAR_HEIGHT / 2,
            "rate": row["rate"],
        }
        if row["rate"] is not None:
            bar["bar_width"] = round(x(row["rate"]) - PLOT_LEFT, 2)
        if row["rate_ci"]:
            bar.update(ci_x1=x(row["rate_ci"][0]), ci_x2=x(row["rate_ci"][1]))
        bars.append(bar)
    plot_height = len(bars) * ROW_HEIGHT
    control = next((row for row in goal["variants"] if row["label"] == experiment["control"]), None)
    ticks = [{"x": x(i * step), "label": _tick_label(i * step)} for i in range(round(axis_max / step) + 1)]
    items = legend([("interval", "95% interval of the rate"), ("control-rate", "the control's rate")], plot_height + AXIS_HEIGHT + 6)
    return {
        "width": CHART_WIDTH,
        "height": items[-1]["y"] + LEGEND_ROW_HEIGHT,
        "legend": items,
        "swatch": LEGEND_SWATCH,
        "plot_left": PLOT_LEFT,
        "plot_right": PLOT_RIGHT,
        "plot_height": plot_height,
        "label_right": LABEL_RIGHT,
        "value_x": PLOT_RIGHT + 8,
        "bar_height": BAR_HEIGHT,
        "bars": bars,
        "ticks": ticks,
        "control_x": x(control["rate"]) if control and control["rate"] is not None else None,
        "description": f"Conversion rate of each variant for goal {goal['goal']}, with its 95% interval",
    }


# The over-time chart: days left to right, the cumulative rate up; one colour per variant.
TREND_HEIGHT = 180
TREND_LEFT = 56
TREND_RIGHT = 600
TREND_TOP = 16


def trend_chart(series: dict, goal: dict, colours: dict) -> dict | None:
    """Each variant's cumulative rate per day as a line over its 95% interval band, the day a
    decision was first reached marked; None when no day has a rate. With a single day there is
    no line to draw: ``{"single_day": day}``, and the page says so (the bar chart shows that day)."""
    days = series["days"]
    rated = [point for variant in goal["variants"] for point in variant["points"] if point["rate"] is not None]
    if not rated:
        return None
    if len(days) == 1:
        return {"single_day": days[0]}
    axis_max, step = _axis_max(max(max(point["rate_ci"][1] for point in rated), 1e-6))
    span = max(1, len(days) - 1)

    def x(index: int) -> float:
        return round(TREND_LEFT + (TREND_RIGHT - TREND_LEFT) * index / span, 2)

    def y(value: float) -> float:
        return round(TREND_TOP + TREND_HEIGHT * (1 - min(max(value, 0.0), axis_max) / axis_max), 2)

    lines, marks, items = [], [], []
    for variant in goal["variants"]:
        kind = colours[variant["label"]]
        indexed = [(index, point) for index, point in enumerate(variant["points"]) if point["rate"] is not None]
        upper = [f"{x(index)},{y(point['rate_ci'][1])}" for index, point in indexed]
        lower = [f"{x(index)},{y(point['rate_ci'][0])}" for index, point in reversed(indexed)]
        lines.append({
            "kind": kind,
            "label": variant["label"],
            "band": " ".join(upper + lower),
            "line": " ".join(f"{x(index)},{y(point['rate'])}" for index, point in indexed),
            "dots": [{"x": x(index), "y": y(point["rate"]), "title": f"{days[index]}: {report.percent(point['rate'], 2)}"}
                     for index, point in indexed],
        })  # fmt: skip
        if variant.get("decision_day"):
            decision = next(point["decision"] for point in variant["points"][days.index(variant["decision_day"]):])
            marks.append({"kind": kind, "x": x(days.index(variant["decision_day"])), "decision": decision,
                          "text": f"{variant['label']}: {decision} on {variant['decision_day']}"})  # fmt: skip
        items.append({"kind": kind, "text": variant["label"] + (" (control)" if variant["label"] == series["control"] else "")})
    x_next, legend_y = 0, TREND_TOP + TREND_HEIGHT + 34
    for item in items:  # left to right, wrapping at CHART_WIDTH, as the bar chart's legend
        width = LEGEND_SWATCH + 6 + len(item["text"]) * LEGEND_CHAR_WIDTH
        if x_next and x_next + width > CHART_WIDTH:
            x_next, legend_y = 0, legend_y + LEGEND_ROW_HEIGHT
        item |= {"x": x_next, "y": legend_y}
        x_next += width + LEGEND_GAP
    notes_y = legend_y + LEGEND_ROW_HEIGHT + 4
    label_every = max(1, math.ceil(len(days) / 8))
    return {
        "width": CHART_WIDTH,
        "height": notes_y + 4,
        "top": TREND_TOP,
        "bottom": TREND_TOP + TREND_HEIGHT,
        "left": TREND_LEFT,
        "right": TREND_RIGHT,
        "swatch": LEGEND_SWATCH,
        "ticks": [{"y": y(i * step), "label": _tick_label(i * step)} for i in range(round(axis_max / step) + 1)],
        "days": [{"x": x(index), "label": day[5:]} for index, day in enumerate(days) if index % label_every == 0 or index == len(days) - 1],
        "lines": lines,
        "marks": marks,
        "legend": items,
        "description": f"Cumulative conversion rate of each variant per day for goal {goal['goal']}, with its 95% interval band",
    }


def view(results: report.Results) -> dict:
    """What the template shows: per experiment its participants, warning and goals."""
    experiments = []
    for experiment in results.analysis["experiments"]:
        name = experiment["experiment"]
        participants = results.participants.get(name, [])
        labels = [row["label"] for row in participants] + [row["label"] for goal in experiment["goals"] for row in goal["variants"]]
        colours = variant_colours(experiment["control"], labels)
        goals = []
        for goal in experiment["goals"]:
            verdicts = report.goal_verdicts(experiment, goal)
            columns = report.goal_columns(goal)
            rows = [
                {
                    "label": row["label"],
                    "is_control": row["label"] == experiment["control"],
                    "cells": report.figure_cells(row, row["label"] == experiment["control"], columns),
                }
                for row in goal["variants"]
            ]
            unique = columns is report.COLUMNS
            notes = [sentence for row in goal["variants"] for sentence in report.note_sentences(row)] if unique else []
            figures = chart(goal, experiment, verdicts, colours) if unique else None
            series = results.timelines.get(name)
            over_time = next((trend_chart(series, line, colours) for line in series["goals"] if line["goal"] == goal["goal"]), None) if series else None
            goals.append({"goal": goal["goal"], "rows": rows, "notes": notes, "verdicts": verdicts, "chart": figures, "trend": over_time,
                          "unique": unique, "headings": [(SHORT_HEADINGS.get(full, full), full) for _, _, full in columns]})  # fmt: skip
        experiments.append({
            "name": name,
            "control": experiment["control"],
            "srm_p_value": experiment["srm_p_value"],
            "srm_warning": report.srm_warning(experiment),
            "srm_note": experiment.get("srm_note"),
            "goals_note": experiment.get("goals_note"),
            "stopped": experiment["stopped"],
            "declaration": report.declaration_text(experiment),
            "participants": participants,
            "total": sum(row["trials"] for row in participants),
            "goals": goals,
        })  # fmt: skip
    return {"namespace": results.namespace, "experiments": experiments}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_page(results: report.Results) -> str:
    """The self-contained dashboard file of ``lamed dashboard``."""
    return _environment.get_template(TEMPLATE).render(
        mode="file", view=view(results), source=results.source, generated=_now(), namespace=results.namespace
    )


# -- live on lamed serve -------------------------------------------------------------------


def _html(status: int, body: str, csp: str | None = None) -> dict:
    headers = dict(HTML_HEADERS)
    if csp:
        headers["Content-Security-Policy"] = csp
    return {"statusCode": status, "headers": headers, "body": body}


def live_page(event, context=None) -> dict:
    """``GET /`` on serve: the page that asks for the key and shows ``/dashboard``."""
    parameters = event.get("queryStringParameters") or {}
    namespace = parameters.get("namespace") or report.default_namespace()
    nonce = secrets.token_urlsafe(18)
    body = _environment.get_template(TEMPLATE).render(
        mode="live", view=None, source="lamed serve", generated=_now(), namespace=namespace, nonce=nonce
    )
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return _html(200, body, csp)


def live_content(event, context=None) -> dict:
    """``GET /dashboard?namespace=`` on serve (key required): the rendered content,
    read through serve's own ``lamed.all`` handler; its errors pass through as JSON."""
    parameters = event.get("queryStringParameters") or {}
    response = handlers.all_experiments(event | {"queryStringParameters": parameters | {"days": "1"}}, context)
    if response["statusCode"] != 200:
        return response
    namespace = parameters.get("namespace") or DEFAULT_NAMESPACE
    entries = report.parse_entries("lamed serve", json.loads(response["body"]))
    results = report.analyse_entries(entries, namespace, "lamed serve")
    body = _environment.get_template(TEMPLATE).render(
        mode="content", view=view(results), source="lamed serve", generated=_now(), namespace=namespace
    )
    return _html(200, body)
