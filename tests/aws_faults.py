"""A stricter AWS in front of the moto server: botocore event hooks on the clients the CLI builds.

moto answers at once and forgives what AWS does not. :class:`FaultyAws` makes the CLI's
clients meet AWS's behaviour, on a fake clock that only lamed's waits (its injected
``sleep``) and each request's latency move forward, so nothing really sleeps:

- a new function is Pending, an updated one InProgress, for a few seconds: reads show it,
  and changes meanwhile raise ResourceConflictException;
- for a few seconds after its role is created (or given a policy) Lambda cannot use it:
  CreateFunction / UpdateFunctionConfiguration raise the propagation errors;
- API Gateway throttles (TooManyRequestsException) above its control-plane rates;
- AddPermission with a statement id that exists raises ResourceConflictException;
- optionally, the run is interrupted just before its n-th AWS call.

Where moto falls short the layer fills in: moto 5.2 tags only API Gateway stages, so the
layer keeps the tags TagResource puts on REST APIs, usage plans and API keys, and shows
them in the reads that list those.

:class:`LikeAws` (installed by the deploy tests, and by the layer) makes moto's Lambda answer
function-URL permissions as AWS does, checks the URL's CORS as AWS does, refuses every
function-URL call in the regions that have none, refuses PutRolePolicy beyond IAM's quota on a
role's inline policies (LimitExceeded), and records the parameters of AddPermission
and the function-URL calls (moto ignores their ``Qualifier``).

Errors are answered from ``before-send`` as HTTP responses in the service's own format,
so botocore parses them, and lamed's retries see them, as they would AWS's.

Each behaviour added here is an entry of tests/aws_behaviours.py's catalogue, with its source:
an event kind of :attr:`FaultyAws.events`, or a ``behaviour: NAME`` comment where it is modelled.
"""

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import boto3
import requests
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ParamValidationError

import lamed.aws.client
import lamed.aws.session
from aws_answers import answer
from iam_policy import PolicyCheck
from lamed.aws.resources import NO_FUNCTION_URL_REGIONS

READ_PREFIXES = ("Get", "List", "Describe")
BUSY_OPERATIONS = {"UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion", "DeleteFunction"}
STATE_READS = {"GetFunctionConfiguration", "GetFunction"}
PROPAGATING = {"CreateFunction", "UpdateFunctionConfiguration"}
ROLE_CHANGES = {"CreateRole", "PutRolePolicy"}
# API Gateway's control plane: seconds between two calls of an operation, and requests/s with a burst overall
APIGATEWAY_INTERVALS = {"CreateDeployment": 5, "UpdateUsagePlan": 20, "CreateRestApi": 3, "DeleteRestApi": 30}
APIGATEWAY_RATE, APIGATEWAY_BURST = 10, 40
# The CLI's own (it imports them when a command runs), before any layer is installed
# (a second layer replaces the first)
MAKE_SESSION, CONNECT = lamed.aws.session.make_session, lamed.aws.client.Aws.connect.__func__


class Interrupted(BaseException):
    """The run was stopped (as by Ctrl-C) before an AWS call."""


def _error(code: str, status: int, message: str) -> AWSResponse:
    """An error answer in the rest-json format Lambda and API Gateway use."""
    headers = {"x-amzn-errortype": code, "content-type": "application/json", "x-amzn-requestid": "fault-layer"}
    body = json.dumps({"Type": "User", "message": message}).encode()
    return answer(status, headers, body)


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def _no_function_urls(**_) -> AWSResponse:  # behaviour: no function urls
    return _error("AccessDeniedException", 403, NO_FUNCTION_URL_MESSAGE)


