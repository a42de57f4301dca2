"""The Hypothesis property of issue 9, in both layouts on real Redis: over names made of ``:``,
``{``, ``}``, spaces, unicode and lookalikes (and names built from other requests' names, as
the reported collision is), no two valid requests address one key (or one hash field) for
different purposes, every event is counted exactly as a model says, and ``/experiments``
never answers 5xx."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lamed
from handler_calls import call
from lamed import handlers
from lamed.cluster_store import ClusterStore, bucket_tag, counter_field, counts_key, flag_key
from lamed.connection import redis_client
from lamed.store import PARTICIPATE, Store, counter_key, daily_key, dedup_key, utc_day

DAY = utc_day(1_772_323_200)  # every event of the property is counted on 2026-03-01 (the stores' clock)

TOKENS = [
    "counters", "counter_keys", "experiments", "participate", "lamed", "migrated", "counts", "daily", "v2",
    ":", "：", "{", "}", "{lamed-00}", " ", "+", ",", '"', "\\", "\x00", "\u200b", "\ud800",
    "e", "é", "e\u0301", "a", "а", "ß", "ﬁ",
]  # fmt: skip  # the fullwidth colon, the Cyrillic а, the decomposed é and the ligature are lookalikes
NAME = st.lists(st.sampled_from(TOKENS), max_size=5).map("".join)
FIELDS = ("namespace", "experiment", "variant", "event", "uuid")
# Bounded and derandomized: the same examples every run, a few seconds in all (a cluster's
# results read is 256 pipelined commands, so its layout gets fewer examples).
PROPERTY_SETTINGS = dict(
    deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def requests(draw):
    """Up to 8 track requests; a later one may build its names from an earlier one's."""
    made = []
    for _ in range(draw(st.integers(1, 8))):
        names = [draw(NAME) for _ in FIELDS]
        if made and draw(st.booleans()):
            earlier = draw(st.sampled_from(made))
            names[1] = draw(st.sampled_from([
                f"counters:{earlier['experiment']}:{earlier['event']}", f"{earlier['experiment']}:{earlier['event']}",
                earlier["experiment"] + draw(NAME), f"lamed:{earlier['experiment']}", f"{earlier['experiment']}:daily",
                f"counters:lamed:{earlier['experiment']}",
            ]))  # fmt: skip
            names[2] = draw(st.sampled_from([names[2], "counter_keys", earlier["variant"] + " " + earlier["uuid"]]))
        made.append(dict(zip(FIELDS, names)))
    return made


ISSUE_PAIR = [
    {"namespace": "", "experiment": "v2", "variant": "counter_keys", "event": "participate", "uuid": "1"},
    {"namespace": "", "experiment": "counters:v2:participate", "variant": "x", "event": "participate", "uuid": "2"},
]
SHARED_FLAG = [
    {"namespace": "", "experiment": "e", "variant": "x y", "event": "participate", "uuid": "z"},
    {"namespace": "", "experiment": "e", "variant": "x", "event": "participate", "uuid": "y z"},
]

# Experiments whose keys sit next to the daily keys' (``ns:lamed:E:daily``, or any other way of
# adding ``lamed``/``daily`` to an experiment's name): a daily key must meet none of them.
DAILY_NEIGHBOURS = [
    {"namespace": "", "experiment": experiment, "variant": variant, "event": event, "uuid": "1"}
    for experiment in ("x", "lamed:x", "x:daily", "lamed:x:daily", "lamed:daily:x", "x:counter_keys", "daily:x", "counters:x:daily", "counters:x:participate")
    for event, variant in (("participate", "daily"), ("daily", "counter_keys"), ("daily", "lamed"))
]  # fmt: skip


def narrowest_rules_accept(request: dict) -> bool:
    """The names lamed must accept: everything but what a collision forces it to refuse."""
    if any(not request[name] for name in FIELDS[1:]):
        return False
    if any(":" in request[name] for name in ("namespace", "variant", "event")):
        return False
    text = "".join(request.values())
    return request["variant"] != "counter_keys" and " " not in request["uuid"] and "\ud800" not in text


def lamed_addresses(ns, experiment, variant, event, uuid) -> dict:
    counter = counter_key(ns, experiment, event, variant)
    return {
        counter: ("counter", ns, experiment, event, variant),
        dedup_key(counter, uuid): ("flag", ns, experiment, event, variant, uuid),
        f"{ns}:experiments": ("experiments", ns),
        f"{ns}:counter_keys": ("every counter", ns),
        f"{ns}:{experiment}:counter_keys": ("index", ns, experiment),
        daily_key(ns, experiment): ("daily", ns, experiment),
        (daily_key(ns, experiment), f"{DAY}:{event}:{variant}"): ("day's count", ns, experiment, event, variant),
    }


