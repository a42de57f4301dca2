"""Lamed's Redis protocol: count de-duplicated events, read results, delete experiments.

Layout, per namespace ``ns`` (unchanged from Lamed, so existing databases keep working):

- ``ns:counters:{experiment}:{event}:{variant}``: the event counter (INCR)
- ``ns:experiments``: the set of experiment names
- ``ns:counter_keys`` and ``ns:{experiment}:counter_keys``: sets of counter keys
- ``sha1("{counter_key} {uuid}")``: the de-dup flag, ``1`` with a TTL
- ``ns:lamed:{experiment}:daily``: lamed's own, the daily counts: hash, field
  ``{YYYY-MM-DD}:{event}:{variant}`` (the UTC day), value the events counted that day. No
  index names it, so the original Lamed never sees it.

Two keys of different purposes can never be one key for the names the handlers accept
(``namespace``, ``event`` and ``variant`` without ``:``, no variant ``counter_keys``, no
space in ``uuid``: docs/data-model.md shows why each rule is needed). A new event's
writes run as one script inside the flag's WATCH/MULTI/EXEC, which checks the kinds of
the keys and the namespace's bounds before its first write, so an event is either counted
whole (flag, count, index entries, day's count) or not written at all.

Runs inside Lambda: only the standard library and redis-py.
"""

import hashlib
import time

import redis

from lamed.config import DEFAULT_UUID_EXPIRY_SECONDS, PARTICIPATE, Bounds

MAX_WATCH_ATTEMPTS = 8

# The experiment's names as lamed knows them (its own sets, beside Lamed's index: KEYS[6] the
# variants, KEYS[7] the goals, KEYS[5] Lamed's index, ARGV[5] its counters' prefix ``ns:counters:E:``),
# made right before a new counter is checked or written: sets that outlived their index (the
# original Lamed's delete knows only its own keys) are dropped, and an experiment written before
# lamed kept them (by the original Lamed, or an older lamed) has them built from its index, once.
KNOWN_NAMES = """
local function known_names()
  if redis.call('EXISTS', KEYS[5]) == 0 then
    redis.call('DEL', KEYS[6], KEYS[7])
  elseif redis.call('EXISTS', KEYS[6]) == 0 then
    for _, key in ipairs(redis.call('SMEMBERS', KEYS[5])) do
      if string.sub(key, 1, #ARGV[5]) == ARGV[5] then
        local event, variant = string.match(string.sub(key, #ARGV[5] + 1), '^([^:]*):(.*)$')
        if event then
          redis.call('SADD', KEYS[6], variant)
          if event ~= 'participate' then redis.call('SADD', KEYS[7], event) end
        end
      end
    end
  end
end
"""

# KEYS: the flag, the counter, ns:experiments, ns:counter_keys, ns:{experiment}:counter_keys, the
# experiment's variants and goals (lamed's), its daily counts; ARGV: the flag's TTL, experiment,
# variant, goal ('' for participate), the counters' prefix, max_experiments, max_variants, max_goals,
# the day's field. A new counter is checked against the bounds with set cardinalities, so no step
# reads an index whatever it holds (but KNOWN_NAMES, once per experiment written before lamed).
# Everything that can fail is checked before the first write that matters (INCR, which fails alone
# if at all, e.g. refused by maxmemory), and what follows it cannot fail: all or nothing.
# A refusal is an error reply naming the key (its index) or the bound.
TRACK_SCRIPT = KNOWN_NAMES + """
local kinds = {[2] = 'string', [3] = 'set', [4] = 'set', [5] = 'set', [6] = 'set', [7] = 'set', [8] = 'hash'}
for i, expected in pairs(kinds) do
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind ~= 'none' and kind ~= expected then
    return redis.error_reply('LAMEDCONFLICT ' .. i .. ' ' .. kind)
  end
end
local new = redis.call('EXISTS', KEYS[2]) == 0
if new then
  if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 0 and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[6]) then
    return redis.error_reply('LAMEDBOUND experiments')
  end
  known_names()
  if redis.call('SISMEMBER', KEYS[6], ARGV[3]) == 0 and redis.call('SCARD', KEYS[6]) >= tonumber(ARGV[7]) then
    return redis.error_reply('LAMEDBOUND variants')
  end
  if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[7], ARGV[4]) == 0 and redis.call('SCARD', KEYS[7]) >= tonumber(ARGV[8]) then
    return redis.error_reply('LAMEDBOUND goals')
  end
end
redis.call('INCR', KEYS[2])
redis.call('HINCRBY', KEYS[8], ARGV[9], 1)
if new then
  redis.call('SADD', KEYS[3], ARGV[2])
  redis.call('SADD', KEYS[4], KEYS[2])
  redis.call('SADD', KEYS[5], KEYS[2])
  redis.call('SADD', KEYS[6], ARGV[3])
  if ARGV[4] ~= '' then redis.call('SADD', KEYS[7], ARGV[4]) end
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
"""
TRACK_SHA = hashlib.sha1(TRACK_SCRIPT.encode()).hexdigest()


