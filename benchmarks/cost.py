"""What lamed costs a month on AWS, the whole bill: Lambda, the front door, and the ElastiCache Serverless cache.

Lambda: the real ``lamed.track`` handler counts new events against a real valkey-server behind a
loopback proxy that adds ``--rtt-ms`` to every turnaround (a Lambda and its ElastiCache in one
availability zone: about half a millisecond). Lambda bills each invocation's duration rounded up
to the millisecond; that, the function's memory and the list prices below give its cost on x86_64
and arm64 (the arm64 figure assumes the same duration: the handler is pure Python waiting on the
network). The front door: an API Gateway REST API, an HTTP API, or a Lambda function URL (no charge
of its own).

Redis: each layout (Lamed's, on one server; lamed's cluster layout, on a one-shard Redis Cluster,
which is how ElastiCache Serverless shows itself) counts ``--events`` new events while the server
counts the commands, their CPU time and the bytes in and out (``INFO``), and the memory they leave
(the de-dup flags, alive ``--uuid-expiry-seconds``). ElastiCache Serverless's published rules turn
those into ECPUs and GB-hours of data stored, with the cache's minimum; Serverless is always cluster
mode, so the monthly table prices the cluster layout.

    python benchmarks/cost.py [--events 2000] [--rtt-ms 0.5] [--memory-mb 128] [--uuid-expiry-seconds 86400]
"""

import argparse
import math
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

from track import DelayProxy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from redis_servers import RedisCluster  # noqa: E402

import lamed  # noqa: E402
from lamed import handlers  # noqa: E402
from lamed.config import DEFAULT_UUID_EXPIRY_SECONDS  # noqa: E402
from lamed.connection import open_store, redis_client  # noqa: E402
from lamed.redis_server import RedisServer  # noqa: E402
from lamed.store import Store  # noqa: E402

# List prices, US East (N. Virginia), first usage tier, no free tier; read on AWS's pricing
# pages in November 2026 (unchanged since Graviton's Lambda price of 2021-09).
PRICES_AS_OF = "2026-11, us-east-1, first usage tier, no free tier"
LAMBDA_PER_MILLION_REQUESTS = 0.20
LAMBDA_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
REST_API_PER_MILLION = 3.50  # first 333 million a month
HTTP_API_PER_MILLION = 1.00  # first 300 million a month
FUNCTION_URL_PER_MILLION = 0.0  # "Function URLs are included in Lambda's request and duration pricing"
FRONT_DOORS = {"REST API": REST_API_PER_MILLION, "HTTP API": HTTP_API_PER_MILLION, "function URL": FUNCTION_URL_PER_MILLION}
ARCHITECTURES = ("x86_64", "arm64")

# ElastiCache Serverless, US East (N. Virginia), read 2026-12-04. The rules, from AWS's pricing page
# (https://aws.amazon.com/elasticache/pricing/, "Serverless"; quoted as such on
# https://cur.vantage.sh/aws/amazonelasticache and https://aws.eu/it/elasticache/pricing):
# "Reads and writes require 1 ECPU for each kilobyte (KB) of data transferred. For example, a GET
# command that transfers 3.2 KB of data will consume 3.2 ECPUs. Commands that require additional
# vCPU time or transfer more than 1 KB of data will consume proportionally more ECPUs." Data stored
# is billed in GB-hours, "an hourly average" of samples taken "multiple times per minute", with a
# minimum of "100 MB per cache for ElastiCache Serverless for Valkey and 1 GB per cache for
# ElastiCache for Memcached and ElastiCache for Redis OSS". The prices, per engine, as reported from
# that page in June 2026 (https://www.usage.ai/blogs/aws/database-savings-plans/elasticache/serverless-pricing/,
# Redis OSS's also in AWS's own worked example, https://aws.amazon.com/blogs/database/unlock-on-demand-cost-optimized-performance-with-amazon-elasticache-serverless/).
ELASTICACHE_PRICES_AS_OF = "2026-12-04 (prices as of 2026-06), us-east-1, ElastiCache Serverless"
ECPU_PER_MILLION = {"Valkey": 0.0023, "Redis OSS": 0.0034}
DATA_STORED_PER_GB_HOUR = {"Valkey": 0.084, "Redis OSS": 0.125}
MINIMUM_GB = {"Valkey": 0.1, "Redis OSS": 1.0}
BYTES_PER_KB = 1024
BYTES_PER_GB = 1024**3
HOURS_PER_MONTH = 730  # AWS's pricing examples' month
MONITOR_END = "cost: end of the monitored events"
MONITORED_EVENTS = 1000
MONTHLY_EVENTS = (1_000_000, 10_000_000, 100_000_000)


