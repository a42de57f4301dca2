import json
import re

import pytest

from lamed.config import DEFAULT_ARCHITECTURE, DEFAULT_RUNTIME, Bounds, ConfigError, ConfigNotFound, find_config_path, load_config
from lamed.connection import redis_client


def write(path, value):
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("LAMED_CONFIG", raising=False)
    monkeypatch.delenv("LAMED_CONFIG_JSON", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def test_lamed_config_file_loads_with_defaults(tmp_path):
    path = write(tmp_path / "config.json", {"redis": {"host": "example.org", "port": 6380, "password": "s"}})
    config = load_config()
    assert config.path == path
    assert config.redis == {"host": "example.org", "port": 6380, "password": "s"}
    assert config.uuid_expiry_seconds == 86400
    assert config.extra_wiring == []
    assert config.namespace == "alephbet"
    assert (config.runtime, config.architecture) == (DEFAULT_RUNTIME, DEFAULT_ARCHITECTURE)
    assert config.vpc is None
    assert config.bounds == Bounds(max_experiments=1000, max_variants=20, max_goals=20)
    assert config.track_function_url is True and config.track_max_concurrency == 100
    assert config.track_rate_limit == {"rate": 100, "burst": 200}
    assert config.warnings == []


def test_search_order_env_then_cwd_then_home(tmp_path, monkeypatch):
    home_config = write((tmp_path / "home" / ".lamed").mkdir(parents=True) or tmp_path / "home/.lamed/config.json", {})
    assert find_config_path() == home_config
    cwd_config = write(tmp_path / "config.json", {})
    assert find_config_path() == cwd_config
    named = write(tmp_path / "other.json", {})
    monkeypatch.setenv("LAMED_CONFIG", str(named))
    assert find_config_path() == named


def test_no_config_anywhere_says_how_to_make_one():
    with pytest.raises(ConfigNotFound, match="lamed configure"):
        load_config()


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", " line 1, column 2: not valid JSON: "),
        ("[]", "top level must be a JSON object"),
        ({"redis": "localhost"}, '"redis" must be an object'),
        ({"redis": {"hots": "x"}}, "'hots', which redis-py's Redis\\(\\) does not accept"),
        ({"redis": {"port": "6379"}}, '"redis.port" must be a whole number'),
        ({"redis": {"url": ""}}, '"redis.url" must be a non-empty string'),
        ({"uuid_expiry_seconds": 0}, "positive whole number"),
        ({"uuid_expiry_seconds": "86400"}, "positive whole number"),
        ({"max_experiments": 0}, '"max_experiments" must be a positive whole number'),
        ({"max_variants": 2.5}, '"max_variants" must be a positive whole number'),
        ({"max_variants": True}, '"max_variants" must be a positive whole number'),
        ({"max_goals": 0}, '"max_goals" must be a positive whole number'),
        ({"max_goals": "20"}, '"max_goals" must be a positive whole number'),
        ({"extra_wiring": {}}, '"extra_wiring" must be a list'),
        ({"extra_wiring": [{"lambda": {"FunctionName": "f"}}]}, '"extra_wiring"\\[0\\]: "lambda" must be'),
        ({"namespace": "a:b"}, '"namespace" must be a non-empty string without ":"'),
        ({"runtime": "python3.8"}, '"runtime" must be one of'),
        ({"architecture": "sparc"}, '"architecture" must be one of'),
        ({"vpc": ["subnet-1"]}, '"vpc" must be an object \\{"subnet_ids"'),
        ({"vpc": {"subnet_ids": ["subnet-1"]}}, '"vpc" must be an object'),
        ({"vpc": {"subnet_ids": [], "security_group_ids": ["sg-1"]}}, '"vpc.subnet_ids" must be a list of 1 to 16'),
        ({"vpc": {"subnet_ids": "subnet-1", "security_group_ids": ["sg-1"]}}, '"vpc.subnet_ids" must be a list'),
        ({"vpc": {"subnet_ids": ["subnet-1"], "security_group_ids": []}}, '"vpc.security_group_ids" must be a list'),
        ({"vpc": {"subnet_ids": ["sg-1"], "security_group_ids": ["sg-1"]}}, '"vpc.subnet_ids" must hold ids that start'),
        ({"vpc": {"subnet_ids": ["subnet-1"], "security_group_ids": [6]}}, '"vpc.security_group_ids" must hold ids'),
        ({"vpc": {"subnet_ids": ["subnet-1", "subnet-1"], "security_group_ids": ["sg-1"]}}, "repeats an id"),
        ({"track_function_url": "yes"}, '"track_function_url" must be true .* or false'),
        ({"track_max_concurrency": 0}, '"track_max_concurrency" must be a positive whole number .* or null'),
        ({"track_max_concurrency": 1.5}, '"track_max_concurrency" must be a positive whole number'),
        ({"track_max_concurrency": True}, '"track_max_concurrency" must be a positive whole number'),
        ({"track_rate_limit": 100}, '"track_rate_limit" must be \\{"rate": R, "burst": B\\}'),
        ({"track_rate_limit": {"rate": 100}}, '"track_rate_limit" must be'),
        ({"track_rate_limit": {"rate": 0, "burst": 10}}, '"track_rate_limit" must be'),
        ({"track_rate_limit": {"rate": "100", "burst": 10}}, '"track_rate_limit" must be'),
        ({"track_rate_limit": {"rate": 10, "burst": 2.5}}, '"track_rate_limit" must be'),
        ({"track_rate_limit": {"rate": 10, "burst": 20, "period": 1}}, '"track_rate_limit" must be'),
    ],
)
def test_malformed_config_names_file_and_problem(tmp_path, content, problem):
    path = write(tmp_path / "config.json", content)
    with pytest.raises(ConfigError, match=problem) as error:
        load_config()
    assert str(error.value).startswith(str(path))


