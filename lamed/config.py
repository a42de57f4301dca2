"""Find, load and validate lamed's ``config.json`` (Lamed's format plus lamed's own keys).

Search order: the file named by ``LAMED_CONFIG``; else the JSON in the environment
variable ``LAMED_CONFIG_JSON`` (how ``lamed deploy`` hands the settings to the functions,
so the zip holds code only); else ``config.json`` in the working directory; else
``~/.lamed/config.json``. This module runs inside Lambda, so it imports nothing beyond
the standard library and redis-py.
"""

import difflib
import functools
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lamed import names

CONFIG_ENV = "LAMED_CONFIG"
CONFIG_JSON_ENV = "LAMED_CONFIG_JSON"
CONFIG_NAME = "config.json"
DEFAULT_NAMESPACE = "alephbet"
PARTICIPATE = "participate"  # the event AlephBet sends when a visitor joins an experiment
DEFAULT_UUID_EXPIRY_SECONDS = 86400
DEFAULT_MAX_EXPERIMENTS = 1000
DEFAULT_MAX_VARIANTS = 20
DEFAULT_MAX_GOALS = 20
# Lambda's Python runtimes that lamed runs on: botocore's lambda service model (2015-03-31), shape "Runtime"
SUPPORTED_RUNTIMES = ("python3.11", "python3.12", "python3.13", "python3.14")
THIS_PYTHON = "python%d.%d" % sys.version_info[:2]
# The deploying Python's runtime where Lambda offers it: that interpreter compiles the zip's bytecode
DEFAULT_RUNTIME = THIS_PYTHON if THIS_PYTHON in SUPPORTED_RUNTIMES else SUPPORTED_RUNTIMES[-1]
ARCHITECTURES = ("x86_64", "arm64")
DEFAULT_ARCHITECTURE = "x86_64"

VPC_LIMITS = {"subnet_ids": ("subnet-", 16), "security_group_ids": ("sg-", 5)}  # Lambda's VpcConfig maxima

KNOWN_KEYS = {
    "redis", "uuid_expiry_seconds", "extra_wiring", "namespace", "runtime", "architecture", "vpc",
    "max_experiments", "max_variants", "max_goals", "serve", "log_retention_days",
    "track_function_url", "track_max_concurrency", "track_rate_limit", "experiments", "declared_only",
}  # fmt: skip
SERVE_KEYS = {"use_config_redis"}  # "serve": {"use_config_redis": true} makes `lamed serve` use "redis"
DEFAULT_LOG_RETENTION_DAYS = 30
# lamed-track's reserved concurrency: events/s ≈ concurrency ÷ seconds per event (docs/deploy.md, "The function URL")
DEFAULT_TRACK_MAX_CONCURRENCY = 100
# API Gateway's stage throttle on GET /track: requests per second, and the burst (token bucket) above it
DEFAULT_TRACK_RATE_LIMIT = {"rate": 100, "burst": 200}
# The retention periods CloudWatch Logs accepts, in days
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
# What the deployed functions need, handed to them in LAMED_CONFIG_JSON.
RUNTIME_KEYS = ("redis", "uuid_expiry_seconds", "max_experiments", "max_variants", "max_goals", "experiments", "declared_only")
DECLARATION_KEYS = {"variants", "goals", "control", "stopped"}  # an experiment's keys in "experiments"
GOAL_KEYS = {"name", "unique"}  # a goal declared as an object
LAMED_REDIS_KEYS = {"url", "cluster", "iam"}  # lamed's own keys in "redis", beside redis-py's arguments
URL_SCHEMES = ("redis://", "rediss://", "unix://")
IAM_KEYS = {"user", "cache", "serverless"}


@functools.cache
def redis_arguments(cluster: bool) -> frozenset:
    """The arguments redis-py's ``Redis()`` (``RedisCluster()`` when ``cluster``) accepts.

    redis-py is imported here, when a config is validated, so that importing this module stays cheap.
    """
    import inspect

    import redis
    import redis.cluster

    plain = set(inspect.signature(redis.Redis.__init__).parameters) - {"self"}
    if not cluster:
        return frozenset(plain)
    extra = set(inspect.signature(redis.cluster.RedisCluster.__init__).parameters) - {"self", "kwargs", "startup_nodes"}
    return frozenset(plain | extra)


def lamed_home() -> Path:
    """The per-user folder for lamed's own files (``~/.lamed``)."""
    return Path.home() / ".lamed"


