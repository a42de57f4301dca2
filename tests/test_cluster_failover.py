"""The cluster layout through a Redis Cluster failover, as ElastiCache does on its own: real masters
with a replica each, a storm of retried and duplicated events across a manual CLUSTER FAILOVER and
across a master's death with CLUSTER FAILOVER FORCE; exact counts, never a 500, warm stores that
read, sweep and delete on the new masters, and a 503 while the map changes or no node answers."""

import random
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

import lamed
from lamed import handlers
from lamed.cluster_store import TAGS, TRACK_SHA, ClusterStore, bucket_tag, counter_field, counts_key
from lamed.config import Bounds
from lamed.connection import is_retryable, open_store
from redis_servers import RedisCluster, in_sync, wait_for

NAMESPACE = "ns"
THREADS = 4


def events(first: int, last: int) -> list[tuple[str, str, str, str]]:
    """``(experiment, variant, event, uuid)`` for uuids ``u{first}`` to ``u{last - 1}``: 8 experiments
    of 2 variants and 3 events, each of the 48 counters met every 48 uuids."""
    return [(f"exp{n % 8}", ("red", "blue")[n // 8 % 2], ("participate", "click", "buy")[n % 3], f"u{n}") for n in range(first, last)]


def expected_counts(sent) -> dict[str, dict[tuple[str, str], int]]:
    expected: dict = {}
    for experiment, variant, event, _ in set(sent):
        counters = expected.setdefault(experiment, {})
        counters[event, variant] = counters.get((event, variant), 0) + 1
    return expected


def store_for(cluster, bounds: Bounds = Bounds()) -> ClusterStore:
    """A function's store, learning the cluster from a node that runs."""
    store = open_store({"url": cluster.live()[0].url, "cluster": True, "max_connections": 64}, 86400, bounds)
    assert isinstance(store, ClusterStore)
    return store


def shard_to_fail_over(cluster):
    """The master that a sweep of the buckets reads last (so it has read the others when it meets
    this one's redirections or its death), and its replica."""
    sweep_order = list(dict.fromkeys(cluster.node_of(counts_key(tag, NAMESPACE)) for tag in TAGS))
    assert len(sweep_order) == 3
    return sweep_order[-1], cluster.replica_of(sweep_order[-1])


def owner(cluster, event):
    experiment, variant, name, _ = event
    return cluster.node_of(counts_key(bucket_tag(counter_field(experiment, name, variant)), NAMESPACE))


def owned_by(cluster, master, sent) -> list:
    return [event for event in sent if owner(cluster, event) is master]


def kill_in_sync(cluster, master, replica) -> None:
    """Kill ``master`` once ``replica`` holds everything it acknowledged: its writes are held
    (CLIENT PAUSE WRITE, as a manual failover does) until the replica has caught up. Redis
    replicates asynchronously, so what a master acknowledged and had not yet sent dies with it;
    no client can tell, and this test is about what lamed does, not about Redis's replication."""
    master.client().execute_command("CLIENT PAUSE", 60000, "WRITE")
    wait_for(lambda: in_sync(replica, master), what="the replica to catch up")
    cluster.kill(master)


class Storm:
    """``THREADS`` clients sending every event until one attempt succeeds, as AlephBet does (any
    error: send it again). Each client sends all the events of a phase, in its own order, so each
    event is sent at least ``THREADS`` times; the ``during`` phase is sent over and over until
    ``settled`` is set. ``send(event)`` makes one attempt and returns whether it succeeded."""

    def __init__(self, send, before, during, after):
        self.send, self.phases = send, (before, during, after)
        self.ready = threading.Barrier(THREADS + 1)  # every client has sent ``before``
        self.settled = threading.Event()
        self.abandoned = threading.Event()  # the disturbance failed: the clients stop retrying

    def run(self, disturb) -> None:
        """Run the clients; ``disturb()`` runs once every client is past ``before``."""
        with ThreadPoolExecutor(THREADS) as pool:
            clients = [pool.submit(self._client, seed) for seed in range(THREADS)]
            try:
                self.ready.wait(timeout=60)
                disturb()
            except BaseException:
                self.abandoned.set()
                raise
            finally:
                self.settled.set()
            for client in clients:
                client.result()

    def _client(self, seed: int) -> None:
        order = random.Random(seed)
        before, during, after = ([*phase] for phase in self.phases)
        for phase in (before, during, after):
            order.shuffle(phase)
        self._send_all(before)
        self.ready.wait(timeout=60)
        self._send_all(during)
        while not self.settled.is_set():
            self._send_all(during)
        self._send_all(after)

    def _send_all(self, phase) -> None:
        for event in phase:
            while not self.send(event) and not self.abandoned.is_set():
                pass


def test_a_storm_across_a_manual_failover_counts_every_event_once_and_never_answers_500(replicated_cluster):
    cluster = replicated_cluster
    master, replica = shard_to_fail_over(cluster)
    store = store_for(cluster)
    before, during, after = events(0, 150), events(150, 300), events(300, 400)
    assert owned_by(cluster, master, during) and owned_by(cluster, master, after)
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def send(event) -> bool:
        experiment, variant, name, uuid = event
        parameters = {"namespace": NAMESPACE, "experiment": experiment, "variant": variant, "event": name, "uuid": uuid}
        response = lamed.track({"httpMethod": "GET", "queryStringParameters": parameters})
        with lock:
            statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
        return response["statusCode"] == 200

    def fail_over():
        # Scripts are not replicated: the new master must be taught the track script mid-storm.
        assert master.client().script_exists(TRACK_SHA) == [True] and replica.client().script_exists(TRACK_SHA) == [False]
        cluster.fail_over(replica)

    handlers.use_store(store)
    try:
        Storm(send, before, during, after).run(fail_over)
    finally:
        handlers.use_store(None)
    assert set(statuses) <= {200, 503}, statuses
    expected = expected_counts(before + during + after)
    assert store.counts(NAMESPACE) == expected
    assert store_for(cluster).counts(NAMESPACE) == expected


def test_a_storm_across_a_dead_masters_forced_failover_counts_every_event_once_with_only_retryable_errors(replicated_cluster):
    cluster = replicated_cluster
    master, replica = shard_to_fail_over(cluster)
    store = store_for(cluster)
    before, during, after = events(0, 150), events(150, 300), events(300, 400)
    errors: list[Exception] = []

    def send(event) -> bool:
        experiment, variant, name, uuid = event
        try:
            store.track(NAMESPACE, experiment, variant, name, uuid)
            return True
        except Exception as exc:  # what the handlers would turn into a status
            errors.append(exc)
            return False

    def die_and_fail_over():
        kill_in_sync(cluster, master, replica)
        cluster.fail_over(replica, "FORCE")

    Storm(send, before, during, after).run(die_and_fail_over)
    assert errors, "the dead master's events must have failed at first"
    assert all(isinstance(error, redis.RedisError) and is_retryable(error) for error in errors), {repr(error) for error in errors}
    expected = expected_counts(before + during + after)
    assert store.counts(NAMESPACE) == expected
    assert store_for(cluster).counts(NAMESPACE) == expected


@pytest.mark.parametrize("failure", ["manual failover", "dead master"])
def test_warm_stores_idle_through_a_failover_read_sweep_and_delete_on_the_new_masters_at_once(replicated_cluster, failure):
    """Functions that read before the failover and did nothing since (their slot map is the old one):
    the first read, census sweep and delete of each after the failover find everything, at once."""
    cluster = replicated_cluster
    master, replica = shard_to_fail_over(cluster)
    sent = events(0, 240)
    writer = store_for(cluster)
    for experiment, variant, event, uuid in sent:
        writer.track(NAMESPACE, experiment, variant, event, uuid)
    expected = expected_counts(sent)
    assert all(len(counters) == 6 for counters in expected.values())
    # An experiment with counters on the failed-over shard and on a shard a delete reaches before it.
    doomed = next(name for name in expected if {owner(cluster, event) is master for event in sent if event[0] == name} == {True, False})
    reader, sweeper, deleter = (store_for(cluster, Bounds(max_experiments=8)) for _ in range(3))
    for store in (reader, sweeper, deleter):  # warm functions: their connections and slot maps made
        assert store.counts(NAMESPACE) == expected
    if failure == "manual failover":
        cluster.fail_over(replica)
    else:
        kill_in_sync(cluster, master, replica)
        cluster.fail_over(replica, "FORCE")
    assert reader.results(NAMESPACE) == store_for(cluster).results(NAMESPACE)
    with pytest.raises(lamed.store.BoundReached):  # its census saw all 8 experiments, the failed-over shard's too
        sweeper.track(NAMESPACE, "exp8", "red", "participate", "u-new")
    assert deleter.delete(NAMESPACE, doomed) == 6
    del expected[doomed]
    assert store_for(cluster).counts(NAMESPACE) == expected


def test_a_slot_map_still_changing_after_it_was_learned_again_is_a_retryable_fault():
    """A MOVED that survives learning the slot map again (nodes that disagree while a failover spreads)
    is a 503 for the client to retry, not a MOVED, which the handlers read as a missing ``cluster``;
    so is redis-py's "TTL exhausted" after following such redirections on a track."""
    with RedisCluster(masters=2) as cluster:
        store = store_for(cluster)
        store.track(NAMESPACE, "e", "a", "participate", "u")
        experiment = next(f"x{n}" for n in range(10_000) if bucket_tag(counter_field(f"x{n}", "participate", "a")) == TAGS[0])
        store.track(NAMESPACE, experiment, "a", "participate", "u")  # the store's census knows the pair from now on
        key = counts_key(TAGS[0], NAMESPACE)
        owner_node = cluster.node_of(key)
        other = next(node for node in cluster.nodes if node is not owner_node)
        # The owner alone gives the slot away (emptied first, as it must be): it redirects to
        # ``other``, which redirects back.
        slot = redis.crc.key_slot(key.encode())
        owner = owner_node.client()
        owner.delete(*owner.execute_command("CLUSTER GETKEYSINSLOT", slot, 100))
        owner.execute_command("CLUSTER SETSLOT", slot, "NODE", other.client().execute_command("CLUSTER MYID"))
        with pytest.raises(redis.exceptions.TryAgainError) as raised:
            store.counts(NAMESPACE)
        # A track in that bucket (a pair the census knows, so no sweep): redis-py follows the
        # redirections until its TTL runs out.
        with pytest.raises(redis.RedisError) as exhausted:
            store.track(NAMESPACE, experiment, "a", "participate", "u2")
    assert is_retryable(raised.value) and "slot map is changing" in str(raised.value)
    assert is_retryable(exhausted.value), repr(exhausted.value)


def test_a_cluster_where_no_node_answers_is_a_503_not_a_500():
    """A cluster seen through one endpoint (ElastiCache Serverless) has no other node to ask while it
    fails over: redis-py then raises RedisClusterException, which is no RedisError."""
    with RedisCluster(masters=1) as cluster:
        store = store_for(cluster)
        assert store.track(NAMESPACE, "e", "a", "participate", "u1") is True  # a warm function
        cluster.kill(cluster.nodes[0])
        handlers.use_store(store)
        try:
            parameters = {"namespace": NAMESPACE, "experiment": "e", "variant": "a", "event": "participate", "uuid": "u2"}
            assert lamed.track({"httpMethod": "GET", "queryStringParameters": parameters})["statusCode"] == 503
            parameters["namespace"] = "new"  # its census sweep first
            assert lamed.track({"httpMethod": "GET", "queryStringParameters": parameters})["statusCode"] == 503
            assert lamed.all({"httpMethod": "GET", "queryStringParameters": {"namespace": NAMESPACE}})["statusCode"] == 503
        finally:
            handlers.use_store(None)


def test_a_cluster_node_whose_port_was_taken_meanwhile_starts_on_another():
    from lamed.redis_server import RedisServer
    from redis_servers import free_port_with_bus

    with socket.socket() as squatter:  # what another test run's connection or server may do between probe and bind
        squatter.bind(("127.0.0.1", free_port_with_bus()))
        node = RedisServer(port=squatter.getsockname()[1], arguments=("--cluster-enabled", "yes"))
        RedisCluster._start_node(node)
        try:
            assert node.port != squatter.getsockname()[1] and node.client().ping()
        finally:
            node.stop()
