"""Issue 17, item 3, on real Redis: an event's Redis work does not grow with the junk a stranger
sent. Lamed's layout checks the bounds on the sizes of sets kept beside its index, so a new name
after 20,000 junk goals runs the same commands as in an empty experiment; the cluster layout
admits a new name by one script on the namespace's census, so a junk namespace costs a constant
few commands, cannot push the real namespace's names out of a function, and a paused master
admits nothing past the bounds (fail closed: 503, retryable)."""

import pytest
import redis

import lamed
from handler_calls import call
from lamed import handlers
from lamed.cluster_store import ClusterStore, bucket_tag, census_key, counter_field, counts_key
from lamed.config import Bounds
from lamed.connection import redis_client
from lamed.store import BoundReached, Store, counter_key, names_key
from redis_servers import CountingConnection, turnarounds

JUNK = 20_000
RAISED = Bounds(max_experiments=100, max_variants=JUNK + 10, max_goals=JUNK + 10)
# Commands that read a whole collection: no track step may run one.
WHOLE = {"smembers", "sunion", "sinter", "hkeys", "hgetall", "hvals", "keys", "scan", "sscan", "hscan"}


def commands(nodes) -> dict[str, int]:
    """Every command the ``nodes`` ran since their stats were reset, scripts' own commands included."""
    found: dict[str, int] = {}
    for node in nodes:
        for name, stats in node.info("commandstats").items():
            command = name.removeprefix("cmdstat_")
            found[command] = found.get(command, 0) + stats["calls"]
    return found


def cost(nodes, event) -> dict[str, int]:
    """The commands Redis ran for ``event()``."""
    for node in nodes:
        node.config_resetstat()
    event()
    ran = commands(nodes)
    ran.pop("config|resetstat", None)
    return ran


def seed_junk_goals(client, namespace: str, experiment: str) -> None:
    """JUNK goals of variant ``a``, written as lamed's track script writes them (pipelined, to be quick)."""
    pipe = client.pipeline(transaction=False)
    pipe.sadd(f"{namespace}:experiments", experiment)
    pipe.sadd(names_key(namespace, experiment, "variants"), "a")
    for n in range(JUNK):
        key = counter_key(namespace, experiment, f"junk{n}", "a")
        pipe.set(key, 1)
        pipe.sadd(f"{namespace}:counter_keys", key)
        pipe.sadd(f"{namespace}:{experiment}:counter_keys", key)
        pipe.sadd(names_key(namespace, experiment, "goals"), f"junk{n}")
    pipe.execute()


def test_lameds_layout_a_new_name_after_20000_junk_goals_costs_what_it_costs_in_an_empty_experiment(redis_server, redis_client):
    store = Store(redis_server.client(), bounds=RAISED)
    store.track("ns", "clean", "a", "participate", "u")
    store.track("ns", "junked", "a", "participate", "u")
    seed_junk_goals(redis_client, "ns", "junked")
    nodes = [redis_client]
    known = cost(nodes, lambda: store.track("ns", "junked", "a", "participate", "u2"))
    for kind, event, variant in (("new variant", "participate", "b"), ("new goal", "buy", "a"), ("refused goal", "junk", "c")):
        clean = cost(nodes, lambda: store.track("ns", "clean", variant, event, "u"))
        junked = cost(nodes, lambda: store.track("ns", "junked", variant, event, "u"))
        assert junked == clean, kind
        assert not WHOLE & set(junked), kind
        assert sum(junked.values()) <= 3 * sum(known.values()), (kind, junked, known)
    tight = Store(redis_server.client(), bounds=Bounds(max_goals=20))
    refused = cost(nodes, lambda: pytest.raises(BoundReached, tight.track, "ns", "junked", "a", "another", "u"))
    assert not WHOLE & set(refused) and sum(refused.values()) <= 3 * sum(known.values())


def test_lameds_layout_builds_the_names_of_an_experiment_lamed_never_saw_once(redis_server, redis_client):
    """An experiment the original Lamed counted has no name sets: the first new counter builds
    them from its index, and a delete by the original Lamed (its keys only) leaves none behind."""
    for event, variant in (("participate", "a"), ("participate", "b"), ("buy", "a")):
        key = counter_key("ns", "old", event, variant)
        redis_client.set(key, 5)
        redis_client.sadd("ns:experiments", "old")
        redis_client.sadd("ns:counter_keys", key)
        redis_client.sadd("ns:old:counter_keys", key)
    store = Store(redis_server.client(), bounds=Bounds(max_variants=3, max_goals=1))
    with pytest.raises(BoundReached, match="max_goals"):
        store.track("ns", "old", "a", "click", "u")
    assert redis_client.smembers("ns:lamed:old:variants") == {"a", "b"} and redis_client.smembers("ns:lamed:old:goals") == {"buy"}
    assert store.track("ns", "old", "c", "participate", "u") is True
    with pytest.raises(BoundReached, match="max_variants"):
        store.track("ns", "old", "d", "participate", "u")
    redis_client.delete("ns:old:counter_keys", *redis_client.keys("ns:counters:old:*"))  # the original Lamed's delete
    redis_client.srem("ns:experiments", "old")
    assert store.track("ns", "old", "d", "click", "u") is True
    assert redis_client.smembers("ns:lamed:old:variants") == {"d"} and redis_client.smembers("ns:lamed:old:goals") == {"click"}


