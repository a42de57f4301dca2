"""A :class:`Step` of a plan: what the planner emits and the executor runs or only shows.

It lives apart from both, so that :mod:`lamed.aws.plan` and :mod:`lamed.aws.apply`
import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lamed.aws.client import Aws

PAST = {"create": "created", "update": "updated", "delete": "deleted", "unchanged": "unchanged"}


@dataclass
class Step:
    """One thing to do (or to leave as it is); ``call`` may return what it learned, for the progress line."""

    action: str  # create | update | delete | unchanged
    subject: str
    detail: str = ""
    call: Callable[[Aws], str | None] | None = None

    @property
    def changes(self) -> bool:
        return self.action != "unchanged"

    def line(self, done: bool, outcome: str | None = None) -> str:
        verb = PAST[self.action] if done else self.action
        detail = outcome or self.detail
        return f"{verb:<10} {self.subject}" + (f" ({detail})" if detail else "")
