"""Seeded simulations of A/B tests looked at again and again: how often a decision rule
ends with a winner or a loser, when lamed first decides, what the results over time decide,
how often the sample-ratio check raises an alarm. Shared by tests/test_stats.py (small runs)
and benchmarks/stats.py (full size).

Every arm gets the same number of participants, ``horizon / looks`` more at each look;
conversions are binomial draws at the arm's true rate (numpy, seeded). The first arm is
the control. A rule maps the counts at one look to one decision per other arm.
"""

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from lamed import stats, timeline
from lamed.config import PARTICIPATE

DECIDED = ("winner", "loser")


def sequential_rule(successes: list[int], trials: int) -> list[str]:
    """lamed's decisions: the always-valid family of :func:`lamed.stats.sequential_family`."""
    family = stats.sequential_family([(s, trials, successes[0], trials) for s in successes[1:]], intervals=False)
    return [figures["decision"] for figures in family]


def fixed_horizon_rule(successes: list[int], trials: int) -> list[str]:
    """The verdict rule lamed used before: the pooled z-test at p < 0.05 with at least
    100 participants a side, every variant on its own."""
    decisions = []
    for s in successes[1:]:
        try:
            p = stats.two_proportion_p_value(s, trials, successes[0], trials)
        except stats.Undefined:
            decisions.append("insufficient_data")
            continue
        if trials < stats.MIN_TRIALS:
            decisions.append("insufficient_data")
        elif p < 0.05:
            decisions.append("winner" if s > successes[0] else "loser")
        else:
            decisions.append("inconclusive")
    return decisions


@dataclass(frozen=True)
class Outcome:
    """Fractions of the runs: ``any_decision``, some variant declared winner or loser at some
    look (in an A/A test, the family-wise error); ``first_winner``, the first variant declared
    winner at some look (stopping there, as an always-valid decision allows); ``final_winner``,
    the first variant's decision is winner at the last look."""

    runs: int
    any_decision: float
    first_winner: float
    final_winner: float


def simulate(rule, rates: list[float], runs: int, looks: int = 25, horizon: int = 10_000, seed: int = 0) -> Outcome:
    """Run ``rule`` at each of ``looks`` equally spaced looks up to ``horizon`` participants a side."""
    rng = np.random.default_rng(seed)
    step = horizon // looks
    conversions = rng.binomial(step, np.asarray(rates), size=(runs, looks, len(rates))).cumsum(axis=1)
    any_decision = first_winner = final_winner = 0
    for run in conversions.tolist():
        decided = winner = False
        for look, successes in enumerate(run, start=1):
            decisions = rule(successes, step * look)
            decided = decided or any(decision in DECIDED for decision in decisions)
            winner = winner or decisions[0] == "winner"
        any_decision += decided
        first_winner += winner
        final_winner += decisions[0] == "winner"
    return Outcome(runs, any_decision / runs, first_winner / runs, final_winner / runs)


def decision_times(rates: list[float], runs: int, looks: int, horizon: int, wanted: str, seed: int = 0) -> list[float]:
    """Participants a side at the first look where lamed's decision for the first variant is
    ``wanted`` (math.inf where it never is by ``horizon``), sorted; same looks as :func:`simulate`."""
    rng = np.random.default_rng(seed)
    step = horizon // looks
    conversions = rng.binomial(step, np.asarray(rates), size=(runs, looks, len(rates))).cumsum(axis=1)
    times = []
    for run in conversions.tolist():
        found = math.inf
        for look, successes in enumerate(run, start=1):
            if sequential_rule(successes, step * look)[0] == wanted:
                found = step * look
                break
        times.append(found)
    return sorted(times)


def quantile(times: list[float], share: float) -> float:
    """The smallest time by which ``share`` of the runs had decided (math.inf if fewer did)."""
    return times[max(0, math.ceil(share * len(times)) - 1)]


def timeline_decisions(rates: list[float], shares: list[float], daily: int, days: int, runs: int, seed: int = 0) -> float:
    """The share of runs of an experiment with ``daily`` visitors a day split by ``shares``
    (first arm the control), over ``days`` days, whose results over time
    (:func:`lamed.timeline.over_time` of its daily counts) show a winner or a loser on some day."""
    rng = np.random.default_rng(seed)
    labels = ["control"] + [f"v{index}" for index in range(1, len(rates))]
    decided = 0
    for _ in range(runs):
        visitors = rng.multinomial(daily, shares, size=days)
        conversions = rng.binomial(visitors, rates)
        by_day = {(date(2026, 1, 1) + timedelta(days=day)).isoformat(): {
            PARTICIPATE: dict(zip(labels, visitors[day].tolist())), "goal": dict(zip(labels, conversions[day].tolist()))}
            for day in range(days)}  # fmt: skip
        trials, successes = visitors.sum(axis=0).tolist(), conversions.sum(axis=0).tolist()
        entry = {"experiment": "e", "daily": by_day, "variants": [{"label": l, "trials": n} for l, n in zip(labels, trials)],
                 "goals": [{"goal": "goal", "results": [{"label": l, "successes": s, "trials": n}
                                                        for l, s, n in zip(labels, successes, trials)]}]}  # fmt: skip
        series = timeline.over_time(entry, "control")
        decided += any(row.get("decision_day") for row in series["goals"][0]["variants"])
    return decided / runs


def srm_alarms(shares: list[float], weights: list[float] | None, daily: int, days: int, runs: int, seed: int = 0) -> float:
    """The share of runs whose always-valid SRM p-value, looked at after every day (the running
    minimum, as :func:`lamed.stats.analyse` takes it over the daily counts), falls below
    SRM_THRESHOLD by ``days`` days of ``daily`` visitors split by ``shares``."""
    rng = np.random.default_rng(seed)
    cumulative = rng.multinomial(daily, shares, size=(runs, days)).cumsum(axis=1)
    alarms = 0
    for run in cumulative.tolist():
        alarms += any(stats.srm_p_value(look, weights) < stats.SRM_THRESHOLD for look in run)
    return alarms / runs
