"""AWS's quirks in one place: retries, waits, IAM propagation, throttling, partitions.

Like Chalice's ``TypedAWSClient``, :class:`Aws` is what plan steps call instead of bare
boto3 clients. Its clients do not retry inside botocore (whose sleeps cannot be replaced);
lamed's own ``needs-retry`` handler decides, and waits through ``Aws.sleep`` (tests pass
a fake clock):

- throttling (API Gateway's control plane allows CreateDeployment once per 5 s,
  UpdateUsagePlan once per 20 s, about 10 requests/s in all): adaptive, each throttle
  doubles the pause between that client's requests (each success halves it again) and the
  call is retried with capped exponential backoff for about 4 minutes;
- transient failures (HTTP 5xx, dropped connections): a few quick retries;
- Lambda's ResourceConflictException while a function is Pending or being updated: bounded
  backoff (a duplicate statement id, or CreateFunction's "Function already exist:", is a real
  conflict and is not retried);
- API Gateway's ConflictException "Unable to complete operation due to concurrent
  modification" (retried by terraform-provider-aws on every REST API operation, #776): backoff;
- IAM propagation: Lambda's "cannot be assumed" / "does not have permissions to call ..."
  for about 150 s, with a progress line.

A create call whose answer may be lost (a dropped connection) is never simply sent again:
:meth:`Aws.create_once` first looks for what it may have created, by name and tag.
Before a change to an existing function, :meth:`Aws.lambda_call` waits until the function
is Active with its last update finished (a failed update stops the run with its reason);
:meth:`Aws.wait_function` with a version waits until that published version is Active. ARNs and DNS names come from the session's
partition (the STS caller's ARN, botocore's partition data), never from literals.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError
from botocore.regions import EndpointResolver

from lamed.aws.resources import Place, function_arn
from lamed.aws.session import ACCESS_DENIED, THROTTLED

NOT_FOUND = ("ResourceNotFoundException", "NotFoundException", "NoSuchEntity")
# "already exists" (a statement id), "Function already exist: NAME" (CreateFunction): not a busy function
ALREADY_EXISTS = re.compile(r"already exist", re.IGNORECASE)
CONCURRENT_MODIFICATION = re.compile(r"concurrent modification", re.IGNORECASE)
# Creates that a retry after a lost answer would duplicate (API Gateway allows duplicate names)
CREATES = {"CreateFunction", "CreateRestApi", "CreateApiKey", "CreateUsagePlan"}
ROLE_NOT_READY = re.compile(r"cannot be assumed|does not have permissions to call", re.IGNORECASE)
TRANSIENT = {"InternalFailure", "InternalError", "ServiceUnavailable", "ServiceException", "RequestTimeout"}


@dataclass(frozen=True)
class RetryRule:
    """Capped exponential backoff (``base`` · 2ⁿ up to ``cap`` seconds) until ``budget`` seconds were waited."""

    base: float
    cap: float
    budget: float

    def delay(self, retry: int, waited: float) -> float | None:
        """The pause before retry number ``retry`` (0-based), or None once the budget is spent."""
        if waited >= self.budget:
            return None
        return min(self.cap, self.base * 2**retry, self.budget - waited)


RULES = {
    "throttled": RetryRule(base=1, cap=20, budget=240),
    "transient": RetryRule(base=0.5, cap=4, budget=15),
    "function busy": RetryRule(base=1, cap=5, budget=180),
    "concurrent modification": RetryRule(base=1, cap=8, budget=120),
    "role propagating": RetryRule(base=2, cap=10, budget=150),
}
FUNCTION_WAIT = RetryRule(base=1, cap=5, budget=600)  # Pending / InProgress, read until it ends
# Lambda releases a deleted function's network interfaces within minutes, at times up to ~40
ENI_WAIT = RetryRule(base=5, cap=30, budget=2700)
ENI_DESCRIPTION = "AWS Lambda VPC ENI-{function}*"
PROGRESS_EVERY_SECONDS = 30
# Lambda keeps min(100, the account's concurrency limit) executions unreserved: "You can reserve up to the
# Unreserved account concurrency value minus 100" (docs: configuration-concurrency); an account whose limit is
# 10 is refused "... below its minimum value of [10]" (aws-samples/one-observability-demo#278).
UNRESERVED_MINIMUM = 100
# Operations after which a function is being updated (LastUpdateStatus InProgress, or State Pending)
FUNCTION_UPDATES = {"create_function", "update_function_code", "update_function_configuration"}


class AwsWaitError(Exception):
    """Something AWS does asynchronously did not finish in time; one line with the fix."""


class MissingPermission(Exception):
    """These credentials lack a permission lamed needs to tell what is there; one line naming it."""


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def read(call: Callable[..., dict], **kwargs) -> dict | None:
    """``call(**kwargs)``, or None when AWS says the thing does not exist."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise


