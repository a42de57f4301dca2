"""Declared experiments (the config's ``experiments`` and ``declared_only``): what /track may
count, and the results of a declared experiment shaped to its declaration.

/track is public, so anyone can send any name; for a declared experiment only its declared
variants, goals and ``participate`` are counted, and the results show exactly those, whatever
else Redis holds (the original Lamed's counts, a migration, events sent before it was declared).
The declarations are the config's namespace's. Standard library only (the Lambda path).
"""

from lamed.config import PARTICIPATE, Config


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
                raise Refused(f"parameter 'namespace' must be '{self.namespace}': this backend counts declared experiments only")
            if self.declared_only:
                raise Refused("parameter 'experiment' names no declared experiment: this backend counts declared experiments only")
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
        exactly its variants and goals, in the declared order, zeros included, and lamed's
        ``declared`` (``control``, ``weights``, ``stopped``); ``"unique": false`` on a goal
        declared so. An undeclared experiment's entry is returned as it is."""
        declaration = self._declaration(namespace, experiment)
        if declaration is None:
            return entry
        entry = entry or {"experiment": experiment, "goals": [], "variants": []} | ({"daily": {}} if days else {})
        trials = {row["label"]: row["trials"] for row in entry.get("variants", [])}
        successes = {
            (goal["goal"], row["label"]): row["successes"] for goal in entry["goals"] for row in goal["results"]
        }
        for goal in entry["goals"]:  # an original Lamed's entry has participants in its goals only
            for row in goal["results"]:
                trials.setdefault(row["label"], row["trials"])
        variants = list(declaration["variants"])
        shaped = {
            "experiment": experiment,
            "goals": [
                {
                    "goal": goal,
                    "results": [
                        {"label": label, "successes": successes.get((goal, label), 0), "trials": trials.get(label, 0)}
                        for label in variants
                    ],
                }
                | ({} if unique else {"unique": False})
                for goal, unique in declaration["goals"].items()
            ],
            "variants": [{"label": label, "trials": trials.get(label, 0)} for label in variants],
            "declared": {
                "control": declaration["control"],
                "weights": dict(declaration["variants"]),
                "stopped": declaration["stopped"],
            },
        }
        if "daily" in entry:
            shaped["daily"] = _declared_days(entry["daily"], {PARTICIPATE, *declaration["goals"]}, declaration["variants"])
        return shaped


def _declared_days(daily: dict, events: set, variants: dict) -> dict:
    """``day -> event -> variant -> count`` with only the declared events and variants (a day
    or event left empty dropped)."""
    shaped = {}
    for day, by_event in daily.items():
        kept = {event: {label: n for label, n in counts.items() if label in variants} for event, counts in by_event.items() if event in events}
        kept = {event: counts for event, counts in kept.items() if counts}
        if kept:
            shaped[day] = kept
    return shaped