# moto keeps AddPermission's condition parameters as raw keys; AWS writes them as policy conditions
POLICY_CONDITIONS = {
    "FunctionUrlAuthType": lambda value: {"StringEquals": {"lambda:FunctionUrlAuthType": value}},
    "InvokedViaFunctionUrl": lambda value: {"Bool": {"lambda:InvokedViaFunctionUrl": str(value).lower()}},
}
URL_OPERATIONS = ("CreateFunctionUrlConfig", "UpdateFunctionUrlConfig", "GetFunctionUrlConfig", "DeleteFunctionUrlConfig")
CORS_METHOD_MAX = 6  # Lambda's Cors.AllowMethods entries: at most 6 characters (botocore checks no maximum)
# In the regions without function URLs (AWS's list, kept by lamed as NO_FUNCTION_URL_REGIONS) Lambda
# refuses every function-URL operation, reads included (the catalogue's "no function urls")
NO_FUNCTION_URL_OPERATIONS = (*URL_OPERATIONS, "ListFunctionUrlConfigs")
NO_FUNCTION_URL_MESSAGE = "Unable to determine service/operation name to be authorized"
ROLE_POLICY_QUOTA = 10_240  # IAM's "Role policy size": a role's inline policies together, white space not counted


def _iam_size(document: str) -> int:
    """A policy document's size as IAM counts it against the quota: its characters but white space."""
    return len("".join(document.split()))


def _role_policy_size(checker, request) -> AWSResponse | None:  # behaviour: role policy size
    """PutRolePolicy taking the role's inline policies over the quota: LimitExceeded (409, botocore's IAM model)
    "Maximum policy size of 10240 bytes exceeded for role NAME" (moto has no quota)."""
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    params = {key: values[0] for key, values in parse_qs(body).items()}
    role, name = params["RoleName"], params["PolicyName"]
    pages = checker.get_paginator("list_role_policies").paginate(RoleName=role)
    others = [other for page in pages for other in page["PolicyNames"] if other != name]
    size = _iam_size(params["PolicyDocument"]) + sum(
        _iam_size(json.dumps(checker.get_role_policy(RoleName=role, PolicyName=other)["PolicyDocument"])) for other in others
    )
    if size <= ROLE_POLICY_QUOTA:
        return None
    message = f"Maximum policy size of {ROLE_POLICY_QUOTA} bytes exceeded for role {role}"
    body = f"<ErrorResponse><Error><Type>Sender</Type><Code>LimitExceeded</Code><Message>{message}</Message></Error></ErrorResponse>"
    return answer(409, {"content-type": "text/xml"}, body.encode())


