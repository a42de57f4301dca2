"""Declared experiments (the config's ``experiments`` and ``declared_only``): what /track may
count, and the results of a declared experiment shaped to its declaration.

/track is public, so anyone can send any name; for a declared experiment only its declared
variants, goals and ``participate`` are counted, and the results show exactly those, whatever
else Redis holds (the original Lamed's counts, a migration, events sent before it was declared).
The declarations are the config's namespace's. Standard library only (the Lambda path).
"""

from lamed.config import PARTICIPATE, Config
from lamed.store import experiment_entry

ONLY_DECLARED = "this backend counts declared experiments only"


class Refused(ValueError):
    """/track names what the declarations do not allow (HTTP 400; nothing was written)."""


class Declarations:
    """The config's declared experiments (normalised as :class:`lamed.config.Config` holds them)."""

    def __init__(self, namespace: str, experiments: dict | None = None, declared_only: bool = False):
        self.namespace = namespace
        self.experiments = experiments or {}
        self.declared_only = declared_only

    @classmethod
    def of(cls, config: Config) -> "Declarations":
        return cls(config.namespace, config.experiments, config.declared_only)

    def _declaration(self, namespace: str, experiment: str) -> dict | None:
        return self.experiments.get(experiment) if namespace == self.namespace else None

    # -- /track ------------------------------------------------------------------

    def admit(self, namespace: str, experiment: str, variant: str, event: str) -> bool:
        """Whether to count the event: False for a stopped experiment (nothing is written, and
        the client is told so); :class:`Refused`, naming the parameter, for what is not declared."""
        declaration = self._declaration(namespace, experiment)
        if declaration is None:
            if self.declared_only and namespace != self.namespace:
                raise Refused(f"parameter 'namespace' must be '{self.namespace}': {ONLY_DECLARED}")
            if self.declared_only:
                raise Refused(f"parameter 'experiment' names no declared experiment: {ONLY_DECLARED}")
            return True
        if variant not in declaration["variants"]:
            raise Refused(f"parameter 'variant' is not a variant declared for experiment '{experiment}'")
        if event != PARTICIPATE and event not in declaration["goals"]:
            raise Refused(f"parameter 'event' is neither 'participate' nor a goal declared for experiment '{experiment}'")
        return not declaration["stopped"]

    # -- results -----------------------------------------------------------------

    def shape(self, namespace: str, entries: list[dict], scope: list[str] | None = None, days: bool = False) -> list[dict]:
        """The results of ``namespace`` (Lamed's entries, with ``daily`` when ``days``) with each
        declared experiment shaped to its declaration, also one nothing was tracked for yet (when
        in ``scope``)."""
        shaped = {entry["experiment"]: self.shape_one(namespace, entry["experiment"], entry, days) for entry in entries}
        if namespace == self.namespace:
            for name in self.experiments if scope is None else scope:
                if name in self.experiments and name not in shaped:
                    shaped[name] = self.shape_one(namespace, name, None, days)
        names = sorted(shaped) if scope is None else [name for name in dict.fromkeys(scope) if name in shaped]
        return [shaped[name] for name in names]

    def shape_one(self, namespace: str, experiment: str, entry: dict | None, days: bool = False) -> dict | None:
        """One experiment's entry (None: nothing counted) shaped to its declaration, if declared:
        exactly its variants and goals, zeros included (in the daily counts too, with ``days``),
        plus lamed's ``declared`` (``control``, ``weights``, ``stopped``) and ``"unique": false``
        on a goal declared so. An undeclared experiment's entry is returned as it is."""
        declaration = self._declaration(namespace, experiment)
        if declaration is None:
            return entry
        events, variants = [PARTICIPATE, *declaration["goals"]], declaration["variants"]
        counts = _counts(entry) if entry else {}
        kept = {(event, variant): counts.get((event, variant), 0) for event in events for variant in variants}
        kept |= {key: n for key, n in counts.items() if len(key) == 3 and key[1] in events and key[2] in variants}
        shaped = experiment_entry(experiment, kept, days)
        for goal in shaped["goals"]:
            if not declaration["goals"][goal["goal"]]:
                goal["unique"] = False
        shaped["declared"] = {"control": declaration["control"], "weights": dict(variants), "stopped": declaration["stopped"]}
        return shaped


def _counts(entry: dict) -> dict[tuple, int]:
    """``(event, variant) -> count`` and ``(day, event, variant) -> count`` of a lamed entry (the inverse of
    :func:`lamed.store.experiment_entry`)."""
    counts = {(PARTICIPATE, row["label"]): row["trials"] for row in entry["variants"]}
    counts |= {(goal["goal"], row["label"]): row["successes"] for goal in entry["goals"] for row in goal["results"]}
    for day, by_event in (entry.get("daily") or {}).items():
        counts |= {(day, event, variant): n for event, by_variant in by_event.items() for variant, n in by_variant.items()}
    return counts
