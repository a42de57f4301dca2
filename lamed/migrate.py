"""``lamed migrate --from URL``: copy a Lamed-layout namespace into the configured Redis, either layout.

Each counter is merged atomically by the target store: the target records what it has
migrated into each counter, and only the difference to the source is applied. So a
second run changes nothing, an interrupted run is finished by running it again, and
counts the target gathered itself are kept (merging into them needs ``--force``).
The de-dup flags cannot travel: they are hashes of uuids that were never stored.

The source is checked before anything is written (:func:`read_source`): a count that is not a
whole number from 0 to 2^63 - 1, a key of the wrong type, a name ``/track`` would refuse, and
what passes the config's bounds (``max_experiments``, ``max_variants``, ``max_goals``, with the
target's own names) are listed in one error, unless ``--skip-invalid`` skips them (beyond a bound,
the experiments, variants or goals with the fewest counts are skipped).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from lamed.cluster_store import ClusterStore
from lamed.config import PARTICIPATE, Bounds
from lamed.connection import address, explain, redis_client
from lamed.names import printable, track_problem
from lamed.store import Store, counters_prefix

Counter = tuple[str, str, str]  # experiment, event, variant


class MigrateError(Exception):
    """The migration cannot start or did not verify; one line with the fix."""


MAX_COUNT = 2**63 - 1  # what INCRBY and HINCRBY can hold
SHOWN_PROBLEMS = 5


@dataclass
class Migration:
    """What a run found and did; ``totals`` maps each experiment to (source total, target total);
    ``skipped`` counts the source's counters left out (``--skip-invalid``)."""

    counters: int = 0
    changed: int = 0
    skipped: int = 0
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Source:
    """A source namespace as read: the counters fit to copy, and what is wrong with the others
    (each problem a sentence; ``bad`` the number of counters they leave out)."""

    counts: dict[Counter, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    bad: int = 0

    def refuse(self, problem: str, counters: int = 1) -> None:
        self.problems.append(problem)
        self.bad += counters


def flatten(counts: dict[str, dict[tuple[str, str], int]]) -> dict[Counter, int]:
    return {(name, event, variant): n for name, found in counts.items() for (event, variant), n in found.items()}


def migrate(
    source_url: str,
    target: Store | ClusterStore,
    namespace: str,
    force: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
    skip_invalid: bool = False,
) -> Migration:
    """Merge the namespace's counters from the Lamed-layout Redis at ``source_url`` into ``target``,
    within the target's bounds; nothing is written when the source has problems, unless ``skip_invalid``."""
    source_client = redis_client({"url": source_url})
    try:
        found = read_source(source_client, namespace)
        if isinstance(target, Store) and _same_server(source_client, target.client):
            raise MigrateError(f"--from {address({'url': source_url})} is the configured Redis itself — fix: name the old Redis")
    except redis.RedisError as exc:
        raise MigrateError(f"the source: {explain(exc, {'url': source_url}, '--from')}") from exc
    finally:
        source_client.close()
    if not found.counts and not found.problems:
        raise MigrateError(f"no counters in namespace {namespace!r} at {address({'url': source_url})} — fix: check --from and --namespace")
    _keep_within(found, flatten(target.counts(namespace)), target.bounds)
    if found.problems and not skip_invalid:
        shown = "; ".join(found.problems[:SHOWN_PROBLEMS]) + (f"; and {len(found.problems) - SHOWN_PROBLEMS} more" if len(found.problems) > SHOWN_PROBLEMS else "")
        raise MigrateError(
            f"the source has {len(found.problems)} problem{'s' * (len(found.problems) != 1)}, nothing was written: {shown} "
            "— fix: correct them in the source, or pass --skip-invalid to migrate the rest"
        )
    source = found.counts
    own = _own_counts(target, namespace)
    if own and not force:
        example = ", ".join(sorted({name for name, _, _ in own})[:3])
        raise MigrateError(
            f"namespace {namespace!r} in the configured Redis already holds counts of its own ({len(own)} counters, "
            f"experiments {example}) — fix: migrate into an empty namespace, or pass --force to add the migrated counts to them"
        )
    migration = Migration(counters=len(source), skipped=found.bad)
    for done, (counter, value) in enumerate(sorted(source.items()), start=1):
        migration.changed += target.merge(namespace, *counter, value) != 0
        progress(done, len(source))
    _verify(target, namespace, source, own, migration)
    return migration


def read_source(client: redis.Redis, namespace: str) -> Source:
    """The namespace's counters in Lamed's layout at ``client``, each checked as ``/track`` checks an
    event's names and as the target can hold its count; what fails is a problem, not a counter."""
    found = Source()
    index_of_all = f"{namespace}:experiments"
    kind = _text(client.type(index_of_all))
    if kind not in ("set", "none"):
        found.refuse(f"{index_of_all} is a {kind}, not Lamed's set of experiments", 0)
        return found
    names = sorted(client.smembers(index_of_all))
    pipe = client.pipeline(transaction=False)
    for name in names:
        index = f"{namespace}:".encode() + name + b":counter_keys"
        pipe.type(index)
        pipe.smembers(index)
    replies = pipe.execute(raise_on_error=False)
    keys: list[tuple[Counter, bytes]] = []
    for name, kind, members in zip(names, replies[::2], replies[1::2]):
        experiment = _text(name)
        if _text(kind) not in ("set", "none"):
            found.refuse(f"the index of experiment {_shown(experiment)} is a {_text(kind)}, not a set", 0)
            continue
        prefix = counters_prefix(namespace, experiment).encode(errors="surrogateescape")
        for key in sorted(members):
            event, separator, variant = key[len(prefix):].partition(b":")
            if not key.startswith(prefix) or not separator:
                found.refuse(f"{_shown(_text(key))} in the index of {_shown(experiment)} is not one of its counters' keys", 0)
                continue
            keys.append(((experiment, _text(event), _text(variant)), key))
    values = client.mget([key for _, key in keys]) if keys else []
    missing = [key for (_, key), value in zip(keys, values) if value is None]
    kinds = dict(zip(missing, _types(client, missing)))
    for (counter, key), value in zip(keys, values):
        problem = _counter_problem(counter, value, kinds.get(key))
        if problem:
            found.refuse(f"{_shown(_text(key))}: {problem}")
        elif value is not None:
            found.counts[counter] = int(value)
    return found


def _types(client: redis.Redis, keys: list[bytes]) -> list:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    return pipe.execute() if keys else []


def _counter_problem(counter: Counter, value: bytes | None, kind) -> str | None:
    """Why a counter cannot be copied, or None (a key that is gone has nothing to copy)."""
    for parameter, name in zip(("experiment", "event", "variant"), counter):
        problem = track_problem(parameter, name)
        if problem:
            return f"/track refuses its names: parameter '{parameter}' {problem}"
    if value is None:
        return None if _text(kind) == "none" else f"a {_text(kind)}, not a counter"
    if not re.fullmatch(rb"-?[0-9]+", value):
        return f"the count {_shown(_text(value)[:40])} is not a whole number"
    if int(value) < 0:
        return f"the count {int(value)} is negative"
    if int(value) > MAX_COUNT:
        return f"the count {int(value)} is more than Redis can hold ({MAX_COUNT})"
    return None


def _keep_within(found: Source, existing: dict[Counter, int], bounds: Bounds) -> None:
    """Leave out of ``found`` what would pass ``bounds`` beside the target's ``existing`` counters:
    experiments, then each one's variants and goals, those with the fewest counts first."""

    def beyond(names: dict[str, int], kept: set[str], limit: int) -> list[str]:
        newcomers = sorted((name for name in names if name not in kept), key=lambda name: (-names[name], name))
        return newcomers[max(limit - len(kept), 0):]

    def leave_out(doomed: list[Counter], problem: str) -> None:
        for counter in doomed:
            del found.counts[counter]
        found.refuse(problem, len(doomed))

    for name in beyond(_totals(found.counts), {counter[0] for counter in existing}, bounds.max_experiments):
        doomed = [counter for counter in found.counts if counter[0] == name]
        leave_out(doomed, f"experiment {_shown(name)} would pass max_experiments ({bounds.max_experiments})")
    for experiment in sorted({counter[0] for counter in found.counts}):
        for what, limit, index in (("variant", bounds.max_variants, 2), ("goal", bounds.max_goals, 1)):

            def named(counter: Counter, experiment=experiment, index=index) -> bool:
                return counter[0] == experiment and (index == 2 or counter[1] != PARTICIPATE)

            names: dict[str, int] = {}
            for counter, n in found.counts.items():
                if named(counter):
                    names[counter[index]] = names.get(counter[index], 0) + n
            for name in beyond(names, {counter[index] for counter in existing if named(counter)}, limit):
                doomed = [counter for counter in found.counts if named(counter) and counter[index] == name]
                leave_out(doomed, f"{what} {_shown(name)} of experiment {_shown(experiment)} would pass max_{what}s ({limit})")


def _text(value) -> str:
    """Bytes from the source as text; bytes that are not UTF-8 stay as lone surrogates, which the checks refuse."""
    return value.decode(errors="surrogateescape") if isinstance(value, bytes) else value


def _shown(name: str) -> str:
    """A name in a message: quoted, control characters and undecodable bytes escaped."""
    return f"'{printable(name)}'"


def _same_server(one: redis.Redis, other: redis.Redis) -> bool:
    return one.info("server")["run_id"] == other.info("server")["run_id"]


def _own_counts(target: Store | ClusterStore, namespace: str) -> dict[Counter, int]:
    """The target's counts that no migration put there."""
    migrated = target.migrated(namespace)
    current = flatten(target.counts(namespace))
    own = {counter: n - migrated.get(counter, 0) for counter, n in current.items()}
    return {counter: n for counter, n in own.items() if n}


def _verify(target, namespace: str, source: dict[Counter, int], own: dict[Counter, int], migration: Migration) -> None:
    """Every counter's migrated share is the source's, and each experiment's total holds it (plus its own)."""
    migrated = {counter: n for counter, n in target.migrated(namespace).items() if counter in source}
    if migrated != source:
        wrong = sorted(counter for counter in source if migrated.get(counter) != source[counter])
        raise MigrateError(f"verification failed: {len(wrong)} counters differ from the source, e.g. {wrong[0]} — fix: run lamed migrate again")
    sources, owns, founds = (_totals(counts) for counts in (source, own, flatten(target.counts(namespace))))
    for name in sorted(sources):
        expected, found = sources[name] + owns.get(name, 0), founds.get(name, 0)
        if found < expected:  # more is fine: events may be counted while migrating
            raise MigrateError(f"verification failed: experiment {name!r} totals {found} in the target, expected at least {expected}")
        migration.totals[name] = (sources[name], found)


def _totals(counts: dict[Counter, int]) -> dict[str, int]:
    """Each experiment's total over its counters."""
    totals: dict[str, int] = {}
    for (name, _, _), n in counts.items():
        totals[name] = totals.get(name, 0) + n
    return totals
