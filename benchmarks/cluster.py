"""The two Redis layouts side by side: events/s, each shard's share of the commands, round trips
per new and duplicate event, and Redis memory per event.

Lamed's layout runs on one redis-server; lamed's cluster layout on a real Redis Cluster of 1
and of 3 masters (redis-server processes on loopback, joined with CLUSTER MEET). Every
configuration counts the same events from the same number of threads, each sent twice, and
the counts are checked to be exact afterwards.

    python benchmarks/cluster.py [--events 20000] [--threads 4] [--server PATH]

``--server`` names another server binary (a redis-server, say); the default is lamed's
embedded valkey-server.
"""

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from redis_servers import CountingConnection, RedisCluster, turnarounds  # noqa: E402

from lamed.cluster_store import TRACK_SCRIPT  # noqa: E402
from lamed.connection import open_store  # noqa: E402
from lamed.redis_server import RedisServer  # noqa: E402

COUNTERS = 200  # 50 experiments x 2 variants x (participate, one goal)


def events(total: int) -> list[tuple[str, str, str, str]]:
    """``total`` distinct events over ``COUNTERS`` counters: (experiment, variant, event, uuid)."""
    return [
        (f"experiment {n % 50}", ("control", "variant")[n // 50 % 2], ("participate", "bought")[n // 100 % 2], f"visitor-{n}")
        for n in range(total)
    ]


def node_stats(clients) -> list[tuple[int, int]]:
    """(commands processed, bytes used) per node."""
    stats = []
    for client in clients:
        info = client.info()
        stats.append((int(info["total_commands_processed"]), int(info["used_memory"])))
    return stats


def measure(name: str, settings: dict, node_clients: list, total: int, threads: int) -> dict:
    store = open_store({**settings, "max_connections": 64}, 86400)
    sample = events(total)
    store.track("warm-up", "e", "a", "participate", "u")
    before = node_stats(node_clients)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        counted = sum(pool.map(lambda event: store.track("ns", *event), sample * 2))
    elapsed = time.perf_counter() - started
    after = node_stats(node_clients)
    exact = counted == total and sum(sum(counts.values()) for counts in store.counts("ns").values()) == total
    commands = [a[0] - b[0] for a, b in zip(after, before)]
    memory = sum(a[1] - b[1] for a, b in zip(after, before))

    probe = open_store({**settings, "connection_class": CountingConnection}, 86400)
    probe.track("ns", "probe", "a", "participate", "warm")  # a warm container: connections made, script cached
    for node in node_clients:
        node.script_load(TRACK_SCRIPT)
    new = turnarounds(lambda: probe.track("ns", "probe", "a", "participate", "new"))
    duplicate = turnarounds(lambda: probe.track("ns", "probe", "a", "participate", "new"))
    probe.results("ns")
    results = turnarounds(lambda: probe.results("ns"))
    return {
        "layout": name,
        "events/s": 2 * total / elapsed,
        "shares": [f"{100 * c / sum(commands):.0f}%" for c in commands],
        "round trips new": new[0],
        "round trips duplicate": duplicate[0],
        "new connections": new[1] + duplicate[1],
        "results round trips": results[0],
        "bytes/event": memory / total,
        "exact": exact,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="distinct events per configuration (each sent twice)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", help="a redis-server or valkey-server binary [default: lamed's embedded one]")
    args = parser.parse_args()
    rows = []
    with RedisServer(binary=args.server) as server:
        rows.append(measure("Lamed layout, 1 redis-server", {"url": server.url}, [server.client()], args.events, args.threads))
    for masters in (1, 3):
        with RedisCluster(masters, binary=args.server) as cluster:
            clients = [node.client() for node in cluster.nodes]
            name = f"cluster layout, {masters} shard{'s' * (masters > 1)}"
            rows.append(measure(name, {"url": cluster.url, "cluster": True}, clients, args.events, args.threads))
    version = RedisServer(binary=args.server).start()
    banner = version.client().info("server").get("valkey_version") or version.client().info("server")["redis_version"]
    version.stop()
    print(f"{args.events} distinct events over {COUNTERS} counters, each sent twice, {args.threads} threads, server {banner}\n")
    print("| layout | events/s | commands per shard | round trips new / duplicate | new connections (warm) | results round trips | bytes/event | exact |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print(
            f"| {row['layout']} | {row['events/s']:,.0f} | {' / '.join(row['shares'])} | "
            f"{row['round trips new']} / {row['round trips duplicate']} | {row['new connections']} | "
            f"{row['results round trips']} | {row['bytes/event']:.0f} | {'yes' if row['exact'] else 'NO'} |"
        )


if __name__ == "__main__":
    main()
