"""The rules a name must pass to become part of a Redis key: /track applies them to its
parameters, the config to the names it declares. Standard library only (the Lambda path).

They are the narrowest rules under which no two requests address one key for different
purposes (docs/data-model.md derives each): Lamed's keys are ":"-joined names, its flags
hash "{counter key} {uuid}", and ns:{experiment}:counter_keys must never be a counter's key.
"""

MAX_LENGTH = 256
NO_COLON = ("namespace", "event", "variant")
NO_SPACE = ("uuid",)
RESERVED = {"variant": "counter_keys"}


def problem(kind: str, value: str) -> str | None:
    """Why ``value`` cannot be a ``kind`` name (namespace, experiment, variant, event, uuid), as the
    end of a sentence that names it (``is longer than 256 characters``), or None."""
    if len(value) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if not value.isprintable() and not encodable(value):
        return "is not valid Unicode text"
    if kind in NO_COLON and ":" in value:
        return "must not contain ':'"
    if kind in NO_SPACE and " " in value:
        return "must not contain a space"
    if RESERVED.get(kind) == value:
        return f"must not be '{value}', a name Lamed's keys reserve"
    return None


def encodable(value: str) -> bool:
    """False for text with lone surrogates, which cannot become UTF-8 (nor a Redis key)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
