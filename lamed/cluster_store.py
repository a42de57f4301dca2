"""lamed's own Redis layout for a Redis Cluster (ElastiCache Serverless, Valkey or Redis in cluster mode).

A cluster runs a transaction or script only on keys of one hash slot, so Lamed's layout
(one flag, one counter and three index sets in five slots) cannot work there. Per
namespace ``ns``, each counter belongs to one of 256 buckets, chosen by the SHA-1 of the
counter's identity, and each bucket is a hash tag of its own:

- ``{lamed-XX}ns:counts``: hash, field ``["experiment","event","variant"]`` (JSON), value the count
- ``{lamed-XX}ns:daily``: hash, field ``["experiment","event","variant","YYYY-MM-DD"]`` (JSON,
  the UTC day), value the events counted that day
- ``{lamed-XX}<22 characters>``: the de-dup flag ``1`` with a TTL: the first 128 bits of the
  SHA-1 of ``["ns","experiment","event","variant","uuid"]`` (JSON), in URL-safe base64

The tag comes first and is lamed's, so no name (``{``, ``}`` and ``:`` included) can move
a key to another slot or make two kinds of key meet. A counter's field and its flags share
a slot (and so do its daily fields), so one script counts an event atomically: flag absent ->
HINCRBY the field and the day's field, set the flag; a field exists exactly when its counter does, so nothing can be counted outside
the index, and no key is written by every event.

No key knows a namespace's experiments, so the bounds (``max_experiments``, ``max_variants``)
are kept by each warm function from its :class:`Census`: what one sweep of the buckets showed
plus what it admitted since (see docs/data-model.md for how far several functions can pass them).
Runs inside Lambda: stdlib and redis-py.
"""

import base64
import contextlib
import hashlib
import json
import threading
import time

import redis

from lamed.config import Bounds
from lamed.store import BoundReached, experiment_entry, refusal, text, utc_day

BUCKETS = 256
TAGS = tuple(f"{{lamed-{bucket:02x}}}" for bucket in range(BUCKETS))

# After a census, a function admits at most this many new (experiment, variant) pairs before
# it sweeps again, and it refuses one only on a census at most REFUSAL_CENSUS_SECONDS old.
CENSUS_QUOTA = 16
REFUSAL_CENSUS_SECONDS = 10.0
MAX_CENSUSES = 8  # namespaces a function remembers (the namespace is the client's to choose): a few MB at most
# A sweep that a retry could cure (a shard down, paused or failing over) is not tried again for this
# long: meanwhile the function counts on what it knows, so one shard's outage stays its own.
SWEEP_RETRY_SECONDS = 10.0
SWEEP_FAILURES = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)

