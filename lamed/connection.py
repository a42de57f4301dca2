"""How lamed reaches its Redis: a redis-py client from the config's ``redis`` settings.

One place decides the client: ``Redis`` or, with ``"cluster": true``, ``RedisCluster``;
TLS (``rediss://``, ``ssl_*``), ACL users (``username`` / ``password``) and ElastiCache
IAM authentication (``"iam"``: a short-lived token signed by :mod:`lamed.iam_auth`,
imported only then). It also says, in one line with the fix, why a Redis could not be
used, and whether a retry could help. Runs inside Lambda: standard library and redis-py.
"""

import ssl

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_TIMEOUT_SECONDS = 2.0
LAMED_KEYS = ("cluster", "iam")


class RedisSetupError(redis.RedisError):
    """A Redis that answers but cannot be used as configured (wrong mode, TLS, credentials).

    A retry cannot fix it: the handlers answer 500 and log it, the CLI prints it as one line.
    """


def redis_client(settings: dict) -> redis.Redis | redis.cluster.RedisCluster:
    """A client for the Redis that ``settings`` (the config's ``redis`` object) describe.

    Connect and read timeouts default to 2 s, and a failed connection is retried once
    at once (redis-py's own default backs off for seconds), so a dead or hung Redis
    fails fast instead of running a Lambda into its timeout.
    """
    kwargs = {key: value for key, value in settings.items() if key not in LAMED_KEYS}
    kwargs.setdefault("retry", Retry(NoBackoff(), 1))
    kwargs.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT_SECONDS)
    kwargs.setdefault("socket_timeout", DEFAULT_TIMEOUT_SECONDS)
    if "iam" in settings:
        from lamed.iam_auth import ElastiCacheIamProvider

        kwargs["credential_provider"] = ElastiCacheIamProvider(**settings["iam"])
    url = kwargs.pop("url", None)
    if settings.get("cluster"):
        return _cluster_client(url, kwargs)
    if url:
        return redis.Redis.from_url(url, **kwargs)
    return redis.Redis(**kwargs)


def _cluster_client(url: str | None, kwargs: dict) -> redis.cluster.RedisCluster:
    """A RedisCluster; its constructor asks the node for the slot map, so failures surface here."""
    kwargs.pop("db", None)
    # The cluster client retries a failed node itself; one immediate reconnect is ours.
    kwargs.setdefault("cluster_error_retry_attempts", 1)
    try:
        if url:
            return redis.cluster.RedisCluster.from_url(url, **kwargs)
        return redis.cluster.RedisCluster(**kwargs)
    except redis.RedisClusterException as exc:
        if "cluster mode is not enabled" in str(exc).lower() or "cluster_enabled" in str(exc).lower():
            raise RedisSetupError(
                'this Redis is not a Redis Cluster — fix: remove "cluster": true from "redis"'
            ) from exc
        raise redis.ConnectionError(str(exc)) from exc


def address(settings: dict) -> str:
    """Where ``settings`` connect (scheme://host:port or a socket path), without any credentials."""
    url = settings.get("url")
    if url:
        scheme, _, rest = url.partition("://")
        location = rest.rpartition("@")[2].partition("?")[0]
        return f"{scheme}://{location}"
    if settings.get("unix_socket_path"):
        return f"unix://{settings['unix_socket_path']}"
    scheme = "rediss" if settings.get("ssl") else "redis"
    return f"{scheme}://{settings.get('host', 'localhost')}:{settings.get('port', 6379)}"


def mode(settings: dict) -> dict:
    """How lamed talks to this Redis, for ``status`` and ``preflight``: no secret in it."""
    url = (settings.get("url") or "").lower()
    if "iam" in settings:
        auth = f"IAM user {settings['iam']['user']} on cache {settings['iam']['cache']}"
    elif settings.get("password") or "@" in url:
        auth = "password" if not (settings.get("username") or ":" in url.partition("://")[2].partition("@")[0]) else "ACL user"
    else:
        auth = "none"
    return {
        "address": address(settings),
        "cluster": bool(settings.get("cluster")),
        "tls": bool(settings.get("ssl")) or url.startswith("rediss://"),
        "auth": auth,
    }


def is_retryable(exc: BaseException) -> bool:
    """Whether a Redis failure may pass by itself (down, hung, failing over), so a client should retry."""
    if isinstance(exc, RedisSetupError | redis.AuthenticationError | redis.AuthorizationError):
        return False
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return not _tls_failure(exc)
    return isinstance(exc, redis.ClusterDownError | redis.TryAgainError)


def _tls_failure(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError) or "SSL" in str(exc) and "certificate" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False
