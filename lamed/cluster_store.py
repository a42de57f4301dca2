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
- ``{lamed-XX}ns:census``: hash, the namespace's names for the bounds (``max_experiments``,
  ``max_variants``, ``max_goals``), in the bucket of the namespace's own name: field
  ``["experiments"]`` the number of experiments, ``[E,"variants"]`` and ``[E,"goals"]`` an
  experiment's numbers of variants and goals, ``[E,"variant",v]`` and ``[E,"goal",g]`` (``1``) each name

The tag comes first and is lamed's, so no name (``{``, ``}`` and ``:`` included) can move
a key to another slot or make two kinds of key meet. A counter's field and its flags share
a slot (and so do its daily fields), so one script counts an event atomically: flag absent ->
HINCRBY the field and the day's field, set the flag; a field exists exactly when its counter does, so nothing can be counted outside
the index, and no key is written by every event.

A name this function has not seen lately is admitted by one script on the census (exact, whatever
the functions: checked and recorded at once) before its event is counted; so a request that names
a new namespace costs two commands, and a census that cannot be reached admits nothing (503, retryable);
see docs/data-model.md. Runs inside Lambda: stdlib and redis-py.
"""

import base64
import contextlib
import hashlib
import json
import threading
import time

import redis

from lamed.config import PARTICIPATE, Bounds
from lamed.store import experiment_entry, refusal, text, utc_day

BUCKETS = 256
TAGS = tuple(f"{{lamed-{bucket:02x}}}" for bucket in range(BUCKETS))

# How long a function trusts that a name it admitted is still in the census (a delete elsewhere
# removes it), how many namespaces' names it remembers (the namespace is the client's to choose),
# and how many names of one (the bounds allow 1000 x 20 x 21 counters): a few MB at most.
KNOWN_SECONDS = 10.0
MAX_KNOWN_NAMESPACES = 8
MAX_KNOWN_NAMES = 10_000
EXPERIMENTS_FIELD = '["experiments"]'

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

# KEYS[1] the census; ARGV: the fields [E,"variants"], [E,"goals"], [E,"variant",v], [E,"goal",g]
# ('' for participate), max_experiments, max_variants, max_goals, and the field ["experiments"].
# Constant work: a few field reads, and for a new name a few writes, after every check.
ADMIT_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then return redis.error_reply('LAMEDCONFLICT 1 ' .. kind) end
local function count(field) return tonumber(redis.call('HGET', KEYS[1], field) or '0') end
local new_experiment = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
if new_experiment and count(ARGV[8]) >= tonumber(ARGV[5]) then return redis.error_reply('LAMEDBOUND experiments') end
local new_variant = redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0
if new_variant and count(ARGV[1]) >= tonumber(ARGV[6]) then return redis.error_reply('LAMEDBOUND variants') end
local new_goal = ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[4]) == 0
if new_goal and count(ARGV[2]) >= tonumber(ARGV[7]) then return redis.error_reply('LAMEDBOUND goals') end
if new_experiment then redis.call('HINCRBY', KEYS[1], ARGV[8], 1) end
if new_variant then redis.call('HSET', KEYS[1], ARGV[3], 1); redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
if new_goal then redis.call('HSET', KEYS[1], ARGV[4], 1); redis.call('HINCRBY', KEYS[1], ARGV[2], 1) end
return 1
"""
ADMIT_SHA = hashlib.sha1(ADMIT_SCRIPT.encode()).hexdigest()

# KEYS[1] the census; ARGV[1] the experiments field, then pairs: an experiment's count field
# ([E,"variants"] or [E,"goals"]) and a name's field. Records the names counted in the buckets that
# the census lacks (counted before it existed, or while a delete ran), counts included; no bound.
RECORD_SCRIPT = """
local added = 0
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i + 1], 1) == 1 then
    added = added + 1
    if redis.call('HINCRBY', KEYS[1], ARGV[i], 1) == 1 and string.sub(ARGV[i], -12) == ',"variants"]' then
      redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
    end
  end
end
return added
"""
RECORD_SHA = hashlib.sha1(RECORD_SCRIPT.encode()).hexdigest()
RECORDED_PER_CALL = 1000

# KEYS[1] the census; ARGV[1] the JSON prefix of one experiment's fields, ARGV[2] the experiments field
# (removed with the last experiment, so an emptied namespace leaves no key).
FORGET_SCRIPT = """
local doomed = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #ARGV[1]) == ARGV[1] then doomed[#doomed + 1] = field end
end
if #doomed > 0 and redis.call('HINCRBY', KEYS[1], ARGV[2], -1) <= 0 then doomed[#doomed + 1] = ARGV[2] end
for first = 1, #doomed, 1000 do
  redis.call('HDEL', KEYS[1], unpack(doomed, first, math.min(first + 999, #doomed)))
end
return #doomed
"""

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


