"""Issue 9, finding 11, on real Redis: max_experiments and max_variants in both layouts (429 with
a JSON error, nothing written, known names keep counting), the round trips they cost (none
extra), how far several functions of the cluster layout can pass them, and the warning for
an allkeys-* maxmemory-policy from preflight and `lamed serve`."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from click.testing import CliRunner

import lamed
from handler_calls import call
from lamed import handlers
from lamed.cli import cli
from lamed.cluster_store import ClusterStore
from lamed.config import Bounds
from lamed.connection import eviction_warning, redis_client
from lamed.redis_server import RedisServer
from lamed.serve import make_server
from lamed.store import TRACK_SHA, BoundReached, Store
from redis_servers import CountingConnection, turnarounds
from serve_cli import LamedServe

SMALL = Bounds(max_experiments=3, max_variants=2, max_goals=2)
TOO_MANY_EXPERIMENTS = "this namespace already has 3 experiments, the most allowed (max_experiments); nothing was counted"
TOO_MANY_VARIANTS = "this experiment already has 2 variants, the most allowed (max_variants); nothing was counted"
TOO_MANY_GOALS = "this experiment already has 2 goals, the most allowed (max_goals); nothing was counted"


def track(experiment, variant="a", uuid="u", event="participate", namespace=None):
    params = {"experiment": experiment, "variant": variant, "event": event, "uuid": uuid}
    return call(lamed.track, {**params, **({"namespace": namespace} if namespace else {})})


@pytest.fixture(params=["lamed", "cluster"])
def bounded(request, redis_server, redis_client):
    """The handlers on a store with SMALL bounds, in either layout; yields a key counter."""
    if request.param == "lamed":
        handlers.use_store(Store(redis_server.client(), bounds=SMALL))
        yield redis_client.dbsize
    else:
        cluster = request.getfixturevalue("redis_cluster")
        store = ClusterStore(redis_client_for(cluster), 86400, SMALL)
        handlers.use_store(store)
        yield lambda: sum(node.client().dbsize() for node in cluster.nodes)
        store.client.close()
    handlers.use_store(None)


def redis_client_for(cluster):
    return redis_client({"url": cluster.url, "cluster": True})


def test_beyond_the_bounds_track_answers_429_and_writes_nothing(bounded):
    for name in ("e0", "e1", "e2"):
        assert track(name) == (200, {"counted": True})
    keys = bounded()
    assert track("e3") == (429, {"error": TOO_MANY_EXPERIMENTS})
    assert track("e3", uuid="again") == (429, {"error": TOO_MANY_EXPERIMENTS})
    assert bounded() == keys
    # what exists keeps counting: new uuids, new goals, a second variant
    assert track("e0", uuid="u2") == (200, {"counted": True})
    assert track("e0", event="click") == (200, {"counted": True})
    assert track("e0", variant="b") == (200, {"counted": True})
    assert track("e0", variant="c") == (429, {"error": TOO_MANY_VARIANTS})
    assert track("e0", variant="c", event="click") == (429, {"error": TOO_MANY_VARIANTS})
    assert track("e0", variant="b", event="click") == (200, {"counted": True})
    assert track("e0", event="buy") == (200, {"counted": True})
    keys = bounded()
    assert track("e0", event="junk") == (429, {"error": TOO_MANY_GOALS})
    assert track("e0", variant="b", event="junk", uuid="again") == (429, {"error": TOO_MANY_GOALS})
    assert bounded() == keys
    assert track("e0", variant="b", event="buy") == (200, {"counted": True})  # a known goal for another variant
    assert track("e3", namespace="other") == (200, {"counted": True})  # the bounds are per namespace
    listing = call(lamed.all, {})[1]
    assert [entry["experiment"] for entry in listing[1:]] == ["e0", "e1", "e2"]
    assert [variant["label"] for variant in listing[1]["variants"]] == ["a", "b"]
    assert [goal["goal"] for goal in listing[1]["goals"]] == ["buy", "click"]


def test_deleting_an_experiment_makes_room(bounded):
    for name in ("e0", "e1", "e2"):
        track(name)
    assert track("e3")[0] == 429
    assert call(lamed.delete, {"experiment": "e1"}, method="DELETE")[0] == 200
    assert track("e3") == (200, {"counted": True})


def test_lameds_layout_keeps_the_bounds_exactly_under_concurrent_new_names(redis_server, redis_client):
    store = Store(redis_server.client(max_connections=32), bounds=Bounds(max_experiments=10, max_variants=5))
    store.track("ns", "shared", "first", "participate", "u")
    start = threading.Barrier(16)

    def flood(worker):
        start.wait()
        outcomes = []
        for n in range(20):
            try:
                outcomes.append(store.track("ns", f"w{worker}-{n}", f"v{n % 7}", "participate", "u"))
                outcomes.append(store.track("ns", "shared", f"v{worker}-{n}", "participate", "u"))
            except BoundReached:
                outcomes.append(None)
        return outcomes

    with ThreadPoolExecutor(16) as pool:
        outcomes = [outcome for result in pool.map(flood, range(16)) for outcome in result]
    assert redis_client.scard("ns:experiments") == 10
    variants = {key.rsplit(":", 1)[1] for key in redis_client.smembers("ns:shared:counter_keys")}
    assert len(variants) == 5
    assert 1 + outcomes.count(True) == sum(int(redis_client.get(key)) for key in redis_client.smembers("ns:counter_keys"))


def refused_turnarounds(track) -> tuple[int, int]:
    """``turnarounds`` of a track call that must raise BoundReached."""

    def refused():
        with pytest.raises(BoundReached):
            track()

    return turnarounds(refused)


def test_lameds_layout_costs_two_round_trips_per_event_bounded_or_refused(redis_server, redis_client):
    client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=CountingConnection, port=redis_server.port))
    store = Store(client, bounds=Bounds(max_experiments=1))
    client.ping()  # the connection is made
    redis_client.script_flush()
    assert turnarounds(lambda: store.track("ns", "e", "a", "participate", "u0")) == (5, 0)  # a Redis that never met the script: WATCH, EXEC (NOSCRIPT), SCRIPT LOAD, then again
    assert redis_client.script_exists(TRACK_SHA) == [True]
    assert turnarounds(lambda: store.track("ns", "e", "a", "participate", "u1")) == (2, 0)
    assert turnarounds(lambda: store.track("ns", "e", "a", "participate", "u1")) == (2, 0)
    assert refused_turnarounds(lambda: store.track("ns", "f", "a", "participate", "u1")) == (2, 0)


def test_cluster_a_refusal_costs_one_round_trip_and_a_known_name_none_more(redis_cluster):
    settings = {"url": redis_cluster.url, "cluster": True, "connection_class": CountingConnection}
    store = ClusterStore(redis_client(settings), 86400, SMALL)
    for name in ("e0", "e1", "e2"):
        store.track("ns", name, "a", "participate", "u")
    assert refused_turnarounds(lambda: store.track("ns", "e3", "a", "participate", "u")) == (1, 0)
    assert turnarounds(lambda: store.track("ns", "e0", "a", "participate", "u9")) == (1, 0)


def test_cluster_functions_keep_the_bounds_exactly_under_concurrent_new_names(redis_cluster):
    stores = [ClusterStore(redis_client_for(redis_cluster), 86400, Bounds(max_experiments=10, max_variants=5, max_goals=3)) for _ in range(8)]
    stores[0].track("ns", "shared", "first", "participate", "u")
    start = threading.Barrier(len(stores))

    def flood(index):
        start.wait()
        store = stores[index]
        for n in range(12):
            for name, variant, event in ((f"w{index}-{n}", "v", "participate"), ("shared", f"v{index}-{n}", "participate"), ("shared", "first", f"g{index}-{n}")):
                try:
                    store.track("ns", name, variant, event, "u")
                except BoundReached:
                    pass

    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(flood, range(len(stores))))
    counts = stores[0].counts("ns")
    assert len(counts) == 10
    assert len({variant for _, variant in counts["shared"]}) == 5
    assert len({event for event, _ in counts["shared"]} - {"participate"}) == 3
    for store in stores:
        store.client.close()


def test_cluster_a_delete_by_another_function_makes_room_at_once(redis_cluster):
    watcher, deleter = (ClusterStore(redis_client_for(redis_cluster), 86400, SMALL) for _ in range(2))
    for name in ("e0", "e1", "e2"):
        watcher.track("ns", name, "a", "participate", "u")
    with pytest.raises(BoundReached):
        watcher.track("ns", "e3", "a", "participate", "u")
    assert deleter.delete("ns", "e1") == 1
    assert watcher.track("ns", "e3", "a", "participate", "u") is True
    with pytest.raises(BoundReached):
        deleter.track("ns", "e4", "a", "participate", "u")


# -- the real server --------------------------------------------------------------------------


def test_lamed_serve_answers_429_to_a_flood_of_junk_experiments(redis_server, redis_client):
    server = make_server("127.0.0.1", 0, "key", Store(redis_server.client(), bounds=Bounds(max_experiments=5))).start()
    try:
        statuses = []
        for n in range(40):
            response = requests.get(f"{server.url}/prod/track", params={"experiment": f"junk{n}", "variant": "a", "event": "participate", "uuid": "u"}, timeout=10)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Content-Type"] == "application/json" and "max_experiments" in response.json()["error"]
        listing = requests.get(f"{server.url}/prod/experiments", headers={"x-api-key": "key"}, timeout=10).json()
    finally:
        server.stop()
        handlers.use_store(None)
    assert statuses == [200] * 5 + [429] * 35
    assert len(listing) == 6


@pytest.fixture
def evicting_redis():
    """A redis-server of its own whose maxmemory-policy evicts any key."""
    with RedisServer(arguments=("--maxmemory-policy", "allkeys-lru")) as server:
        yield server


WARNING = "Redis's maxmemory-policy is allkeys-lru: when full, it silently evicts counters"


def test_lamed_serve_warns_of_an_evicting_redis_and_takes_its_bounds_from_the_config(tmp_path, evicting_redis):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"url": evicting_redis.url}, "max_experiments": 1, "max_goals": 1, "serve": {"use_config_redis": True}}))
    with LamedServe(tmp_path, env={"LAMED_CONFIG": str(config)}) as running:
        track_url = f"{running.url}/prod/track"
        assert requests.get(track_url, params={"experiment": "e", "variant": "a", "event": "participate", "uuid": "u"}, timeout=10).status_code == 200
        assert requests.get(track_url, params={"experiment": "f", "variant": "a", "event": "participate", "uuid": "u"}, timeout=10).status_code == 429
        assert requests.get(track_url, params={"experiment": "e", "variant": "a", "event": "buy", "uuid": "u"}, timeout=10).status_code == 200
        junk = requests.get(track_url, params={"experiment": "e", "variant": "a", "event": "junk", "uuid": "u"}, timeout=10)
        assert (junk.status_code, junk.json()) == (429, {"error": "this experiment already has 1 goals, the most allowed (max_goals); nothing was counted"})
    assert f"lamed serve: warning: {WARNING}" in running.output


def test_preflight_warns_of_an_evicting_redis(tmp_path, monkeypatch, moto_server, evicting_redis):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"url": evicting_redis.url}}))
    monkeypatch.setenv("LAMED_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["preflight"])
    redis_line = result.output.splitlines()[-1]
    assert result.exit_code == 0 and redis_line.startswith("ok: Redis at") and f"; warning: {WARNING}" in redis_line


def test_no_warning_for_noeviction_or_volatile_policies_and_every_cluster_master_is_asked(redis_server, redis_cluster):
    plain = redis_server.client()
    for policy in ("noeviction", "volatile-lru", "volatile-ttl"):
        plain.config_set("maxmemory-policy", policy)
        assert eviction_warning(plain) is None
    plain.config_set("maxmemory-policy", "noeviction")
    client = redis_client_for(redis_cluster)
    assert eviction_warning(client) is None
    last = redis_cluster.nodes[-1].client()
    last.config_set("maxmemory-policy", "allkeys-random")
    try:
        assert eviction_warning(client).startswith("Redis's maxmemory-policy is allkeys-random:")
    finally:
        last.config_set("maxmemory-policy", "noeviction")