@dataclass(frozen=True)
class Bounds:
    """How many experiments a namespace, and variants and goals an experiment, may hold: /track
    refuses more (429)."""

    max_experiments: int = DEFAULT_MAX_EXPERIMENTS
    max_variants: int = DEFAULT_MAX_VARIANTS
    max_goals: int = DEFAULT_MAX_GOALS

    def limit(self, kind: str) -> int:
        """The bound of ``kind``: ``experiments``, ``variants`` or ``goals``."""
        return getattr(self, f"max_{kind}")

    def limits(self) -> tuple[int, int, int]:
        """``max_experiments``, ``max_variants``, ``max_goals``: the order the track scripts take them in."""
        return self.max_experiments, self.max_variants, self.max_goals


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
    architecture: str = DEFAULT_ARCHITECTURE
    vpc: dict | None = None
    bounds: Bounds = Bounds()
    use_config_redis: bool = False
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    track_function_url: bool = True
    track_max_concurrency: int | None = DEFAULT_TRACK_MAX_CONCURRENCY  # None: no reservation
    track_rate_limit: dict = field(default_factory=lambda: dict(DEFAULT_TRACK_RATE_LIMIT))
    # Declared experiments, normalised: name -> {"variants": {variant: weight}, "goals": {goal: unique},
    # "control": variant, "stopped": bool}, each in the order written.
    experiments: dict = field(default_factory=dict)
    declared_only: bool = False
    warnings: list = field(default_factory=list)

    @property
    def cluster(self) -> bool:
        """Whether the Redis is a Redis Cluster (lamed then uses its cluster layout)."""
        return bool(self.redis.get("cluster"))

    def runtime_environment(self) -> dict[str, str]:
        """The environment variables that carry this config's runtime settings to a function."""
        runtime = {key: self.raw[key] for key in RUNTIME_KEYS if key in self.raw}
        if self.experiments or self.declared_only:  # the declarations are the config's namespace's
            runtime["namespace"] = self.namespace
        return {CONFIG_JSON_ENV: json.dumps(runtime, sort_keys=True, separators=(",", ":"))}


ENVIRONMENT_PATH = Path(f"${CONFIG_JSON_ENV}")  # how messages name the settings found in the environment


