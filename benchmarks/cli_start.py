"""How long `lamed --help` and `lamed serve --help` take to start, beside `python -c "import click"`.

Runs each command ``--runs`` times, interleaved (so a busy machine slows all of them alike),
and prints the median wall time and the median CPU time (user + system, from the child's
rusage) of each, and each lamed command's ratio to ``import click``, the floor any click
program pays. The `lamed` script beside this Python is used.

    python benchmarks/cli_start.py [--runs 30]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def commands() -> dict[str, list[str]]:
    lamed = shutil.which("lamed", path=str(Path(sys.executable).parent))
    if lamed is None:
        sys.exit("no `lamed` script beside this Python: pip install the project first")
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "lamed --help": [lamed, "--help"],
        "lamed serve --help": [lamed, "serve", "--help"],
    }


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    table = commands()
    samples = {name: [] for name in table}
    for _ in range(args.runs):
        for name, command in table.items():
            samples[name].append(run_once(command))
    medians = {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)) for name, runs in samples.items()}
    floor_wall, floor_cpu = medians['python -c "import click"']
    print(f"median of {args.runs} runs, Python {sys.version.split()[0]}")
    print("| command | wall ms | CPU ms | wall / import click | CPU / import click |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in medians.items():
        print(f"| `{name}` | {wall * 1000:.0f} | {cpu * 1000:.0f} | {wall / floor_wall:.2f}x | {cpu / floor_cpu:.2f}x |")


if __name__ == "__main__":
    main()