def cluster_addresses(ns, experiment, variant, event, uuid) -> dict:
    field = counter_field(experiment, event, variant)
    tag = bucket_tag(field)
    return {
        counts_key(tag, ns): ("bucket", ns, tag),
        (counts_key(tag, ns), field): ("counter", ns, experiment, event, variant),
        flag_key(tag, ns, experiment, event, variant, uuid): ("flag", ns, experiment, event, variant, uuid),
        counts_key(tag, ns, "daily"): ("daily bucket", ns, tag),
        (counts_key(tag, ns, "daily"), counter_field(experiment, event, variant)[:-1] + f',"{DAY}"]'): ("day's count", ns, experiment, event, variant),
    }


def run_and_check(batch, addresses, stored_keys):
    """Send ``batch`` through the handlers, check each answer against the model, then the keys and the results."""
    purposes, model, seen = {}, {}, set()
    for request in batch:
        params = {name: value for name, value in request.items() if value}
        status, body = call(lamed.track, params)
        if not narrowest_rules_accept(request):
            assert status == 400 and body["error"].startswith(("parameter '", "missing required parameter '")), body
            continue
        assert status == 200, (request, body)
        ns = request["namespace"] or "alephbet"
        identity = (ns, request["experiment"], request["variant"], request["event"], request["uuid"])
        assert body == {"counted": identity not in seen}, request
        for address, purpose in addresses(*identity).items():
            assert purposes.setdefault(address, purpose) == purpose, f"{address!r}: {purposes[address]} and {purpose}"
        if identity not in seen:
            seen.add(identity)
            counter = (ns, request["experiment"], request["event"], request["variant"])
            model[counter] = model.get(counter, 0) + 1
    assert stored_keys() == {address for address in purposes if isinstance(address, str)}
    namespaces = {"alephbet"} | {request["namespace"] for request in batch if request["namespace"]}
    for ns in namespaces:
        status, body = call(lamed.all, {"namespace": ns})
        if status == 400:
            assert ":" in ns or "\ud800" in ns
            continue
        assert status == 200 and body[0] == {"meta": {"scope": None}}
        assert counted(ns, body[1:]) == {key: n for key, n in model.items() if key[0] == ns}
        dated = call(lamed.all, {"namespace": ns, "days": "1"})[1][1:]
        assert [{k: v for k, v in entry.items() if k != "daily"} for entry in dated] == body[1:]
        by_day = {(ns, entry["experiment"], event, variant): n for entry in dated
                  for event, variants in entry["daily"].get(DAY, {}).items() for variant, n in variants.items()}  # fmt: skip
        assert by_day == counted(ns, body[1:]) and all(list(entry["daily"]) in ([DAY], []) for entry in dated)
    scope = ",".join(request["experiment"] for request in batch)
    assert call(lamed.all, {"scope": scope})[0] in (200, 400)


def counted(ns: str, entries: list) -> dict:
    """The nonzero counts of a results listing, as ``(ns, experiment, event, variant) -> n``."""
    found = {}
    for entry in entries:
        for variant in entry["variants"]:
            if variant["trials"]:
                found[ns, entry["experiment"], PARTICIPATE, variant["label"]] = variant["trials"]
        for goal in entry["goals"]:
            for result in goal["results"]:
                if result["successes"]:
                    found[ns, entry["experiment"], goal["goal"], result["label"]] = result["successes"]
    return found


@pytest.fixture
def lamed_layout(redis_server):
    client = redis_server.client()
    handlers.use_store(Store(client, clock=lambda: 1_772_323_200))
    yield client
    handlers.use_store(None)


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(batch=requests())
@example(batch=ISSUE_PAIR)
@example(batch=ISSUE_PAIR[::-1])
@example(batch=SHARED_FLAG)
@example(batch=DAILY_NEIGHBOURS)
def test_lameds_layout_gives_each_purpose_its_own_key(lamed_layout, batch):
    lamed_layout.flushall()
    run_and_check(batch, lamed_addresses, lambda: set(map(bytes.decode, lamed_layout.keys("*"))))


@pytest.fixture
def cluster_layout(redis_cluster):
    store = ClusterStore(redis_client({"url": redis_cluster.url, "cluster": True}), 86400, clock=lambda: 1_772_323_200)
    nodes = [node.client() for node in redis_cluster.nodes]
    handlers.use_store(store)
    yield store, nodes
    handlers.use_store(None)
    store.client.close()