# KEYS: the counter, the migration marks, Lamed's three index sets, the experiment's variants and
# goals; ARGV: experiment, value, variant, goal ('' for participate), the counters' prefix.
MERGE_SCRIPT = KNOWN_NAMES + """
known_names()
local delta = tonumber(ARGV[2]) - tonumber(redis.call('HGET', KEYS[2], KEYS[1]) or '0')
if delta ~= 0 then redis.call('INCRBY', KEYS[1], delta) end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], KEYS[1])
redis.call('SADD', KEYS[5], KEYS[1])
redis.call('SADD', KEYS[6], ARGV[3])
if ARGV[4] ~= '' then redis.call('SADD', KEYS[7], ARGV[4]) end
redis.call('HSET', KEYS[2], KEYS[1], ARGV[2])
return delta
"""


def migrated_key(namespace: str) -> str:
    """``lamed migrate``'s marks: counter key -> the count migrated into it (Lamed never reads it)."""
    return f"{namespace}:lamed:migrated"


class ContentionError(redis.RedisError):
    """The de-dup flag kept changing under the transaction; the event was not counted."""


class KeyConflict(redis.RedisError):
    """A key the event needs holds another kind of value (written by another program, or by an
    older Lamed from names lamed refuses); nothing was written, and a retry fails the same way."""


class BoundReached(Exception):
    """The event would add an experiment, a variant or a goal beyond the config's bounds; nothing was written."""

    def __init__(self, kind: str, bounds: Bounds):
        scope = "this namespace" if kind == "experiments" else "this experiment"
        super().__init__(f"{scope} already has {bounds.limit(kind)} {kind}, the most allowed (max_{kind}); nothing was counted")
        self.kind = kind


def refusal(error: redis.ResponseError, keys: tuple, bounds: Bounds) -> Exception:
    """The exception for a track script's error reply: a key conflict, a bound, or Redis's own error."""
    words = str(error).split()
    if words[:1] == ["LAMEDCONFLICT"]:
        return KeyConflict(f"key {keys[int(words[1]) - 1]!r} holds a {words[2]}, not what lamed keeps there; nothing was counted")
    if words[:1] == ["LAMEDBOUND"]:
        return BoundReached(words[1], bounds)
    return error


def counters_prefix(namespace: str, experiment: str) -> str:
    """What every counter key of ``experiment`` begins with: ``ns:counters:{experiment}:``."""
    return f"{namespace}:counters:{experiment}:"


def counter_key(namespace: str, experiment: str, event: str, variant: str) -> str:
    return f"{counters_prefix(namespace, experiment)}{event}:{variant}"


def names_key(namespace: str, experiment: str, kind: str) -> str:
    """The set of an experiment's ``variants`` or ``goals`` (lamed's; the bounds are checked on
    their sizes): beside the daily counts, ending in neither ``daily`` nor ``counter_keys``."""
    return f"{namespace}:lamed:{experiment}:{kind}"


def daily_key(namespace: str, experiment: str) -> str:
    """An experiment's daily counts (lamed's): ``lamed`` where a counter has ``counters``, and
    ``daily`` where an index has ``counter_keys``, so it meets no key of Lamed's."""
    return f"{namespace}:lamed:{experiment}:daily"


