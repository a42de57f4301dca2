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


@pytest.fixture(scope="session")
def moto_server():
    """A moto server over HTTP for the whole session; boto3 reaches it through AWS_ENDPOINT_URL.

    Dummy credentials and a default region are set, and shared AWS config files are hidden.
    Yields the endpoint URL; ``POST {url}/moto-api/reset`` empties it.
    """
    from moto.server import ThreadedMotoServer

    from lamed.redis_server import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", url)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        yield url
    server.stop()
