"""What one event costs Redis when a stranger has sent junk: commands and Redis time per event for a
known pair, a new pair in an experiment of 20,000 junk goals, and a junk namespace, in both layouts.

Commands are counted from ``INFO commandstats`` (a script's own commands included); Redis time is
the sum of the SLOWLOG durations of the event's top-level commands (``slowlog-log-slower-than 0``),
the median over ``--runs`` events. Lamed's layout runs on one redis-server, the cluster layout on a
real Redis Cluster of 3 masters; the junk is written through the store itself (bounds raised).

    python benchmarks/junk.py [--junk 20000] [--runs 200]
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from redis_servers import RedisCluster  # noqa: E402

from lamed.config import Bounds  # noqa: E402
from lamed.connection import open_store  # noqa: E402
from lamed.redis_server import RedisServer  # noqa: E402


def one_event(nodes, event) -> tuple[int, int]:
    """(commands, Redis µs) of ``event()``."""
    for node in nodes:
        node.config_resetstat()
        node.slowlog_reset()
    event()
    commands = micros = 0
    for node in nodes:
        stats = node.info("commandstats")
        commands += sum(s["calls"] for name, s in stats.items() if name not in ("cmdstat_config|resetstat", "cmdstat_slowlog|reset", "cmdstat_info"))
        micros += sum(entry["duration"] for entry in node.slowlog_get(1000) if not entry["command"].startswith((b"SLOWLOG", b"CONFIG", b"INFO")))
    return commands, micros


def scenarios(store, junk: int, runs: int) -> dict:
    """Each scenario's ``runs`` events: name -> a function of the run's index."""
    store.track("ns", "junked", "a", "participate", "u")
    for n in range(junk):
        store.track("ns", "junked", "a", f"junk{n}", "u")
    return {
        "known pair": lambda i: store.track("ns", "junked", "a", "participate", f"known{i}"),
        "new pair (after the junk)": lambda i: store.track("ns", "junked", f"new{i}", "participate", "u"),
        "junk namespace": lambda i: store.track(f"junkspace{i}", "e", "a", "participate", "u"),
    }


def measure(label: str, settings: dict, nodes, junk: int, runs: int) -> None:
    store = open_store(settings, 86400, Bounds(max_experiments=10, max_variants=runs + 10, max_goals=junk + 10))
    for node in nodes:
        node.config_set("slowlog-log-slower-than", 0)
        node.config_set("slowlog-max-len", 1000)
    for name, event in scenarios(store, junk, runs).items():
        figures = [one_event(nodes, lambda: event(i)) for i in range(runs)]
        commands = statistics.median(f[0] for f in figures)
        micros = statistics.median(f[1] for f in figures)
        print(f"{label:16} {name:28} {commands:6.0f} commands  {micros:7.0f} µs of Redis time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junk", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with RedisServer() as server:
        measure("Lamed's layout", {"url": server.url}, [server.client()], args.junk, args.runs)
    with RedisCluster(3) as cluster:
        nodes = [node.client() for node in cluster.nodes]
        measure("cluster layout", {"url": cluster.url, "cluster": True}, nodes, args.junk, args.runs)


if __name__ == "__main__":
    main()