def test_track_settings_are_deploy_only_and_null_concurrency_reserves_none(tmp_path):
    raw = {"track_function_url": False, "track_max_concurrency": None, "track_rate_limit": {"rate": 2.5, "burst": 5}}
    write(tmp_path / "config.json", {"redis": {}, **raw})
    config = load_config()
    assert (config.track_function_url, config.track_max_concurrency, config.track_rate_limit) == tuple(raw.values())
    assert config.warnings == [] and json.loads(config.runtime_environment()["LAMED_CONFIG_JSON"]) == {"redis": {}}


def test_unknown_keys_warn_but_load(tmp_path):
    write(tmp_path / "config.json", {"redis": {}, "colour": "blue"})
    config = load_config()
    assert config.warnings == [f"{tmp_path / 'config.json'}: unknown key 'colour' is ignored"]  # nothing close to it


def test_a_misspelt_key_gets_a_did_you_mean(tmp_path):
    path = write(tmp_path / "config.json", {"redis": {}, "namspace": "shop", "uuid_expiry": 60})
    assert load_config().warnings == [
        f"{path}: unknown key 'namspace' is ignored — did you mean 'namespace'?",
        f"{path}: unknown key 'uuid_expiry' is ignored — did you mean 'uuid_expiry_seconds'?",
    ]
    write(path, {"redis": {"hots": "cache.example.org"}})
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert str(raised.value) == f"{path}: \"redis\" has 'hots', which redis-py's Redis() does not accept — did you mean 'host'?"


