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
from urllib.parse import urlsplit

from lamed import stats
from lamed.config import DEFAULT_NAMESPACE, find_config_path, load_config

API_KEY_HEADER = "x-api-key"
CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 30.0
FORMATS = ("table", "json", "csv")

# The verdict rule (README): below MIN_TRIALS participants in the variant or the
# control, or at p >= SIGNIFICANCE, a variant has not won or lost yet.
MIN_TRIALS = 100
SIGNIFICANCE = 0.05


class ReportError(Exception):
    """Results could not be read; the message is one line with the fix."""


@dataclass
class Results:
    """Figures for one namespace (``analysis`` is :func:`lamed.stats.analyse`'s dict)
    plus each experiment's participants per variant, goal or not."""

    source: str
    namespace: str
    analysis: dict
    participants: dict = field(default_factory=dict)


def default_namespace() -> str:
    """The config's namespace when a config file exists, else ``alephbet``."""
    return load_config().namespace if find_config_path() else DEFAULT_NAMESPACE


def discover_endpoint(profile: str | None, region: str | None) -> tuple[str, str]:
    """The deployed API's experiments URL and key, found through AWS as ``lamed status`` does
    (AWS errors propagate: the CLI turns them into one line)."""
    from lamed.aws.deployment import find_deployment
    from lamed.aws.session import make_session

    session = make_session(profile, region)
    deployment = find_deployment(session)
    if deployment is None:
        raise ReportError(
            f"no lamed deployment found in {session.region_name} — run `lamed deploy`, "
            "or pass --endpoint URL --api-key KEY"
        )
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


