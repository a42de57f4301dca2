"""A real `lamed serve` server object seeded through real track calls, for the results and dashboard tests."""

import pytest
import requests

from lamed.serve import make_server
from lamed.store import Store

API_KEY = "results-test-key-0123456789abcdef"

# Participants and goal conversions per variant: red converts better than the control, but
# not yet clearly enough for an always-valid decision; green has too few participants.
BUTTON = {"control": (200, {"signup": 20}), "red": (200, {"signup": 40}), "green": (60, {"signup": 5})}
# Decided: bold is a winner, quiet a loser.
HEADLINE = {"control": (400, {"read": 120}), "bold": (400, {"read": 240}), "quiet": (400, {"read": 40})}


@pytest.fixture(scope="module")
def server(redis_server):
    """``lamed serve``'s server with its default routes on a free port, on the test Redis
    (import it into a test module to use it there)."""
    with make_server("127.0.0.1", 0, API_KEY, Store(redis_server.client())) as running:
        yield running.start()


def seed(base_url: str, experiment: str, variants: dict, namespace: str | None = None) -> None:
    """Send AlephBet's track calls: per variant ``(participants, {goal: conversions})``."""
    with requests.Session() as session:
        for label, (participants, goals) in variants.items():
            for index in range(participants):
                events = ["participate", *(goal for goal, conversions in goals.items() if index < conversions)]
                for event in events:
                    params = {"experiment": experiment, "variant": label, "event": event, "uuid": f"{label}-{index}"}
                    if namespace:
                        params["namespace"] = namespace
                    response = session.get(f"{base_url}/prod/track", params=params, timeout=5)
                    assert response.json() == {"counted": True}
