"""`lamed migrate`: a Lamed-layout database (counters written by the original Lamed protocol and by
lamed) copied into a real Redis Cluster and into another plain Redis; idempotent, resumable,
refusing to merge into counts of its own without --force."""

import hashlib
import json

import pytest
from click.testing import CliRunner

from lamed.cli import cli
from lamed.cluster_store import ClusterStore
from lamed.connection import open_store
from lamed.migrate import MigrateError, flatten, migrate
from lamed.redis_server import RedisServer
from lamed.store import Store


def lamed_original_track(client, namespace, experiment, variant, event, uuid, expiry=86400):
    """The original Lamed's protocol, command for command: index first, then the watched count."""
    key = f"{namespace}:counters:{experiment}:{event}:{variant}"
    index = client.pipeline(transaction=True)
    index.sadd(f"{namespace}:experiments", experiment)
    index.sadd(f"{namespace}:counter_keys", key)
    index.sadd(f"{namespace}:{experiment}:counter_keys", key)
    index.execute()
    flag = hashlib.sha1(f"{key} {uuid}".encode()).hexdigest()
    with client.pipeline() as pipe:
        pipe.watch(flag)
        if pipe.get(flag):
            return
        pipe.multi()
        pipe.execute_command("SETEX", flag, expiry, 1)
        pipe.incr(key)
        pipe.execute()


@pytest.fixture
def source(redis_server, redis_client):
    """The session's plain Redis, emptied, holding a Lamed database in namespace alephbet."""
    for n in range(40):
        lamed_original_track(redis_client, "alephbet", "legacy button", ("red", "blue")[n % 2], "participate", f"u{n}")
        if n % 3 == 0:
            lamed_original_track(redis_client, "alephbet", "legacy button", ("red", "blue")[n % 2], "bought", f"u{n}")
    store = Store(redis_server.client())
    for n in range(25):
        store.track("alephbet", "headline", ("short", "long", "none")[n % 3], "participate", f"h{n}")
        store.track("alephbet", "headline", ("short", "long", "none")[n % 3], "click", f"h{n}")
    store.track("other", "elsewhere", "a", "participate", "x")
    return redis_server


@pytest.fixture(scope="module")
def plain_target():
    with RedisServer() as server:
        yield server


def cluster_target(redis_cluster) -> ClusterStore:
    return open_store({"url": redis_cluster.url, "cluster": True}, 86400)


def test_a_lamed_database_migrates_into_the_cluster_exactly_and_twice_changes_nothing(source, redis_cluster):
    target = cluster_target(redis_cluster)
    expected = Store(source.client()).results("alephbet")
    assert [entry["experiment"] for entry in expected] == ["headline", "legacy button"]
    first = migrate(source.url, target, "alephbet")
    assert target.results("alephbet") == expected
    assert first.counters == first.changed == 10
    assert first.totals == {"headline": (50, 50), "legacy button": (54, 54)}
    second = migrate(source.url, target, "alephbet")
    assert second.changed == 0 and target.results("alephbet") == expected
    assert target.results("other") == []


