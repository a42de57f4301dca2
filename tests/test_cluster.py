"""The cluster layout on a real 3-master Redis Cluster: slots, exact counts under storms, results
equal to Lamed's layout, delete under load, a paused master, round trips, and mode mistakes."""

import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import redis
import redis.cluster
from redis.crc import key_slot

import lamed
from lamed import handlers
from lamed import cluster_store as cluster_store_module
from lamed.cluster_store import ADMIT_SCRIPT, TAGS, TRACK_SCRIPT, ClusterStore, bucket_tag, census_key, counter_field, counts_key, flag_key
from lamed.connection import RedisSetupError, explain, open_store, redis_client
from lamed.store import Store
from redis_servers import ADVISED_ACL, CountingConnection, turnarounds

EVENTS = [
    (f"exp{n % 12}", ("red", "blue", "green")[n % 3], ("participate", "click", "buy")[n % 4 % 3], f"u{n}")
    for n in range(600)
]


def cluster_store(cluster, **settings) -> ClusterStore:
    store = open_store({"url": cluster.url, "cluster": True, **settings}, 86400)
    assert isinstance(store, ClusterStore) and isinstance(store.client, redis.cluster.RedisCluster)
    return store


def all_keys(cluster) -> list[str]:
    return [key.decode() for node in cluster.nodes for key in node.client().keys("*")]


def test_one_event_touches_one_slot_and_a_new_name_the_namespaces_census(redis_cluster):
    store = cluster_store(redis_cluster)
    assert store.track("ns", "button", "red", "participate", "u-1") is True
    field = counter_field("button", "participate", "red")
    tag = bucket_tag(field)
    flag = flag_key(tag, "ns", "button", "participate", "red", "u-1")
    daily = counts_key(tag, "ns", "daily")
    assert sorted(all_keys(redis_cluster)) == sorted([counts_key(tag, "ns"), daily, flag, census_key("ns")])
    census = redis_cluster.node_of(census_key("ns")).client(decode_responses=True).hgetall(census_key("ns"))
    assert census == {'["experiments"]': "1", '["button","variants"]': "1", '["button","variant","red"]': "1"}
    assert key_slot(flag.encode()) == key_slot(counts_key(tag, "ns").encode()) == key_slot(daily.encode())
    node = redis_cluster.node_of(flag).client(decode_responses=True)
    assert node.hgetall(counts_key(tag, "ns")) == {'["button","participate","red"]': "1"}
    [(day_field, count)] = node.hgetall(daily).items()
    assert json.loads(day_field)[:3] == ["button", "participate", "red"] and count == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", json.loads(day_field)[3])
    assert node.get(flag) == "1" and 86390 < node.ttl(flag) <= 86400


@pytest.mark.parametrize("name", ["{x}", "a}b{c", "{}", "x:y:z", "counters:v2:participate", "é{ü}", '"]', "\\"])
def test_braces_colons_and_quotes_in_names_cannot_move_a_key_or_merge_counters(redis_cluster, name):
    store = cluster_store(redis_cluster)
    store.track("ns", name, name, name, "u")
    store.track("ns", "plain", "v", "participate", "u")
    for key in all_keys(redis_cluster):
        assert key.startswith("{lamed-") and key.index("}") == len(TAGS[0]) - 1
    counts = store.counts("ns")
    assert counts[name] == {(name, name): 1} and counts["plain"] == {("participate", "v"): 1}


def test_counters_spread_over_every_shard(redis_cluster):
    store = cluster_store(redis_cluster)
    for n in range(300):
        store.track("ns", f"exp{n}", "a", "participate", "u")
    shares = [node.client().dbsize() for node in redis_cluster.nodes]
    assert sum(shares) > 300 and min(shares) > sum(shares) / 6, shares


