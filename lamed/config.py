"""Find, load and validate lamed's ``config.json`` (Lamed's format plus lamed's own keys).

Search order: the file named by ``LAMED_CONFIG``; else ``config.json`` in the working
directory (which is where the Lambda zip carries it); else ``~/.lamed/config.json``.
This module runs inside Lambda, so it imports nothing beyond the standard library
and redis-py.
"""

import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

CONFIG_ENV = "LAMED_CONFIG"
CONFIG_NAME = "config.json"
DEFAULT_NAMESPACE = "alephbet"
DEFAULT_UUID_EXPIRY_SECONDS = 86400
DEFAULT_REDIS_TIMEOUT_SECONDS = 2.0
DEFAULT_RUNTIME = "python3.12"
SUPPORTED_RUNTIMES = ("python3.11", "python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")

VPC_LIMITS = {"subnet_ids": ("subnet-", 16), "security_group_ids": ("sg-", 5)}  # Lambda's VpcConfig maxima

KNOWN_KEYS = {"redis", "uuid_expiry_seconds", "extra_wiring", "namespace", "runtime", "architecture", "vpc"}
REDIS_ARGUMENTS = set(inspect.signature(redis.Redis.__init__).parameters) - {"self"}


def lamed_home() -> Path:
    """The per-user folder for lamed's own files (``~/.lamed``)."""
    return Path.home() / ".lamed"


class ConfigError(Exception):
    """A config file that is missing or malformed; the message names the file."""


class ConfigNotFound(ConfigError):
    """No config file exists in any of the places lamed looks."""


@dataclass
class Config:
    """A validated config file; ``raw`` is the file's JSON object as written."""

    path: Path
    raw: dict
    redis: dict
    uuid_expiry_seconds: int = DEFAULT_UUID_EXPIRY_SECONDS
    extra_wiring: list = field(default_factory=list)
    namespace: str = DEFAULT_NAMESPACE
    runtime: str = DEFAULT_RUNTIME
    architecture: str = "x86_64"
    vpc: dict | None = None
    warnings: list = field(default_factory=list)

    def redis_client(self) -> redis.Redis:
        """A redis-py client for the configured Redis, with short timeouts by default."""
        return redis_client(self.redis)


def redis_client(settings: dict) -> redis.Redis:
    """Build a redis-py client from ``Redis(...)`` keyword arguments or a ``url``.

    Connect and read timeouts default to 2 s, and a failed connection is retried once
    at once (redis-py's own default backs off for seconds), so a dead or hung Redis
    fails fast instead of running a Lambda into its timeout.
    """
    kwargs = dict(settings)
    kwargs.setdefault("retry", Retry(NoBackoff(), 1))
    kwargs.setdefault("socket_connect_timeout", DEFAULT_REDIS_TIMEOUT_SECONDS)
    kwargs.setdefault("socket_timeout", DEFAULT_REDIS_TIMEOUT_SECONDS)
    url = kwargs.pop("url", None)
    if url:
        return redis.Redis.from_url(url, **kwargs)
    return redis.Redis(**kwargs)


