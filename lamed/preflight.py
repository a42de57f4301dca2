"""``lamed preflight``: check the config, AWS credentials and region, and Redis before a deploy.

Each check gives one line, ``ok: ...`` or ``FAIL: ... — fix: ...``; nothing here raises.
"""

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from botocore.exceptions import BotoCoreError, ClientError

from lamed.aws.session import AwsSetupError, aws_error_message, make_session
from lamed.config import Config, ConfigError, ConfigNotFound, load_config
from lamed.connection import redis_client


@dataclass
class Check:
    """The outcome of one check; ``message`` already carries the fix when it failed."""

    ok: bool
    message: str

    @property
    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL'}: {self.message}"


def run_checks(profile: str | None, region: str | None) -> Iterator[Check]:
    """The config, AWS and Redis checks, in that order, each as soon as it is done."""
    config = None
    try:
        config = load_config()
    except ConfigNotFound as exc:
        yield Check(False, f"config: {exc}")
    except ConfigError as exc:
        yield Check(False, f"config: {exc} — fix: correct it (`lamed configure` opens it)")
    else:
        notes = "".join(f"; warning: {warning}" for warning in config.warnings)
        yield Check(True, f"config {config.path}{notes}")
    yield check_aws(profile, region)
    if config is not None:
        yield check_redis(config)


def check_aws(profile: str | None, region: str | None) -> Check:
    """Credentials and region resolve, and STS says who they belong to."""
    try:
        session = make_session(profile, region)
        identity = session.client("sts").get_caller_identity()
    except AwsSetupError as exc:
        return Check(False, str(exc))
    except (BotoCoreError, ClientError) as exc:
        return Check(False, aws_error_message(exc))
    return Check(True, f"AWS account {identity['Account']} as {identity['Arn']}, region {session.region_name}")


def check_redis(config: Config) -> Check:
    """The configured Redis answers PING with the configured settings."""
    client = redis_client(config.redis)
    where = redis_address(client)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        return Check(False, f"Redis at {where} refused the credentials ({exc}) — fix: set redis.password (and redis.username) in {config.path}")
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        if config.vpc:
            fix = (
                "a Redis inside the VPC (ElastiCache) answers only from inside it: run preflight there, "
                "or deploy with `lamed deploy --no-preflight`"
            )
        else:
            fix = f"check redis.host, redis.port and redis.ssl in {config.path}, and that Redis accepts connections from here"
        return Check(False, f"Redis at {where} cannot be reached ({exc}) — fix: {fix}")
    except redis.RedisError as exc:
        return Check(False, f"Redis at {where} answered with an error ({exc}) — fix: check the redis settings in {config.path}")
    finally:
        client.close()
    note = "" if reachable_from_aws(client) else "; warning: a Lambda cannot reach Redis on this machine's loopback or socket"
    return Check(True, f"Redis at {where} answers PING{note}")


def redis_address(client: redis.Redis) -> str:
    """Where a client connects (host:port/db or a socket path), without any credentials."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return kwargs["path"]
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def reachable_from_aws(client: redis.Redis) -> bool:
    """False when the client connects through a Unix socket or a loopback address, which no Lambda can reach."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return False
    host = str(kwargs.get("host", "localhost"))
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() != "localhost"
