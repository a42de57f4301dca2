"""Run a plan: each step's call against AWS with a progress line, or only its lines (a dry run).

:class:`Aws` carries the clients of one account and region and the values steps learn
while they run (the id of a REST API created a moment ago, say), so that a plan can
be made before the things it refers to exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from lamed.aws.plan import Step

# What Lambda says while IAM has not propagated a new role, or the role's new VPC policy, yet
ROLE_NOT_READY = ("cannot be assumed", "does not have permissions to call CreateNetworkInterface")
ROLE_RETRY_DELAYS = (1, 2, 4, 8, 8, 8, 8, 8)  # seconds; IAM usually propagates within ~10 s


@dataclass
class Aws:
    """Clients for one account and region, plus values learned while a plan runs."""

    region: str
    account: str
    lambda_: object
    iam: object
    apigateway: object
    values: dict = field(default_factory=dict)

    @classmethod
    def connect(cls, session: boto3.Session) -> "Aws":
        """Clients for ``session``; asks STS who we are, which also proves the credentials work."""
        account = session.client("sts").get_caller_identity()["Account"]
        return cls(
            region=session.region_name,
            account=account,
            lambda_=session.client("lambda"),
            iam=session.client("iam"),
            apigateway=session.client("apigateway"),
        )


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def retry_while_role_propagates(call: Callable[[], dict], sleep: Callable[[float], None] = time.sleep) -> dict:
    """``call()``, retried with backoff while Lambda says a new IAM role (or policy) is not in force yet.

    A role is usable by Lambda some seconds after IAM created it, and so is a policy
    just put on it; the retry ends after about a minute, and then the last error goes up.
    """
    delays = iter(ROLE_RETRY_DELAYS)
    while True:
        try:
            return call()
        except ClientError as exc:
            message = str(exc)
            propagating = error_code(exc) == "InvalidParameterValueException" and any(
                words in message for words in ROLE_NOT_READY
            )
            delay = next(delays, None)
            if not propagating or delay is None:
                raise
            sleep(delay)


def execute(steps: list[Step], aws: Aws, echo: Callable[[str], None]) -> None:
    """Run the steps in order, printing a line for each as it finishes."""
    for step in steps:
        outcome = step.call(aws) if step.call else None
        echo(step.line(done=True, outcome=outcome))


def show(steps: list[Step], echo: Callable[[str], None]) -> None:
    """The display-only executor: print what each step would do, call nothing."""
    for step in steps:
        echo(step.line(done=False))