@dataclass
class LikeAws:
    """Hooks on the CLI's sessions where moto's Lambda is laxer than AWS; ``added_permissions`` and
    ``url_calls`` hold the parameters of AddPermission and of the function-URL calls, in order."""

    added_permissions: list = field(default_factory=list)
    url_calls: list = field(default_factory=list)
    concurrency_asked: tuple = ()
    policy: PolicyCheck | None = None  # when set, every call is held to that IAM policy
    concurrency_limit: int = 1000  # the account's Lambda concurrency quota (AWS's default; new accounts: 10)

    def attach(self, session) -> None:
        if self.policy is not None:
            self.policy.attach(session)
        checker = boto3.Session(region_name=session.region_name).client("lambda")
        session.events.register("before-parameter-build.lambda.*", self._before_call)
        session.events.register("before-send.lambda.*", lambda event_name, **_: self._concurrency(checker, event_name))
        session.events.register("after-call.lambda.GetPolicy", self._policy_as_aws_writes_it)
        iam = boto3.Session(region_name=session.region_name).client("iam")
        session.events.register("before-send.iam.PutRolePolicy", lambda request, **_: _role_policy_size(iam, request))
        if session.region_name in NO_FUNCTION_URL_REGIONS:
            for operation in NO_FUNCTION_URL_OPERATIONS:
                session.events.register(f"before-send.lambda.{operation}", _no_function_urls)

    def _concurrency(self, checker, event_name: str):  # behaviour: account concurrency
        """moto has no GetAccountSettings and reserves without limit: answer both as AWS does, keeping
        min(100, limit) unreserved (docs: configuration-concurrency; "[10]" at a limit of 10:
        aws-samples/one-observability-demo#278, "[50]" at 50: milliHQ/terraform-aws-next-js#251)."""
        operation = event_name.rsplit(".", 1)[1]
        if operation not in ("GetAccountSettings", "PutFunctionConcurrency"):
            return None
        reserved = {}
        for function in checker.list_functions()["Functions"]:
            name = function["FunctionName"]
            reserved[name] = checker.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") or 0
        if operation == "GetAccountSettings":
            limit = {"ConcurrentExecutions": self.concurrency_limit, "UnreservedConcurrentExecutions": self.concurrency_limit - sum(reserved.values())}
            body = {"AccountLimit": limit, "AccountUsage": {"FunctionCount": len(reserved), "TotalCodeSize": 0}}
            return answer(200, {"content-type": "application/json"}, json.dumps(body).encode())
        name, wanted = self.concurrency_asked
        minimum = min(100, self.concurrency_limit)
        if self.concurrency_limit - sum(v for k, v in reserved.items() if k != name) - wanted < minimum:
            message = (
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
                f"below its minimum value of [{minimum}]."
            )
            return _error("InvalidParameterValueException", 400, message)
        return None

    def install(self, patch) -> "LikeAws":
        """Attach to every session the CLI makes from now on (a :class:`FaultyAws` attaches its own)."""

        def session_like_aws(profile, region):
            session = MAKE_SESSION(profile, region)
            self.attach(session)
            return session

        patch.setattr(lamed.aws.session, "make_session", session_like_aws)
        return self

    def _before_call(self, params, model, **_):
        if model.name == "PutFunctionConcurrency":
            self.concurrency_asked = (params["FunctionName"], params["ReservedConcurrentExecutions"])
        if model.name == "AddPermission":
            self.added_permissions.append(dict(params))
        if model.name in URL_OPERATIONS:
            self.url_calls.append((model.name, dict(params)))
            # behaviour: cors methods
            too_long = [m for m in (params.get("Cors") or {}).get("AllowMethods", []) if len(m) > CORS_METHOD_MAX]
            if too_long:
                raise ParamValidationError(report=f"Cors.AllowMethods {too_long}: at most {CORS_METHOD_MAX} characters each")

    def _policy_as_aws_writes_it(self, parsed, **_):  # behaviour: policy conditions
        if "Policy" not in parsed:
            return
        policy = json.loads(parsed["Policy"])
        for statement in policy.get("Statement", []):
            for key, condition in POLICY_CONDITIONS.items():
                if key in statement:
                    for operator, values in condition(statement.pop(key)).items():
                        statement.setdefault("Condition", {}).setdefault(operator, {}).update(values)
        parsed["Policy"] = json.dumps(policy)


