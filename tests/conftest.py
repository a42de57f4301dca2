"""Shared fixtures: a real redis-server for the whole session, flushed per test."""

import pytest

from lamed import handlers
from lamed.redis_server import RedisServer
from lamed.store import Store


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client(decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def store(redis_server, redis_client):
    return Store(redis_server.client())


@pytest.fixture
def handler_store(store):
    """The handlers' store, pointed at the test Redis for one test."""
    handlers.use_store(store)
    yield store
    handlers.use_store(None)
