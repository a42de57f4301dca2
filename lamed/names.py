"""What a name sent to /track may hold, and how to show one that Redis already holds.

A name with a character of Unicode category C (controls such as ESC, BEL or a newline; format
characters such as the right-to-left override; surrogates, private-use and unassigned code
points) could rewrite a terminal or forge a line of a report, so ``/track`` refuses it. Names
written before that rule (by the original Lamed, or migrated) are still shown, escaped by
:func:`printable`. Runs inside Lambda: standard library only.
"""

import unicodedata

# Line and paragraph separators are no category C characters but end a line in some viewers.
SEPARATORS = ("Zl", "Zp")


def _unprintable(character: str) -> bool:
    category = unicodedata.category(character)
    return category[0] == "C" or category in SEPARATORS


def has_control(name: str) -> bool:
    """Whether ``name`` holds a character that /track refuses (Unicode category C, or a line separator)."""
    return not name.isprintable() and any(map(_unprintable, name))


def printable(text: str) -> str:
    r"""``text`` with each character :func:`has_control` refuses written as its Python escape
    (``\x1b``, ``\n``, ``\u202e``), so it prints as what it is and does nothing to a terminal."""
    if text.isprintable():
        return text
    return "".join(character.encode("unicode_escape", "backslashreplace").decode() if _unprintable(character) else character for character in text)
