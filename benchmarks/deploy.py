"""AWS calls and time of `lamed deploy`: a first deploy and a no-op redeploy, through the tests' fault layer.

Starts a moto server, puts the fault layer of tests/aws_faults.py in front of it (Lambda's
Pending / InProgress states, IAM propagation, API Gateway's throttling, on a simulated
clock with a latency per request), and runs the real CLI: a first deploy of the standard
four functions, then a redeploy with nothing changed. Prints each run's AWS calls
(reads / writes), the simulated AWS time (latency + lamed's waits), and the wall time
against moto; every call is held to docs/iam-policy.json (tests/iam_policy.py).

    python benchmarks/deploy.py [--latency 0.15]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from aws_faults import FaultyAws  # noqa: E402
from iam_policy import PolicyCheck  # noqa: E402

from lamed.cli import cli  # noqa: E402
from lamed.redis_server import free_port  # noqa: E402

REGION = "eu-west-1"


def run(layer: FaultyAws, *args: str) -> dict:
    start_calls, start_clock, start = len(layer.calls), layer.now, time.perf_counter()
    result = CliRunner().invoke(cli, ["--region", REGION, *args], catch_exceptions=False)
    if result.exit_code:
        raise SystemExit(result.output)
    reads, writes = layer.counts(start_calls)
    return {
        "reads": reads,
        "writes": writes,
        "simulated_seconds": round(layer.now - start_clock, 1),
        "wall_seconds": round(time.perf_counter() - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.15, help="simulated seconds per AWS request")
    options = parser.parse_args()
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    patch = pytest.MonkeyPatch()
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "config.json"
            config.write_text(json.dumps({"redis": {"host": "redis.example.com", "port": 6379}}))
            environment = {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "benchmark",
                "AWS_SECRET_ACCESS_KEY": "benchmark",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "LAMED_CONFIG": str(config),
            }
            for name, value in environment.items():
                patch.setenv(name, value)
            layer = FaultyAws(latency=options.latency)
            layer.like_aws.policy = PolicyCheck()  # each call held to docs/iam-policy.json
            layer.install(patch)
            first = run(layer, "deploy", "--no-preflight")
            again = run(layer, "deploy", "--no-preflight")
            events = sorted({kind for kind, _ in layer.events})
    finally:
        patch.undo()
        server.stop()
    policy = layer.like_aws.policy
    print(f"fault layer: {options.latency} s per request; seen: {', '.join(events)}")
    print(f"IAM policy docs/iam-policy.json: {len(policy.checked)} permissions checked, {len(policy.denied)} denied")
    for name, figures in (("first deploy", first), ("no-op redeploy", again)):
        calls = figures["reads"] + figures["writes"]
        print(
            f"{name:<15} {calls:>3} AWS calls ({figures['reads']} reads, {figures['writes']} writes), "
            f"{figures['simulated_seconds']} s simulated AWS time, {figures['wall_seconds']} s against moto"
        )


if __name__ == "__main__":
    main()
