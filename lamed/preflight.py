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
from lamed.connection import address, check_mode, eviction_warning, explain, is_retryable, mode, redis_client

FIX = " — fix: "
CONFIG_FIX = "correct it (`lamed configure` opens it)"  # for a config error that names no fix of its own


@dataclass
class Check:
    """The outcome of one check; ``message`` already carries the fix when it failed."""

    ok: bool
    message: str
    skipped: bool = False

    @property
    def line(self) -> str:
        return f"{'skipped' if self.skipped else 'ok' if self.ok else 'FAIL'}: {self.message}"


def run_checks(profile: str | None, region: str | None, redis_check: bool = True) -> Iterator[Check]:
    """The config, AWS and Redis checks, in that order, each as soon as it is done.

    Without ``redis_check`` (a dry run: the plan needs no Redis) Redis is not contacted.
    """
    config = None
    try:
        config = load_config()
    except ConfigNotFound as exc:
        yield Check(False, f"config: {exc}")
    except ConfigError as exc:
        message = str(exc)
        has_fix = FIX in message or "\n" in message  # a JSON error shows the very line to correct
        yield Check(False, f"config: {message}" if has_fix else f"config: {message}{FIX}{CONFIG_FIX}")
    else:
        notes = "".join(f"; warning: {warning}" for warning in config.warnings)
        yield Check(True, f"config {config.path}{notes}")
    yield check_aws(profile, region)
    if config is not None and not redis_check:
        yield Check(True, "Redis not contacted (dry run; `lamed preflight` checks it)", skipped=True)
    elif config is not None:
        if "iam" in config.redis:
            yield check_iam_token(config, profile, region)
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


def check_iam_token(config: Config, profile: str | None, region: str | None) -> Check:
    """With ``redis.iam``: an ElastiCache IAM token can be signed with these credentials and region."""
    from lamed.iam_auth import ElastiCacheIamProvider, IamAuthError

    iam = config.redis["iam"]
    try:
        session = make_session(profile, region)
        provider = ElastiCacheIamProvider(**iam, region=session.region_name, session=session)
        provider.sign_token()
    except AwsSetupError as exc:
        return Check(False, f"ElastiCache IAM token: {exc}")
    except IamAuthError as exc:
        return Check(False, f"ElastiCache IAM token: {exc}")
    kind = "serverless cache" if iam.get("serverless") else "replication group"
    return Check(True, f"ElastiCache IAM token signed for user {iam['user']} on {kind} {iam['cache']} ({session.region_name})")


def check_redis(config: Config) -> Check:
    """The configured Redis answers PING with the configured settings, in the configured mode."""
    settings = config.redis
    try:
        client = redis_client(settings)
        try:
            client.ping()
            check_mode(client, settings)
            eviction = eviction_warning(client)
        finally:
            client.close()
    except redis.RedisError as exc:
        if config.vpc and is_retryable(exc):
            return Check(False, (
                f"Redis at {address(settings)} cannot be reached ({exc}) — fix: a Redis inside the VPC (ElastiCache) "
                "answers only from inside it: run preflight there, or deploy with `lamed deploy --no-preflight`"
            ))
        return Check(False, explain(exc, settings, str(config.path)))
    found = mode(settings)
    traits = ", ".join(["cluster"] * found["cluster"] + ["TLS"] * found["tls"] + [f"auth: {found['auth']}"])
    note = "" if reachable_from_aws(settings) else "; warning: a Lambda cannot reach Redis on this machine's loopback or socket"
    note += f"; warning: {eviction}" if eviction else ""
    return Check(True, f"Redis at {found['address']} answers PING ({traits}){note}")


def unreachable_redis(config: Config) -> str | None:
    """Why no Lambda can use the config's Redis (on this machine's loopback or a socket), with the fix; or None."""
    if reachable_from_aws(config.redis):
        return None
    return (
        f"the Redis of {config.path} ({address(config.redis)}) is on this machine, which no Lambda can reach — "
        'fix: set "redis" to one the functions reach (ElastiCache in the config\'s "vpc", or a TLS Redis with a password)'
    )


def reachable_from_aws(settings: dict) -> bool:
    """False when the settings point at a Unix socket or a loopback address, which no Lambda can reach."""
    location = address(settings)
    if location.startswith("unix://"):
        return False
    host = location.partition("://")[2].rpartition(":")[0].strip("[]")
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() != "localhost"