def test_duplicate_storm_from_16_threads_counts_each_uuid_once(redis_cluster):
    store = cluster_store(redis_cluster, max_connections=64)
    start = Barrier(16)

    def send(_):
        start.wait()
        return sum(store.track("ns", *event[:1], event[1], event[2], event[3]) for event in EVENTS)

    with ThreadPoolExecutor(16) as pool:
        counted = sum(pool.map(send, range(16)))
    assert counted == len(EVENTS)
    counts = store.counts("ns")
    expected = {}
    for experiment, variant, event, _ in EVENTS:
        key = (event, variant)
        expected.setdefault(experiment, {}).setdefault(key, 0)
        expected[experiment][key] += 1
    assert counts == expected


def test_results_equal_the_same_events_in_lameds_layout(redis_cluster, store):
    clustered = cluster_store(redis_cluster)
    for experiment, variant, event, uuid in [*EVENTS, *EVENTS[:50]]:
        assert clustered.track("ns", experiment, variant, event, uuid) == store.track("ns", experiment, variant, event, uuid)
    assert clustered.results("ns") == store.results("ns")
    assert clustered.results("ns", ["exp3", "nope", "exp1"]) == store.results("ns", ["exp3", "nope", "exp1"])
    assert clustered.experiment("ns", "exp5") == store.experiment("ns", "exp5")
    assert clustered.experiment("ns", "nope") is None and clustered.results("other") == []
    assert clustered.delete("ns", "exp2") == store.delete("ns", "exp2")
    assert clustered.results("ns") == store.results("ns")
    assert clustered.delete("ns", "exp2") is None


def test_delete_under_concurrent_tracking_leaves_only_complete_counters(redis_cluster):
    store = cluster_store(redis_cluster, max_connections=64)
    for n in range(200):
        store.track("ns", "doomed", f"v{n % 5}", "participate", f"before-{n}")
    stop, busy = threading.Event(), threading.Event()
    kept = [0] * 4

    def track_both(worker):
        n = 0
        while not stop.is_set():
            kept[worker] += store.track("ns", "kept", "a", "participate", f"{worker}-{n}")
            store.track("ns", "doomed", f"v{n % 5}", "participate", f"{worker}-{n}")
            n += 1
            if n == 25:
                busy.set()

    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(track_both, worker) for worker in range(4)]
        assert busy.wait(30)
        removed = store.delete("ns", "doomed")
        stop.set()
        for worker in workers:
            worker.result()
    assert removed >= 1
    counts = store.counts("ns")
    assert counts["kept"] == {("participate", "a"): sum(kept)}
    survivors = counts.get("doomed", {})
    assert sum(survivors.values()) < 200 + sum(kept)  # at most what came after the delete
    for node in redis_cluster.nodes:
        for key in node.client(decode_responses=True).keys("*:counts"):
            assert all(json.loads(field)[0] in {"kept", "doomed"} for field in node.client(decode_responses=True).hkeys(key))


def test_a_paused_master_fails_only_its_own_slots_and_retries_count_exactly(redis_cluster):
    store = cluster_store(redis_cluster, max_connections=64, socket_timeout=0.3)
    events = [(f"exp{n % 40}", "a", "participate", f"u{n}") for n in range(240)]
    paused = redis_cluster.nodes[1]

    def owner(event):
        field = counter_field(event[0], event[2], event[1])
        return redis_cluster.node_of(counts_key(bucket_tag(field), "ns"))

    def send(event):
        try:
            return store.track("ns", event[0], event[1], event[2], event[3])
        except (redis.ConnectionError, redis.TimeoutError):
            return None

    with ThreadPoolExecutor(16) as pool:
        first = list(pool.map(send, events[:80]))
        redis_cluster.pause(paused)
        try:
            during = list(pool.map(send, events[80:160]))
        finally:
            redis_cluster.resume(paused)
        last = list(pool.map(send, events[160:]))
    outcomes = first + during + last
    failed = [event for event, outcome in zip(events, outcomes) if outcome is None]
    assert failed, "the paused master answered nothing, so some events must have failed"
    assert {owner(event) for event in failed} == {paused}
    assert all(outcome is True for event, outcome in zip(events[80:160], during) if owner(event) is not paused)
    for event in failed:  # the client sends them again until counted
        while send(event) is None:
            pass
    counts = store.counts("ns")
    assert sum(n for experiment in counts.values() for n in experiment.values()) == len(events)