def dns_suffix(session: boto3.Session) -> str:
    """The DNS suffix of the session region's partition (``amazonaws.com``, ``amazonaws.com.cn``, …),
    from botocore's partition data."""
    endpoints = session._session.get_component("data_loader").load_data("endpoints")
    return EndpointResolver(endpoints).get_partition_dns_suffix(session.get_partition_for_region(session.region_name))


@dataclass
class Pacer:
    """The pause between one client's requests: doubled by each throttle, halved by each success."""

    interval: float = 0.0
    last: float | None = None

    def slower(self) -> None:
        self.interval = min(5.0, max(0.25, self.interval * 2))

    def faster(self) -> None:
        self.interval = 0.0 if self.interval < 0.1 else self.interval / 2


@dataclass
class Aws:
    """Clients for one account and region with lamed's retries, plus values learned while a plan runs."""

    place: Place
    session: boto3.Session
    echo: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    values: dict = field(default_factory=dict)
    clients: dict = field(default_factory=dict)
    pacers: dict = field(default_factory=dict)
    ready: set = field(default_factory=set)  # functions known to be Active with no update running
    updated: set = field(default_factory=set)  # functions this run created or updated

    @classmethod
    def connect(
        cls,
        session: boto3.Session,
        echo: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> "Aws":
        """lamed's view of ``session``; asks STS who we are, which also proves the credentials work.

        The partition is the one of the caller's ARN (``arn:aws-cn:…`` in China).
        """
        aws = cls(Place("aws", session.region_name, ""), session, echo, sleep, clock)
        identity = aws.client("sts").get_caller_identity()
        partition = identity["Arn"].split(":")[1]
        aws.place = Place(partition, session.region_name, identity["Account"])
        return aws

    # -- clients -----------------------------------------------------------------------

    def client(self, service: str):
        """The boto3 client of ``service``, made once, with lamed's retries instead of botocore's."""
        if service not in self.clients:
            client = self.session.client(service, config=BotoConfig(retries={"total_max_attempts": 1}))
            pacer = self.pacers.setdefault(service, Pacer())
            client.meta.events.register("request-created", lambda **_: self._pace(pacer))
            client.meta.events.register("needs-retry", lambda **kwargs: self._retry(service, pacer, **kwargs))
            self.clients[service] = client
        return self.clients[service]

    @property
    def lambda_(self):
        return self.client("lambda")

    @property
    def iam(self):
        return self.client("iam")

    @property
    def apigateway(self):
        return self.client("apigateway")

    @property
    def logs(self):
        return self.client("logs")

    @property
    def ec2(self):
        return self.client("ec2")

    # -- retries -----------------------------------------------------------------------

    def _pace(self, pacer: Pacer) -> None:
        if pacer.interval and pacer.last is not None:
            pause = pacer.last + pacer.interval - self.clock()
            if pause > 0:
                self.sleep(pause)
        pacer.last = self.clock()

    def _retry(self, service, pacer, response, caught_exception, request_dict, operation, attempts, **_) -> float | None:
        """botocore's ``needs-retry`` hook: waits (through ``self.sleep``) and returns 0 to retry, None to stop."""
        reason = self._retry_reason(service, operation.name, response, caught_exception)
        if reason is None:
            pacer.faster()
            return None
        if reason == "throttled":
            pacer.slower()
        context = request_dict["context"]
        waited = context.get("lamed_waited", 0.0)
        delay = RULES[reason].delay(attempts - 1, waited)
        if delay is None:
            return None
        if reason == "role propagating" and _progress_due(waited, delay):
            budget = int(RULES[reason].budget)
            self.echo(f"waiting    for IAM to let Lambda use the role ({int(waited)} s so far, at most {budget} s)")
        self.sleep(delay)
        context["lamed_waited"] = waited + delay
        return 0

    @staticmethod
    def _retry_reason(service: str, operation: str, response, caught) -> str | None:
        if caught is not None:
            lost = isinstance(caught, BotoConnectionError | HTTPClientError)
            return "transient" if lost and operation not in CREATES else None
        http, parsed = response
        if http.status_code < 300:
            return None
        error = parsed.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code in THROTTLED or http.status_code == 429:
            return "throttled"
        if code in TRANSIENT or http.status_code >= 500:
            return "transient"
        if service == "lambda" and code == "ResourceConflictException" and not ALREADY_EXISTS.search(message):
            return "function busy"
        if service == "apigateway" and code == "ConflictException" and CONCURRENT_MODIFICATION.search(message):
            return "concurrent modification"
        if (
            service == "lambda"
            and operation in ("CreateFunction", "UpdateFunctionConfiguration")
            and code == "InvalidParameterValueException"
            and ROLE_NOT_READY.search(message)
        ):
            return "role propagating"
        return None

    def create_once(self, operation: str, create: Callable[[], dict], find: Callable[[], dict | None]) -> dict:
        """``create()``, made so that a lost answer cannot create twice: after a dropped connection
        (or Lambda's "already exist"), ``find()`` looks for the thing by name and tag, and only when
        it finds nothing is the call sent again."""
        waited, retry = 0.0, 0
        while True:
            try:
                return create()
            except (BotoConnectionError, HTTPClientError, ClientError) as exc:
                if isinstance(exc, ClientError) and not ALREADY_EXISTS.search(str(exc)):
                    raise
                found = find()
                if found is not None:
                    return found
                delay = RULES["transient"].delay(retry, waited)
                if delay is None:
                    raise
                self.echo(f"retrying   {operation}: its answer was lost and nothing was created")
                self.sleep(delay)
                waited, retry = waited + delay, retry + 1

    # -- Lambda functions --------------------------------------------------------------

    def reservable_concurrency(self, current: int | None) -> tuple[int, str]:
        """How much one function may reserve in this account (its ``current`` reservation counted
        back), and why: the account's limit and unreserved executions, from GetAccountSettings."""
        limit = self.lambda_.get_account_settings()["AccountLimit"]
        total, unreserved = limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]
        minimum = min(UNRESERVED_MINIMUM, total)
        most = max(0, unreserved + (current or 0) - minimum)
        return most, f"the account's concurrency limit is {total}, {unreserved} unreserved, of which Lambda keeps {minimum}"

    def function_tags(self, name: str, found: dict) -> dict:
        """The tags of function ``name`` whose GetFunction answer is ``found``.

        GetFunction returns ``Tags`` only to callers allowed ``lambda:ListTags`` (botocore's Lambda
        model, GetFunctionResponse.Tags): without them, ListTags says whether there are none or
        the permission is missing, which is named rather than taken for a function not lamed's.
        """
        if "Tags" in found:
            return found["Tags"] or {}
        arn = function_arn(name, self.place)
        try:
            return self.lambda_.list_tags(Resource=arn).get("Tags") or {}
        except ClientError as exc:
            if error_code(exc) in ACCESS_DENIED:
                raise MissingPermission(
                    f"these AWS credentials may not read function {name}'s tags (lambda:ListTags), so lamed "
                    f"cannot tell whether it created it — fix: allow lambda:ListTags on {arn} "
                    "(docs/iam-policy.json has every permission lamed needs)"
                ) from exc
            raise

    def lambda_call(self, function: str, operation: str, **kwargs) -> dict:
        """A Lambda call that changes ``function``, made once the function is ready for it."""
        if operation != "create_function" and function not in self.ready:
            self.wait_function(function)
        result = getattr(self.lambda_, operation)(**kwargs)
        if operation in FUNCTION_UPDATES:
            self.ready.discard(function)
            self.updated.add(function)
        return result

    def wait_function(self, function: str, version: str | None = None) -> dict:
        """Wait until ``function`` (or its published ``version``: botocore's PublishedVersionActive
        waiter) is Active (or Inactive) with no update running; its configuration."""
        waited, retry = 0.0, 0
        subject = f"function {function}" + (f" version {version}" if version else "")
        while True:
            qualifier = {"Qualifier": version} if version else {}
            config = self.lambda_.get_function_configuration(FunctionName=function, **qualifier)
            state, update = config.get("State", "Active"), config.get("LastUpdateStatus", "Successful")
            if state == "Failed":
                raise AwsWaitError(
                    f"{subject} is in state Failed ({config.get('StateReason', 'no reason given')}) "
                    "— fix: run `lamed deploy` again, which recreates it"
                )
            if update == "Failed" and function in self.updated:  # an earlier run's failure does not block a new update
                raise AwsWaitError(
                    f"the update of {subject} failed ({config.get('LastUpdateStatusReason', 'no reason given')}), "
                    "so its live alias was left on the version it served — fix: correct that cause, then run "
                    "`lamed deploy` again"
                )
            if state != "Pending" and update != "InProgress":
                if version is None:
                    self.ready.add(function)
                return config
            delay = FUNCTION_WAIT.delay(retry, waited)
            if delay is None:
                raise AwsWaitError(
                    f"{subject} is still {state}/{update} after {int(waited)} s "
                    "— fix: check it in the Lambda console, then run the command again"
                )
            self.sleep(delay)
            waited, retry = waited + delay, retry + 1

    def wait_network_interfaces(self, functions: list[str]) -> None:
        """Wait until Lambda has deleted the network interfaces of ``functions`` (in a VPC), with progress."""
        patterns = [ENI_DESCRIPTION.format(function=function) for function in functions]
        waited, retry = 0.0, 0
        while True:
            pages = self.ec2.get_paginator("describe_network_interfaces").paginate(
                Filters=[{"Name": "description", "Values": patterns}]
            )
            count = sum(len(page["NetworkInterfaces"]) for page in pages)
            if not count:
                return
            delay = ENI_WAIT.delay(retry, waited)
            if delay is None:
                raise AwsWaitError(
                    f"Lambda still holds {count} network interface(s) of the functions after {int(waited)} s, "
                    "so the role is kept — fix: run `lamed destroy` again later"
                )
            if _progress_due(waited, delay):
                self.echo(f"waiting    for Lambda to release {count} network interface(s) ({int(waited)} s so far)")
            self.sleep(delay)
            waited, retry = waited + delay, retry + 1


def _progress_due(waited: float, delay: float) -> bool:
    """Whether a wait that has lasted ``waited`` s prints a line before pausing ``delay`` s more (at once, then every 30 s)."""
    return not waited or waited // PROGRESS_EVERY_SECONDS != (waited + delay) // PROGRESS_EVERY_SECONDS


def stage_url(api_id: str, region: str, suffix: str, stage: str) -> str:
    """The invoke URL of a REST API stage, without a trailing slash."""
    return f"https://{api_id}.execute-api.{region}.{suffix}/{stage}"