def billed_milliseconds(events: int, rtt_ms: float) -> list[int]:
    """Each warm invocation's duration, rounded up to the millisecond as Lambda bills it."""
    with RedisServer() as server:
        proxy = DelayProxy(server.port, rtt_ms / 1000)
        handlers.use_store(Store(redis_client({"host": "127.0.0.1", "port": proxy.port})))
        try:
            lamed.track(event("warm-up"))  # the connection a warm container already has
            billed = []
            for n in range(events):
                started = time.perf_counter()
                response = lamed.track(event(f"visitor-{n}"))
                billed.append(math.ceil((time.perf_counter() - started) * 1000))
                assert response["statusCode"] == 200
        finally:
            handlers.use_store(None)
    return billed


def event(uuid: str) -> dict:
    parameters = {"experiment": "button colour", "variant": "red", "event": "participate", "uuid": uuid}
    return {"httpMethod": "GET", "queryStringParameters": parameters}


def redis_side(store, servers: list, events: int) -> dict:
    """Per new event: the commands clients send, bytes in and out, server CPU seconds, memory left, and ECPUs."""
    nodes = [server.client() for server in servers]
    store.track("ns", "warm-up", "red", "participate", "warm-up")  # connections made, script loaded
    before = [node.info("memory")["used_memory"] for node in nodes]  # a fresh server: the flags' whole table is theirs
    for node in nodes:
        node.config_resetstat()
    cpu = server_cpu_seconds(servers)
    for n in range(events):
        assert store.track("ns", "button colour", "red", "participate", visitor(n))
    cpu = server_cpu_seconds(servers) - cpu
    stats = [node.info() for node in nodes]
    transferred = {
        direction: sum(info[f"total_net_{direction}_bytes"] for info in stats) / events for direction in ("input", "output")
    }
    stored = sum(info["used_memory"] - used for info, used in zip(stats, before)) / events
    reference = simple_command_cpu_seconds(servers[0], nodes[0], events)
    commands = client_commands(store, nodes, events)
    return {
        "commands": commands,
        "bytes in": transferred["input"],
        "bytes out": transferred["output"],
        "CPU per simple command": cpu / events / reference,
        "stored": stored,
        "ecpus": ecpus_per_event(sum(commands.values()), transferred["input"] + transferred["output"], cpu / events, reference),
    }


def visitor(n: int) -> str:
    return str(uuid.UUID(int=n + 1))  # AlephBet's uuids are v4 strings of 36 characters


def client_commands(store, nodes: list, events: int) -> dict[str, float]:
    """The commands clients send per new event, by name, as MONITOR sees them (not those a script runs)."""
    seen: dict[str, int] = {}
    for node in nodes:
        with node.monitor() as monitor:
            watcher = threading.Thread(target=tally, args=(monitor, seen))
            watcher.start()
            for n in range(min(events, MONITORED_EVENTS)):
                store.track("ns", "monitored", "red", "participate", visitor(n))
            node.echo(MONITOR_END)
            watcher.join()
    return {name: count / min(events, MONITORED_EVENTS) for name, count in seen.items()}


def tally(monitor, seen: dict) -> None:
    while (command := monitor.next_command())["command"] != f"ECHO {MONITOR_END}":
        if command["client_type"] != "lua":
            name = command["command"].split()[0].upper()
            seen[name] = seen.get(name, 0) + 1


def server_cpu_seconds(servers: list) -> float:
    """User + system CPU seconds the server processes have used, from /proc."""
    total = 0
    for server in servers:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def simple_command_cpu_seconds(server, node, samples: int) -> float:
    """The server's CPU seconds for a simple command (a GET of 100 bytes, one a round trip): what 1 ECPU buys."""
    node.set("cost:reference", "x" * 100)
    cpu = server_cpu_seconds([server])
    for _ in range(samples):
        node.get("cost:reference")
    return (server_cpu_seconds([server]) - cpu) / samples


def ecpus_per_event(commands: float, bytes_transferred: float, cpu_seconds: float, simple_cpu_seconds: float) -> float:
    """ECPUs of one event by AWS's rules: 1 for each command (a simple read or write of up to 1 KB), unless the
    kilobytes transferred or the server CPU time, counted in simple commands' CPU time, come to more."""
    return max(commands, bytes_transferred / BYTES_PER_KB, cpu_seconds / simple_cpu_seconds)


def stored_gb(events_per_month: float, uuid_expiry_seconds: int, bytes_per_event: float) -> float:
    """The data stored at steady state: the de-dup flags of the last ``uuid_expiry_seconds`` of events."""
    per_second = events_per_month / (HOURS_PER_MONTH * 3600)
    return per_second * uuid_expiry_seconds * bytes_per_event / BYTES_PER_GB


def lambda_monthly(events: float, billed_ms: float, memory_mb: int, architecture: str) -> float:
    compute = events * billed_ms / 1000 * memory_mb / 1024 * LAMBDA_PER_GB_SECOND[architecture]
    return events / 1_000_000 * LAMBDA_PER_MILLION_REQUESTS + compute


def front_door_monthly(events: float, door: str) -> float:
    return events / 1_000_000 * FRONT_DOORS[door]