def test_round_trips_new_event_one_duplicate_one_results_one_per_shard(redis_cluster):
    store = cluster_store(redis_cluster, connection_class=CountingConnection)
    store.track("ns", "warm", "a", "participate", "warm-up")
    for node in redis_cluster.nodes:  # every shard meets the scripts once
        node.client().script_load(TRACK_SCRIPT)
        node.client().script_load(ADMIT_SCRIPT)
    assert turnarounds(lambda: store.track("ns", "e", "a", "participate", "u1")) == (2, 0)  # a new name: the census, then the count
    assert turnarounds(lambda: store.track("ns", "e", "a", "participate", "u1")) == (1, 0)
    assert turnarounds(lambda: store.track("ns", "e", "a", "participate", "u2")) == (1, 0)
    store.results("ns")  # every shard's connection is made once
    assert turnarounds(lambda: store.results("ns")) == (3, 0)
    for n in range(30):
        store.track("ns", f"many{n}", "a", "participate", "u")
    assert turnarounds(lambda: store.results("ns")) == (3, 0)


def test_a_shard_that_lost_the_script_costs_two_round_trips(redis_cluster):
    store = cluster_store(redis_cluster, connection_class=CountingConnection)
    store.track("ns", "warm", "a", "participate", "warm-up")
    for node in redis_cluster.nodes:
        node.client().script_flush()
    sends, _ = turnarounds(lambda: store.track("ns", "warm", "a", "participate", "u1"))
    assert sends == 2 and store.counts("ns")["warm"] == {("participate", "a"): 2}
    sends, _ = turnarounds(lambda: store.track("ns", "e", "a", "participate", "u1"))  # the census's script too

    def shard(experiment):
        return redis_cluster.node_of(counts_key(bucket_tag(counter_field(experiment, "participate", "a")), "ns"))

    assert sends == 2 + (1 if shard("e") is shard("warm") else 2) and store.counts("ns")["e"] == {("participate", "a"): 1}


def test_handlers_count_on_a_cluster_configured_through_the_environment(redis_cluster, monkeypatch):
    settings = {"redis": {"url": redis_cluster.url, "cluster": True}}
    monkeypatch.delenv("LAMED_CONFIG", raising=False)
    monkeypatch.setenv("LAMED_CONFIG_JSON", json.dumps(settings))
    handlers.use_store(None)
    try:
        event = {"httpMethod": "GET", "queryStringParameters": {"experiment": "e", "variant": "a", "event": "participate", "uuid": "u"}}
        assert json.loads(lamed.track(event)["body"]) == {"counted": True}
        assert json.loads(lamed.track(event)["body"]) == {"counted": False}
        listing = json.loads(lamed.all({"httpMethod": "GET", "queryStringParameters": None})["body"])
        assert listing[1] == {"experiment": "e", "goals": [], "variants": [{"label": "a", "trials": 1}]}
    finally:
        handlers.use_store(None)


def test_a_cluster_without_cluster_true_is_a_500_naming_the_fix_and_counts_nothing(redis_cluster, caplog):
    handlers.use_store(Store(redis_client({"url": redis_cluster.url})), {"url": redis_cluster.url})
    try:
        with caplog.at_level(logging.ERROR, logger="lamed"):
            statuses = set()
            for n in range(20):
                event = {"httpMethod": "GET", "queryStringParameters": {"experiment": f"e{n}", "variant": "a", "event": "participate", "uuid": "u"}}
                response = lamed.track(event)
                statuses.add(response["statusCode"])
    finally:
        handlers.use_store(None)
    assert statuses == {500}
    assert all(node.client().dbsize() == 0 for node in redis_cluster.nodes)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 and 'add "cluster": true' in lines[0]


def test_cluster_true_on_a_plain_redis_names_the_fix(redis_server):
    with pytest.raises(RedisSetupError, match='remove "cluster": true'):
        redis_client({"url": redis_server.url, "cluster": True})