# KEYS[1] the flag, KEYS[2] the bucket's counts, KEYS[3] its daily counts; ARGV[1] the field,
# ARGV[2] the flag's TTL, ARGV[3] the day's field.
# The first HINCRBY before the rest: if it failed, nothing would be written; what follows cannot fail.
TRACK_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, 3 do
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind ~= 'none' and kind ~= 'hash' then return redis.error_reply('LAMEDCONFLICT ' .. i .. ' ' .. kind) end
end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
return 1
"""
TRACK_SHA = hashlib.sha1(TRACK_SCRIPT.encode()).hexdigest()

# KEYS[1] a bucket's counts, KEYS[2] its daily counts; ARGV[1] the JSON prefix of one experiment's
# fields. One bucket at a time, atomically, so a counter and its days go together.
DELETE_SCRIPT = """
local removed = {0, 0}
for i = 1, 2 do
  local doomed = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[i])) do
    if string.sub(field, 1, #ARGV[1]) == ARGV[1] then doomed[#doomed + 1] = field end
  end
  for first = 1, #doomed, 1000 do
    removed[i] = removed[i] + redis.call('HDEL', KEYS[i], unpack(doomed, first, math.min(first + 999, #doomed)))
  end
end
return removed[1]
"""

# KEYS[1] the bucket's counts, KEYS[2] its migration marks; ARGV[1] the field, ARGV[2] the migrated value.
MERGE_SCRIPT = """
local delta = tonumber(ARGV[2]) - tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if delta ~= 0 then redis.call('HINCRBY', KEYS[1], ARGV[1], delta) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return delta
"""


@contextlib.contextmanager
def _no_node_answers_as_connection_error():
    """redis-py raises ``RedisClusterException``, which is no ``RedisError``, when no node answers as
    it learns the slot map again: a cluster seen through one endpoint (ElastiCache Serverless) while
    it fails over, say. It is the connection failure it says, which a retry may cure (a 503), not
    the unexpected error (a 500) the handlers would make of it."""
    try:
        yield
    except redis.RedisClusterException as exc:
        raise redis.ConnectionError(str(exc)) from exc


def counter_field(experiment: str, event: str, variant: str) -> str:
    """A counter's field in its bucket's hash: JSON, so any names map to distinct fields."""
    return _json((experiment, event, variant))


def bucket_tag(field: str) -> str:
    return TAGS[hashlib.sha1(field.encode()).digest()[0]]


def counts_key(tag: str, namespace: str, kind: str = "counts") -> str:
    """A bucket's hash: ``counts``, ``daily``, or ``migrated`` (what ``lamed migrate`` put into each counter)."""
    return f"{tag}{namespace}:{kind}"


def flag_key(tag: str, *identity: str) -> str:
    """The de-dup flag of ``(namespace, experiment, event, variant, uuid)`` in the counter's bucket.

    128 bits of the digest (no collision expected before ~2^64 flags), 22 characters with no
    ``:``, so a flag never meets a ``ns:counts`` key; shorter than Lamed's 40, as flags are
    most of the memory.
    """
    digest = hashlib.sha1(_json(identity).encode()).digest()[:16]
    return tag + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _json(names) -> str:
    return json.dumps(list(names), ensure_ascii=False, separators=(",", ":"))


class Census:
    """What a warm function knows of one namespace: each experiment's variants, from a sweep of
    its buckets plus the pairs it admitted since."""

    def __init__(self, variants: dict[str, set[str]]):
        self.variants = variants
        self.taken = time.monotonic()
        self.admitted = 0

    def knows(self, experiment: str, variant: str) -> bool:
        return variant in self.variants.get(experiment, ())

    def excess(self, experiment: str, variant: str, bounds: Bounds) -> str | None:
        """Which bound admitting this pair would pass (``experiments`` or ``variants``), or None."""
        if experiment not in self.variants:
            return "experiments" if len(self.variants) >= bounds.max_experiments else None
        known = self.variants[experiment]
        return "variants" if variant not in known and len(known) >= bounds.max_variants else None

    def admit(self, experiment: str, variant: str) -> None:
        self.variants.setdefault(experiment, set()).add(variant)
        self.admitted += 1


class ClusterStore:
    """Count, read and delete in the cluster layout, over a redis-py ``RedisCluster``."""

    def __init__(self, client, uuid_expiry_seconds: int, bounds: Bounds = Bounds(), clock=time.time):
        self.client = client
        self.uuid_expiry_seconds = uuid_expiry_seconds
        self.bounds = bounds
        self.clock = clock  # the day an event is counted on is clock()'s UTC day
        self.censuses: dict[str, Census] = {}
        self._census_lock = threading.Lock()  # lamed serve counts from several threads
        self._sweep_failed: dict[str, float] = {}  # namespace -> when its last sweep failed

    @_no_node_answers_as_connection_error()
    def track(self, namespace: str, experiment: str, variant: str, event: str, uuid: str) -> bool:
        """Count one event unless this uuid already counted it; True when it was counted.

        One round trip to the shard that owns the counter (EVALSHA), two the first time
        that shard meets the script (EVAL then caches it). A pair this function's census
        does not know is admitted first (:meth:`_admit`): raises :class:`BoundReached`
        beyond the bounds, having written nothing.
        """
        census = self.censuses.get(namespace)
        if census is None or not census.knows(experiment, variant):
            self._admit(namespace, experiment, variant)
        field = counter_field(experiment, event, variant)
        tag = bucket_tag(field)
        flag = flag_key(tag, namespace, experiment, event, variant, uuid)
        day = _json((experiment, event, variant, utc_day(self.clock())))
        arguments = (3, flag, counts_key(tag, namespace), counts_key(tag, namespace, "daily"), field, self.uuid_expiry_seconds, day)
        try:
            try:
                counted = self.client.evalsha(TRACK_SHA, *arguments)
            except redis.exceptions.NoScriptError:
                counted = self.client.eval(TRACK_SCRIPT, *arguments)
        except redis.ResponseError as exc:
            raise refusal(exc, arguments[1:4], self.bounds) from None
        return counted == 1

    def _admit(self, namespace: str, experiment: str, variant: str) -> None:
        """Let a pair this function does not know yet add a counter, or raise :class:`BoundReached`.

        Sweeps the buckets (one round trip per shard) on the namespace's first pair, after
        ``CENSUS_QUOTA`` admissions, and before refusing on a census older than
        ``REFUSAL_CENSUS_SECONDS``; otherwise decides from what it knows, with no round trip.
        """
        with self._census_lock:
            census = self.censuses.get(namespace)
            if census is None or census.admitted >= CENSUS_QUOTA:
                census = self._take_census(namespace)
            excess = census.excess(experiment, variant, self.bounds)
            if excess and time.monotonic() - census.taken > REFUSAL_CENSUS_SECONDS:
                census = self._take_census(namespace)
                excess = census.excess(experiment, variant, self.bounds)
            if excess:
                raise BoundReached(excess, self.bounds)
            if not census.knows(experiment, variant):
                census.admit(experiment, variant)

    def _take_census(self, namespace: str) -> Census:
        """A new census from a sweep; if a shard cannot answer, the census this function has
        (an empty one if none: the bounds wait for a sweep that succeeds), so counting on the
        other shards goes on."""
        known = self.censuses.get(namespace)
        failed = self._sweep_failed.get(namespace)
        if failed is not None and time.monotonic() - failed < SWEEP_RETRY_SECONDS:
            return known or self._remember(namespace, Census({}))
        try:
            buckets = self._buckets(namespace, "hkeys")
        except SWEEP_FAILURES:
            self._sweep_failed[namespace] = time.monotonic()
            return known or self._remember(namespace, Census({}))
        self._sweep_failed.pop(namespace, None)
        variants: dict[str, set[str]] = {}
        for fields in buckets:
            for field in fields:
                experiment, _, variant = json.loads(text(field))
                variants.setdefault(experiment, set()).add(variant)
        return self._remember(namespace, Census(variants))

    def _remember(self, namespace: str, census: Census) -> Census:
        if namespace not in self.censuses and len(self.censuses) >= MAX_CENSUSES:
            del self.censuses[next(iter(self.censuses))]  # the oldest
        self.censuses[namespace] = census
        return census

    def _buckets(self, namespace: str, command: str, kinds: tuple[str, ...] = ("counts",)) -> list:
        """One command per bucket and kind: one round trip per shard, whatever the experiments."""
        keys = [counts_key(tag, namespace, kind) for tag in TAGS for kind in kinds]
        return self._per_shard([(key, (command, key)) for key in keys])

    @_no_node_answers_as_connection_error()
    def _per_shard(self, commands: list[tuple[str, tuple]]) -> list:
        """The replies of ``commands`` (each ``(key, (name, *arguments))``: the key routes it), sent
        as one plain pipeline to each shard that owns some of their keys: one round trip per shard.

        A failover or a resharding leaves this function's slot map stale: the commands that a shard
        redirects (MOVED) and those of a shard that cannot be reached (a dead master) are sent once
        more after the slot map is learned again, and only they, so no command runs twice (a delete
        counts each bucket once). A shard that still owns its slots and cannot answer fails the call
        after one timeout, or two when the slot map is asked of it first (redis-py's cluster pipeline
        would retry each of its commands alone, a timeout each: close to a minute for 256 buckets on
        a paused shard)."""
        replies: list = [None] * len(commands)
        pending = list(range(len(commands)))
        for attempt in range(2):
            redirected: list[int] = []  # the commands a shard sent elsewhere; ``moved`` the first reply that did
            moved = None
            unreachable: dict[str, tuple[redis.RedisError, list[int]]] = {}  # node -> its failure, its commands
            for name, (node, indexes) in self._shards(commands, pending).items():
                try:
                    pipe = self.client.get_redis_connection(node).pipeline(transaction=False)
                    for index in indexes:
                        pipe.execute_command(*commands[index][1])
                    answers = pipe.execute(raise_on_error=False)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    unreachable[name] = (exc, indexes)
                    continue
                for index, answer in zip(indexes, answers):
                    if isinstance(answer, redis.exceptions.AskError):  # MOVED too
                        redirected.append(index)
                        moved = moved or answer
                    elif isinstance(answer, Exception):
                        raise answer
                    else:
                        replies[index] = answer
            if not redirected and not unreachable:
                return replies
            if attempt:
                break
            self.client.nodes_manager.initialize()  # the slot map, learned again
            for name, (failure, indexes) in unreachable.items():
                if name in self._shards(commands, indexes):  # still its slots: down, paused or hung
                    raise failure
            pending = redirected + [index for _, indexes in unreachable.values() for index in indexes]
        for failure, _ in unreachable.values():
            raise failure
        # MOVED after the map was learned again: it changes still (a failover under way), so a retry will do.
        raise redis.exceptions.TryAgainError(f"the cluster's slot map is changing ({moved}); try again")

    def _shards(self, commands: list[tuple[str, tuple]], indexes: list[int]) -> dict[str, tuple[object, list[int]]]:
        """The ``indexes`` of ``commands`` by the shard that owns their keys: node name -> (node, indexes)."""
        shards: dict[str, tuple[object, list[int]]] = {}
        for index in indexes:
            node = self.client.nodes_manager.get_node_from_slot(self.client.keyslot(commands[index][0]))
            shards.setdefault(node.name, (node, []))[1].append(index)
        return shards

    def _fields(self, namespace: str, kinds: tuple[str, ...]):
        """``(experiment, event, variant[, day]), value`` of every field of the namespace's ``kinds`` hashes."""
        for bucket in self._buckets(namespace, "hgetall", kinds):
            for field, value in bucket.items():
                yield tuple(json.loads(text(field))), int(value)

    def counts(self, namespace: str, days: bool = False) -> dict[str, dict[tuple, int]]:
        """Every counter of the namespace: ``experiment -> (event, variant) -> count``, and with
        ``days`` also ``(day, event, variant) -> count`` from the daily counts."""
        found = {}
        for (experiment, event, variant, *day), value in self._fields(namespace, ("counts", "daily") if days else ("counts",)):
            found.setdefault(experiment, {})[(*day, event, variant)] = value
        return found

    def migrated(self, namespace: str) -> dict[tuple[str, str, str], int]:
        """What ``lamed migrate`` has put into each counter: ``(experiment, event, variant) -> count``."""
        return dict(self._fields(namespace, ("migrated",)))

    @_no_node_answers_as_connection_error()
    def merge(self, namespace: str, experiment: str, event: str, variant: str, value: int) -> int:
        """Make the migrated share of one counter ``value``, atomically; the difference applied."""
        field = counter_field(experiment, event, variant)
        tag = bucket_tag(field)
        keys = (counts_key(tag, namespace), counts_key(tag, namespace, "migrated"))
        return self.client.eval(MERGE_SCRIPT, 2, *keys, field, value)

    def results(self, namespace: str, scope: list[str] | None = None, days: bool = False) -> list[dict]:
        """Every experiment's entry (or only those named in ``scope`` that exist), as in Lamed's layout."""
        counts = self.counts(namespace, days)
        names = sorted(counts) if scope is None else [name for name in dict.fromkeys(scope) if name in counts]
        return [experiment_entry(name, counts[name], days) for name in names if any(len(key) == 2 for key in counts[name])]

    def experiment(self, namespace: str, experiment: str, days: bool = False) -> dict | None:
        entries = self.results(namespace, [experiment], days)
        return entries[0] if entries else None

    def delete(self, namespace: str, experiment: str) -> int | None:
        """Remove an experiment's counters and daily counts; how many counters, or None when it has none.

        A bucket's fields are its index, and one script per bucket removes the experiment's
        fields from both its hashes, so an event counted meanwhile is either deleted with its
        fields or makes new, complete ones: nothing is ever half-indexed, and the days always
        sum to the counters.
        """
        self.censuses.pop(namespace, None)  # this function's own knowledge; others' is corrected by their next sweep
        prefix = _json([experiment])[:-1] + ","
        keys = [(counts_key(tag, namespace), counts_key(tag, namespace, "daily")) for tag in TAGS]
        removed = sum(self._per_shard([(counts, ("EVAL", DELETE_SCRIPT, 2, counts, daily, prefix)) for counts, daily in keys]))
        return removed or None