def find_config_path() -> Path | None:
    """The config file lamed would use (``$LAMED_CONFIG_JSON`` for the environment's), or None."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser()
    if os.environ.get(CONFIG_JSON_ENV):
        return ENVIRONMENT_PATH
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
    if path == ENVIRONMENT_PATH:
        return _parse_json(os.environ.get(CONFIG_JSON_ENV, ""), path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigNotFound(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    return _parse_json(text, path)


def _parse_json(text: str, path: Path) -> Config:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(_json_problem(text, exc, path)) from None
    return parse_config(raw, path)


# json's messages, in words a person editing the file can act on.
_JSON_PROBLEMS = {
    "Expecting property name enclosed in double quotes": 'expected a "key" in double quotes',
    "Expecting value": "expected a value: a number, a \"string\" in double quotes, true, false, null, {...} or [...]",
    "Expecting ',' delimiter": "a comma is missing between two entries",
    "Expecting ':' delimiter": 'a colon is missing after the key: "key": value',
    "Unterminated string starting at": "this string has no closing double quote",
    "Invalid control character at": "a string holds a line break or tab: write it as \\n or \\t",
    "Invalid \\escape": "a backslash starts an escape JSON does not know: write \\\\ for a backslash",
    "Extra data": "more text after the end of the JSON object",
}
_SHOWN_COLUMNS = 100


def _json_problem(text: str, exc: json.JSONDecodeError, path: Path) -> str:
    """``{path} line L, column C: <what>`` and that line with a caret under column C."""
    position, what = exc.pos, _JSON_PROBLEMS.get(exc.msg, exc.msg)
    if not text.strip():
        what = "the file is empty: a config is a JSON object, at least {}"
    elif (comma := _trailing_comma(text, exc)) is not None:
        position, what = comma, "a comma before the closing bracket: JSON allows none there — fix: remove it"
    elif text[position:position + 1] == "'":
        what = "JSON wants double quotes, not single quotes"
    elif exc.msg == "Expecting value" and re.match(r"(True|False|None)\b", text[position:]):
        what = "JSON writes true, false and null in lower case"
    line_number = text.count("\n", 0, position) + 1
    start = text.rfind("\n", 0, position) + 1
    line, column = text[start:].partition("\n")[0], position - start
    shift = max(0, column - _SHOWN_COLUMNS // 2)
    shown = line[shift:shift + _SHOWN_COLUMNS].replace("\t", " ")
    margin = " " * len(str(line_number))
    return (
        f"{path} line {line_number}, column {column + 1}: not valid JSON: {what}\n"
        f"  {line_number} | {shown}\n  {margin} | {' ' * (column - shift)}^"
    )


def _trailing_comma(text: str, exc: json.JSONDecodeError) -> int | None:
    """Where a comma that stands before a closing bracket is, if that is the mistake: Python 3.13's
    json stops at the comma ("Illegal trailing comma ..."), older ones at the bracket after it."""
    if exc.msg.startswith("Illegal trailing comma"):
        return exc.pos
    before = text[:exc.pos].rstrip()
    if before.endswith(",") and text[exc.pos:exc.pos + 1] in "}]":
        return len(before) - 1
    return None


def parse_config(raw, path: Path) -> Config:
    """Validate a config object read from ``path``; errors name the file and the key."""

    def fail(problem):
        raise ConfigError(f"{path}: {problem}")

    if not isinstance(raw, dict):
        fail("the top level must be a JSON object")
    config = Config(path=path, raw=raw, redis={})
    config.warnings = [f"{path}: unknown key {key!r} is ignored{_did_you_mean(key, KNOWN_KEYS)}" for key in sorted(set(raw) - KNOWN_KEYS)]

    settings = raw.get("redis", {})
    if not isinstance(settings, dict):
        fail('"redis" must be an object of redis-py Redis() arguments, or {"url": "redis://..."}')
    problem = _redis_problem(settings)
    if problem:
        fail(problem)
    config.redis = settings

    expiry = raw.get("uuid_expiry_seconds", DEFAULT_UUID_EXPIRY_SECONDS)
    if not _is_int(expiry) or expiry <= 0:
        fail('"uuid_expiry_seconds" must be a positive whole number of seconds')
    config.uuid_expiry_seconds = expiry

    bounds = {key: raw.get(key, getattr(Bounds, key)) for key in ("max_experiments", "max_variants", "max_goals")}
    for key, value in bounds.items():
        if not _is_int(value) or value <= 0:
            fail(f'"{key}" must be a positive whole number')
    config.bounds = Bounds(**bounds)

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

    architecture = raw.get("architecture", DEFAULT_ARCHITECTURE)
    if architecture not in ARCHITECTURES:
        fail(f'"architecture" must be one of {", ".join(ARCHITECTURES)}')
    config.architecture = architecture

    vpc = raw.get("vpc")
    if vpc is not None:
        problem = _vpc_problem(vpc)
        if problem:
            fail(problem)
        config.vpc = vpc

    serve = raw.get("serve", {})
    if not (isinstance(serve, dict) and set(serve) <= SERVE_KEYS and isinstance(serve.get("use_config_redis", False), bool)):
        fail('"serve" must be {"use_config_redis": true} (lamed serve uses "redis") or {"use_config_redis": false} (its embedded Redis)')
    config.use_config_redis = serve.get("use_config_redis", False)
    if config.use_config_redis and "redis" not in raw:
        fail('"serve.use_config_redis" is true but there is no "redis" to use: add one, or drop "serve"')
    retention = raw.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS)
    if not _is_int(retention) or retention not in LOG_RETENTION_DAYS:
        fail(f'"log_retention_days" must be one of CloudWatch Logs\' periods: {", ".join(map(str, LOG_RETENTION_DAYS))}')
    config.log_retention_days = retention
    _parse_track_settings(config, raw, fail)
    _parse_declarations(config, raw, fail)
    return config


def _parse_declarations(config: Config, raw: dict, fail) -> None:
    """"experiments" (what the owner declares each experiment to be) and "declared_only"."""
    experiments = raw.get("experiments", {})
    if not isinstance(experiments, dict):
        fail('"experiments" must be an object {"<experiment>": {"variants": [...], "goals": [...]}}')
    if len(experiments) > config.bounds.max_experiments:
        most = config.bounds.max_experiments
        fail(f'"experiments" declares {len(experiments)} experiments, more than "max_experiments" ({most})')
    for name, declaration in experiments.items():
        problem = _name_problem("experiment", name)
        if problem:
            fail(f'"experiments": the experiment name {name!r} {problem}')
        try:
            config.experiments[name] = _declaration(declaration, config.bounds)
        except ValueError as exc:
            fail(f'"experiments"."{name}": {exc}')
    declared_only = raw.get("declared_only", False)
    if not isinstance(declared_only, bool):
        fail('"declared_only" must be true (/track counts declared experiments only) or false')
    if declared_only and not experiments:
        fail('"declared_only" is true but "experiments" declares none: /track would refuse every event')
    config.declared_only = declared_only


def _declaration(declaration, bounds: Bounds) -> dict:
    """One experiment's declaration, normalised; ValueError says what is wrong."""
    if not isinstance(declaration, dict) or not {"variants", "goals"} <= set(declaration) <= DECLARATION_KEYS:
        raise ValueError('must be an object {"variants": ..., "goals": [...]} with optional "control" and "stopped"')
    variants = _variants(declaration["variants"], bounds)
    goals = _goals(declaration["goals"], bounds)
    control = declaration.get("control", next(iter(variants)))
    if control not in variants:
        raise ValueError(f'"control" must be one of its variants ({", ".join(variants)}), not {control!r}')
    stopped = declaration.get("stopped", False)
    if not isinstance(stopped, bool):
        raise ValueError('"stopped" must be true (counting stopped, results frozen) or false')
    return {"variants": variants, "goals": goals, "control": control, "stopped": stopped}