@pytest.fixture
def cluster_user(redis_cluster):
    """An ACL user ``counter`` on every node with just the permissions lamed's fix line advises
    (``grant`` replaces them); removed afterwards."""

    def grant(*commands: str) -> dict:
        for node in redis_cluster.nodes:
            node.client().acl_setuser("counter", reset_permissions=True, enabled=True, passwords=["+pw"], keys=["*"], commands=list(commands))
        return {"url": redis_cluster.url, "cluster": True, "username": "counter", "password": "pw"}

    yield grant
    for node in redis_cluster.nodes:
        node.client().acl_deluser("counter")


def test_an_acl_user_without_the_slot_map_is_told_which_permission_to_add(cluster_user):
    # redis-py reads any error to CLUSTER SLOTS as "cluster mode is not enabled"
    settings = cluster_user(*ADVISED_ACL)
    with pytest.raises(redis.exceptions.NoPermissionError) as raised:
        redis_client(settings)
    assert explain(raised.value, settings).endswith("fix: allow it ~* and +@read +@write +@scripting +@transaction +@connection +cluster|slots")


def test_an_acl_user_with_the_advised_permissions_counts_reads_and_deletes_on_a_cluster(cluster_user):
    store = cluster_store_from(cluster_user(*ADVISED_ACL, "+cluster|slots"))
    assert store.track("ns", "e", "a", "participate", "u") is True
    assert store.counts("ns") == {"e": {("participate", "a"): 1}}
    store.delete("ns", "e")
    assert store.counts("ns") == {}


def test_a_refused_password_on_a_cluster_is_not_taken_for_an_unreachable_one(redis_cluster):
    settings = {"url": redis_cluster.url, "cluster": True, "username": "nobody", "password": "wrong"}
    with pytest.raises(redis.AuthenticationError) as raised:
        redis_client(settings)
    assert "refused the credentials" in explain(raised.value, settings)


def test_explain_a_plain_client_on_a_cluster(redis_cluster):
    with pytest.raises(redis.RedisError) as raised:
        for n in range(20):
            Store(redis_client({"url": redis_cluster.url})).track("ns", f"e{n}", "a", "participate", "u")
    assert explain(raised.value, {"url": redis_cluster.url}, "config.json").endswith(
        'fix: add "cluster": true to "redis" in config.json'
    )


def test_host_and_port_settings_reach_the_cluster_too(redis_cluster):
    store = cluster_store_from({"host": "127.0.0.1", "port": redis_cluster.ports[1], "cluster": True})
    assert store.track("ns", "e", "a", "participate", "u") is True
    assert store.counts("ns") == {"e": {("participate", "a"): 1}}


def cluster_store_from(settings) -> ClusterStore:
    store = open_store(settings, 86400)
    assert isinstance(store, ClusterStore)
    return store


def test_a_tls_cluster_with_an_acl_user(tls_redis, tmp_path):
    """A one-node Redis Cluster that speaks TLS only (its bus too), reached with rediss:// and an ACL user."""
    import trustme

    from conftest import TLS_PASSWORD, TLS_USER
    from redis_servers import add_acl_user, free_port_with_bus, tls_server, wait_for

    ca = trustme.CA()
    node = tls_server(
        tls_redis.binary, str(tmp_path / "tls-cluster"), ca,
        extra=("--cluster-enabled", "yes", "--tls-cluster", "yes", "--cluster-config-file", "nodes.conf"),
        port=free_port_with_bus(),
    )  # fmt: skip
    node.start()
    try:
        admin = node.client()
        add_acl_user(admin, TLS_USER, TLS_PASSWORD)
        admin.execute_command("CLUSTER ADDSLOTSRANGE", 0, 16383)
        wait_for(lambda: admin.execute_command("CLUSTER INFO")["cluster_state"] == "ok", what="the TLS cluster")
        settings = {
            "url": f"rediss://{TLS_USER}:{TLS_PASSWORD}@127.0.0.1:{node.port}",
            "ssl_ca_certs": node.client_kwargs["ssl_ca_certs"],
            "cluster": True,
        }
        store = cluster_store_from(settings)
        assert store.track("ns", "e", "a", "participate", "u") is True
        assert store.track("ns", "e", "a", "participate", "u") is False
        assert store.results("ns") == [{"experiment": "e", "goals": [], "variants": [{"label": "a", "trials": 1}]}]
    finally:
        node.stop()