@dataclass
class FaultyAws:
    """The fault layer and its fake clock; ``calls`` lists (service, operation, params) of every AWS call."""

    latency: float = 0.15  # seconds a request takes
    pending_seconds: float = 3.0  # a new function's Pending
    update_seconds: float = 2.0  # an update's InProgress
    propagation_seconds: float = 9.0  # a new role (or policy) unusable by Lambda
    abort_before: int | None = None  # interrupt before this call (0-based), None: never
    conflicts: int = 0  # this many changes to functions meet a concurrent update first (ResourceConflictException)
    api_conflicts: int = 0  # this many API Gateway changes meet a concurrent modification first (ConflictException)
    lost: set = field(default_factory=set)  # operations whose first answer is lost after AWS acted on it
    failing_updates: dict = field(default_factory=dict)  # function -> reason its next update fails with
    versions_pending: dict = field(default_factory=dict)  # (function, version) -> until when reads show it Pending
    failed: set = field(default_factory=set)  # functions whose reads show State Failed until recreated
    reactions: dict = field(default_factory=dict)  # operation -> callable(layer), run after each successful call
    now: float = 0.0
    calls: list = field(default_factory=list)
    events: list = field(default_factory=list)  # what the layer did: ("conflict", op), ("throttled", op), ...
    busy: dict = field(default_factory=dict)  # function -> (state, until)
    role_ready_at: float = 0.0
    last_call: dict = field(default_factory=dict)
    tokens: float = APIGATEWAY_BURST
    tokens_at: float = 0.0
    current: tuple | None = None
    checker: object = None
    apigateway_tags: dict = field(default_factory=dict)  # id -> tags set by TagResource
    like_aws: LikeAws = field(default_factory=LikeAws)

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def clock(self) -> float:
        return self.now

    def install(self, patch) -> "FaultyAws":
        """Put the layer on every session the CLI makes, and its clock into lamed's waits."""
        layer = self

        def faulty_session(profile, region):
            session = MAKE_SESSION(profile, region)
            session.events.register("before-parameter-build.*.*", layer._before_call)
            session.events.register("before-send.*.*", layer._before_send)
            session.events.register("after-call.*.*", layer._after_call)
            layer.like_aws.attach(session)
            layer.checker = boto3.Session(region_name=session.region_name).client("lambda")
            return session

        def faulty_connect(cls, session, echo=print, **_):
            return CONNECT(cls, session, echo=echo, sleep=layer.sleep, clock=layer.clock)

        patch.setattr(lamed.aws.session, "make_session", faulty_session)
        patch.setattr(lamed.aws.client.Aws, "connect", classmethod(faulty_connect))
        return self

    # -- figures -------------------------------------------------------------------------

    def counts(self, start: int = 0) -> tuple[int, int]:
        """(reads, writes) among the calls since index ``start``."""
        operations = [operation for _, operation, _ in self.calls[start:]]
        reads = sum(map(is_read, operations))
        return reads, len(operations) - reads

    # -- hooks ---------------------------------------------------------------------------

    def _before_call(self, params, model, event_name, **_):
        service = event_name.split(".")[1]
        if self.abort_before is not None and len(self.calls) == self.abort_before:
            self.abort_before = None
            raise Interrupted(f"interrupted before {model.name}")
        self.current = (service, model.name, dict(params))
        self.calls.append(self.current)

    def _before_send(self, request, **_):
        self.now += self.latency
        service, operation, params = self.current
        if operation in self.lost:
            self._lose_answer(operation, request)
        if service == "lambda":
            return self._lambda_fault(operation, params)
        if service == "api-gateway":
            return self._throttle(operation) or self._api_conflict(operation) or self._tag(operation, params)
        return None

    def _lose_answer(self, operation: str, request) -> None:
        """AWS acts on the request, and its answer never arrives (a dropped connection)."""
        self.lost.discard(operation)
        self.events.append(("lost", operation))
        body = request.body.read() if hasattr(request.body, "read") else request.body
        requests.request(request.method, request.url, headers=dict(request.headers), data=body, timeout=30)
        raise ConnectionClosedError(endpoint_url=request.url)

    def _api_conflict(self, operation: str):
        if self.api_conflicts and not is_read(operation):
            self.api_conflicts -= 1
            self.events.append(("concurrent modification", operation))
            return _error("ConflictException", 409, "Unable to complete operation due to concurrent modification. Please try again later.")
        return None

    def _tag(self, operation: str, params: dict):  # behaviour: tags
        if operation != "TagResource" or "/stages/" in params["resourceArn"]:
            return None
        resource = params["resourceArn"].rsplit("/", 1)[1]
        self.apigateway_tags.setdefault(resource, {}).update(params["tags"])
        return answer(204, {"x-amzn-requestid": "fault-layer"}, b"")

    def _lambda_fault(self, operation: str, params: dict):
        name = params.get("FunctionName", "")
        state, until, *_ = self.busy.get(name, (None, 0.0))
        if operation in BUSY_OPERATIONS and self.conflicts:
            self.conflicts -= 1
            self.events.append(("conflict", operation))
            return _error("ResourceConflictException", 409, "The function could not be updated due to a concurrent update operation.")
        if operation in BUSY_OPERATIONS and self.now < until:
            self.events.append(("conflict", operation))
            message = f"The operation cannot be performed at this time. An update is in progress for resource: {name}"
            if state == "Pending":
                message = "The operation cannot be performed at this time. The function is currently in the following state: Pending"
            return _error("ResourceConflictException", 409, message)
        if operation in PROPAGATING and self.now < self.role_ready_at:
            self.events.append(("propagating", operation))
            if (params.get("VpcConfig") or {}).get("SubnetIds"):
                message = "The provided execution role does not have permissions to call CreateNetworkInterface on EC2"
            else:
                message = "The role defined for the function cannot be assumed by Lambda."
            return _error("InvalidParameterValueException", 400, message)
        if operation == "AddPermission" and self._statement_exists(params):
            self.events.append(("duplicate statement", operation))
            message = (
                f"The statement id ({params['StatementId']}) provided already exists. Please provide a new statement "
                "id, or remove the existing statement."
            )
            return _error("ResourceConflictException", 409, message)
        return None

    def _statement_exists(self, params: dict) -> bool:
        try:
            policy = self.checker.get_policy(FunctionName=params["FunctionName"], Qualifier=params.get("Qualifier"))
        except self.checker.exceptions.ResourceNotFoundException:
            return False
        return any(item.get("Sid") == params["StatementId"] for item in json.loads(policy["Policy"])["Statement"])

    def _throttle(self, operation: str):
        self.tokens = min(APIGATEWAY_BURST, self.tokens + (self.now - self.tokens_at) * APIGATEWAY_RATE)
        self.tokens_at = self.now
        interval = APIGATEWAY_INTERVALS.get(operation)
        last = self.last_call.get(operation)
        if self.tokens < 1 or (interval and last is not None and self.now - last < interval):
            self.events.append(("throttled", operation))
            return _error("TooManyRequestsException", 429, "Too Many Requests")
        self.tokens -= 1
        self.last_call[operation] = self.now
        return None

    def _after_call(self, http_response, parsed, model, event_name, **_):
        if http_response.status_code >= 300:
            return
        service, operation = event_name.split(".")[1], model.name
        _, _, params = self.current
        if operation in self.reactions:
            self.reactions[operation](self)
        if operation in ("GetRestApis", "GetUsagePlans", "GetApiKeys"):
            for item in parsed.get("items", []):
                if item["id"] in self.apigateway_tags:
                    item["tags"] = {**item.get("tags", {}), **self.apigateway_tags[item["id"]]}
        if service == "iam" and operation in ROLE_CHANGES:
            self.role_ready_at = self.now + self.propagation_seconds
        if service != "lambda":
            return
        name = params.get("FunctionName", "")
        if operation == "CreateFunction":  # behaviour: pending
            self.busy[name] = ("Pending", self.now + self.pending_seconds)
            self.failed.discard(name)
        elif operation in ("UpdateFunctionCode", "UpdateFunctionConfiguration"):
            self.busy[name] = ("InProgress", self.now + self.update_seconds)
            if name in self.failing_updates:  # behaviour: failed update
                self.busy[name] = ("Failed", self.now + self.update_seconds, self.failing_updates.pop(name))
        elif operation == "PublishVersion":  # behaviour: version pending
            self.versions_pending[(name, parsed["Version"])] = self.now + self.pending_seconds
        elif operation in STATE_READS:
            state, until, *reason = self.busy.get(name, (None, 0.0))
            configuration = parsed.get("Configuration", parsed)
            if self.now < self.versions_pending.get((name, params.get("Qualifier")), 0.0):
                configuration["State"] = "Pending"
            elif self.now < until:
                configuration["State"] = "Pending" if state == "Pending" else "Active"
                configuration["LastUpdateStatus"] = "InProgress"
            elif state == "Failed":
                configuration["LastUpdateStatus"], configuration["LastUpdateStatusReason"] = "Failed", reason[0]
            if name in self.failed:  # behaviour: failed state
                configuration["State"], configuration["StateReason"] = "Failed", "fault layer: ENI limit reached"