def find_config_path() -> Path | None:
    """The config file lamed would use, or None when there is none."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser()
    for candidate in (Path.cwd() / CONFIG_NAME, lamed_home() / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | str | None = None) -> Config:
    """Load and validate a config file (``path``, else the one :func:`find_config_path` picks)."""
    path = Path(path) if path else find_config_path()
    if path is None:
        raise ConfigNotFound(
            f"no config file found: create ./{CONFIG_NAME} or ~/.lamed/{CONFIG_NAME} "
            f"(`lamed configure`), or name one in {CONFIG_ENV}"
        )
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigNotFound(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    return parse_config(raw, path)


def parse_config(raw, path: Path) -> Config:
    """Validate a config object read from ``path``; errors name the file and the key."""

    def fail(problem):
        raise ConfigError(f"{path}: {problem}")

    if not isinstance(raw, dict):
        fail("the top level must be a JSON object")
    config = Config(path=path, raw=raw, redis={})
    config.warnings = [f"{path}: unknown key {key!r} is ignored" for key in sorted(set(raw) - KNOWN_KEYS)]

    settings = raw.get("redis", {})
    if not isinstance(settings, dict):
        fail('"redis" must be an object of redis-py Redis() arguments, or {"url": "redis://..."}')
    unknown = sorted(set(settings) - REDIS_ARGUMENTS - {"url"})
    if unknown:
        fail(f'"redis" has {", ".join(map(repr, unknown))}, which redis-py\'s Redis() does not accept')
    if "url" in settings and not (isinstance(settings["url"], str) and settings["url"]):
        fail('"redis.url" must be a non-empty string such as "redis://host:6379/0"')
    if "port" in settings and not _is_int(settings["port"]):
        fail('"redis.port" must be a whole number')
    config.redis = settings

    expiry = raw.get("uuid_expiry_seconds", DEFAULT_UUID_EXPIRY_SECONDS)
    if not _is_int(expiry) or expiry <= 0:
        fail('"uuid_expiry_seconds" must be a positive whole number of seconds')
    config.uuid_expiry_seconds = expiry

    wiring = raw.get("extra_wiring", [])
    if not isinstance(wiring, list):
        fail('"extra_wiring" must be a list of {"lambda": {...}, "api_gateway": {...}} entries')
    for index, entry in enumerate(wiring):
        problem = _wiring_problem(entry)
        if problem:
            fail(f'"extra_wiring"[{index}]: {problem}')
    config.extra_wiring = wiring

    namespace = raw.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace or ":" in namespace:
        fail('"namespace" must be a non-empty string without ":"')
    config.namespace = namespace

    runtime = raw.get("runtime", DEFAULT_RUNTIME)
    if runtime not in SUPPORTED_RUNTIMES:
        fail(f'"runtime" must be one of {", ".join(SUPPORTED_RUNTIMES)}')
    config.runtime = runtime

    architecture = raw.get("architecture", "x86_64")
    if architecture not in ARCHITECTURES:
        fail(f'"architecture" must be one of {", ".join(ARCHITECTURES)}')
    config.architecture = architecture

    vpc = raw.get("vpc")
    if vpc is not None:
        problem = _vpc_problem(vpc)
        if problem:
            fail(problem)
        config.vpc = vpc
    return config


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _vpc_problem(vpc) -> str | None:
    if not isinstance(vpc, dict) or set(vpc) != set(VPC_LIMITS):
        return '"vpc" must be an object {"subnet_ids": ["subnet-..."], "security_group_ids": ["sg-..."]}'
    for key, (prefix, most) in VPC_LIMITS.items():
        ids = vpc[key]
        if not isinstance(ids, list) or not 1 <= len(ids) <= most:
            return f'"vpc.{key}" must be a list of 1 to {most} ids'
        if not all(isinstance(item, str) and item.startswith(prefix) and item != prefix for item in ids):
            return f'"vpc.{key}" must hold ids that start with "{prefix}"'
        if len(set(ids)) != len(ids):
            return f'"vpc.{key}" repeats an id'
    return None


def _wiring_problem(entry) -> str | None:
    if not isinstance(entry, dict):
        return "must be an object"
    function = entry.get("lambda")
    if not isinstance(function, dict) or not function.get("FunctionName") or not function.get("Handler"):
        return '"lambda" must be an object with "FunctionName" and "Handler"'
    gateway = entry.get("api_gateway")
    if not isinstance(gateway, dict) or not gateway.get("pathPart"):
        return '"api_gateway" must be an object with "pathPart" and "method"'
    method = gateway.get("method")
    if not isinstance(method, dict) or not method.get("httpMethod"):
        return '"api_gateway.method" must be an object with "httpMethod"'
    return None