def fetch_entries(url: str, api_key: str | None, namespace: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> list:
    """GET ``url?namespace=NS`` with the key in ``x-api-key``; the experiment entries."""
    import requests  # here, not at the top: every `lamed` command imports this module's constants

    check_endpoint(url)
    headers = {API_KEY_HEADER: api_key} if api_key else {}
    try:
        response = requests.get(
            url,
            params={"namespace": namespace},
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


def participants(entry: dict) -> list[dict]:
    """``[{"label", "trials"}]`` per variant: lamed's ``variants``, else from the goals (Lamed)."""
    trials = stats.participants(entry)
    return [{"label": label, "trials": trials[label]} for label in sorted(trials)]


def analyse_entries(
    entries: list, namespace: str, source: str, experiment: str | None = None, control: str | None = None
) -> Results:
    """Figures for ``entries`` (one experiment when named), control chosen as in :mod:`lamed.stats`;
    entries not in Lamed's shape, an unknown experiment or control are a ReportError."""
    try:
        analysis = stats.analyse(entries, namespace, control=control, experiment=experiment)
    except stats.NotLamedShape as exc:
        raise not_lamed_results(source, str(exc)) from None
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    shown = {experiment["experiment"] for experiment in analysis["experiments"]}
    counts = {entry["experiment"]: participants(entry) for entry in entries if entry["experiment"] in shown}
    return Results(source, namespace, analysis, counts)


def load_results(
    url: str,
    api_key: str | None,
    namespace: str,
    experiment: str | None = None,
    control: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Results:
    """Read ``url`` and compute the figures: what ``lamed results`` and ``lamed dashboard`` show."""
    entries = fetch_entries(url, api_key, namespace, timeout)
    return analyse_entries(entries, namespace, url, experiment, control)


# -- plain language -----------------------------------------------------------------------


def percent(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value * 100:{'+' if signed else ''}.{digits}f}%"


def interval(bounds, signed: bool = False) -> str:
    if not bounds or None in bounds:
        return "—"
    return f"[{percent(bounds[0], signed=signed)}, {percent(bounds[1], signed=signed)}]"


def p_text(p: float | None) -> str:
    """``p = 0.03``, ``p = 0.0012``, ``p < 0.001``."""
    if p is None:
        return "p = —"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def chance_text(chance: float) -> str:
    if chance >= 0.995:
        return ">99%"
    if chance <= 0.005:
        return "<1%"
    return f"{chance * 100:.0f}%"


@dataclass(frozen=True)
class Verdict:
    """What a variant's figures say; ``kind`` is control, win, loss, unclear or waiting."""

    kind: str
    text: str


def verdict(row: dict, control_row: dict | None, control: str) -> Verdict:
    """The plain verdict of one variant row against the control row of the same goal.

    Fewer than :data:`MIN_TRIALS` participants on either side, or no p-value or
    chance (see the row's notes): not enough data yet. Otherwise p < 0.05 is a win
    or a loss, by which rate is higher; p >= 0.05 is no clear difference yet.
    """
    label = row["label"]
    if label == control:
        return Verdict("control", f"{label} is the control, the baseline of the others")
    if not row["trials"]:
        return Verdict("waiting", f"{label}: not enough data yet (no participants)")
    fewest = min(row["trials"], control_row["trials"] if control_row else 0)
    if fewest < MIN_TRIALS:
        return Verdict("waiting", f"{label}: not enough data yet (fewer than {MIN_TRIALS} participants on a side)")
    p, chance = row.get("p_value"), row.get("chance_to_beat_control")
    if p is None or chance is None:
        notes = row.get("notes") or {}
        reason = notes.get("p_value") or notes.get("chance_to_beat_control")
        return Verdict("waiting", f"{label}: not enough data yet" + (f" ({reason})" if reason else ""))
    if p >= SIGNIFICANCE:
        odds = f"{label} beats {control} with {chance_text(chance)} chance, {p_text(p)}"
        return Verdict("unclear", f"{label}: no clear difference yet ({odds})")
    if row["rate"] > control_row["rate"]:
        return Verdict("win", f"{label} beats {control} with {chance_text(chance)} chance, {p_text(p)}")
    return Verdict("loss", f"{control} beats {label} with {chance_text(1 - chance)} chance, {p_text(p)}")


def goal_verdicts(experiment: dict, goal: dict) -> list[Verdict]:
    """The verdict of each variant row of ``goal``, in row order."""
    control = experiment["control"]
    control_row = next((row for row in goal["variants"] if row["label"] == control), None)
    return [verdict(row, control_row, control) for row in goal["variants"]]


def srm_warning(experiment: dict) -> str | None:
    """The sample-ratio-mismatch warning when flagged, else None."""
    if not experiment.get("srm"):
        return None
    return (
        f"sample ratio mismatch ({p_text(experiment['srm_p_value'])}): the variants did not get an even share "
        "of participants, so check how variants are assigned before trusting these figures"
    )


# -- formats -------------------------------------------------------------------------------


def render(results: Results, fmt: str) -> str:
    return {"table": render_table, "json": render_json, "csv": render_csv}[fmt](results)


def render_json(results: Results) -> str:
    return json.dumps(results.analysis, indent=2)


CSV_COLUMNS = (
    "namespace", "experiment", "goal", "variant", "is_control", "trials", "successes",
    "rate", "rate_ci_low", "rate_ci_high", "uplift", "uplift_ci_low", "uplift_ci_high",
    "p_value", "chance_to_beat_control", "srm_p_value", "srm", "verdict", "notes",
)  # fmt: skip


def render_csv(results: Results) -> str:
    """One row per experiment, goal and variant, full precision; an experiment without a
    goal yet gets one row per variant with its participants and an empty goal."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for experiment in results.analysis["experiments"]:
        common = {"namespace": results.namespace, "experiment": experiment["experiment"],
                  "srm_p_value": experiment["srm_p_value"], "srm": experiment["srm"]}  # fmt: skip
        if not experiment["goals"]:
            for row in results.participants.get(experiment["experiment"], []):
                values = {**common, "variant": row["label"], "trials": row["trials"],
                          "is_control": row["label"] == experiment["control"]}  # fmt: skip
                writer.writerow(_csv_cell(values.get(column)) for column in CSV_COLUMNS)
        for goal in experiment["goals"]:
            for row, row_verdict in zip(goal["variants"], goal_verdicts(experiment, goal)):
                values = {
                    **common,
                    **row,
                    "goal": goal["goal"],
                    "variant": row["label"],
                    "is_control": row["label"] == experiment["control"],
                    "rate_ci_low": _bound(row["rate_ci"], 0),
                    "rate_ci_high": _bound(row["rate_ci"], 1),
                    "uplift_ci_low": _bound(row["uplift_ci"], 0),
                    "uplift_ci_high": _bound(row["uplift_ci"], 1),
                    "verdict": row_verdict.text,
                    "notes": "; ".join(f"{name}: {why}" for name, why in (row.get("notes") or {}).items()),
                }
                writer.writerow(_csv_cell(values.get(column)) for column in CSV_COLUMNS)
    return out.getvalue()


def _bound(bounds, index: int):
    return bounds[index] if bounds else None


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


TABLE_HEADINGS = ("variant", "trials", "successes", "rate", "95% CI", "uplift", "95% CI", "p-value", "chance to beat")


def figure_cells(row: dict, is_control: bool) -> list[tuple[str, str]]:
    """The row's figures as ``(text, note)`` in TABLE_HEADINGS' order after the variant;
    a null figure reads "—" and its note says why."""
    notes = row.get("notes") or {}

    def cell(name, text):
        return (text, "") if row[name] is not None else ("—", notes.get(name, ""))

    cells = [
        (f"{row['trials']:,}", ""),
        (f"{row['successes']:,}", ""),
        cell("rate", percent(row["rate"], 2)),
        cell("rate_ci", interval(row["rate_ci"])),
    ]
    if is_control:
        return cells + [("baseline", ""), ("", ""), ("", ""), ("", "")]
    p = row["p_value"]
    return cells + [
        cell("uplift", percent(row["uplift"], signed=True)),
        cell("uplift_ci", interval(row["uplift_ci"], signed=True)),
        cell("p_value", f"{p:.4f}" if p is not None else ""),
        cell("chance_to_beat_control", percent(row["chance_to_beat_control"])),
    ]


def render_table(results: Results) -> str:
    """Aligned text for the terminal: per experiment its participants, per goal a table
    of the figures, then one verdict line per variant."""
    experiments = results.analysis["experiments"]
    lines = [f"namespace {results.namespace}: {len(experiments)} experiment{'s' if len(experiments) != 1 else ''}"]
    if not experiments:
        lines.append("no experiments yet: nothing has been tracked in this namespace")
    for experiment in experiments:
        name = experiment["experiment"]
        lines += ["", f"{name}  (control: {experiment['control'] or '—'}, SRM {p_text(experiment['srm_p_value'])})"]
        counts = ", ".join(f"{row['label']} {row['trials']:,}" for row in results.participants.get(name, []))
        lines.append(f"  participants: {counts or 'none'}")
        warning = srm_warning(experiment)
        if warning:
            lines.append(f"  WARNING: {warning}")
        if not experiment["goals"]:
            lines.append("  no goal reached yet")
        for goal in experiment["goals"]:
            rows = [TABLE_HEADINGS]
            for row in goal["variants"]:
                cells = figure_cells(row, row["label"] == experiment["control"])
                rows.append((row["label"], *(text for text, _ in cells)))
            widths = [max(len(cells[i]) for cells in rows) for i in range(len(TABLE_HEADINGS))]
            lines += ["", f"  goal: {goal['goal']}"]
            for cells in rows:
                aligned = [cells[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(cells[1:], widths[1:])]
                lines.append(f"    {'  '.join(aligned).rstrip()}")
            lines += [f"    {v.text}" for v in goal_verdicts(experiment, goal) if v.kind != "control"]
    return "\n".join(lines)
