"""``lamed migrate --from URL``: copy a Lamed-layout namespace into the configured Redis, either layout.

Each counter is merged atomically by the target store: the target records what it has
migrated into each counter, and only the difference to the source is applied. So a
second run changes nothing, an interrupted run is finished by running it again, and
counts the target gathered itself are kept (merging into them needs ``--force``).
The de-dup flags cannot travel: they are hashes of uuids that were never stored.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from lamed.cluster_store import ClusterStore
from lamed.connection import address, explain, redis_client
from lamed.store import Store

Counter = tuple[str, str, str]  # experiment, event, variant


class MigrateError(Exception):
    """The migration cannot start or did not verify; one line with the fix."""


@dataclass
class Migration:
    """What a run found and did; ``totals`` maps each experiment to (source total, target total)."""

    counters: int = 0
    changed: int = 0
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)


def flatten(counts: dict[str, dict[tuple[str, str], int]]) -> dict[Counter, int]:
    return {(name, event, variant): n for name, found in counts.items() for (event, variant), n in found.items()}


def migrate(
    source_url: str,
    target: Store | ClusterStore,
    namespace: str,
    force: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Migration:
    """Merge the namespace's counters from the Lamed-layout Redis at ``source_url`` into ``target``."""
    source_client = redis_client({"url": source_url})
    try:
        source = flatten(Store(source_client).counts(namespace))
        if isinstance(target, Store) and _same_server(source_client, target.client):
            raise MigrateError(f"--from {address({'url': source_url})} is the configured Redis itself — fix: name the old Redis")
    except redis.RedisError as exc:
        raise MigrateError(f"the source: {explain(exc, {'url': source_url}, '--from')}") from exc
    finally:
        source_client.close()
    if not source:
        raise MigrateError(f"no counters in namespace {namespace!r} at {address({'url': source_url})} — fix: check --from and --namespace")
    own = _own_counts(target, namespace)
    if own and not force:
        example = ", ".join(sorted({name for name, _, _ in own})[:3])
        raise MigrateError(
            f"namespace {namespace!r} in the configured Redis already holds counts of its own ({len(own)} counters, "
            f"experiments {example}) — fix: migrate into an empty namespace, or pass --force to add the migrated counts to them"
        )
    migration = Migration(counters=len(source))
    for done, (counter, value) in enumerate(sorted(source.items()), start=1):
        migration.changed += target.merge(namespace, *counter, value) != 0
        progress(done, len(source))
    _verify(target, namespace, source, own, migration)
    return migration


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