def test_an_interrupted_migration_is_finished_by_running_it_again(source, redis_cluster):
    target = cluster_target(redis_cluster)

    def interrupt(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(source.url, target, "alephbet", progress=interrupt)
    assert sum(map(len, target.counts("alephbet").values())) == 4
    resumed = migrate(source.url, target, "alephbet")
    assert resumed.changed == 6
    assert target.results("alephbet") == Store(source.client()).results("alephbet")


def test_counts_of_its_own_are_kept_and_need_force(source, redis_cluster):
    target = cluster_target(redis_cluster)
    target.track("alephbet", "headline", "short", "participate", "new-visitor")
    with pytest.raises(MigrateError, match="already holds counts of its own .* pass --force"):
        migrate(source.url, target, "alephbet")
    assert flatten(target.counts("alephbet")) == {("headline", "participate", "short"): 1}
    merged = migrate(source.url, target, "alephbet", force=True)
    source_counts = flatten(Store(source.client()).counts("alephbet"))
    expected = {**source_counts, ("headline", "participate", "short"): source_counts["headline", "participate", "short"] + 1}
    assert flatten(target.counts("alephbet")) == expected
    assert merged.totals["headline"] == (50, 51)
    again = migrate(source.url, target, "alephbet", force=True)
    assert again.changed == 0 and flatten(target.counts("alephbet")) == expected


def test_a_lamed_database_migrates_into_another_plain_redis_in_lameds_layout(source, plain_target):
    plain_target.client().flushall()
    target = open_store({"url": plain_target.url}, 86400)
    migrate(source.url, target, "alephbet")
    assert target.results("alephbet") == Store(source.client()).results("alephbet")
    assert migrate(source.url, target, "alephbet").changed == 0
    assert plain_target.client().smembers("alephbet:experiments") == {b"headline", b"legacy button"}


def test_the_source_itself_and_an_empty_namespace_are_refused(source):
    with pytest.raises(MigrateError, match="is the configured Redis itself"):
        migrate(source.url, open_store({"url": source.url}, 86400), "alephbet")


def run(tmp_path, monkeypatch, settings, *args):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"redis": settings}))
    monkeypatch.setenv("LAMED_CONFIG", str(path))
    return CliRunner().invoke(cli, ["migrate", *args])


def test_the_command_prints_totals_and_the_verification(source, redis_cluster, tmp_path, monkeypatch):
    result = run(tmp_path, monkeypatch, {"url": redis_cluster.url, "cluster": True}, "--from", source.url)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"migrating namespace 'alephbet' from redis://127.0.0.1:{source.port} to {redis_cluster.url} (lamed's cluster layout)",
        "  headline: 50 counted in the source, 50 in the target",
        "  legacy button: 54 counted in the source, 54 in the target",
        "10 counters of 2 experiments, 10 changed; every migrated count verified against the source",
    ]
    again = run(tmp_path, monkeypatch, {"url": redis_cluster.url, "cluster": True}, "--from", source.url)
    assert again.output.splitlines()[-1].startswith("10 counters of 2 experiments, 0 changed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "htp://old:6379"), "Invalid value for --from: must start with redis://, rediss://, unix://"),
        (("--from", "redis://127.0.0.1:1"), "Error: the source: Redis at redis://127.0.0.1:1 cannot be reached"),
    ],
)
def test_command_mistakes_are_one_line(source, redis_cluster, tmp_path, monkeypatch, args, message):
    result = run(tmp_path, monkeypatch, {"url": redis_cluster.url, "cluster": True}, *args)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_an_empty_source_namespace_is_one_line(source, redis_cluster, tmp_path, monkeypatch):
    result = run(tmp_path, monkeypatch, {"url": redis_cluster.url, "cluster": True}, "--from", source.url, "--namespace", "nope")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == f"Error: no counters in namespace 'nope' at redis://127.0.0.1:{source.port} — fix: check --from and --namespace"


def test_a_tls_source_with_an_acl_user_migrates(tls_redis, redis_cluster):
    from conftest import TLS_PASSWORD, TLS_USER

    client = tls_redis.client()
    client.flushall()
    for n in range(6):
        lamed_original_track(client, "alephbet", "tls experiment", "a", "participate", f"u{n}")
    url = f"rediss://{TLS_USER}:{TLS_PASSWORD}@127.0.0.1:{tls_redis.port}?ssl_ca_certs={tls_redis.client_kwargs['ssl_ca_certs']}"
    target = cluster_target(redis_cluster)
    assert migrate(url, target, "alephbet").totals == {"tls experiment": (6, 6)}
    assert target.counts("alephbet") == {"tls experiment": {("participate", "a"): 6}}


# -- issue 17, item 5: a hostile source is checked before anything is written ------------------


def lamed_counter(client, key: bytes, value, experiment: bytes = b"legacy button", namespace: bytes = b"alephbet") -> None:
    """A counter as any writer of Lamed's layout could have left it: any value, any bytes."""
    client.sadd(namespace + b":experiments", experiment)
    client.sadd(namespace + b":counter_keys", key)
    client.sadd(namespace + b":" + experiment + b":counter_keys", key)
    if value is not None:
        client.set(key, value)


