"""How lamed reaches its Redis: a redis-py client from the config's ``redis`` settings.

One place decides the client: ``Redis`` or, with ``"cluster": true``, ``RedisCluster``;
TLS (``rediss://``, ``ssl_*``), ACL users (``username`` / ``password``) and ElastiCache
IAM authentication (``"iam"``: a short-lived token signed by :mod:`lamed.iam_auth`,
imported only then). It also says, in one line with the fix, why a Redis could not be
used, and whether a retry could help. Runs inside Lambda: standard library and redis-py.
"""

import ssl
from urllib.parse import urlsplit

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from lamed.cluster_store import ClusterStore
from lamed.config import Bounds
from lamed.store import Store, text

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
        from lamed.iam_auth import ElastiCacheIamProvider, TokenRetry

        kwargs["credential_provider"] = ElastiCacheIamProvider(**settings["iam"])
        kwargs["retry"] = TokenRetry(kwargs["credential_provider"], NoBackoff(), 1)
    url = kwargs.pop("url", None)
    if settings.get("cluster"):
        return _cluster_client(url, kwargs)
    if url:
        return redis.Redis.from_url(url, **kwargs)
    return redis.Redis(**kwargs)


def open_store(settings: dict, uuid_expiry_seconds: int, bounds: Bounds = Bounds()) -> Store | ClusterStore:
    """The store for ``settings``: Lamed's layout on a Redis, lamed's cluster layout on a Redis Cluster."""
    layout = ClusterStore if settings.get("cluster") else Store
    return layout(redis_client(settings), uuid_expiry_seconds, bounds)


def eviction_warning(client) -> str | None:
    """A warning when Redis may evict keys that have no TTL (an ``allkeys-*`` maxmemory-policy):
    counters would vanish without an error. None when it cannot, or when Redis will not say
    (managed Redis often refuses CONFIG)."""
    try:
        if isinstance(client, redis.cluster.RedisCluster):  # every master: each holds its own share
            replies = list(client.config_get("maxmemory-policy", target_nodes=client.PRIMARIES).values())
        else:
            replies = [client.config_get("maxmemory-policy")]
    except redis.RedisError:
        return None
    policies = {text(value) for reply in replies for key, value in reply.items() if text(key) == "maxmemory-policy"}
    evicting = sorted(policy for policy in policies if policy.startswith("allkeys-"))
    if not evicting:
        return None
    return (
        f"Redis's maxmemory-policy is {', '.join(evicting)}: when full, it silently evicts counters "
        "— fix: set maxmemory-policy to noeviction (CONFIG SET, redis.conf, or the parameter group)"
    )


def _cluster_client(url: str | None, kwargs: dict) -> redis.cluster.RedisCluster:
    """A RedisCluster; its constructor asks the node for the slot map, so failures surface here."""
    kwargs.pop("db", None)
    try:
        if url:
            return redis.cluster.RedisCluster.from_url(url, **kwargs)
        return redis.cluster.RedisCluster(**kwargs)
    except redis.RedisClusterException as exc:
        refusal = _refusal_within(exc)
        if refusal:  # redis-py reads any error to CLUSTER SLOTS as "cluster mode is not enabled"
            raise refusal from None
        if "cluster mode is not enabled" in str(exc).lower() or "cluster_enabled" in str(exc).lower():
            raise RedisSetupError(
                'this Redis is not a Redis Cluster — fix: remove "cluster": true from "redis"'
            ) from exc
        raise redis.ConnectionError(str(exc)) from exc


def _refusal_within(exc: BaseException) -> BaseException | None:
    """The credentials or ACL refusal that caused ``exc``, if one did."""
    refused = redis.AuthenticationError | redis.exceptions.AuthorizationError | redis.exceptions.NoPermissionError
    return _in_chain(exc, lambda link: isinstance(link, refused))


