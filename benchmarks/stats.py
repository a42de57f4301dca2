"""lamed.stats: the speed of analyse() and of the chance to beat control (pure Python, no
scipy), and the always-valid decisions against the old fixed-horizon rule, by simulation.

1. ``analyse()`` of 60 experiments x 4 variants x 3 goals (seeded counts: 100 to 10^6
   participants per variant, 1% to 30% conversion): the median time of a few runs.
   Then the results over time of the same experiments over 90 days (``lamed.timeline``: 90
   families of 9 comparisons per experiment), what ``lamed dashboard`` adds with daily counts.
2. The chance to beat control from 10^2 to 10^9 trials (a 5% control rate against a 1%
   relative uplift): the median time per call.
3. Seeded simulations, each arm looked at 25 times up to 10,000 participants: how often an
   A/A test (10%, 1% and 50% both sides), a 4-arm A/A test and a true 10% -> 12% uplift end with a
   decision, under lamed's always-valid decisions and under the old rule (pooled z-test,
   p < 0.05, at least 100 a side), which is also shown with a single look at the end; then an
   A/A test looked at 200 times up to 100,000 a side, nearer to continuous monitoring.
4. Issue 20's scenarios: a broken variant (10% -> 0%, looked at every 100 a side) and when it is
   found; the expected sample size of 10% -> 12%; the results over time of a 90 / 10 and a
   10 / 90 A/A test at 50%, 20 visitors a day for a year; the always-valid p-value against the
   z-test's over a grid of counts with 0 and 100%; the always-valid sample-ratio check over 30
   daily looks (even, and 90 / 10 declared) and on a 48 / 52 split by 20,000 a side.
5. The planner (``lamed plan``) against simulation: the participants a side by which 80% of
   runs have decided, looked at 200 times up to twice the plan.

    python benchmarks/stats.py [--repeat 5] [--runs 10000]
"""

import argparse
import math
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lamed import planner  # noqa: E402
from lamed.stats import always_valid_p_value, analyse, chance_to_beat, two_proportion_p_value  # noqa: E402
from lamed.timeline import over_time  # noqa: E402
from sequential_simulation import (  # noqa: E402
    decision_times,
    fixed_horizon_rule,
    quantile,
    sequential_rule,
    simulate,
    srm_alarms,
    timeline_decisions,
)

LABELS = ("control", "a", "b", "c")


def entries(experiments: int = 60, goals: int = 3, seed: int = 1) -> list:
    """Lamed's results list: ``experiments`` x 4 variants x ``goals``, seeded counts."""
    rng = random.Random(seed)
    result = []
    for index in range(experiments):
        trials = {label: int(10 ** rng.uniform(2, 6)) for label in LABELS}
        results = []
        for goal in range(goals):
            rate = rng.uniform(0.01, 0.3)
            results.append({"goal": f"goal {goal}", "results": [
                {"label": label, "successes": round(n * rate * rng.uniform(0.9, 1.1)), "trials": n}
                for label, n in trials.items()]})  # fmt: skip
        variants = [{"label": label, "trials": n} for label, n in trials.items()]
        result.append({"experiment": f"experiment {index}", "goals": results, "variants": variants})
    return result


def median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_analyse(repeat: int) -> None:
    data = entries()
    seconds = median_seconds(lambda: analyse(data, "bench"), repeat)
    print(f"analyse(): 60 experiments x 4 variants x 3 goals in {seconds:.3f} s (median of {repeat})")
    dated = [entry | {"daily": spread_over_days(entry, 90)} for entry in data]
    seconds = median_seconds(lambda: [over_time(entry, "control") for entry in dated], repeat)
    print(f"over_time(): the same over 90 days in {seconds:.3f} s (median of {repeat})\n")


def spread_over_days(entry: dict, days: int) -> dict:
    """Daily counts that sum to the entry's totals: an equal share per day, the rest on the last."""
    daily = {}
    counts = {("participate", row["label"]): row["trials"] for row in entry["variants"]}
    for goal in entry["goals"]:
        counts |= {(goal["goal"], row["label"]): row["successes"] for row in goal["results"]}
    for day in range(days):
        name = (date(2026, 1, 1) + timedelta(days=day)).isoformat()
        for (event, label), total in counts.items():
            share = total // days + (total % days if day == days - 1 else 0)
            daily.setdefault(name, {}).setdefault(event, {})[label] = share
    return daily


def time_chance_to_beat(repeat: int) -> None:
    print(f"{'trials':>14} {'chance':>10} {'ms/call':>9}")
    for power in range(2, 10):
        trials = 10**power
        control = trials // 20
        variant = round(control * 1.01)
        chance = chance_to_beat(variant, trials, control, trials)
        seconds = median_seconds(lambda: chance_to_beat(variant, trials, control, trials), repeat)
        print(f"{trials:>14,} {chance:>10.6f} {seconds * 1000:>9.2f}")
    print()


