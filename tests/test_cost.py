"""benchmarks/cost.py's arithmetic, against cases worked by hand from its price constants."""

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent.parent / "benchmarks"))  # after tests/: cost.py imports track.py from there

import cost  # noqa: E402


def test_lambda_bills_requests_and_gb_seconds_by_architecture():
    # 1 M events x 2 ms x 128 MB = 250 GB-s; at $0.0000166667 and $0.0000133334 a GB-s, plus $0.20 of requests
    assert cost.lambda_monthly(1_000_000, 2.0, 128, "x86_64") == pytest.approx(0.20 + 250 * 0.0000166667)
    assert cost.lambda_monthly(1_000_000, 2.0, 128, "arm64") == pytest.approx(0.20 + 250 * 0.0000133334)
    assert cost.lambda_monthly(100_000_000, 3.0, 128, "x86_64") == pytest.approx(20.0 + 37_500 * 0.0000166667)


def test_the_front_door_is_per_million_and_the_function_url_free():
    assert cost.front_door_monthly(10_000_000, "REST API") == pytest.approx(35.0)
    assert cost.front_door_monthly(10_000_000, "HTTP API") == pytest.approx(10.0)
    assert cost.front_door_monthly(10_000_000, "function URL") == 0


def test_an_event_costs_one_ecpu_a_command_unless_its_kilobytes_or_its_cpu_time_come_to_more():
    assert cost.ecpus_per_event(5, 605, 3e-6, 1e-6) == 5  # five small commands
    assert cost.ecpus_per_event(1, 3.2 * 1024, 1e-6, 1e-6) == pytest.approx(3.2)  # AWS's example: 3.2 KB, 3.2 ECPUs
    assert cost.ecpus_per_event(1, 277, 2.7e-6, 1e-6) == pytest.approx(2.7)  # a script: its CPU time in simple commands


def test_data_stored_is_the_flags_alive_at_steady_state():
    # 730 h x 3600 s = 2,628,000 events a month is 1 a second; a day's flags of 100 bytes
    assert cost.stored_gb(2_628_000, 86_400, 100) == pytest.approx(8_640_000 / 1024**3)


def test_the_cache_bills_ecpus_and_gb_hours_with_its_minimum():
    # Valkey: 2.5 M ECPUs at $0.0023 a million; 0.05 GB stored is metered as the 0.1 GB minimum, 730 h at $0.084
    assert cost.redis_monthly(1_000_000, 2.5, 0.05, "Valkey") == pytest.approx(2.5 * 0.0023 + 730 * 0.1 * 0.084)
    # Redis OSS: 500 M ECPUs at $0.0034 a million; 2 GB over its 1 GB minimum, 730 h at $0.125
    assert cost.redis_monthly(100_000_000, 5, 2.0, "Redis OSS") == pytest.approx(500 * 0.0034 + 730 * 2 * 0.125)
    assert cost.redis_monthly(0, 5, 0, "Redis OSS") == pytest.approx(91.25)  # an idle cache still costs its minimum