# -- the cluster layout ------------------------------------------------------------------------


def cluster_store(cluster, bounds=Bounds(), **settings) -> ClusterStore:
    return ClusterStore(redis_client({"url": cluster.url, "cluster": True, **settings}), 86400, bounds)


def test_cluster_a_junk_namespace_costs_a_constant_few_commands(redis_cluster):
    store = cluster_store(redis_cluster)
    nodes = [node.client() for node in redis_cluster.nodes]
    for n in range(30):  # a warm function: connected to every shard, which knows both scripts
        store.track(f"warm{n}", f"e{n}", "a", "participate", "warm-up")
    store.track("real", "e", "a", "participate", "warm-up")
    known = cost(nodes, lambda: store.track("real", "e", "a", "participate", "u"))
    first = cost(nodes, lambda: store.track("junk0", "e", "a", "participate", "u"))
    for n in range(1, 300):
        store.track(f"junk{n}", "e", "a", "participate", "u")
    later = cost(nodes, lambda: store.track("junk300", "e", "a", "participate", "u"))
    assert first == later and not WHOLE & set(later)
    assert later.pop("evalsha") == 2 and known.pop("evalsha") == 1  # the census's script, then the count
    assert sum(later.values()) <= 20 and sum(known.values()) <= 10, (later, known)


def test_cluster_junk_namespaces_cannot_push_out_the_real_namespaces_names(redis_cluster):
    store = cluster_store(redis_cluster, connection_class=CountingConnection)
    for n in range(50):
        store.track("real", "e", "a", "participate", f"u{n}")
    for n in range(100):
        store.track(f"junk{n}", "e", "a", "participate", "u")
    assert turnarounds(lambda: store.track("real", "e", "a", "participate", "again")) == (1, 0)


@pytest.mark.parametrize("paused_holds", ["the census", "other counters"])
def test_cluster_a_paused_master_admits_nothing_past_the_bounds(redis_cluster, paused_holds):
    full = Bounds(max_experiments=5)
    for n in range(5):
        cluster_store(redis_cluster, full).track("ns", f"e{n}", "a", "participate", "u")
    census = redis_cluster.node_of(census_key("ns"))
    paused = census if paused_holds == "the census" else next(node for node in redis_cluster.nodes if node is not census)
    fresh = cluster_store(redis_cluster, full, socket_timeout=0.3)
    handlers.use_store(fresh)
    redis_cluster.pause(paused)
    try:
        statuses = {call(lamed.track, {"namespace": "ns", "experiment": f"new{n}", "variant": "a", "event": "participate", "uuid": "u"})[0] for n in range(12)}
    finally:
        redis_cluster.resume(paused)
        handlers.use_store(None)
    assert statuses == ({503} if paused_holds == "the census" else {429})
    assert sorted(cluster_store(redis_cluster).counts("ns")) == [f"e{n}" for n in range(5)]
    owners = {redis_cluster.node_of(counts_key(bucket_tag(counter_field(f"new{n}", "participate", "a")), "ns")) for n in range(12)}
    assert paused in owners or paused_holds == "the census"  # some new name's counter lived on the paused shard
    with pytest.raises(BoundReached):
        fresh.track("ns", "new0", "a", "participate", "u")


def test_cluster_a_census_that_cannot_be_read_is_a_retryable_failure(redis_cluster):
    store = cluster_store(redis_cluster, socket_timeout=0.3)
    census = redis_cluster.node_of(census_key("ns"))
    redis_cluster.pause(census)
    try:
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            store.track("ns", "e", "a", "participate", "u")
    finally:
        redis_cluster.resume(census)
    assert store.track("ns", "e", "a", "participate", "u") is True


def test_cluster_reading_the_results_records_in_the_census_what_it_lacks(redis_cluster):
    """A namespace counted before the census existed (or a name counted while a delete ran) is
    known to the bounds once the results are read: in the same round trips, a write only then."""
    store = cluster_store(redis_cluster, Bounds(max_experiments=3))
    for name in ("e0", "e1"):
        store.track("ns", name, "a", "participate", "u")
    store.track("ns", "e0", "b", "buy", "u")
    census = census_key("ns")
    store.client.delete(census)  # as an older lamed left it
    fresh = cluster_store(redis_cluster, Bounds(max_experiments=3))
    fresh.track("ns", "e2", "a", "participate", "u")  # the census knows only e2: room for two more
    assert [entry["experiment"] for entry in fresh.results("ns")] == ["e0", "e1", "e2"]
    recorded = {key.decode(): int(value) for key, value in store.client.hgetall(census).items()}
    assert recorded == {
        '["experiments"]': 3, '["e0","variants"]': 2, '["e0","variant","a"]': 1, '["e0","variant","b"]': 1,
        '["e0","goals"]': 1, '["e0","goal","buy"]': 1, '["e1","variants"]': 1, '["e1","variant","a"]': 1,
        '["e2","variants"]': 1, '["e2","variant","a"]': 1,
    }  # fmt: skip
    with pytest.raises(BoundReached):
        fresh.track("ns", "e3", "a", "participate", "u")
    nodes = [node.client() for node in redis_cluster.nodes]
    ran = cost(nodes, lambda: fresh.results("ns"))
    assert "eval" not in ran and "evalsha" not in ran  # nothing lacking: no write