HOSTILE = [
    (b"alephbet:counters:legacy button:bought:abc", b"abc", None, "the count 'abc' is not a whole number"),
    (b"alephbet:counters:legacy button:bought:minus", b"-5", None, "the count -5 is negative"),
    (b"alephbet:counters:legacy button:bought:huge", b"1" + b"0" * 23, None, "is more than Redis can hold"),
    (b"alephbet:counters:legacy button:participate:a:b", b"3", None, "/track refuses its names: parameter 'variant' must not contain ':'"),
    (b"alephbet:counters:legacy button:participate:\x1b[2J", b"3", None, "parameter 'variant' must not contain control characters"),
    (b"alephbet:counters:legacy button:participate:\xff", b"3", None, "parameter 'variant' is not valid Unicode text"),
    (b"alephbet:counters:legacy button:participate:counter_keys", b"3", None, "a name Lamed's keys reserve"),
    (b"alephbet:counters:legacy button:participate:hashed", None, "hash", "a hash, not a counter"),
]


@pytest.fixture
def hostile(source):
    client = source.client()
    for key, value, kind, _ in HOSTILE:
        lamed_counter(client, key, value)
        if kind == "hash":
            client.hset(key, "x", "1")
    return source


def test_a_hostile_source_is_one_error_and_the_target_is_untouched(hostile, redis_cluster, tmp_path, monkeypatch):
    result = run(tmp_path, monkeypatch, {"url": redis_cluster.url, "cluster": True}, "--from", hostile.url)
    assert result.exit_code == 1 and "Traceback" not in result.output
    error = result.output.splitlines()[-1]
    assert error.startswith("Error: the source has 8 problems, nothing was written: ") and error.endswith(
        "— fix: correct them in the source, or pass --skip-invalid to migrate the rest"
    )
    assert "\x1b" not in result.output and "'alephbet:counters:legacy button:participate:\\x1b[2J'" in error  # escaped
    assert sum(reason in error for _, _, _, reason in HOSTILE) == 5 and error.count("; ") == 5 and "; and 3 more — fix" in error
    assert sum(node.client().dbsize() for node in redis_cluster.nodes) == 0


def test_skip_invalid_migrates_the_rest_and_counts_what_it_skipped(hostile, plain_target, tmp_path, monkeypatch):
    plain_target.client().flushall()
    result = run(tmp_path, monkeypatch, {"url": plain_target.url}, "--from", hostile.url, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "10 counters of 2 experiments, 10 changed, 8 skipped (--skip-invalid); every migrated count verified against the source"
    )
    target = open_store({"url": plain_target.url}, 86400)
    assert {label["label"] for entry in target.results("alephbet") for label in entry["variants"]} == {"red", "blue", "short", "long", "none"}


def test_the_bounds_apply_to_a_migration(source, plain_target, tmp_path, monkeypatch):
    plain_target.client().flushall()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"redis": {"url": plain_target.url}, "max_experiments": 1, "max_variants": 1}))
    monkeypatch.setenv("LAMED_CONFIG", str(path))
    refused = CliRunner().invoke(cli, ["migrate", "--from", source.url])
    assert refused.exit_code == 1 and plain_target.client().dbsize() == 0
    assert refused.output.splitlines()[-1].startswith(
        "Error: the source has 2 problems, nothing was written: experiment 'headline' would pass max_experiments (1); "
        "variant 'red' of experiment 'legacy button' would pass max_variants (1) — fix:"
    )  # the experiment and the variant with the fewest counts (a tie: the name) are left out
    done = CliRunner().invoke(cli, ["migrate", "--from", source.url, "--skip-invalid"])
    assert done.exit_code == 0, done.output
    assert [entry["experiment"] for entry in open_store({"url": plain_target.url}, 86400).results("alephbet")] == ["legacy button"]
    assert "2 counters of 1 experiments, 2 changed, 8 skipped (--skip-invalid)" in done.output
