import hashlib
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import redis

from lamed.connection import is_retryable, redis_client as client_from_settings
from lamed.redis_server import RedisServer, free_port

from lamed.store import Store, counter_key, dedup_key
from redis_servers import fail_over, replicate
from tcp_proxy import LoopbackProxy


def test_counter_and_flag_keys_follow_lameds_layout():
    assert counter_key("alephbet", "button", "click", "red") == "alephbet:counters:button:click:red"
    expected = hashlib.sha1(b"alephbet:counters:button:click:red u-1").hexdigest()
    assert dedup_key("alephbet:counters:button:click:red", "u-1") == expected


def test_a_new_event_writes_exactly_lameds_keys_its_days_count_and_its_names(redis_server, redis_client):
    store = Store(redis_server.client(), clock=lambda: 1_772_409_599.5)  # 2026-03-01 23:59:59.5 UTC
    assert store.track("ns", "button", "red", "participate", "u-1") is True
    key = "ns:counters:button:participate:red"
    flag = hashlib.sha1(f"{key} u-1".encode()).hexdigest()
    assert sorted(redis_client.keys("*")) == sorted(
        [key, flag, "ns:experiments", "ns:counter_keys", "ns:button:counter_keys", "ns:lamed:button:daily", "ns:lamed:button:variants"]
    )
    assert redis_client.smembers("ns:lamed:button:variants") == {"red"}
    assert redis_client.hgetall("ns:lamed:button:daily") == {"2026-03-01:participate:red": "1"}
    assert redis_client.get(key) == "1"
    assert redis_client.get(flag) == "1"
    assert 86390 < redis_client.ttl(flag) <= 86400
    assert redis_client.smembers("ns:experiments") == {"button"}
    assert redis_client.smembers("ns:counter_keys") == {key}
    assert redis_client.smembers("ns:button:counter_keys") == {key}
    assert store.track("ns", "button", "red", "buy", "u-1") is True
    assert redis_client.smembers("ns:lamed:button:goals") == {"buy"}


def test_uuid_expiry_is_configurable(redis_server, redis_client):
    Store(redis_server.client(), uuid_expiry_seconds=60).track("ns", "e", "a", "participate", "u")
    flag = dedup_key(counter_key("ns", "e", "participate", "a"), "u")
    assert 50 < redis_client.ttl(flag) <= 60


def test_repeats_count_once_per_uuid(store, redis_client):
    outcomes = [store.track("ns", "e", "a", "participate", "u-1") for _ in range(5)]
    assert outcomes == [True, False, False, False, False]
    store.track("ns", "e", "a", "participate", "u-2")
    store.track("ns", "e", "a", "click", "u-1")
    assert redis_client.get("ns:counters:e:participate:a") == "2"
    assert redis_client.get("ns:counters:e:click:a") == "1"


def test_a_counted_uuid_counts_again_after_its_flag_expires(store, redis_client):
    store.track("ns", "e", "a", "participate", "u")
    redis_client.delete(dedup_key(counter_key("ns", "e", "participate", "a"), "u"))
    assert store.track("ns", "e", "a", "participate", "u") is True
    assert redis_client.get("ns:counters:e:participate:a") == "2"


def test_same_uuid_from_16_threads_counts_once(redis_server, redis_client):
    store = Store(redis_server.client(max_connections=32))
    start = Barrier(16)

    def send(_):
        start.wait()
        return store.track("ns", "race", "a", "participate", "same-uuid")

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(send, range(16)))
    assert outcomes.count(True) == 1
    assert redis_client.get("ns:counters:race:participate:a") == "1"