def _variants(variants, bounds: Bounds) -> dict[str, float]:
    """``{variant: weight}`` from a list of names (equal weights) or an object of positive weights."""
    shape = '"variants" must be a list of names or an object {"<variant>": <weight>} of at least two'
    if isinstance(variants, list):
        if not all(isinstance(name, str) for name in variants) or len(set(variants)) != len(variants):
            raise ValueError(f"{shape}, each named once")
        variants = dict.fromkeys(variants, 1)
    if not isinstance(variants, dict) or len(variants) < 2:
        raise ValueError(shape)
    if len(variants) > bounds.max_variants:
        raise ValueError(f'declares {len(variants)} variants, more than "max_variants" ({bounds.max_variants})')
    for name, weight in variants.items():
        problem = _name_problem("variant", name)
        if problem:
            raise ValueError(f"the variant name {name!r} {problem}")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 < weight < float("inf"):
            raise ValueError(f'the weight of variant {name!r} must be a positive number (its share of visitors)')
    return {name: float(weight) for name, weight in variants.items()}


def _goals(goals, bounds: Bounds) -> dict[str, bool]:
    """``{goal: unique}`` from a list of names and ``{"name": ..., "unique": false}`` objects."""
    if not isinstance(goals, list):
        raise ValueError('"goals" must be a list of goal names (or {"name": "<goal>", "unique": false} objects)')
    found = {}
    for goal in goals:
        if isinstance(goal, dict):
            if not (set(goal) <= GOAL_KEYS and isinstance(goal.get("name"), str) and isinstance(goal.get("unique", True), bool)):
                raise ValueError('a goal object must be {"name": "<goal>", "unique": false} ("unique": true is the default)')
            name, unique = goal["name"], goal.get("unique", True)
        elif isinstance(goal, str):
            name, unique = goal, True
        else:
            raise ValueError('"goals" must be a list of goal names (or {"name": "<goal>", "unique": false} objects)')
        problem = "is the participation event, not a goal" if name == PARTICIPATE else _name_problem("event", name)
        if problem:
            raise ValueError(f"the goal name {name!r} {problem}")
        if name in found:
            raise ValueError(f"the goal {name!r} is declared twice")
        found[name] = unique
    if len(found) > bounds.max_goals:
        raise ValueError(f'declares {len(found)} goals, more than "max_goals" ({bounds.max_goals})')
    return found


def _name_problem(kind: str, name: str) -> str | None:
    """Why a declared name is refused: /track's rules (it could never be tracked)."""
    if not name:
        return "is empty"
    return names.track_problem(kind, name)


def _parse_track_settings(config: Config, raw: dict, fail) -> None:
    """The deploy-only settings of lamed-track's two front doors: its function URL and the REST /track."""
    function_url = raw.get("track_function_url", True)
    if not isinstance(function_url, bool):
        fail('"track_function_url" must be true (lamed-track gets a function URL) or false (REST /track only)')
    config.track_function_url = function_url
    concurrency = raw.get("track_max_concurrency", DEFAULT_TRACK_MAX_CONCURRENCY)
    if concurrency is not None and (not _is_int(concurrency) or concurrency <= 0):
        fail(
            '"track_max_concurrency" must be a positive whole number (lamed-track\'s reserved concurrency) '
            "or null (no reservation: the account's shared pool)"
        )
    config.track_max_concurrency = concurrency
    limit = raw.get("track_rate_limit", DEFAULT_TRACK_RATE_LIMIT)
    if not (
        isinstance(limit, dict)
        and set(limit) == {"rate", "burst"}
        and isinstance(limit["rate"], (int, float))
        and not isinstance(limit["rate"], bool)
        and limit["rate"] > 0
        and _is_int(limit["burst"])
        and limit["burst"] > 0
    ):
        fail(
            '"track_rate_limit" must be {"rate": R, "burst": B}: R requests per second (a positive number) and '
            f'a burst of B (a positive whole number) on the REST /track, e.g. {json.dumps(DEFAULT_TRACK_RATE_LIMIT)}'
        )
    config.track_rate_limit = {"rate": limit["rate"], "burst": limit["burst"]}