def utc_day(timestamp: float) -> str:
    """The UTC day of a POSIX timestamp, ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def daily_counts(fields: dict) -> dict[str, dict[str, dict[str, int]]]:
    """``day -> event -> variant -> count`` from ``(day, event, variant) -> count``, every level sorted."""
    found: dict = {}
    for (day, event, variant), count in sorted(fields.items()):
        found.setdefault(day, {}).setdefault(event, {})[variant] = count
    return found


def dedup_key(key: str, uuid: str) -> str:
    """The de-dup flag's key for one uuid's event on one counter."""
    return hashlib.sha1(f"{key} {uuid}".encode()).hexdigest()


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Store:
    """Lamed's protocol over one redis-py client (whose pool a warm Lambda reuses)."""

    def __init__(self, client: redis.Redis, uuid_expiry_seconds: int = DEFAULT_UUID_EXPIRY_SECONDS, bounds: Bounds = Bounds(), clock=time.time):
        self.client = client
        self.uuid_expiry_seconds = uuid_expiry_seconds
        self.bounds = bounds
        self.clock = clock  # the day an event is counted on is clock()'s UTC day

    # -- counting ---------------------------------------------------------------

    def track(self, namespace: str, experiment: str, variant: str, event: str, uuid: str) -> bool:
        """Count one event unless this uuid already counted it; True when it was counted.

        Raises a redis error when Redis could not be reached or the count could not be
        committed: the caller must then answer non-200 so the client sends it again.
        """
        key = counter_key(namespace, experiment, event, variant)
        flag = dedup_key(key, uuid)
        keys = (flag, key, *_index_keys(namespace, experiment), daily_key(namespace, experiment))
        day = f"{utc_day(self.clock())}:{event}:{variant}"
        goal = "" if event == PARTICIPATE else event
        arguments = (self.uuid_expiry_seconds, experiment, variant, goal, counters_prefix(namespace, experiment), *self.bounds.limits(), day)
        write = ("EVALSHA", TRACK_SHA, len(keys), *keys, *arguments)
        reconnected = script_loaded = False
        for _ in range(MAX_WATCH_ATTEMPTS):
            try:
                counted = self._count_if_new(flag, write)
            except (redis.ConnectionError, redis.exceptions.ReadOnlyError) as exc:
                # A warm Lambda's pooled connection may have been closed while it slept, Redis
                # restarted, or a failover made the server at the other end a read-only replica
                # (the endpoint's name now leads to the new primary): one retry on a fresh
                # connection is safe because the flag makes a repeated commit impossible.
                if reconnected:
                    raise
                reconnected = True
                if isinstance(exc, redis.exceptions.ReadOnlyError):
                    self.client.connection_pool.disconnect(inuse_connections=False)
                continue
            except redis.exceptions.NoScriptError:
                # A new, flushed or restarted Redis (possibly met on the retry above): load it once.
                if script_loaded:
                    raise
                script_loaded = True
                self.client.script_load(TRACK_SCRIPT)
                continue
            if counted is not None:
                return counted
        raise ContentionError(f"the de-dup flag of {key} kept changing; event not counted")

    def _count_if_new(self, flag: str, write: tuple) -> bool | None:
        """One attempt in two round trips: WATCH+EXISTS, then MULTI, the track script, EXEC (or UNWATCH).

        Returns True when counted, False for a duplicate, None when EXEC was aborted
        because the flag changed under the watch (the caller tries again).
        """
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(connection.pack_commands([("WATCH", flag), ("EXISTS", flag)]))
            connection.read_response()
            if connection.read_response():
                connection.send_command("UNWATCH")
                connection.read_response()
                return False
            transaction = [("MULTI",), write, ("EXEC",)]
            connection.send_packed_command(connection.pack_commands(transaction))
            replies = [connection.read_response() for _ in transaction]
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        committed = replies[-1]
        if committed is None:
            return None
        for reply in committed:
            if isinstance(reply, Exception):
                raise refusal(reply, write[3 : 3 + write[2]], self.bounds)
        return True

    # -- reading ----------------------------------------------------------------

    def counts(self, namespace: str, scope: list[str] | None = None, days: bool = False) -> dict[str, dict[tuple, int]]:
        """``experiment -> (event, variant) -> count`` for every indexed experiment (or those of ``scope``),
        and with ``days`` also ``(day, event, variant) -> count`` from its daily counts.

        Three round trips whatever the number of experiments: the experiment set,
        the per-experiment key sets (pipelined, with the daily hashes), and one MGET of all counters.
        """
        if scope is None:
            names = sorted(text(name) for name in self.client.smembers(f"{namespace}:experiments"))
        else:
            names = list(dict.fromkeys(scope))
        if not names:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.smembers(f"{namespace}:{name}:counter_keys")
            if days:
                pipe.hgetall(daily_key(namespace, name))
        replies = pipe.execute(raise_on_error=False)
        # An index that is not a set (an older Lamed let a counter take its key) has no counters.
        key_sets = [[] if isinstance(keys, Exception) else sorted(map(text, keys)) for keys in replies[:: 1 + days]]
        all_keys = [key for keys in key_sets for key in keys]
        values = dict(zip(all_keys, self.client.mget(all_keys))) if all_keys else {}
        found = {
            name: _lamed_counts(namespace, name, {key: values[key] for key in keys})
            for name, keys in zip(names, key_sets)
            if keys
        }
        if days:
            for name, fields in zip(names, replies[1::2]):
                if name in found and isinstance(fields, dict):
                    found[name] |= {tuple(text(field).split(":")): int(n) for field, n in fields.items() if text(field).count(":") == 2}
        return found

    def results(self, namespace: str, scope: list[str] | None = None, days: bool = False) -> list[dict]:
        """Every experiment's entry (or only those named in ``scope`` that exist), with its
        ``daily`` counts when ``days``."""
        return [experiment_entry(name, counts, days) for name, counts in self.counts(namespace, scope, days).items()]

    def experiment(self, namespace: str, experiment: str, days: bool = False) -> dict | None:
        """One experiment's entry, or None when it has no counters."""
        entries = self.results(namespace, [experiment], days)
        return entries[0] if entries else None

    # -- migrating ---------------------------------------------------------------

    def migrated(self, namespace: str) -> dict[tuple[str, str, str], int]:
        """What ``lamed migrate`` has put into each counter: ``(experiment, event, variant) -> count``."""
        marks = self.client.hgetall(migrated_key(namespace))
        found = {}
        for key, value in marks.items():
            experiment, event, variant = text(key)[len(f"{namespace}:counters:"):].rsplit(":", 2)
            found[experiment, event, variant] = int(value)
        return found

    def merge(self, namespace: str, experiment: str, event: str, variant: str, value: int) -> int:
        """Make the migrated share of one counter ``value``, atomically; the difference applied."""
        key = counter_key(namespace, experiment, event, variant)
        keys = (key, migrated_key(namespace), *_index_keys(namespace, experiment))
        goal = "" if event == PARTICIPATE else event
        return self.client.eval(MERGE_SCRIPT, len(keys), *keys, experiment, value, variant, goal, counters_prefix(namespace, experiment))

    # -- deleting ---------------------------------------------------------------

    def delete(self, namespace: str, experiment: str) -> int | None:
        """Remove an experiment's counters, index entries and daily counts; the number of
        counters removed, or None when the experiment does not exist.

        The experiment's key set is watched, so a counter that a concurrent event
        adds while deleting is either deleted too or left fully indexed; its daily counts
        go in the same transaction, so they always sum to what its counters hold.
        """
        index = f"{namespace}:{experiment}:counter_keys"

        def remove(pipe):
            keys = [text(key) for key in pipe.smembers(index)] if text(pipe.type(index)) in ("set", "none") else []
            known = pipe.sismember(f"{namespace}:experiments", experiment)
            pipe.multi()
            pipe.delete(daily_key(namespace, experiment), names_key(namespace, experiment, "variants"), names_key(namespace, experiment, "goals"))
            if keys:
                pipe.delete(index, *keys)
                pipe.srem(f"{namespace}:counter_keys", *keys)
            pipe.srem(f"{namespace}:experiments", experiment)
            return len(keys) if keys or known else None

        return self.client.transaction(remove, index, value_from_callable=True)


