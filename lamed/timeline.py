"""Results over time: an experiment's cumulative counts at the end of each UTC day, each
variant's cumulative rate and interval per goal, and the day a decision was first reached.

Reads the ``daily`` counts of ``GET /experiments?days=1``. The cumulative count of a counter
at the end of day d is its total less what was counted after d, so counts older than the daily
series (the original Lamed's, or migrated ones) belong to every day of it. The decisions are
:func:`lamed.stats.sequential_family` of each day's cumulative counts, each comparison's raw p
the running minimum over the days (docs/statistics.md, Results over time, defends it).
"""

from datetime import date, timedelta

from lamed import stats
from lamed.config import PARTICIPATE
from lamed.stats import Undefined, wilson_interval

DECIDED = ("winner", "loser")


def calendar(days) -> list[str]:
    """Every day from the first to the last of ``days`` (``YYYY-MM-DD``), gaps filled."""
    known = sorted(days)
    if not known:
        return []
    first, last = date.fromisoformat(known[0]), date.fromisoformat(known[-1])
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]


def cumulative_counts(entry: dict) -> list[tuple[str, dict[tuple[str, str], int]]]:
    """``(day, (event, variant) -> count at the end of that day)`` for every day of the entry's
    ``daily`` counts; an empty list without them."""
    daily = entry.get("daily") or {}
    trials = stats.participants(entry)
    totals = {(PARTICIPATE, label): n for label, n in trials.items()}
    for goal in entry["goals"]:
        for row in goal["results"]:
            totals[goal["goal"], row["label"]] = row["successes"]
    later = dict.fromkeys(totals, 0)
    series = []
    for day in reversed(calendar(daily)):
        series.append((day, {key: max(0, total - later[key]) for key, total in totals.items()}))
        for event, variants in daily.get(day, {}).items():
            for variant, count in variants.items():
                if (event, variant) in later:
                    later[event, variant] += count
    return series[::-1]


def over_time(entry: dict, control: str) -> dict:
    """Per goal of one experiment (``analyse()``'s control): each variant's cumulative trials,
    successes, rate and Wilson interval per day, and for each variant but the control the
    decision per day and the day it was first a winner or a loser (None if never).

    A rate that does not exist (no participants yet) is None, never NaN.
    """
    series = cumulative_counts(entry)
    goals = [goal["goal"] for goal in entry["goals"]]
    labels = sorted(stats.participants(entry), key=lambda label: label != control)
    compared = [(goal, label) for goal in goals for label in labels[1:]]
    result = {"experiment": entry["experiment"], "control": control, "days": [day for day, _ in series]}
    points = {(goal, label): [] for goal in goals for label in labels}
    decided: dict[tuple[str, str], tuple[str, str]] = {}
    earlier = None
    for day, counts in series:
        for goal in goals:
            for label in labels:
                points[goal, label].append(_point(counts.get((goal, label), 0), counts.get((PARTICIPATE, label), 0)))
        family = stats.sequential_family(
            [(*_pair(counts, goal, label), *_pair(counts, goal, control)) for goal, label in compared], earlier=earlier
        )
        earlier = [figures["raw_p_value"] for figures in family]
        for key, figures in zip(compared, family):
            if key not in decided and figures["decision"] in DECIDED:
                decided[key] = (figures["decision"], day)  # its direction on the day it was reached, kept
            decision = decided[key][0] if key in decided else figures["decision"]
            points[key][-1] |= {"sequential_p_value": figures["sequential_p_value"], "decision": decision}
    result["goals"] = [
        {
            "goal": goal,
            "variants": [
                {"label": label, "points": points[goal, label]}
                | ({} if label == control else {"decision": points[goal, label][-1]["decision"] if series else None,
                                                "decision_day": decided.get((goal, label), (None, None))[1]})  # fmt: skip
                for label in labels
            ],
        }
        for goal in goals
    ]
    return result


def _pair(counts: dict, goal: str, label: str) -> tuple[int, int]:
    return counts.get((goal, label), 0), counts.get((PARTICIPATE, label), 0)


def _point(successes: int, trials: int) -> dict:
    try:
        low, high = wilson_interval(successes, trials)
        rate = successes / trials
    except Undefined:
        rate = low = high = None
    return {"trials": trials, "successes": successes, "rate": rate, "rate_ci": None if rate is None else [low, high]}
