"""Issue 9, finding 1, against real Redis: no two valid requests share a key for different
purposes, and an event whose transaction cannot complete leaves nothing behind (no flag
without its count), so the client's retry counts it once the cause is gone."""

import logging

import pytest

import lamed
from handler_calls import call
from lamed import handlers
from lamed.cluster_store import ClusterStore, bucket_tag, census_key, counter_field, counts_key
from lamed.connection import redis_client
from lamed.store import counter_key, dedup_key


def track(experiment, variant, uuid, event="participate"):
    return call(lamed.track, {"experiment": experiment, "variant": variant, "event": event, "uuid": uuid})


def listing():
    return call(lamed.all, {})


def test_the_reported_index_and_counter_collision_is_refused(handler_store, redis_client):
    # ns:counters:v2:participate:counter_keys is both v2's counter for variant counter_keys
    # and the index set of the experiment "counters:v2:participate".
    assert track("v2", "counter_keys", "1") == (
        400,
        {"error": "parameter 'variant' must not be 'counter_keys', a name Lamed's keys reserve"},
    )
    assert track("counters:v2:participate", "x", "2") == (200, {"counted": True})
    status, body = listing()
    assert status == 200 and [entry["experiment"] for entry in body[1:]] == ["counters:v2:participate"]
    assert redis_client.type("alephbet:counters:v2:participate:counter_keys") == "set"


def test_the_reverse_order_loses_no_event(handler_store, redis_client):
    assert track("counters:v2:participate", "x", "2") == (200, {"counted": True})
    for _ in range(2):  # the client's retry: refused again, never a 200 that did not count
        assert track("v2", "counter_keys", "1")[0] == 400
    assert redis_client.smembers("alephbet:experiments") == {"counters:v2:participate"}
    assert listing()[0] == 200


def test_a_space_in_the_uuid_could_make_two_counters_share_a_flag(handler_store, redis_client):
    # sha1("{counter} {uuid}"): (variant "x y", uuid "z") and (variant "x", uuid "y z") hash one string.
    assert dedup_key(counter_key("alephbet", "e", "participate", "x y"), "z") == dedup_key(
        counter_key("alephbet", "e", "participate", "x"), "y z"
    )
    assert track("e", "x y", "z") == (200, {"counted": True})
    assert track("e", "x", "y z") == (400, {"error": "parameter 'uuid' must not contain a space"})
    assert track("e", "x", "y-z") == (200, {"counted": True})
    assert redis_client.get("alephbet:counters:e:participate:x") == "1"


@pytest.mark.parametrize("parameter", ["experiment", "variant", "event", "uuid", "namespace"])
def test_text_that_cannot_be_utf8_is_a_400_not_a_500(handler_store, redis_client, parameter):
    params = {"experiment": "e", "variant": "a", "event": "participate", "uuid": "u", parameter: "a\ud800"}
    assert call(lamed.track, params) == (400, {"error": f"parameter '{parameter}' is not valid Unicode text"})
    assert call(lamed.all, {"scope": "e,\udfff"})[0] == 400
    assert redis_client.keys("*") == []


def test_a_stray_key_at_the_counter_leaves_no_flag_and_the_retry_counts(handler_store, redis_client, caplog):
    """Lamed's MULTI ran SETEX before INCR: an INCR that failed left the flag, and the retry
    answered 200 {"counted": false} for an event never counted."""
    counter = "alephbet:counters:button:participate:red"
    redis_client.sadd(counter, "written by another program")
    with caplog.at_level(logging.ERROR, logger="lamed"):
        for _ in range(2):  # the first send and the client's retry
            assert track("button", "red", "u1") == (
                500,
                {"error": "this event's Redis keys hold other data; nothing was counted; see the backend's logs"},
            )
    assert f"key {counter!r} holds a set" in caplog.records[0].getMessage()
    assert sorted(redis_client.keys("*")) == [counter]  # no flag, no index entry
    redis_client.delete(counter)  # the operator removes it: the retry is counted, once
    assert track("button", "red", "u1") == (200, {"counted": True})
    assert track("button", "red", "u1") == (200, {"counted": False})
    assert redis_client.get(counter) == "1"


def lamed_wrote_a_counter_over_an_index(redis_client):
    """What the original Lamed (which refused no name) leaves after the reported pair of events:
    experiment v2's counter for variant counter_keys, then the experiment counters:v2:participate."""
    key = "alephbet:counters:v2:participate:counter_keys"
    redis_client.set(key, 3)
    redis_client.sadd("alephbet:experiments", "v2", "counters:v2:participate")
    redis_client.sadd("alephbet:counter_keys", key)
    redis_client.sadd("alephbet:v2:counter_keys", key)
    # the second experiment's MULTI: its counter and the shared sets written, its own index refused
    redis_client.set("alephbet:counters:counters:v2:participate:participate:x", 1)
    redis_client.sadd("alephbet:counter_keys", "alephbet:counters:counters:v2:participate:participate:x")
    return key


def test_a_database_with_a_collision_from_lamed_still_lists_its_experiments(handler_store, redis_client):
    lamed_wrote_a_counter_over_an_index(redis_client)
    status, body = listing()
    assert status == 200
    assert body[1:] == [{"experiment": "v2", "goals": [], "variants": [{"label": "counter_keys", "trials": 3}]}]
    assert call(lamed.experiment, {"experiment": "counters:v2:participate"})[0] == 404
    assert call(lamed.delete, {"experiment": "counters:v2:participate"}, method="DELETE")[0] == 200
    assert redis_client.get("alephbet:counters:v2:participate:counter_keys") == "3"  # v2's counter is kept


def test_an_event_whose_index_is_taken_writes_nothing(handler_store, redis_client):
    key = lamed_wrote_a_counter_over_an_index(redis_client)
    before = {name: redis_client.dump(name) for name in redis_client.keys("*")}
    for _ in range(2):
        assert track("counters:v2:participate", "y", "u9")[0] == 500
    assert {name: redis_client.dump(name) for name in redis_client.keys("*")} == before
    assert redis_client.get(key) == "3"


def test_cluster_a_stray_key_at_a_bucket_writes_nothing_and_the_retry_counts(redis_cluster):
    store = ClusterStore(redis_client({"url": redis_cluster.url, "cluster": True}), 86400)
    handlers.use_store(store)
    try:
        counts = counts_key(bucket_tag(counter_field("button", "participate", "red")), "alephbet")
        store.client.set(counts, "written by another program")
        assert track("button", "red", "u1")[0] == 500
        assert track("button", "red", "u1")[0] == 500
        # nothing counted: the stray key, and the census that admitted the names (the bounds count them)
        assert {key for node in redis_cluster.nodes for key in node.client().keys("*")} == {counts.encode(), census_key("alephbet").encode()}
        store.client.delete(counts)
        assert track("button", "red", "u1") == (200, {"counted": True})
        assert track("button", "red", "u1") == (200, {"counted": False})
    finally:
        handlers.use_store(None)