def _did_you_mean(key: str, known) -> str:
    """`` — did you mean 'namespace'?`` when ``key`` is close to one of ``known``; else ''."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f" — did you mean {close[0]!r}?" if close else ""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _redis_problem(settings: dict) -> str | None:
    """What is wrong with the "redis" object, or None."""
    cluster = settings.get("cluster", False)
    if not isinstance(cluster, bool):
        return '"redis.cluster" must be true (a Redis Cluster, e.g. ElastiCache Serverless) or false'
    accepted, client = redis_arguments(cluster), "RedisCluster()" if cluster else "Redis()"
    unknown = sorted(set(settings) - accepted - LAMED_REDIS_KEYS)
    if unknown:
        hint = _did_you_mean(unknown[0], accepted | LAMED_REDIS_KEYS) if len(unknown) == 1 else ""
        return f'"redis" has {", ".join(map(repr, unknown))}, which redis-py\'s {client} does not accept{hint}'
    url = settings.get("url")
    if "url" in settings:
        if not (isinstance(url, str) and url):
            return '"redis.url" must be a non-empty string such as "redis://host:6379/0"'
        if not url.lower().startswith(URL_SCHEMES):
            return _url_scheme_problem(url)
    if "port" in settings and not _is_int(settings["port"]):
        return '"redis.port" must be a whole number'
    if cluster:
        if (url or "").lower().startswith("unix://") or "unix_socket_path" in settings:
            return '"redis.cluster" needs a TCP address: a Redis Cluster is not reached through a Unix socket'
        if settings.get("db", 0) != 0 or (url and _url_db(url) not in (None, 0)):
            return '"redis.cluster": a Redis Cluster has only database 0; drop "db" (or the /N in the URL)'
    if "iam" in settings:
        return _iam_problem(settings)
    return None


def _url_scheme_problem(url: str) -> str:
    """What is wrong with the start of ``url``, and the URL to write instead (itself a valid one)."""
    kinds = f"{', '.join(URL_SCHEMES[:-1])} or {URL_SCHEMES[-1]}"
    misspelt = re.match(r"(?i)(rediss?)(:/{1,2}|/{1,3})(?=[^/])", url)  # redis//host, redis:/host, rediss/host
    if misspelt:
        scheme, rest = misspelt.group(1).lower(), url[misspelt.end():]
        return f'"redis.url" {json.dumps(url)} has a malformed scheme ({kinds}) — fix: "{scheme}://{rest}"'
    if "://" in url:
        scheme, _, rest = url.partition("://")
        problem = f'"redis.url" must start with {kinds}, not "{scheme}://"'
    else:
        rest = url
        problem = f'"redis.url" {json.dumps(url)} has no scheme ({kinds})'
    rest = rest.lstrip("/") or "localhost:6379"
    return f'{problem} — fix: "redis://{rest}" (or "rediss://{rest}" for TLS)'


def _url_db(url: str) -> int | None:
    path = url.split("://", 1)[1].partition("/")[2].partition("?")[0]
    return int(path) if path.isdigit() else None


def _iam_problem(settings: dict) -> str | None:
    iam = settings["iam"]
    if not (isinstance(iam, dict) and {"user", "cache"} <= set(iam) <= IAM_KEYS):
        return '"redis.iam" must be an object {"user": "USER_ID", "cache": "CACHE_NAME", "serverless": true}'
    if not all(isinstance(iam[key], str) and iam[key] for key in ("user", "cache")):
        return '"redis.iam.user" and "redis.iam.cache" must be non-empty strings'
    if not isinstance(iam.get("serverless", False), bool):
        return '"redis.iam.serverless" must be true (a serverless cache) or false (a replication group)'
    if "password" in settings or "credential_provider" in settings or "@" in settings.get("url", ""):
        return '"redis.iam" signs its own short-lived password: remove "password" (and any user:password@ in the URL)'
    if not (settings.get("ssl") is True or settings.get("url", "").lower().startswith("rediss://")):
        return '"redis.iam" needs TLS, as ElastiCache requires: use a rediss:// URL or "ssl": true'
    return None


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