def test_lamed_serve_and_preflight_on_a_cluster(redis_cluster, tmp_path, moto_server, monkeypatch):
    from click.testing import CliRunner

    from lamed.cli import cli
    from serve_cli import LamedServe

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"url": redis_cluster.url, "cluster": True}, "serve": {"use_config_redis": True}}))
    with LamedServe(tmp_path, env={"LAMED_CONFIG": str(config), "LAMED_API_KEY": "k"}) as running:
        params = {"experiment": "e", "variant": "a", "event": "participate", "uuid": "u"}
        assert __import__("requests").get(f"{running.url}/prod/track", params=params, timeout=10).json() == {"counted": True}
    assert cluster_store(redis_cluster).counts("ns") == {} and cluster_store(redis_cluster).counts("alephbet") == {
        "e": {("participate", "a"): 1}
    }
    monkeypatch.setenv("LAMED_CONFIG", str(config))
    lines = CliRunner().invoke(cli, ["preflight"]).output.splitlines()
    assert lines[2].startswith(f"ok: Redis at {redis_cluster.url} answers PING (cluster, auth: none)")
    config.write_text(json.dumps({"redis": {"url": redis_cluster.url}, "serve": {"use_config_redis": True}}))
    result = CliRunner().invoke(cli, ["preflight"])
    assert result.exit_code == 1
    assert result.output.splitlines()[2] == (
        f'FAIL: Redis at {redis_cluster.url}: this Redis is a Redis Cluster — fix: add "cluster": true to "redis"'
    )
    failing = LamedServe(tmp_path, env={"LAMED_CONFIG": str(config)})
    assert failing.launch().wait(timeout=30) == 1
    assert 'is a Redis Cluster — fix: add "cluster": true to "redis"' in failing.output.strip().splitlines()[-1]


def test_new_experiments_on_healthy_shards_count_while_another_master_is_paused(redis_cluster, monkeypatch):
    """A shard that cannot answer fails only its own events, and, when it holds the namespace's
    census, the admission of new names (503, retryable: fail closed), not the events of known ones."""
    monkeypatch.setattr(cluster_store_module, "KNOWN_SECONDS", 1e9)  # however slow the machine
    census_node = redis_cluster.node_of(census_key("ns"))
    paused = next(node for node in redis_cluster.nodes if node is not census_node)

    def owner(experiment):
        return redis_cluster.node_of(counts_key(bucket_tag(counter_field(experiment, "participate", "a")), "ns"))

    healthy = [f"new{n}" for n in range(200) if owner(f"new{n}") is not paused][:20]
    on_paused = next(f"new{n}" for n in range(200) if owner(f"new{n}") is paused)
    warm = cluster_store(redis_cluster, socket_timeout=0.3)
    warm.track("ns", healthy[0], "a", "participate", "u")
    cold = cluster_store(redis_cluster, socket_timeout=0.3)
    redis_cluster.pause(paused)
    try:
        assert [warm.track("ns", name, "a", "participate", "u") for name in healthy] == [False] + [True] * (len(healthy) - 1)
        assert [cold.track("ns", name, "a", "participate", "v") for name in healthy] == [True] * len(healthy)
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            cold.track("ns", on_paused, "a", "participate", "u")
    finally:
        redis_cluster.resume(paused)
    redis_cluster.pause(census_node)
    try:
        known = next(name for name in healthy if owner(name) is not census_node)
        assert warm.track("ns", known, "a", "participate", "w") is True  # a known name: no census needed
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            cold.track("ns", "brand new", "a", "participate", "u")
    finally:
        redis_cluster.resume(census_node)
    counts = warm.counts("ns")
    assert all(counts[name] == {("participate", "a"): 2 + (name == known)} for name in healthy)
    assert "brand new" not in counts
