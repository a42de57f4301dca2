"""Throughput and latency of `lamed serve`'s /track, then a check that the counts are exact.

Starts the real `lamed serve` (embedded Redis, HOME in a temporary folder) on loopback,
and for 1, 8 and 32 concurrent clients (threads, each on its own keep-alive connection)
sends a bounded number of track requests, stopping early at a time limit. Every uuid is
sent twice, often by two clients at once, so de-duplication under contention is part of
the load. Prints requests/s and p50/p99 latency, then compares the participants that
/experiments reports with the distinct uuids sent.

    python benchmarks/serve.py [--requests 4000] [--max-seconds 20] [--clients 1 8 32]
"""

import argparse
import http.client
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from serve_cli import LamedServe, participants  # noqa: E402

API_KEY = "benchmark-key-0123456789"


def load(port: int, experiment: str, clients: int, total: int, max_seconds: float) -> dict:
    """Send up to ``total`` track requests from ``clients`` threads; latencies and outcomes."""
    numbers = itertools.count()
    deadline = time.monotonic() + max_seconds
    latencies, counted, failures, uuids = [], [], [], set()
    lock = threading.Lock()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, new, sent = [], 0, set()
        while time.monotonic() < deadline and (number := next(numbers)) < total:
            uuid = f"u{number // 2}"  # each uuid twice: the second is a duplicate
            started = time.perf_counter()
            connection.request("GET", f"/prod/track?experiment={experiment}&variant=v&event=participate&uuid={uuid}")
            response = connection.getresponse()
            body = response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                failures.append((response.status, body))
                continue
            sent.add(uuid)
            new += json.loads(body)["counted"]
        connection.close()
        with lock:
            latencies.extend(mine)
            counted.append(new)
            uuids.update(sent)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"latencies": latencies, "elapsed": elapsed, "counted": sum(counted), "uuids": len(uuids),
            "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="track requests per concurrency level")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time limit per concurrency level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()

    rows, exact = [], True
    with tempfile.TemporaryDirectory(prefix="lamed-bench-") as home:
        with LamedServe(Path(home), env={"LAMED_API_KEY": API_KEY}) as server:
            for clients in args.clients:
                experiment = f"bench-{clients}"
                result = load(server.port, experiment, clients, args.requests, args.max_seconds)
                stored = participants(server.url, experiment, API_KEY)
                ok = not result["failures"] and stored == result["uuids"] == result["counted"]
                exact &= ok
                latencies = sorted(result["latencies"])
                percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
                rows.append((clients, len(latencies), len(latencies) / result["elapsed"], percentiles[49] * 1000,
                             percentiles[98] * 1000, result["uuids"], stored, "yes" if ok else "NO"))
                for failure in result["failures"][:3]:
                    print(f"  {clients} clients: HTTP {failure[0]}: {failure[1][:200]!r}", file=sys.stderr)

    header = ("clients", "requests", "req/s", "p50 ms", "p99 ms", "uuids sent", "participants", "exact")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for clients, requests, rate, p50, p99, uuids, stored, ok in rows:
        print(f"| {clients} | {requests} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {uuids} | {stored} | {ok} |")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