def test_distinct_uuids_from_16_threads_all_count(redis_server, redis_client):
    store = Store(redis_server.client(max_connections=32))

    def send(n):
        for i in range(25):
            store.track("ns", "load", "a", "participate", f"u-{n}-{i}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(16)))
    assert redis_client.get("ns:counters:load:participate:a") == "400"


def seed(store):
    for uuid in ("u1", "u2", "u3"):
        store.track("ns", "button", "red", "participate", uuid)
    store.track("ns", "button", "blue", "participate", "u4")
    store.track("ns", "button", "red", "click", "u1")
    store.track("ns", "button", "red", "buy", "u2")
    store.track("ns", "headline", "short", "participate", "u5")


def test_results_have_lameds_shape_plus_variants(store):
    seed(store)
    assert store.results("ns") == [
        {
            "experiment": "button",
            "goals": [
                {"goal": "buy", "results": [
                    {"label": "blue", "successes": 0, "trials": 1},
                    {"label": "red", "successes": 1, "trials": 3},
                ]},
                {"goal": "click", "results": [
                    {"label": "blue", "successes": 0, "trials": 1},
                    {"label": "red", "successes": 1, "trials": 3},
                ]},
            ],
            "variants": [{"label": "blue", "trials": 1}, {"label": "red", "trials": 3}],
        },
        {"experiment": "headline", "goals": [], "variants": [{"label": "short", "trials": 1}]},
    ]


def test_results_read_a_database_written_by_lamed(store, redis_client):
    # Exactly what the original Lamed leaves in Redis (decoded client, string values).
    redis_client.sadd("alephbet:experiments", "legacy")
    for key, value in {"alephbet:counters:legacy:participate:on": 10, "alephbet:counters:legacy:signup:on": 4}.items():
        redis_client.set(key, value)
        redis_client.sadd("alephbet:counter_keys", key)
        redis_client.sadd("alephbet:legacy:counter_keys", key)
    assert store.experiment("alephbet", "legacy") == {
        "experiment": "legacy",
        "goals": [{"goal": "signup", "results": [{"label": "on", "successes": 4, "trials": 10}]}],
        "variants": [{"label": "on", "trials": 10}],
    }


def test_scope_limits_results_and_skips_unknown(store):
    seed(store)
    assert [entry["experiment"] for entry in store.results("ns", ["headline", "nope"])] == ["headline"]
    assert store.results("other") == []


def test_results_cost_three_round_trips_for_any_number_of_experiments(redis_server, redis_client):
    store = Store(redis_server.client())
    for n in range(30):
        store.track("ns", f"exp{n}", "a", "participate", "u")
    before = int(redis_client.info("stats")["total_commands_processed"])
    assert len(store.results("ns")) == 30
    after = int(redis_client.info("stats")["total_commands_processed"])
    # SMEMBERS experiments + 30 pipelined SMEMBERS + one MGET (+ the INFO call itself).
    assert after - before == 1 + 30 + 1 + 1


def test_delete_removes_counters_and_index_entries(store, redis_client):
    seed(store)
    assert store.delete("ns", "button") == 4
    assert store.experiment("ns", "button") is None
    assert redis_client.smembers("ns:experiments") == {"headline"}
    assert redis_client.smembers("ns:counter_keys") == {"ns:counters:headline:participate:short"}
    assert redis_client.keys("ns:counters:button:*") == []
    assert not redis_client.exists("ns:button:counter_keys")
    assert store.delete("ns", "button") is None


def test_store_works_with_a_decoding_client(redis_server, redis_client):
    store = Store(redis_server.client(decode_responses=True))
    store.track("ns", "e", "a", "participate", "u")
    assert store.results("ns")[0]["variants"] == [{"label": "a", "trials": 1}]


def test_a_closed_pooled_connection_is_replaced(redis_server, redis_client):
    client = redis_server.client()
    store = Store(client)
    store.track("ns", "e", "a", "participate", "u1")
    redis_client.client_kill_filter(_type="normal", skipme=True)
    assert store.track("ns", "e", "a", "participate", "u2") is True
    assert redis_client.get("ns:counters:e:participate:a") == "2"


def test_a_redis_restarted_between_two_attempts_counts_with_its_script_reloaded(redis_server, redis_client):
    # A restart or failover fails the first attempt (its connections closed) and empties the
    # script cache: the retry on a fresh connection must load the script, not answer an error.
    redis_client.script_flush()
    with LoopbackProxy(redis_server.port, drops=3) as network:
        store = Store(client_from_settings({"port": network.port}))
        assert store.track("ns", "e", "a", "participate", "u1") is True
        assert network.dropped == 3
    assert redis_client.get("ns:counters:e:participate:a") == "1"


def test_a_warm_store_follows_a_failover_to_the_new_primary(redis_server):
    # After a failover the old primary lives on as a read-only replica, and the pooled
    # connections stay on it; the endpoint's name leads new connections to the new primary.
    with RedisServer() as old, RedisServer() as new:
        replicate(new, old)
        with LoopbackProxy(old.port) as endpoint:
            store = Store(client_from_settings({"port": endpoint.port}))
            assert store.track("ns", "e", "a", "participate", "u1") is True
            fail_over(old, new)
            endpoint.target_port = new.port
            assert store.track("ns", "e", "a", "participate", "u2") is True
            assert store.track("ns", "e", "a", "participate", "u3") is True
        assert new.client().get("ns:counters:e:participate:a") == b"3"


def test_a_read_only_replica_is_a_passing_fault_after_one_retry(redis_server, redis_client):
    with RedisServer() as replica:
        replicate(replica, redis_server)
        store = Store(client_from_settings({"port": replica.port}))
        with pytest.raises(redis.exceptions.ReadOnlyError) as raised:
            store.track("ns", "e", "a", "participate", "u1")
        assert is_retryable(raised.value)  # the handlers answer 503: the client sends it again
        assert replica.client().keys("*") == []


def test_warm_store_opens_no_new_connections(redis_server, redis_client):
    store = Store(redis_server.client())
    store.track("ns", "e", "a", "participate", "warm-up")
    before = int(redis_client.info("stats")["total_connections_received"])
    for n in range(50):
        store.track("ns", "e", "a", "participate", f"u{n}")
        store.track("ns", "e", "a", "participate", f"u{n}")
    assert int(redis_client.info("stats")["total_connections_received"]) == before


def test_unreachable_redis_raises_a_connection_error():
    store = Store(client_from_settings({"port": free_port()}))
    with pytest.raises(redis.ConnectionError):
        store.track("ns", "e", "a", "participate", "u")
