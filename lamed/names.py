"""The rules a name must pass to become part of a Redis key, and how to show one that Redis already
holds: /track applies the rules to its parameters, the config to the names it declares. Standard
library only (the Lambda path).

The key rules are the narrowest under which no two requests address one key for different
purposes (docs/data-model.md derives each): Lamed's keys are ":"-joined names, its flags
hash "{counter key} {uuid}", and ns:{experiment}:counter_keys must never be a counter's key.

A name /track writes is shown to the owner later (terminal, spreadsheet, browser), so it must
hold no character of Unicode category C (controls such as ESC, BEL or a newline; format
characters such as the right-to-left override; surrogates, private-use and unassigned code
points) nor a line or paragraph separator. Names written before that rule (by the original
Lamed, or migrated) are still shown, escaped by :func:`printable`.
"""

import unicodedata

MAX_LENGTH = 256
NO_COLON = ("namespace", "event", "variant")
NO_SPACE = ("uuid",)
RESERVED = {"variant": "counter_keys"}
PRINTED = ("namespace", "experiment", "variant", "event")  # the names reports print
# Line and paragraph separators are no category C characters but end a line in some viewers.
SEPARATORS = ("Zl", "Zp")
CONTROL_PROBLEM = "must not contain control characters (Unicode category C)"


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


def track_problem(kind: str, value: str) -> str | None:
    """:func:`problem`, and for the names reports print, control characters: why /track refuses
    ``value`` as its ``kind`` (the config and ``lamed migrate`` check their names with it too)."""
    if found := problem(kind, value):
        return found
    if kind in PRINTED and has_control(value):
        return CONTROL_PROBLEM
    return None


def encodable(value: str) -> bool:
    """False for text with lone surrogates, which cannot become UTF-8 (nor a Redis key)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unprintable(character: str) -> bool:
    category = unicodedata.category(character)
    return category[0] == "C" or category in SEPARATORS


def has_control(name: str) -> bool:
    """Whether ``name`` holds a character of Unicode category C, or a line separator."""
    return not name.isprintable() and any(map(_unprintable, name))


def printable(text: str) -> str:
    r"""``text`` with each character :func:`has_control` finds written as its Python escape
    (``\x1b``, ``\n``, ``\u202e``), so it prints as what it is and does nothing to a terminal."""
    if text.isprintable():
        return text
    return "".join(character.encode("unicode_escape", "backslashreplace").decode() if _unprintable(character) else character for character in text)