# A config with JSON mistakes -> the error: the file, line and column, what is wrong in words, the line and a caret.
JSON_MISTAKES = [
    (
        '{\n  "redis": {"host": "localhost"},\n  "namespace": "shop",\n}\n',
        "line 3, column 22: not valid JSON: a comma before the closing bracket: JSON allows none there — fix: remove it",
        '  3 |   "namespace": "shop",\n    |                      ^',
    ),
    (
        '{"redis": {}, "max_goals": [1, 2,]}',
        "line 1, column 33: not valid JSON: a comma before the closing bracket: JSON allows none there — fix: remove it",
        '  1 | {"redis": {}, "max_goals": [1, 2,]}\n    |                                 ^',
    ),
    (
        "{'redis': {}}",
        "line 1, column 2: not valid JSON: JSON wants double quotes, not single quotes",
        "  1 | {'redis': {}}\n    |  ^",
    ),
    (
        '{"redis": {"ssl": True}}',
        "line 1, column 19: not valid JSON: JSON writes true, false and null in lower case",
        '  1 | {"redis": {"ssl": True}}\n    |                   ^',
    ),
    (
        '{"redis": {}\n "namespace": "shop"}',
        "line 2, column 2: not valid JSON: a comma is missing between two entries",
        '  2 |  "namespace": "shop"}\n    |  ^',
    ),
    ("", "line 1, column 1: not valid JSON: the file is empty: a config is a JSON object, at least {}", "  1 | \n    | ^"),
]


@pytest.mark.parametrize("text, problem, shown", JSON_MISTAKES)
def test_a_json_mistake_names_line_and_column_in_words_and_shows_the_line(tmp_path, text, problem, shown):
    path = write(tmp_path / "config.json", text)
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert str(raised.value) == f"{path} {problem}\n{shown}"


# A redis.url with a wrong or missing scheme -> the error, whose suggested URL must itself be valid.
URL_MISTAKES = [
    ("redis//localhost:18010", '"redis.url" "redis//localhost:18010" has a malformed scheme (redis://, rediss:// or unix://) '
     '— fix: "redis://localhost:18010"'),
    ("rediss:/cache.example.org:6379", '"redis.url" "rediss:/cache.example.org:6379" has a malformed scheme (redis://, '
     'rediss:// or unix://) — fix: "rediss://cache.example.org:6379"'),
    ("localhost:6379", '"redis.url" "localhost:6379" has no scheme (redis://, rediss:// or unix://) — fix: '
     '"redis://localhost:6379" (or "rediss://localhost:6379" for TLS)'),
    ("htp://localhost:6379", '"redis.url" must start with redis://, rediss:// or unix://, not "htp://" — fix: '
     '"redis://localhost:6379" (or "rediss://localhost:6379" for TLS)'),
]  # fmt: skip


@pytest.mark.parametrize("url, message", URL_MISTAKES)
def test_a_url_mistake_suggests_one_fix_that_is_itself_valid(tmp_path, url, message):
    path = write(tmp_path / "config.json", {"redis": {"url": url}})
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert str(raised.value) == f"{path}: {message}"
    assert str(raised.value).count("fix:") == 1
    for suggested in re.findall(r'"((?:redis|rediss|unix)://[^"]*)"', message.partition("fix:")[2]):
        write(path, {"redis": {"url": suggested}})
        assert load_config().redis == {"url": suggested}


def test_redis_url_and_default_timeouts(tmp_path):
    write(tmp_path / "config.json", {"redis": {"url": "redis://:pw@example.org:6390/3"}})
    kwargs = redis_client(load_config().redis).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("example.org", 6390, 3, "pw")
    assert kwargs["socket_timeout"] == 2.0 and kwargs["socket_connect_timeout"] == 2.0


def test_configured_timeouts_win(tmp_path):
    write(tmp_path / "config.json", {"redis": {"host": "h", "socket_timeout": 0.5}})
    kwargs = redis_client(load_config().redis).connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.5 and kwargs["socket_connect_timeout"] == 2.0


def test_extra_wiring_in_lameds_format_is_accepted(tmp_path):
    wiring = [
        {
            "lambda": {"FunctionName": "lamed-hello", "Handler": "lamed.hello", "MemorySize": 128, "Timeout": 3},
            "api_gateway": {"pathPart": "hello", "method": {"httpMethod": "GET", "apiKeyRequired": False}},
        }
    ]
    write(tmp_path / "config.json", {"extra_wiring": wiring})
    assert load_config().extra_wiring == wiring


