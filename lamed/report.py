"""Read experiment results from a Lamed-compatible API and render them as table, JSON or CSV.

The experiments URL is lamed's deployed ``.../prod/experiments``, an original Lamed
deployment's, or ``lamed serve``'s; it answers Lamed's results list (see
DESIGN.md), which :mod:`lamed.stats` turns into figures. Every failure is a
:class:`ReportError` whose message is one line naming the URL and what to do.
The plain-language verdict per variant lives here too, shared with the dashboard.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lamed import stats, timeline
from lamed.aws.resources import STAGE, STANDARD_FUNCTIONS
from lamed.config import DEFAULT_NAMESPACE, find_config_path, load_config
from lamed.names import printable

if TYPE_CHECKING:  # annotations only: requests is imported when results are read
    import requests

API_KEY_HEADER = "x-api-key"
CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 30.0
FORMATS = ("table", "json", "csv")
# "The name of the stage is the first path segment in the URI of a call to API Gateway. Stage names can
# only contain alphanumeric characters, hyphens, and underscores. Maximum length is 128 characters."
# (API Gateway's CreateStage/Stage reference, stageName)
STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
RESOURCES = frozenset(entry[4] for entry in STANDARD_FUNCTIONS)  # Lamed's API's paths: not stage names


class ReportError(Exception):
    """Results could not be read; the message is one line with the fix."""


@dataclass
class Results:
    """Figures for one namespace (``analysis`` is :func:`lamed.stats.analyse`'s dict)
    plus each experiment's participants per variant, goal or not, and, for the experiments
    read with their daily counts, :func:`lamed.timeline.over_time`."""

    source: str
    namespace: str
    analysis: dict
    participants: dict = field(default_factory=dict)
    timelines: dict = field(default_factory=dict)


def default_namespace() -> str:
    """The config's namespace when a config file exists, else ``alephbet``."""
    return load_config().namespace if find_config_path() else DEFAULT_NAMESPACE


def discover_endpoint(profile: str | None, region: str | None, stage: str | None = None) -> tuple[str, str]:
    """The experiments URL and key of the API deployed for ``stage`` (None: without a stage), found through
    AWS as ``lamed status`` does (AWS errors propagate: the CLI turns them into one line)."""
    from lamed.aws.deployment import find_deployment
    from lamed.aws.resources import Names
    from lamed.aws.session import make_session

    session = make_session(profile, region)
    deployment = find_deployment(session, Names(stage, session.region_name))
    if deployment is None:
        where = f"{session.region_name} for stage {stage}" if stage else session.region_name
        deploy = f"lamed deploy --stage {stage}" if stage else "lamed deploy"
        raise ReportError(f"no lamed deployment found in {where} — run `{deploy}`, or pass --endpoint URL --api-key KEY")
    return deployment.experiments_url, deployment.api_key


# -- reading ---------------------------------------------------------------------------


def check_endpoint(url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else a ReportError saying what is expected."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReportError(
            f"--endpoint {url!r} is not an http(s) URL: pass the experiments URL, "
            "e.g. https://ID.execute-api.REGION.amazonaws.com/prod/experiments"
        )
    return url


def experiments_url(url: str) -> str:
    """The experiments URL of ``url``: for an API's base URL (no path, as `lamed serve` prints it)
    ``{url}/prod/experiments``, for a stage's URL (one segment, ``/prod``) ``{url}/experiments``;
    any other URL as given."""
    parts = urlsplit(check_endpoint(url))
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if parts.query or parts.fragment or len(segments) > 1:
        return url
    if not segments:
        return f"{url.rstrip('/')}/{STAGE}/experiments"
    if STAGE_NAME.fullmatch(segments[0]) and segments[0] not in RESOURCES:
        return f"{url.rstrip('/')}/experiments"
    return url


def fetch_entries(
    url: str, api_key: str | None, namespace: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, days: bool = False
) -> list:
    """GET ``url?namespace=NS`` (``&days=1`` with ``days``) with the key in ``x-api-key``; the experiment entries."""
    import requests  # here, not at the top: every `lamed` command imports this module's constants

    check_endpoint(url)
    headers = {API_KEY_HEADER: api_key} if api_key else {}
    try:
        response = requests.get(
            url,
            params={"namespace": namespace, **({"days": "1"} if days else {})},
            headers=headers,
            timeout=(min(CONNECT_TIMEOUT_SECONDS, timeout), timeout),
        )
    except requests.Timeout:
        raise ReportError(f"no answer from {url} within {timeout:g} s: try again, or raise --timeout") from None
    except requests.ConnectionError as exc:
        raise ReportError(f"cannot connect to {url}: {_reason(exc)}") from None
    except requests.RequestException as exc:
        raise ReportError(f"cannot read {url}: {_reason(exc)}") from None
    _check_status(url, response, api_key)
    try:
        body = response.json()
    except ValueError:
        start = " ".join(response.text[:40].split())
        raise not_lamed_results(url, f"not JSON: {start!r}...") from None
    if isinstance(body, dict) and "errorMessage" in body:  # an original Lamed's failed Lambda, answered as 200
        message = " ".join(str(body["errorMessage"]).split())[:200]
        raise ReportError(f"{url} answered with a Lambda error ({message}): see the function's CloudWatch logs")
    return parse_entries(url, body)


def _check_status(url: str, response: requests.Response, api_key: str | None) -> None:
    status = response.status_code
    if status == 200:
        return
    if status in (401, 403):
        fix = "pass the right --api-key" if api_key else "pass --api-key KEY"
        raise ReportError(f"{url} refused the request (HTTP {status}): {fix}")
    detail = _error_detail(response)
    if status == 404:
        raise ReportError(f"{url} answered HTTP 404{detail}: is it the experiments URL, ending in /experiments?")
    if status >= 500:
        raise ReportError(f"{url} failed with HTTP {status}{detail}: the API or its Redis has a problem, try again")
    raise ReportError(f"{url} answered HTTP {status}{detail}")


def _error_detail(response: requests.Response) -> str:
    """``" (message)"`` from a JSON ``error``/``message`` body, else empty."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("error") or body.get("message") if isinstance(body, dict) else None
    return f" ({' '.join(str(message).split())[:200]})" if message else ""


def _reason(exc: Exception) -> str:
    """The innermost readable cause of a requests error, on one line."""
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    text = re.sub(r"^<[^>]*>: ", "", str(reason))
    return " ".join(text.split()) or type(exc).__name__


def not_lamed_results(url: str, problem: str) -> ReportError:
    """The error for an answer that is not Lamed's results list, saying what was wrong."""
    return ReportError(
        f"{url} did not answer with Lamed's results ({problem}): is it the experiments URL, ending in /experiments?"
    )


def parse_entries(url: str, body) -> list:
    """The experiment entries of a Lamed results list, ``meta`` dropped. Only the list
    itself is checked here; :mod:`lamed.stats` checks each entry as it reads it."""
    if not isinstance(body, list):
        raise not_lamed_results(url, f"a JSON {type(body).__name__}, not a list")
    if not all(isinstance(entry, dict) for entry in body):
        raise not_lamed_results(url, "an item of the list is not an object")
    return [entry for entry in body if "meta" not in entry]


def participants(entry: dict, control: str | None) -> list[dict]:
    """``[{"label", "trials"}]`` per variant, the control first, then the others in sorted
    order: lamed's ``variants``, else from the goals (Lamed)."""
    trials = stats.participants(entry)
    order = sorted(trials, key=lambda label: (label != control, label))
    return [{"label": label, "trials": trials[label]} for label in order]


def analyse_entries(
    entries: list,
    namespace: str,
    source: str,
    experiment: str | None = None,
    control: str | None = None,
    mde: float | None = None,
) -> Results:
    """Figures for ``entries`` (one experiment when named), control chosen as in :mod:`lamed.stats`,
    undecided comparisons sized for ``mde`` when given; entries not in Lamed's shape, an unknown
    experiment or control are a ReportError."""
    try:
        analysis = stats.analyse(entries, namespace, control=control, experiment=experiment, mde=mde)
    except stats.NotLamedShape as exc:
        raise not_lamed_results(source, str(exc)) from None
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    declarations = {entry["experiment"]: entry.get("declared") for entry in entries}
    for figures in analysis["experiments"]:
        figures |= declaration_fields(declarations[figures["experiment"]])
    controls = {experiment["experiment"]: experiment["control"] for experiment in analysis["experiments"]}
    counts = {entry["experiment"]: participants(entry, controls[entry["experiment"]])
              for entry in entries if entry["experiment"] in controls}  # fmt: skip
    timelines = {entry["experiment"]: timeline.over_time(entry, controls[entry["experiment"]])
                 for entry in entries if entry["experiment"] in controls and isinstance(entry.get("daily"), dict)}  # fmt: skip
    return Results(source, namespace, analysis, counts, timelines)


def load_results(
    url: str,
    api_key: str | None,
    namespace: str,
    experiment: str | None = None,
    control: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    mde: float | None = None,
) -> Results:
    """Read ``url`` with its daily counts and compute the figures: what ``lamed results`` and
    ``lamed dashboard`` show, the results over time and the days remaining included."""
    entries = fetch_entries(url, api_key, namespace, timeout, days=True)
    return analyse_entries(entries, namespace, url, experiment, control, mde)


# -- plain language -----------------------------------------------------------------------


LARGEST_SHOWN_UPLIFT = 100.0  # +10,000%: an interval bound beyond is shown as ">+10,000%"


def percent(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return "—"
    if signed and value > LARGEST_SHOWN_UPLIFT:
        return f">+{LARGEST_SHOWN_UPLIFT * 100:,.0f}%"
    return f"{value * 100:{'+' if signed else ''},.{digits}f}%"


def interval(bounds, signed: bool = False) -> str:
    if not bounds or None in bounds:
        return "—"
    return f"[{percent(bounds[0], signed=signed)}, {percent(bounds[1], signed=signed)}]"


def p_text(p: float | None) -> str:
    """``p = 0.03``, ``p = 0.0012``, ``p < 0.001``."""
    if p is None:
        return "p = —"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


@dataclass(frozen=True)
class Verdict:
    """What a variant row's ``decision`` says; ``kind`` is the decision, or ``control``."""

    kind: str
    text: str


def verdict(row: dict, control: str) -> Verdict:
    """The plain verdict of one variant row, from its always-valid ``decision`` alone, with
    what an undecided one still needs."""
    label, decision = row["label"], row["decision"]
    if label == control:
        return Verdict("control", f"{label} is the control, the baseline of the others")
    if "events_per_participant" in row:
        per = "—" if row["events_per_participant"] is None else f"{row['events_per_participant']:.3g}"
        return Verdict("events", f"{label}: {per} events per participant (a non-unique goal: counted, never decided)")
    figures = f"{interval(row['sequential_uplift_ci'], signed=True)}, always-valid {p_text(row['sequential_p_value'])}"
    if decision in ("winner", "loser"):
        return Verdict(decision, f"{label} converts {_how_much(row['uplift'], decision)} than {control} (uplift {figures})")
    if decision == "inconclusive":
        return Verdict(decision, f"{label}: no clear difference yet (uplift {figures}){waiting_text(row)}")
    reason = (row.get("notes") or {}).get("sequential_p_value") or stats.FEW
    return Verdict(decision, f"{label}: not enough data yet ({reason}){waiting_text(row)}")


def waiting_text(row: dict) -> str:
    """``; about 1,200 more participants per variant (~3 days)`` where it is known, else empty."""
    needed, days = row.get("needed_per_variant"), row.get("days_remaining")
    if needed is None:
        return ""
    when = "" if days is None else f" (~{days:,} day{'' if days == 1 else 's'})"
    return f"; about {needed:,} more participants per variant{when}"


def _how_much(uplift: float | None, decision: str) -> str:
    """``40.2% less``, ``20.0% more``: the uplift's size, its sign in a word."""
    more = uplift > 0 if uplift is not None else decision == "winner"
    if uplift is None:
        size = "—"
    elif abs(uplift) > LARGEST_SHOWN_UPLIFT:
        size = f"over {LARGEST_SHOWN_UPLIFT * 100:,.0f}%"
    else:
        size = percent(abs(uplift))
    return f"{size} {'more' if more else 'less'}"


def goal_verdicts(experiment: dict, goal: dict) -> list[Verdict]:
    """The verdict of each variant row of ``goal``, in row order."""
    return [verdict(row, experiment["control"]) for row in goal["variants"]]


# What each figure is called where a sentence names it.
FIGURE_NAMES = {
    "rate": "rate",
    "rate_ci": "rate interval",
    "uplift": "uplift",
    "uplift_ci": "fixed-horizon uplift interval",
    "p_value": "fixed-horizon p-value",
    "chance_to_beat_control": "chance to beat control",
    "needed_per_variant": "participants still needed",
    "days_remaining": "days remaining",
    "events_per_participant": "events per participant",
    "sequential_p_value": "always-valid p-value",
    "sequential_uplift_ci": "always-valid uplift interval",
}


def note_sentences(row: dict) -> list[str]:
    """The row's notes as sentences, one per reason: ``No uplift or fixed-horizon uplift
    interval for red: the control has a 0% rate.`` (not ``already decided``: the verdict says it)"""
    by_reason: dict[str, list[str]] = {}
    for figure, reason in (row.get("notes") or {}).items():
        if reason == stats.DECIDED_NOTE:  # the verdict says it
            continue
        by_reason.setdefault(reason, []).append(FIGURE_NAMES.get(figure, figure.replace("_", " ")))
    sentences = []
    for reason, names in by_reason.items():
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        sentences.append(f"No {listed} for {row['label']}: {reason}.")
    return sentences


def srm_warning(experiment: dict) -> str | None:
    """The sample-ratio-mismatch warning when flagged, else None."""
    if not experiment.get("srm"):
        return None
    return (
        f"sample ratio mismatch (always-valid {p_text(experiment['srm_p_value'])}): the variants did not get the "
        "share of participants they should (equal shares, or the declared weights), so check how variants are "
        "assigned before trusting these figures"
    )


STOPPED_TEXT = "stopped (declared so in the config): /track counts nothing more for it, so these counts are frozen"
UNDECLARED_NOTE = "not declared in the config: anyone can add variants and goals to it through /track"


def declaration_fields(declared: dict | None) -> dict:
    """An experiment's ``declared`` and ``stopped`` from its entry's lamed ``declared`` (None:
    not declared, and then ``declared_note``)."""
    if not isinstance(declared, dict):
        return {"declared": False, "stopped": False, "declared_note": UNDECLARED_NOTE}
    return {"declared": True, "stopped": declared.get("stopped") is True}


def declaration_text(experiment: dict) -> str | None:
    """What the declaration says of the experiment: stopped, or not declared (its names are
    open to anyone); None for a declared experiment still counting."""
    if experiment["stopped"]:
        return STOPPED_TEXT
    return experiment.get("declared_note")


# -- formats -------------------------------------------------------------------------------


def render(results: Results, fmt: str) -> str:
    return {"table": render_table, "json": render_json, "csv": render_csv}[fmt](results)


def render_json(results: Results) -> str:
    return json.dumps(results.analysis, indent=2, allow_nan=False)


CSV_COLUMNS = (
    "namespace", "experiment", "goal", "variant", "is_control", "trials", "successes",
    "rate", "rate_ci_low", "rate_ci_high", "uplift", "uplift_ci_low", "uplift_ci_high",
    "p_value", "chance_to_beat_control", "sequential_p_value", "sequential_uplift_ci_low",
    "sequential_uplift_ci_high", "decision", "srm_p_value", "srm", "verdict", "notes", "declared", "stopped",
    "needed_per_variant", "days_remaining", "events_per_participant",
)  # fmt: skip


def render_csv(results: Results) -> str:
    """One row per experiment, goal and variant, full precision; an experiment without a
    goal yet gets one row per variant with its participants and an empty goal."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for experiment in results.analysis["experiments"]:
        common = {"namespace": results.namespace, "experiment": experiment["experiment"],
                  "srm_p_value": experiment["srm_p_value"], "srm": experiment["srm"],
                  "declared": experiment["declared"], "stopped": experiment["stopped"]}  # fmt: skip
        if not experiment["goals"]:
            for row in results.participants.get(experiment["experiment"], []):
                values = {**common, "variant": row["label"], "trials": row["trials"],
                          "is_control": row["label"] == experiment["control"]}  # fmt: skip
                writer.writerow(_csv_cell(values.get(column)) for column in CSV_COLUMNS)
        for goal in experiment["goals"]:
            for row, row_verdict in zip(goal["variants"], goal_verdicts(experiment, goal)):
                values = {**common, **row, "goal": goal["goal"], "variant": row["label"],
                          "is_control": row["label"] == experiment["control"],
                          "verdict": row_verdict.text, "notes": " ".join(note_sentences(row))}  # fmt: skip
                for interval in ("rate_ci", "uplift_ci", "sequential_uplift_ci"):
                    values[f"{interval}_low"], values[f"{interval}_high"] = row[interval] or (None, None)
                writer.writerow(_csv_cell(values.get(column)) for column in CSV_COLUMNS)
    return out.getvalue()


DAYS_CSV_COLUMNS = (
    "namespace", "experiment", "goal", "day", "variant", "is_control", "trials", "successes",
    "rate", "rate_ci_low", "rate_ci_high", "sequential_p_value", "decision", "decision_day",
)  # fmt: skip


def render_days_csv(results: Results) -> str:
    """``lamed results --format csv --days``: one row per experiment, goal, day and variant with
    the cumulative counts at the end of that UTC day, full precision; the control's
    decision cells are empty, and ``decision_day`` is the day a decision was first reached."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DAYS_CSV_COLUMNS)
    for experiment in results.analysis["experiments"]:
        series = results.timelines.get(experiment["experiment"])
        if series is None:
            continue
        for goal in series["goals"]:
            for day_index, day in enumerate(series["days"]):
                for variant in goal["variants"]:
                    point = variant["points"][day_index]
                    values = {**point, "namespace": results.namespace, "experiment": series["experiment"],
                              "goal": goal["goal"], "day": day, "variant": variant["label"],
                              "is_control": variant["label"] == series["control"],
                              "decision_day": variant.get("decision_day")}  # fmt: skip
                    values["rate_ci_low"], values["rate_ci_high"] = point["rate_ci"] or (None, None)
                    writer.writerow(_csv_cell(values.get(column)) for column in DAYS_CSV_COLUMNS)
    return out.getvalue()


# A spreadsheet reads a cell that begins with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """A cell as text: a name or sentence (which may hold what a stranger sent to /track) has its
    control characters escaped, and is prefixed with ``'`` when a spreadsheet would read it as a
    formula, as OWASP recommends; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return ("'" if value.startswith(FORMULA_STARTS) else "") + printable(value)
    return value


# The figures' columns, in order after the variant: (row field, terminal heading, dashboard
# heading). Always-valid figures ("seq.") first: they decide; fixed-horizon ones after.
COLUMNS = (
    ("trials", "trials", "Participants"),
    ("successes", "successes", "Conversions"),
    ("rate", "rate", "Rate"),
    ("rate_ci", "rate 95% CI", "Rate 95% interval"),
    ("uplift", "uplift", "Uplift"),
    ("sequential_p_value", "seq. p", "Always-valid p"),
    ("sequential_uplift_ci", "seq. uplift CI", "Always-valid uplift interval"),
    ("p_value", "fixed p", "Fixed-horizon p-value"),
    ("uplift_ci", "fixed uplift 95% CI", "Fixed-horizon uplift 95% interval"),
    ("chance_to_beat_control", "fixed chance to beat", "Fixed-horizon chance to beat control"),
    ("needed_per_variant", "still needed/variant", "Participants still needed per variant"),
    ("days_remaining", "days left", "Days remaining at current traffic"),
)
# A non-unique goal's columns: what it counts, never a comparison.
EVENT_COLUMNS = (
    ("trials", "trials", "Participants"),
    ("successes", "events", "Events"),
    ("events_per_participant", "events per participant", "Events per participant"),
)


def goal_columns(goal: dict) -> tuple:
    """COLUMNS, or EVENT_COLUMNS for a goal declared non-unique."""
    return COLUMNS if goal.get("unique", True) else EVENT_COLUMNS



TABLE_KEY = (
    "(seq. = always valid: holds however often you look, and the verdicts follow it;",
    " fixed = fixed horizon: holds only for one look at a sample size set in advance, never a verdict;",
    " still needed: participants per variant until an undecided comparison would decide, days at current traffic)",
)
COMPARED = {"uplift", "sequential_p_value", "sequential_uplift_ci", "p_value", "uplift_ci", "chance_to_beat_control",
            "needed_per_variant", "days_remaining"}  # fmt: skip


def _figure_text(field: str, value) -> str:
    if field in ("trials", "successes", "needed_per_variant", "days_remaining"):
        return f"{value:,}"
    if field == "rate":
        return percent(value, 2)
    if field == "rate_ci":
        return interval(value)
    if field == "uplift":
        return percent(value, signed=True)
    if field in ("uplift_ci", "sequential_uplift_ci"):
        return interval(value, signed=True)
    if field in ("p_value", "sequential_p_value"):
        return f"{value:.4f}" if value >= 0.0001 else "<0.0001"
    if field == "events_per_participant":
        return f"{value:,.3g}"
    return percent(value)


def figure_cells(row: dict, is_control: bool, columns: tuple = COLUMNS) -> list[tuple[str, str]]:
    """The row's figures as ``(text, note)`` in ``columns``' order; a null figure reads "—" and
    its note says why; the control's comparisons are "baseline" then blank, and so is what a
    decided comparison no longer needs."""
    notes = row.get("notes") or {}
    cells = []
    for figure, _, _ in columns:
        if is_control and figure in COMPARED:
            cells.append(("baseline" if figure == "uplift" else "", ""))
        elif notes.get(figure) == stats.DECIDED_NOTE:  # nothing more needed: the verdict says it
            cells.append(("", ""))
        elif row[figure] is None:
            cells.append(("—", notes.get(figure, "")))
        else:
            cells.append((_figure_text(figure, row[figure]), ""))
    return cells


SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def render_table(results: Results) -> str:
    """Aligned text for the terminal: per experiment its participants, per goal a table
    of the figures (a "—" marked with a footnote saying why), then one verdict line per variant."""
    experiments = results.analysis["experiments"]
    lines = [f"namespace {results.namespace}: {len(experiments)} experiment{'s' if len(experiments) != 1 else ''}"]
    if not experiments:
        lines.append("no experiments yet: nothing has been tracked in this namespace")
    if any(experiment["goals"] for experiment in experiments):
        lines += TABLE_KEY
    for experiment in experiments:
        name = experiment["experiment"]
        lines += ["", f"{name}  (control: {experiment['control'] or '—'}, SRM {p_text(experiment['srm_p_value'])})"]
        counts = ", ".join(f"{row['label']} {row['trials']:,}" for row in results.participants.get(name, []))
        lines.append(f"  participants: {counts or 'none'}")
        declaration = declaration_text(experiment)
        if declaration:
            lines.append(f"  {'STOPPED' if experiment['stopped'] else 'note'}: {declaration}")
        warning = srm_warning(experiment)
        if warning:
            lines.append(f"  WARNING: {warning}")
        if experiment.get("goals_note"):
            lines.append(f"  goals: {experiment['goals_note']}")
        if not experiment["goals"]:
            lines.append("  no goal reached yet")
        for goal in experiment["goals"]:
            lines += ["", f"  goal: {goal['goal']}", *_goal_table(experiment, goal)]
            lines += [f"    {v.text}" for v in goal_verdicts(experiment, goal) if v.kind != "control"]
    return "\n".join(map(printable, lines))


def _goal_table(experiment: dict, goal: dict) -> list[str]:
    """The goal's aligned table, then its footnotes: each reason once, numbered."""
    footnotes: dict[str, str] = {}
    columns = goal_columns(goal)
    rows = [("variant", *(terminal for _, terminal, _ in columns))]
    for row in goal["variants"]:
        texts = [printable(row["label"])]
        for text, note in figure_cells(row, row["label"] == experiment["control"], columns):
            if note:
                marker = footnotes.setdefault(note, str(len(footnotes) + 1).translate(SUPERSCRIPTS))
                text += marker
            texts.append(text)
        rows.append(texts)
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]))]
    lines = []
    for cells in rows:
        aligned = [cells[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(cells[1:], widths[1:])]
        lines.append(f"    {'  '.join(aligned).rstrip()}")
    return lines + [f"    {marker} {note}" for note, marker in footnotes.items()]
