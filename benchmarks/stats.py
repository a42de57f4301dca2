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

    python benchmarks/stats.py [--repeat 5] [--runs 10000]
"""

import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lamed.stats import analyse, chance_to_beat  # noqa: E402
from lamed.timeline import over_time  # noqa: E402
from sequential_simulation import fixed_horizon_rule, sequential_rule, simulate  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10_000)
    arguments = parser.parse_args()
    time_analyse(arguments.repeat)
    time_chance_to_beat(arguments.repeat)
    simulations(arguments.runs)


if __name__ == "__main__":
    main()