def _in_chain(exc: BaseException | None, test) -> BaseException | None:
    """The first of ``exc`` and the exceptions that caused it (``__cause__``, ``__context__``) that passes ``test``."""
    while exc is not None:
        if test(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def check_mode(client, settings: dict) -> None:
    """Raise :class:`RedisSetupError` when a Redis Cluster node is configured without ``"cluster": true``,
    or when a plain Redis is a read-only replica (an ElastiCache reader endpoint, say).

    (The reverse, ``cluster`` on a plain Redis, fails when the cluster client is made.) An ACL
    user without INFO skips what it cannot see: a cluster still tells at the first count.
    """
    if settings.get("cluster"):
        return
    if str(_info(client, "cluster").get("cluster_enabled")) == "1":
        raise RedisSetupError('this Redis is a Redis Cluster — fix: add "cluster": true to "redis"')
    if _info(client, "replication").get("role") == "slave":
        raise RedisSetupError(
            'this Redis is a read-only replica (a reader endpoint), where nothing can be counted — fix: set "redis" to the primary endpoint'
        )


def _info(client, section: str) -> dict:
    """One INFO section, or {} for an ACL user that may not run INFO (lamed's advice grants none)."""
    try:
        return client.info(section)
    except redis.exceptions.NoPermissionError:
        return {}


def address(settings: dict) -> str:
    """Where ``settings`` connect (scheme://host:port or a socket path), without any credentials."""
    url = settings.get("url")
    if url:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return f"unix://{parts.path}"
        return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}"
    if settings.get("unix_socket_path"):
        return f"unix://{settings['unix_socket_path']}"
    scheme = "rediss" if settings.get("ssl") else "redis"
    return f"{scheme}://{settings.get('host', 'localhost')}:{settings.get('port', 6379)}"


def mode(settings: dict) -> dict:
    """How lamed talks to this Redis, for ``status`` and ``preflight``: no secret in it."""
    url = urlsplit(settings.get("url") or "")
    user = settings.get("username") or url.username
    if "iam" in settings:
        auth = f"IAM user {settings['iam']['user']} on cache {settings['iam']['cache']}"
    elif user:
        auth = f"ACL user {user}"
    elif settings.get("password") or url.password:
        auth = "password"
    else:
        auth = "none"
    return {
        "address": address(settings),
        "cluster": bool(settings.get("cluster")),
        "tls": bool(settings.get("ssl")) or url.scheme == "rediss",
        "auth": auth,
    }


def explain(exc: BaseException, settings: dict, where: str = "the config") -> str:
    """One line for a Redis failure: what is wrong, and the fix (``where`` names the config)."""
    at = address(settings)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, RedisSetupError) or " — fix: " in message:  # it already says what to do
        return f"Redis at {at}: {message}"
    if _is_cluster_reply(exc):
        return f'Redis at {at} is a Redis Cluster (it sends lamed to other nodes) — fix: add "cluster": true to "redis" in {where}'
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError) and "iam" in settings:
        return f"Redis at {at} refused IAM user {settings['iam']['user']} ({message}) — fix: check redis.iam in {where}, the cache user's IAM authentication, and the role's elasticache:Connect"
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return f"Redis at {at} refused the credentials ({message}) — fix: set redis.username and redis.password (or the URL's user:password@) in {where}"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        slot_map = " +cluster|slots" if settings.get("cluster") else ""
        return f"Redis at {at}: the ACL user may not do this ({message}) — fix: allow it ~* and +@read +@write +@scripting +@transaction +@connection{slot_map}"
    if _tls_failure(exc):
        if "certificate" in message.lower():
            return f"Redis at {at}: its TLS certificate is not trusted ({message}) — fix: set redis.ssl_ca_certs in {where} to the CA that signed it"
        return f"Redis at {at}: TLS failed ({message}) — fix: use redis:// for a Redis without TLS, rediss:// for one with it, in {where}"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        scheme = "that it speaks TLS (else use redis://)" if mode(settings)["tls"] else "rediss:// if it needs TLS"
        return f"Redis at {at} cannot be reached ({message}) — fix: check the address in {where} ({scheme}), and that Redis accepts connections from here"
    return f"Redis at {at} answered with an error ({message}) — fix: check the redis settings in {where}"


def _is_cluster_reply(exc: BaseException) -> bool:
    """A plain client talking to a cluster node: MOVED/ASK, or CROSSSLOT inside a transaction."""
    return isinstance(exc, redis.exceptions.AskError | redis.exceptions.ClusterCrossSlotError)


def is_retryable(exc: BaseException) -> bool:
    """Whether a Redis failure may pass by itself (down, hung, failing over), so a client should retry."""
    if isinstance(exc, RedisSetupError | redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return False
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return not _tls_failure(exc)
    # A replica where a primary was (a failover under way), a replica cut off from its primary, and
    # redis-py's ClusterError ("TTL exhausted": redirections that outlasted its retries) pass too.
    passing = redis.exceptions.ClusterError | redis.exceptions.TryAgainError | redis.exceptions.ReadOnlyError
    return isinstance(exc, passing | redis.exceptions.MasterDownError)


def _tls_failure(exc: BaseException) -> bool:
    """Whether TLS itself failed (untrusted certificate, TLS spoken to a plain port): not a passing fault."""
    return _in_chain(exc, lambda link: isinstance(link, ssl.SSLError) or "[SSL" in str(link)) is not None