def redis_monthly(events: float, ecpus: float, gigabytes: float, engine: str) -> float:
    """ECPUs and GB-hours of a month, the data stored metered at no less than the cache's minimum."""
    requests = events * ecpus / 1_000_000 * ECPU_PER_MILLION[engine]
    return requests + HOURS_PER_MONTH * max(gigabytes, MINIMUM_GB[engine]) * DATA_STORED_PER_GB_HOUR[engine]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="added to every Redis turnaround")
    parser.add_argument("--memory-mb", type=int, default=128, help="the function's memory (lamed-track: 128)")
    parser.add_argument("--redis-events", type=int, default=20000, help="new events counted for the Redis figures")
    parser.add_argument("--redis-server", default="redis-server", help="the Redis OSS server binary [default: redis-server on PATH]")
    parser.add_argument("--uuid-expiry-seconds", type=int, default=DEFAULT_UUID_EXPIRY_SECONDS, help="how long a de-dup flag lives")
    args = parser.parse_args()
    billed = billed_milliseconds(args.events, args.rtt_ms)
    mean = statistics.fmean(billed)
    print(
        f"warm lamed.track, {args.events} new events, Redis {args.rtt_ms} ms away: billed {mean:.2f} ms an event on "
        f"average (p50 {statistics.median(billed):.0f} ms, p99 {sorted(billed)[int(0.99 * len(billed))]} ms), {args.memory_mb} MB"
    )
    print(f"prices: {PRICES_AS_OF}; ElastiCache: {ELASTICACHE_PRICES_AS_OF}\n")
    print("| front door | x86_64 $/million events | arm64 $/million events | of which the front door |")
    print("| --- | ---: | ---: | ---: |")
    for door in FRONT_DOORS:
        x86, arm = (lambda_monthly(1e6, mean, args.memory_mb, arch) + front_door_monthly(1e6, door) for arch in ARCHITECTURES)
        print(f"| {door} | {x86:.4f} | {arm:.4f} | {100 * front_door_monthly(1e6, door) / x86:.0f}% |")

    sides, versions = {}, {}
    for engine, binary in {"Valkey": None, "Redis OSS": args.redis_server}.items():
        with RedisServer(binary=binary) as server:
            info = server.client().info("server")
            versions[engine] = f"{engine} {info.get('valkey_version') or info['redis_version']}"
            store = Store(redis_client({"url": server.url}), args.uuid_expiry_seconds)
            sides[engine, "Lamed's layout"] = redis_side(store, [server], args.redis_events)
        with RedisCluster(1, binary=binary) as cluster:
            store = open_store({"url": cluster.url, "cluster": True}, args.uuid_expiry_seconds)
            sides[engine, "cluster layout"] = redis_side(store, cluster.nodes, args.redis_events)
    print(f"\nRedis per new event ({args.redis_events} events, uuids of 36 characters, flags alive {args.uuid_expiry_seconds} s):\n")
    print("| server | layout | commands sent | bytes in | bytes out | server CPU, in simple commands | ECPUs | memory left (bytes) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (engine, layout), side in sides.items():
        commands = ", ".join(f"{count:g} {command}" for command, count in sorted(side["commands"].items()))
        print(
            f"| {versions[engine]} | {layout} | {commands} | {side['bytes in']:.0f} | {side['bytes out']:.0f} | "
            f"{side['CPU per simple command']:.1f} | {side['ecpus']:.2f} | {side['stored']:.0f} |"
        )
    print(
        f"\nmonthly $, new events, the cluster layout on ElastiCache Serverless (each engine's figures from its server above), "
        f"{args.memory_mb} MB, {mean:.2f} ms billed:\n"
    )
    print("| events/month | front door | architecture | Lambda | front door | Redis (Valkey) | total (Valkey) | Redis (Redis OSS) | total (Redis OSS) |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for events in MONTHLY_EVENTS:
        gigabytes, redis_cost = {}, {}
        for engine in ECPU_PER_MILLION:
            side = sides[engine, "cluster layout"]
            gigabytes[engine] = stored_gb(events, args.uuid_expiry_seconds, side["stored"])
            redis_cost[engine] = redis_monthly(events, side["ecpus"], gigabytes[engine], engine)
        for door in ("function URL", "REST API"):
            for arch in ARCHITECTURES:
                compute, entry = lambda_monthly(events, mean, args.memory_mb, arch), front_door_monthly(events, door)
                print(
                    f"| {events / 1e6:g} M | {door} | {arch} | {compute:.2f} | {entry:.2f} | {redis_cost['Valkey']:.2f} | "
                    f"{compute + entry + redis_cost['Valkey']:.2f} | {redis_cost['Redis OSS']:.2f} | {compute + entry + redis_cost['Redis OSS']:.2f} |"
                )
        print(f"|  | data stored (GB) |  |  |  | {gigabytes['Valkey']:.3f} |  | {gigabytes['Redis OSS']:.3f} |  |")


if __name__ == "__main__":
    main()
