"""Time per call of lamed.stats.chance_to_beat as the counts grow (pure Python, no scipy).

Each row: trials per variant, a 5% control rate against a 1% relative uplift, the
chance to beat control, and the median time of a few calls.

    python benchmarks/stats.py [--repeat 5]
"""

import argparse
import statistics
import time

from lamed.stats import chance_to_beat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    print(f"{'trials':>14} {'chance':>10} {'ms/call':>9}")
    for power in range(2, 10):
        trials = 10**power
        control = trials // 20
        variant = round(control * 1.01)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            chance = chance_to_beat(variant, trials, control, trials)
            times.append(time.perf_counter() - start)
        print(f"{trials:>14,} {chance:>10.6f} {statistics.median(times) * 1000:>9.1f}")


if __name__ == "__main__":
    main()