def _index_keys(namespace: str, experiment: str) -> tuple[str, ...]:
    """The sets an experiment's new counter joins: Lamed's three, then lamed's variants and goals."""
    return (
        f"{namespace}:experiments",
        f"{namespace}:counter_keys",
        f"{namespace}:{experiment}:counter_keys",
        names_key(namespace, experiment, "variants"),
        names_key(namespace, experiment, "goals"),
    )


def experiment_entry(experiment: str, counts: dict[tuple, int], days: bool = False) -> dict:
    """Lamed's entry for one experiment from its ``(event, variant) -> count``, plus lamed's
    ``variants``; with ``days``, also ``daily`` (``day -> event -> variant -> count``) from the
    ``(day, event, variant) -> count`` entries of ``counts``.

    Both layouts build their results here, so their JSON is the same.
    """
    dated = {key: n for key, n in counts.items() if len(key) == 3}
    counts = {key: n for key, n in counts.items() if len(key) == 2}
    trials = {variant: n for (event, variant), n in counts.items() if event == PARTICIPATE}
    variants = sorted({variant for _, variant in counts})
    goals = sorted({event for event, _ in counts if event != PARTICIPATE})
    return {
        "experiment": experiment,
        "goals": [
            {
                "goal": goal,
                "results": [
                    {"label": variant, "successes": counts.get((goal, variant), 0), "trials": trials.get(variant, 0)}
                    for variant in variants
                ],
            }
            for goal in goals
        ],
        "variants": [{"label": variant, "trials": trials.get(variant, 0)} for variant in variants],
    } | ({"daily": daily_counts(dated)} if days else {})


def _lamed_counts(namespace: str, experiment: str, values: dict) -> dict[tuple[str, str], int]:
    """``(event, variant) -> count`` from Lamed's counter keys and their values."""
    prefix = counters_prefix(namespace, experiment)
    counts = {}
    for key, value in values.items():
        if value is None or not key.startswith(prefix):
            continue
        event, separator, variant = key[len(prefix):].partition(":")
        if separator:
            counts[event, variant] = int(value)
    return counts