def test_vpc_is_accepted_and_kept_as_written(tmp_path):
    vpc = {"subnet_ids": ["subnet-0b", "subnet-0a"], "security_group_ids": ["sg-0c"]}
    write(tmp_path / "config.json", {"vpc": vpc})
    config = load_config()
    assert config.vpc == vpc and config.warnings == []


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"cluster": "yes"}, '"redis.cluster" must be true'),
        ({"cluster": True, "url": "unix:///run/redis.sock"}, '"redis.cluster" needs a TCP address'),
        ({"cluster": True, "url": "redis://h:6379/2"}, "a Redis Cluster has only database 0"),
        ({"cluster": True, "db": 1}, "a Redis Cluster has only database 0"),
        ({"read_from_replicas": True}, "'read_from_replicas', which redis-py's Redis() does not accept"),
        ({"iam": {"user": "u"}, "url": "rediss://h"}, '"redis.iam" must be an object {"user": "USER_ID", "cache": "CACHE_NAME"'),
        ({"iam": {"user": "u", "cache": ""}, "url": "rediss://h"}, "must be non-empty strings"),
        ({"iam": {"user": "u", "cache": "c", "serverless": "yes"}, "url": "rediss://h"}, '"redis.iam.serverless" must be true'),
        ({"iam": {"user": "u", "cache": "c"}, "url": "rediss://h", "password": "p"}, '"redis.iam" signs its own short-lived password'),
        ({"iam": {"user": "u", "cache": "c"}, "url": "redis://h"}, '"redis.iam" needs TLS'),
    ],
)
def test_redis_mode_mistakes_name_the_key(tmp_path, redis, message):
    write(tmp_path / "config.json", {"redis": redis})
    with pytest.raises(ConfigError, match="^" + str(tmp_path / "config.json").replace(".", r"\.") + ": ") as raised:
        load_config()
    assert message in str(raised.value)


def test_cluster_tls_and_iam_settings_are_accepted(tmp_path):
    settings = {
        "url": "rediss://cache.serverless.euw1.cache.amazonaws.com:6379",
        "cluster": True,
        "read_from_replicas": False,
        "ssl_ca_certs": "/etc/ssl/certs/ca-certificates.crt",
        "iam": {"user": "lamed", "cache": "lamed-cache", "serverless": True},
    }
    write(tmp_path / "config.json", {"redis": settings})
    config = load_config()
    assert config.redis == settings and config.cluster and config.warnings == []


def test_settings_travel_in_lamed_config_json_without_the_deploy_only_keys(tmp_path, monkeypatch):
    raw = {
        "redis": {"url": "redis://:pw@h:6379", "cluster": True}, "uuid_expiry_seconds": 60, "runtime": "python3.13",
        "namespace": "shop", "max_experiments": 50, "max_variants": 4, "max_goals": 3,
    }  # fmt: skip
    write(tmp_path / "config.json", raw)
    environment = load_config().runtime_environment()
    assert list(environment) == ["LAMED_CONFIG_JSON"]
    runtime = {"redis": raw["redis"], "uuid_expiry_seconds": 60, "max_experiments": 50, "max_variants": 4, "max_goals": 3}
    assert json.loads(environment["LAMED_CONFIG_JSON"]) == runtime
    (tmp_path / "config.json").unlink()
    monkeypatch.setenv("LAMED_CONFIG_JSON", environment["LAMED_CONFIG_JSON"])
    config = load_config()
    assert str(config.path) == "$LAMED_CONFIG_JSON" and config.redis == raw["redis"] and config.uuid_expiry_seconds == 60
    assert config.bounds == Bounds(max_experiments=50, max_variants=4, max_goals=3)


def test_lamed_config_wins_over_lamed_config_json_and_a_bad_one_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMED_CONFIG_JSON", "{not json")
    with pytest.raises(ConfigError, match=r"^\$LAMED_CONFIG_JSON line 1, column 2: not valid JSON"):
        load_config()
    monkeypatch.setenv("LAMED_CONFIG", str(write(tmp_path / "named.json", {"namespace": "named"})))
    assert load_config().namespace == "named"
