"""lamed: an A/B-testing backend for AlephBet on AWS Lambda + API Gateway + Redis.

The Lambda entry points keep the original Lamed handler strings (``lamed.track``,
``lamed.all``, ``lamed.experiment``, ``lamed.delete``). They are resolved lazily
so that ``import lamed`` stays cheap and pulls in nothing but the handler path.
"""

__version__ = "0.1.0"

_HANDLERS = {
    "track": "track",
    "all": "all_experiments",
    "experiment": "experiment",
    "delete": "delete",
}


def __getattr__(name):
    if name in _HANDLERS:
        from lamed import handlers

        return getattr(handlers, _HANDLERS[name])
    raise AttributeError(f"module 'lamed' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_HANDLERS])