# (what is counted, true rates with the control first, the Outcome figure, looks, participants
# a side, the share of --runs simulated)
SCENARIOS = (
    ("A/A, 10% both sides: winner or loser", [0.1, 0.1], "any_decision", 25, 10_000, 1),
    ("A/A, 1% both sides: winner or loser", [0.01, 0.01], "any_decision", 25, 10_000, 1),
    ("A/A, 50% both sides: winner or loser", [0.5, 0.5], "any_decision", 25, 10_000, 1),
    ("4-arm A/A: any winner or loser (family-wise)", [0.1] * 4, "any_decision", 25, 10_000, 1),
    ("10% -> 12%: found as winner by 10,000 a side", [0.1, 0.12], "first_winner", 25, 10_000, 1),
    ("10% -> 12%: winner at the last look", [0.1, 0.12], "final_winner", 25, 10_000, 1),
    ("A/A, 5%, 200 looks to 100,000 a side (runs / 10)", [0.05, 0.05], "any_decision", 200, 100_000, 0.1),
)


def simulations(runs: int) -> None:
    rules = (("always valid", sequential_rule, None), ("old rule, same looks", fixed_horizon_rule, None),
             ("old rule, 1 look at the end", fixed_horizon_rule, 1))  # fmt: skip
    print(f"{'scenario (' + format(runs, ',') + ' runs each)':<52}" + "".join(f"{name:>30}" for name, _, _ in rules))
    outcomes = {}
    for seed, (title, rates, figure, looks, horizon, share) in enumerate(SCENARIOS):
        count = max(1, round(runs * share))
        cells = []
        for name, rule, only_looks in rules:
            key = (tuple(rates), looks, horizon, name)
            if key not in outcomes:
                outcomes[key] = simulate(rule, rates, count, looks=only_looks or looks, horizon=horizon, seed=seed)
            cells.append(f"{getattr(outcomes[key], figure) * 100:>29.1f}%")
        print(f"{title:<52}" + "".join(cells))


def issue_scenarios(runs: int) -> None:
    """Issue 20's scenarios (module doc, 4.), at --runs / 5 runs each (the SRM checks at --runs)."""
    count = max(1, runs // 5)
    broken = decision_times([0.1, 0.0], count, 100, 10_000, "loser", seed=11)
    print(f"10% -> 0%, looked at every 100 a side ({count:,} runs): found as loser in "
          f"{sum(t < math.inf for t in broken) / count:.1%}, median {quantile(broken, 0.5):,} a side, "
          f"all by {broken[-1]:,}")  # fmt: skip
    uplift = decision_times([0.1, 0.12], count, 25, 10_000, "winner", seed=12)
    expected = statistics.fmean(min(t, 10_000) for t in uplift)
    print(f"10% -> 12%, 25 looks to 10,000 a side: expected participants a side at the decision "
          f"(10,000 when none) {expected:,.0f}")  # fmt: skip
    for shares in ([0.9, 0.1], [0.1, 0.9]):
        share = timeline_decisions([0.5, 0.5], shares, daily=20, days=365, runs=count, seed=13)
        print(f"A/A at 50%, {shares[0]:.0%} / {shares[1]:.0%}, 20 a day, results over time for 365 days: "
              f"winner or loser on some day in {share:.2%}")  # fmt: skip
    below = checked = 0
    sizes = [1, 2, 3, 8, 20, 72, 100, 1000, 10**4, 10**6]
    for n_v in sizes:
        for n_c in sizes:
            for s_v in sorted({0, 1, n_v // 3, n_v // 2, n_v - 1, n_v}):
                for s_c in sorted({0, 1, n_c // 3, n_c // 2, n_c - 1, n_c}):
                    if 0 < s_v + s_c < n_v + n_c:
                        checked += 1
                        below += always_valid_p_value(s_v, n_v, s_c, n_c) < two_proportion_p_value(s_v, n_v, s_c, n_c)
    print(f"always-valid p below the z-test's p: {below} of {checked:,} count combinations (0 and 100% included)")
    for label, shares, weights in (("even split", [0.5, 0.5], None), ("90 / 10, declared", [0.9, 0.1], [0.9, 0.1])):
        alarms = srm_alarms(shares, weights, daily=1000, days=30, runs=runs, seed=14)
        print(f"SRM, {label}, looked at after each of 30 days of 1,000 ({runs:,} runs): alarms in {alarms:.2%}")
    found = srm_alarms([0.48, 0.52], None, daily=2000, days=20, runs=count, seed=15)
    print(f"SRM, 48 / 52 split, looked at daily up to 20,000 a side ({count:,} runs): found in {found:.1%}\n")


PLANS = ((0.1, 0.1), (0.1, 0.2), (0.02, 0.1), (0.5, 0.05), (0.3, -0.1), (0.01, 0.3), (0.9, 0.05), (0.1, -1.0))


def planner_accuracy(runs: int) -> None:
    """The planner (module doc, 5.) at --runs / 5 runs per plan."""
    count = max(1, runs // 5)
    print(f"{'baseline':>9} {'effect':>8} {'planned':>10} {'simulated':>10} {'difference':>11}   ({count:,} runs each)")
    for rate, effect in PLANS:
        planned = planner.participants_per_variant(rate, effect)
        wanted = "winner" if effect > 0 else "loser"
        times = decision_times([rate, rate * (1 + effect)], count, 200, 2 * planned, wanted, seed=16)
        simulated = quantile(times, 0.8)
        print(f"{rate:>9.0%} {effect:>+8.0%} {planned:>10,} {simulated:>10,} {planned / simulated - 1:>+11.1%}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10_000)
    arguments = parser.parse_args()
    time_analyse(arguments.repeat)
    time_chance_to_beat(arguments.repeat)
    simulations(arguments.runs)
    print()
    issue_scenarios(arguments.runs)
    planner_accuracy(arguments.runs)


if __name__ == "__main__":
    main()
