"""What a million tracked events cost on AWS, from the warm track handler's measured time.

The real ``lamed.track`` handler counts new events against a real redis-server behind a
loopback proxy that adds ``--rtt-ms`` to every turnaround (a Lambda and its ElastiCache in
one availability zone: about half a millisecond). Lambda bills each invocation's duration
rounded up to the millisecond; that, the function's memory, and the list prices below give
the cost per million events through an API Gateway REST API (lamed's /track today), an HTTP
API, or a Lambda function URL (no charge of its own), on x86_64 and arm64. The arm64
figure assumes the same duration (the handler is pure Python waiting on the network).

    python benchmarks/cost.py [--events 2000] [--rtt-ms 0.5] [--memory-mb 128]
"""

import argparse
import math
import statistics
import time

from track import DelayProxy

import lamed
from lamed import handlers
from lamed.connection import redis_client
from lamed.redis_server import RedisServer
from lamed.store import Store

# List prices, US East (N. Virginia), first usage tier, no free tier; read on AWS's pricing
# pages in November 2026 (unchanged since Graviton's Lambda price of 2021-09).
PRICES_AS_OF = "2026-11, us-east-1, first usage tier, no free tier"
LAMBDA_PER_MILLION_REQUESTS = 0.20
LAMBDA_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
REST_API_PER_MILLION = 3.50  # first 333 million a month
HTTP_API_PER_MILLION = 1.00  # first 300 million a month
FUNCTION_URL_PER_MILLION = 0.0  # "Function URLs are included in Lambda's request and duration pricing"
FRONT_DOORS = {"REST API (/track today)": REST_API_PER_MILLION, "HTTP API": HTTP_API_PER_MILLION, "function URL": FUNCTION_URL_PER_MILLION}


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


def cost_per_million(billed_ms: float, memory_mb: int, architecture: str, front_door: float) -> float:
    compute = 1_000_000 * billed_ms / 1000 * memory_mb / 1024 * LAMBDA_PER_GB_SECOND[architecture]
    return front_door + LAMBDA_PER_MILLION_REQUESTS + compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="added to every Redis turnaround")
    parser.add_argument("--memory-mb", type=int, default=128, help="the function's memory (lamed-track: 128)")
    args = parser.parse_args()
    billed = billed_milliseconds(args.events, args.rtt_ms)
    mean = statistics.fmean(billed)
    print(
        f"warm lamed.track, {args.events} new events, Redis {args.rtt_ms} ms away: billed {mean:.2f} ms an event on "
        f"average (p50 {statistics.median(billed):.0f} ms, p99 {sorted(billed)[int(0.99 * len(billed))]} ms), {args.memory_mb} MB"
    )
    print(f"prices: {PRICES_AS_OF}\n")
    print("| front door | x86_64 $/million events | arm64 $/million events | of which the front door |")
    print("| --- | ---: | ---: | ---: |")
    for name, front_door in FRONT_DOORS.items():
        x86, arm = (cost_per_million(mean, args.memory_mb, arch, front_door) for arch in ("x86_64", "arm64"))
        print(f"| {name} | {x86:.4f} | {arm:.4f} | {100 * front_door / x86:.0f}% |")
    rest, url = (cost_per_million(mean, args.memory_mb, "x86_64", FRONT_DOORS[door]) for door in ("REST API (/track today)", "function URL"))
    print(f"\nfunction URL against REST API, x86_64: {rest / url:.1f}x cheaper")


if __name__ == "__main__":
    main()
