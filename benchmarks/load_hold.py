"""`lamed serve` held under load: 64 clients for 60 s, memory watched, counts checked.

Starts the real `lamed serve` (embedded Redis, AOF on, HOME in a temporary folder) and
runs ``--clients`` threads for ``--seconds``, each on its own keep-alive connection (or a
new connection per request with ``--connection-per-request``, which exercises the listen
backlog), sending /track events: each uuid twice, so half are duplicates. Every
``--sample-seconds`` it records the RSS of serve and of redis-server and Redis's
``used_memory``. Prints throughput, p50/p99/max latency, the samples (flat means no
leak), the bytes each counted event adds to Redis's used_memory, and whether the participants that
/experiment reports equal the distinct uuids sent.

    python benchmarks/load_hold.py [--clients 64] [--seconds 60] [--connection-per-request]
"""

import argparse
import http.client
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from serve_cli import LamedServe, participants  # noqa: E402

API_KEY = "benchmark-key-0123456789"
EXPERIMENT = "hold"


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Load:
    """``clients`` threads sending track events until ``stop`` is set."""

    def __init__(self, port: int, clients: int, connection_per_request: bool):
        self.port, self.connection_per_request = port, connection_per_request
        self.stop = threading.Event()
        self.latencies: list[list[float]] = [[] for _ in range(clients)]
        self.counted = [0] * clients
        self.uuids = [0] * clients
        self.failures: list = []
        self.threads = [threading.Thread(target=self._client, args=(number,)) for number in range(clients)]

    @property
    def requests(self) -> int:
        return sum(map(len, self.latencies))

    def _client(self, number: int) -> None:
        connection = None
        sent = 0
        while not self.stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            uuid = f"c{number}-{sent // 2}"  # each uuid twice: the second is a duplicate
            started = time.perf_counter()
            try:
                connection.request("GET", f"/prod/track?experiment={EXPERIMENT}&variant=v{sent // 2 % 2}"
                                          f"&event=participate&uuid={uuid}")
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                connection.close()
                connection = None
                continue
            self.latencies[number].append(time.perf_counter() - started)
            if response.status != 200:
                self.failures.append((response.status, body[:200]))
                continue
            self.counted[number] += json.loads(body)["counted"]
            self.uuids[number] = sent // 2 + 1
            sent += 1
            if self.connection_per_request:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--connection-per-request", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lamed-hold-") as home:
        with LamedServe(Path(home), env={"LAMED_API_KEY": API_KEY}) as server:
            redis_port = int(re.search(r"embedded \S+ on port (\d+)", server.output).group(1))
            redis_pid = int((Path(home) / ".lamed" / "data" / "redis.pid").read_text())
            client = redis.Redis(port=redis_port)
            memory_before = client.info("memory")["used_memory"]
            load = Load(server.port, args.clients, args.connection_per_request)
            samples = []

            def sample(elapsed: float) -> None:
                samples.append((elapsed, load.requests, rss_mib(server.process.pid), rss_mib(redis_pid),
                                client.info("memory")["used_memory"] / 2**20))

            started = time.perf_counter()
            sample(0.0)
            for thread in load.threads:
                thread.start()
            while (elapsed := time.perf_counter() - started) < args.seconds:
                load.stop.wait(min(args.sample_seconds, args.seconds - elapsed))
                sample(time.perf_counter() - started)
            load.stop.set()
            for thread in load.threads:
                thread.join()
            elapsed = time.perf_counter() - started
            distinct, counted = sum(load.uuids), sum(load.counted)
            stored = participants(server.url, EXPERIMENT, API_KEY)
            memory_after = client.info("memory")["used_memory"]
            keys = client.dbsize()

    latencies = sorted(latency for mine in load.latencies for latency in mine)
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    mode = "a new connection per request" if args.connection_per_request else "keep-alive connections"
    print(f"{args.clients} clients, {mode}, {elapsed:.0f} s: {len(latencies)} requests, "
          f"{len(latencies) / elapsed:.0f} req/s, p50 {percentiles[49] * 1000:.1f} ms, "
          f"p99 {percentiles[98] * 1000:.1f} ms, max {latencies[-1] * 1000:.0f} ms, failures {len(load.failures)}")
    print()
    print("| s | requests | serve RSS MiB | redis-server RSS MiB | Redis used_memory MiB |")
    print("|---:|---:|---:|---:|---:|")
    for at, done, serve_rss, redis_rss, used in samples:
        print(f"| {at:.0f} | {done} | {serve_rss:.1f} | {redis_rss:.1f} | {used:.1f} |")
    print()
    grown = memory_after - memory_before  # keys, their expiry entries and hash tables, and client buffers
    print(f"Redis: {keys} keys, used_memory {grown} bytes larger for {counted} counted events: "
          f"{grown / max(counted, 1):.0f} bytes per event (mostly its de-dup flag, kept uuid_expiry_seconds)")
    exact = stored == distinct == counted and not load.failures
    print(f"participants {stored}, distinct uuids answered 200 {distinct}, counted: true {counted}: "
          f"{'exact' if exact else 'NOT EXACT'}")
    for failure in load.failures[:5]:
        print(f"  failure: {failure}", file=sys.stderr)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
