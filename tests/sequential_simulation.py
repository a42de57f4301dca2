"""Seeded simulations of A/B tests looked at again and again: how often a decision rule
ends with a winner or a loser. Shared by tests/test_stats.py (small runs) and
benchmarks/stats.py (full size).

Every arm gets the same number of participants, ``horizon / looks`` more at each look;
conversions are binomial draws at the arm's true rate (numpy, seeded). The first arm is
the control. A rule maps the counts at one look to one decision per other arm.
"""

from dataclasses import dataclass

import numpy as np

from lamed import stats

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
