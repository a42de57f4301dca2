"""Results over time: an experiment's cumulative counts at the end of each UTC day, each
variant's cumulative rate and interval per goal, and the day a decision was first reached.

Reads the ``daily`` counts of ``GET /experiments?days=1``. The cumulative count of a counter
at the end of day d is its total less what was counted after d, so counts older than the daily
series (the original Lamed's, or migrated ones) belong to every day of it. The decisions are
:func:`lamed.stats.sequential_family` of each day's cumulative counts, each comparison's raw p
the running minimum over the days with at least ``stats.MIN_TRIALS`` participants on both sides,
its direction that of the day that set it (docs/statistics.md defends it).
"""

from lamed import days, stats
from lamed.config import PARTICIPATE
from lamed.stats import Undefined, wilson_interval

DECIDED = ("winner", "loser")


def cumulative_counts(entry: dict) -> list[tuple[str, dict[tuple[str, str], int]]]:
    """``(day, (event, variant) -> count at the end of that day)`` for every day of the entry's
    ``daily`` counts; an empty list without them."""
    totals = {(PARTICIPATE, label): n for label, n in stats.participants(entry).items()}
    for goal in entry["goals"]:
        for row in goal["results"]:
            totals[goal["goal"], row["label"]] = row["successes"]
    return days.cumulative(totals, entry.get("daily") or {})


def over_time(entry: dict, control: str) -> dict:
    """Per goal of one experiment (``analyse()``'s control): each variant's cumulative trials,
    successes, rate and Wilson interval per day, and for each variant but the control the
    decision per day and the day it was first a winner or a loser (None if never); a goal
    declared non-unique (``"unique": false``) counts events, so it has no decisions (None).

    A rate that does not exist (no participants yet) is None, never NaN.
    """
    series = cumulative_counts(entry)
    goals = [goal["goal"] for goal in entry["goals"]]
    labels = sorted(stats.participants(entry), key=lambda label: label != control)
    unique = {goal["goal"] for goal in entry["goals"] if stats.is_unique(goal)}
    compared = [(goal, label) for goal in goals if goal in unique for label in labels[1:]]
    result = {"experiment": entry["experiment"], "control": control, "days": [day for day, _ in series]}
    points = {(goal, label): [] for goal in goals for label in labels}
    decided: dict[tuple[str, str], tuple[str, str]] = {}
    earlier = None
    for day, counts in series:
        for goal in goals:
            for label in labels:
                points[goal, label].append(_point(counts.get((goal, label), 0), counts.get((PARTICIPATE, label), 0)))
        family = stats.sequential_family(
            [(*_pair(counts, goal, label), *_pair(counts, goal, control)) for goal, label in compared],
            earlier=earlier,
            intervals=False,
        )
        earlier = [figures["evidence"] for figures in family]
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
                | ({} if label == control else {"decision": points[goal, label][-1].get("decision") if series else None,
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