def census_key(namespace: str) -> str:
    """The namespace's census, in the bucket of the namespace's own name."""
    return counts_key(bucket_tag(_json([namespace])), namespace, "census")


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


class KnownNames:
    """The names of one namespace that this function admitted into the census lately: their events
    go straight to the track script. Forgotten after ``KNOWN_SECONDS``, so a delete elsewhere is
    seen, or when they reach ``MAX_KNOWN_NAMES``; ``uses`` ranks the namespaces, so a flood of new
    ones cannot push out a busy one."""

    def __init__(self):
        self.names: set[tuple[str, str, str]] = set()
        self.since = time.monotonic()
        self.uses = 0

    def knows(self, name: tuple[str, str, str]) -> bool:
        self.uses += 1
        if time.monotonic() - self.since > KNOWN_SECONDS or len(self.names) >= MAX_KNOWN_NAMES:
            self.names.clear()
            self.since = time.monotonic()
        return name in self.names


class ClusterStore:
    """Count, read and delete in the cluster layout, over a redis-py ``RedisCluster``."""

    def __init__(self, client, uuid_expiry_seconds: int, bounds: Bounds = Bounds(), clock=time.time):
        self.client = client
        self.uuid_expiry_seconds = uuid_expiry_seconds
        self.bounds = bounds
        self.clock = clock  # the day an event is counted on is clock()'s UTC day
        self.known: dict[str, KnownNames] = {}
        self._known_lock = threading.Lock()  # lamed serve counts from several threads

    @_no_node_answers_as_connection_error()
    def track(self, namespace: str, experiment: str, variant: str, event: str, uuid: str) -> bool:
        """Count one event unless this uuid already counted it; True when it was counted.

        One round trip to the shard that owns the counter (EVALSHA), two the first time
        that shard meets the script (EVAL then caches it). Names this function has not admitted
        lately are admitted first (:meth:`_admit`, one more round trip): raises
        :class:`BoundReached` beyond the bounds, having written nothing.
        """
        name = (experiment, "" if event == PARTICIPATE else event, variant)
        with self._known_lock:
            known = self._known(namespace).knows(name)
        if not known:
            self._admit(namespace, *name)
        field = counter_field(experiment, event, variant)
        tag = bucket_tag(field)
        flag = flag_key(tag, namespace, experiment, event, variant, uuid)
        day = _json((experiment, event, variant, utc_day(self.clock())))
        arguments = (3, flag, counts_key(tag, namespace), counts_key(tag, namespace, "daily"), field, self.uuid_expiry_seconds, day)
        counted = self._script(TRACK_SCRIPT, TRACK_SHA, arguments)
        if not known:
            with self._known_lock:
                self._known(namespace).names.add(name)
        return counted == 1

    def _script(self, script: str, sha: str, arguments: tuple):
        """Run a script by its SHA (its text the first time a shard meets it); a refusal raised as such."""
        try:
            try:
                return self.client.evalsha(sha, *arguments)
            except redis.exceptions.NoScriptError:
                return self.client.eval(script, *arguments)
        except redis.ResponseError as exc:
            raise refusal(exc, arguments[1 : 1 + arguments[0]], self.bounds) from None

    def _admit(self, namespace: str, experiment: str, goal: str, variant: str) -> None:
        """Record the experiment, variant and goal (``""`` for participate) in the namespace's census,
        or raise :class:`BoundReached` and record nothing: one script, whatever the namespace holds."""
        fields = (_json((experiment, "variants")), _json((experiment, "goals")), _json((experiment, "variant", variant)))
        goal_field = _json((experiment, "goal", goal)) if goal else ""
        self._script(ADMIT_SCRIPT, ADMIT_SHA, (1, census_key(namespace), *fields, goal_field, *self.bounds.limits(), EXPERIMENTS_FIELD))

    def _known(self, namespace: str) -> KnownNames:
        """The namespace's known names; a new namespace takes the place of the least used one."""
        known = self.known.get(namespace)
        if known is None:
            if len(self.known) >= MAX_KNOWN_NAMESPACES:
                del self.known[min(self.known, key=lambda name: self.known[name].uses)]
            known = self.known[namespace] = KnownNames()
        return known

    def _buckets(self, namespace: str, command: str, kinds: tuple[str, ...] = ("counts",), also: tuple = ()) -> list:
        """One command per bucket and kind, then the commands ``also`` (each ``(key, command)``): one
        round trip per shard, whatever the experiments."""
        keys = [counts_key(tag, namespace, kind) for tag in TAGS for kind in kinds]
        return self._per_shard([(key, (command, key)) for key in keys] + list(also))

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

    @staticmethod
    def _fields(buckets: list):
        """``(experiment, event, variant[, day]), value`` of every field of the ``buckets`` (HGETALL replies)."""
        for bucket in buckets:
            for field, value in bucket.items():
                yield tuple(json.loads(text(field))), int(value)

    def counts(self, namespace: str, days: bool = False) -> dict[str, dict[tuple, int]]:
        """Every counter of the namespace: ``experiment -> (event, variant) -> count``, and with
        ``days`` also ``(day, event, variant) -> count`` from the daily counts."""
        return self._counts(namespace, days)[0]

    def _counts(self, namespace: str, days: bool, census: bool = False) -> tuple[dict[str, dict[tuple, int]], set[str]]:
        """:meth:`counts`, and with ``census`` the fields of the namespace's census, in the same round trips."""
        key = census_key(namespace)
        replies = self._buckets(namespace, "hgetall", ("counts", "daily") if days else ("counts",), ((key, ("HKEYS", key)),) if census else ())
        recorded = {text(field) for field in replies.pop()} if census else set()
        found = {}
        for (experiment, event, variant, *day), value in self._fields(replies):
            found.setdefault(experiment, {})[(*day, event, variant)] = value
        return found, recorded

    def migrated(self, namespace: str) -> dict[tuple[str, str, str], int]:
        """What ``lamed migrate`` has put into each counter: ``(experiment, event, variant) -> count``."""
        return dict(self._fields(self._buckets(namespace, "hgetall", ("migrated",))))

    @_no_node_answers_as_connection_error()
    def merge(self, namespace: str, experiment: str, event: str, variant: str, value: int) -> int:
        """Make the migrated share of one counter ``value``, atomically; the difference applied."""
        self._admit(namespace, experiment, "" if event == PARTICIPATE else event, variant)
        field = counter_field(experiment, event, variant)
        tag = bucket_tag(field)
        keys = (counts_key(tag, namespace), counts_key(tag, namespace, "migrated"))
        return self.client.eval(MERGE_SCRIPT, 2, *keys, field, value)

    def results(self, namespace: str, scope: list[str] | None = None, days: bool = False) -> list[dict]:
        """Every experiment's entry (or only those named in ``scope`` that exist), as in Lamed's layout.

        The census is read in the same round trips, and brought up to what the buckets hold if it
        lacks some of it (:meth:`_record`)."""
        counts, recorded = self._counts(namespace, days, census=True)
        self._record(namespace, counts, recorded)
        names = sorted(counts) if scope is None else [name for name in dict.fromkeys(scope) if name in counts]
        return [experiment_entry(name, counts[name], days) for name in names if any(len(key) == 2 for key in counts[name])]

    @_no_node_answers_as_connection_error()
    def _record(self, namespace: str, counts: dict[str, dict[tuple, int]], recorded: set[str]) -> None:
        """Add to the census the names the buckets hold and its fields ``recorded`` lack (none, most
        often: then no round trip), one script per 1,000 names. So a namespace counted before the
        census existed, or a name counted while a delete ran, is known to the bounds once the owner
        reads the results."""
        pairs = []
        for experiment, found in sorted(counts.items()):
            names = set()
            for *_, event, variant in found:  # (event, variant), or (day, event, variant)
                names.add(("variant", variant))
                if event != PARTICIPATE:
                    names.add(("goal", event))
            for kind, name in sorted(names):
                if (field := _json((experiment, kind, name))) not in recorded:
                    pairs += [_json((experiment, f"{kind}s")), field]
        census = census_key(namespace)
        for first in range(0, len(pairs), 2 * RECORDED_PER_CALL):
            self._script(RECORD_SCRIPT, RECORD_SHA, (1, census, EXPERIMENTS_FIELD, *pairs[first : first + 2 * RECORDED_PER_CALL]))

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
        prefix = _json([experiment])[:-1] + ","
        keys = [(counts_key(tag, namespace), counts_key(tag, namespace, "daily")) for tag in TAGS]
        removed = sum(self._per_shard([(counts, ("EVAL", DELETE_SCRIPT, 2, counts, daily, prefix)) for counts, daily in keys]))
        census = census_key(namespace)
        forgotten = self._per_shard([(census, ("EVAL", FORGET_SCRIPT, 1, census, prefix, EXPERIMENTS_FIELD))])[0]
        with self._known_lock:
            self.known.pop(namespace, None)  # this function's own knowledge; others' expires within KNOWN_SECONDS
        return removed or (0 if forgotten else None)
