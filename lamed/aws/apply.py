"""Run a plan: each step's call against AWS with a progress line, or only its lines (a dry run)."""

from collections.abc import Callable

from lamed.aws.client import Aws
from lamed.aws.steps import Step


def execute(steps: list[Step], aws: Aws, echo: Callable[[str], None]) -> None:
    """Run the steps in order, printing a line for each as it finishes."""
    for step in steps:
        outcome = step.call(aws) if step.call else None
        echo(step.line(done=True, outcome=outcome))


def show(steps: list[Step], echo: Callable[[str], None]) -> None:
    """The display-only executor: print what each step would do, call nothing."""
    for step in steps:
        echo(step.line(done=False))