@settings(max_examples=40, **PROPERTY_SETTINGS)
@given(batch=requests())
@example(batch=ISSUE_PAIR)
@example(batch=SHARED_FLAG)
@example(batch=DAILY_NEIGHBOURS)
def test_the_cluster_layout_gives_each_purpose_its_own_key_or_field(cluster_layout, batch):
    store, nodes = cluster_layout
    for node in nodes:
        node.flushall()
    store.censuses.clear()  # a fresh function's knowledge for a fresh database
    run_and_check(batch, cluster_addresses, lambda: {key.decode() for node in nodes for key in node.keys("*")})


# -- declared experiments: what is not declared is refused and writes nothing; results hold exactly the declaration

DECLARABLE = st.lists(st.sampled_from([token for token in TOKENS if token.isprintable() and token != ":"]), min_size=1, max_size=4).map("".join)


@st.composite
def declared_batches(draw):
    """A declaration of one experiment in namespace alephbet, and up to 8 track requests that
    mix its declared names with any others."""
    variants = draw(st.lists(DECLARABLE.filter(lambda name: name != "counter_keys"), min_size=2, max_size=3, unique=True))
    goals = draw(st.lists(DECLARABLE.filter(lambda name: name != PARTICIPATE), max_size=2, unique=True))
    declaration = {"variants": variants, "goals": goals, "stopped": draw(st.booleans())}
    experiment = draw(st.lists(st.sampled_from([t for t in TOKENS if t.isprintable()]), min_size=1, max_size=4).map("".join))
    batch = [
        {
            "namespace": draw(st.sampled_from(["", "alephbet", draw(NAME)])),
            "experiment": draw(st.sampled_from([experiment, draw(NAME)])),
            "variant": draw(st.sampled_from([*variants, draw(NAME)])),
            "event": draw(st.sampled_from([PARTICIPATE, *goals, draw(NAME)])),
            "uuid": draw(NAME),
        }
        for _ in range(draw(st.integers(1, 8)))
    ]
    return experiment, declaration, batch


def run_declared(experiment, declaration, batch, snapshot):
    """Send ``batch`` under the declaration and check each answer, Redis and the results against a model."""
    from lamed.config import parse_config
    from lamed.declared import Declarations

    config = parse_config({"experiments": {experiment: declaration}}, "config.json")
    handlers.use_store(handlers.get_store(), declared=Declarations.of(config))
    model, seen = {}, set()
    for request in batch:
        before = snapshot()
        status, body = call(lamed.track, {name: value for name, value in request.items() if value})
        ns = request["namespace"] or "alephbet"
        ours = ns == "alephbet" and request["experiment"] == experiment
        if not narrowest_rules_accept(request) or (
            ours and (request["variant"] not in declaration["variants"] or request["event"] not in [PARTICIPATE, *declaration["goals"]])
        ):
            assert status == 400 and body["error"].startswith(("parameter '", "missing required parameter '")), body
            assert snapshot() == before
            continue
        if ours and declaration["stopped"]:
            assert (status, body) == (200, {"counted": False}) and snapshot() == before
            continue
        identity = (ns, request["experiment"], request["variant"], request["event"], request["uuid"])
        assert (status, body) == (200, {"counted": identity not in seen}), request
        if identity not in seen:
            seen.add(identity)
            counter = (ns, request["experiment"], request["event"], request["variant"])
            model[counter] = model.get(counter, 0) + 1
    status, body = call(lamed.all, None)
    assert status == 200
    assert counted("alephbet", body[1:]) == {key: n for key, n in model.items() if key[0] == "alephbet"}
    (entry,) = [entry for entry in body[1:] if entry["experiment"] == experiment]
    assert [row["label"] for row in entry["variants"]] == sorted(declaration["variants"])
    assert [goal["goal"] for goal in entry["goals"]] == sorted(declaration["goals"])
    assert entry["declared"]["stopped"] is declaration["stopped"] and entry["declared"]["control"] == declaration["variants"][0]


@settings(max_examples=60, **PROPERTY_SETTINGS)
@given(case=declared_batches())
def test_lameds_layout_counts_only_what_is_declared(lamed_layout, case):
    lamed_layout.flushall()
    run_declared(*case, lambda: {key: lamed_layout.dump(key) for key in lamed_layout.keys("*")})


@settings(max_examples=20, **PROPERTY_SETTINGS)
@given(case=declared_batches())
def test_the_cluster_layout_counts_only_what_is_declared(cluster_layout, case):
    store, nodes = cluster_layout
    for node in nodes:
        node.flushall()
    store.censuses.clear()
    run_declared(*case, lambda: {key: node.dump(key) for node in nodes for key in node.keys("*")})
