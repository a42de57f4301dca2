"""An IAM policy evaluator on the CLI's clients: every AWS call is checked against docs/iam-policy.json.

:class:`PolicyCheck` hooks the botocore sessions the CLI makes (before the fault layer's own
hooks, as AWS authorises a request before anything else) and answers a call the policy does
not allow with AWS's AccessDenied, recording it in ``denied``. The rules modelled, each from
AWS's documentation:

- the action is ``{signing name}:{operation}`` (the service authorization reference names
  Lambda, IAM, CloudWatch Logs, EC2 actions after their API operations); API Gateway's is
  ``apigateway:{HTTP method}`` on ``arn:{partition}:apigateway:{region}::{path}``
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-control-access-using-iam-policies-to-create-and-manage-api.html);
- a Lambda call's resource is the function's ARN, qualified when the call names a qualifier
  (https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html);
- ``*`` and ``?`` match within an ARN segment; a ``*`` that ends a segment matches across
  colons (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html);
- CreateFunction and UpdateFunctionConfiguration with a ``Role`` need ``iam:PassRole`` on it
  (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html);
- CreateFunction with ``Tags`` needs ``lambda:TagResource``, and GetFunction returns ``Tags``
  only where ``lambda:ListTags`` is allowed (botocore's Lambda model, GetFunctionResponse.Tags;
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-tags.html#fxn-tags-required-permissions);
- CreateRole with ``Tags`` needs ``iam:TagRole``
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags_roles.html);
- STS GetCallerIdentity needs no permission
  (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSResponse

from aws_answers import answer

POLICY_FILE = Path(__file__).resolve().parent.parent / "docs" / "iam-policy.json"
ACCOUNT = "123456789012"  # moto's
UNCHECKED = {("sts", "GetCallerIdentity")}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _segment_pattern(segment: str) -> str:
    """A regex for one ARN segment: ``*`` within it, or across colons when it ends the segment."""
    parts = []
    for index, char in enumerate(segment):
        if char == "*":
            parts.append(".*" if index == len(segment) - 1 else "[^:]*")
        elif char == "?":
            parts.append("[^:]")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def arn_matches(pattern: str, arn: str) -> bool:
    """Whether ``arn`` is covered by the policy's Resource ``pattern`` (case-sensitive)."""
    if pattern == "*":
        return True
    segments = pattern.split(":")
    regex = ":".join(_segment_pattern(segment) for segment in segments)
    return re.fullmatch(regex, arn) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Actions compare case-insensitively, with ``*`` and ``?``."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, action.lower()) is not None


@dataclass
class Policy:
    """An identity policy: allowed when an Allow statement covers (action, resource) and no Deny does."""

    document: dict

    @classmethod
    def load(cls, path: Path = POLICY_FILE) -> "Policy":
        return cls(json.loads(path.read_text()))

    def without(self, action: str) -> "Policy":
        """This policy with ``action`` removed from every statement (to test what its absence does)."""
        document = json.loads(json.dumps(self.document))
        for statement in document["Statement"]:
            statement["Action"] = [name for name in _as_list(statement["Action"]) if name != action]
        return Policy(document)

    def allows(self, action: str, resource: str) -> bool:
        def covers(statement) -> bool:
            return any(action_matches(p, action) for p in _as_list(statement["Action"])) and any(
                arn_matches(p, resource) for p in _as_list(statement["Resource"])
            )

        statements = self.document["Statement"]
        if any(s["Effect"] == "Deny" and covers(s) for s in statements):
            return False
        return any(s["Effect"] == "Allow" and covers(s) for s in statements)


def function_arn(name: str, region: str, qualifier: str | None = None) -> str:
    if name.startswith("arn:"):
        return name if qualifier is None else f"{name}:{qualifier}"
    arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
    return arn if qualifier is None else f"{arn}:{qualifier}"


def required(service: str, operation: str, params: dict, region: str, url: str) -> list[tuple[str, str]]:
    """The (action, resource) pairs the call needs allowed."""
    if service == "apigateway":
        return [(f"apigateway:{_VERBS[operation]}", f"arn:aws:apigateway:{region}::{unquote(urlsplit(url).path)}")]
    action = f"{service}:{operation}"
    if service == "lambda":
        if "FunctionName" in params:
            resource = function_arn(params["FunctionName"], region, params.get("Qualifier"))
        else:
            resource = params.get("Resource", "*")
        needs = [(action, resource)]
        if operation in ("CreateFunction", "UpdateFunctionConfiguration") and params.get("Role"):
            needs.append(("iam:PassRole", params["Role"]))
        if operation == "CreateFunction" and params.get("Tags"):
            needs.append(("lambda:TagResource", resource))
        return needs
    if service == "iam":
        needs = [(action, f"arn:aws:iam::{ACCOUNT}:role/{params['RoleName']}" if "RoleName" in params else "*")]
        if operation == "CreateRole" and params.get("Tags"):
            needs.append(("iam:TagRole", needs[0][1]))
        return needs
    if service == "logs":
        if "logGroupName" in params:
            return [(action, f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{params['logGroupName']}")]
        return [(action, params.get("resourceArn", "*"))]
    return [(action, "*")]


_VERBS: dict[str, str] = {}  # API Gateway operation -> HTTP method, filled from botocore's model on first use


def _access_denied(service: str, action: str, resource: str) -> AWSResponse:
    message = f"User: arn:aws:iam::{ACCOUNT}:user/deployer is not authorized to perform: {action} on resource: {resource}"
    code = "AccessDeniedException"
    if service == "iam":  # the query protocol's XML error
        body = f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message></Error></ErrorResponse>"
        return answer(403, {"content-type": "text/xml"}, body.encode())
    if service == "ec2":
        body = f"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>{message}</Message></Error></Errors></Response>"
        return answer(403, {"content-type": "text/xml"}, body.encode())
    headers = {"x-amzn-errortype": code, "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": "policy-check"}
    return answer(403, headers, json.dumps({"__type": code, "message": message}).encode())


@dataclass
class PolicyCheck:
    """Hooks that hold every call of the CLI's sessions to ``policy``: ``checked`` lists each
    (action, resource) asked for, ``denied`` those refused (answered with AccessDenied)."""

    policy: Policy = field(default_factory=Policy.load)
    checked: list = field(default_factory=list)
    denied: list = field(default_factory=list)

    def attach(self, session) -> None:
        region = session.region_name
        current = {}

        def remember(params, model, **_):
            current["call"] = (model.service_model.signing_name, model.name, dict(params))
            if model.service_model.signing_name == "apigateway" and not _VERBS:
                service = model.service_model
                _VERBS.update({name: service.operation_model(name).http["method"] for name in service.operation_names})

        def authorise(request, **_):  # behaviour: access denied
            service, operation, params = current["call"]
            if (service, operation) in UNCHECKED:
                return None
            for action, resource in required(service, operation, params, region, request.url):
                self.checked.append((action, resource))
                if not self.policy.allows(action, resource):
                    self.denied.append((action, resource))
                    return _access_denied(service, action, resource)
            return None

        def tags_only_where_listable(parsed, **_):  # behaviour: tags need list tags
            _, _, params = current["call"]
            listing = ("lambda:ListTags", function_arn(params["FunctionName"], region))
            self.checked.append(listing)
            if "Tags" in parsed and not self.policy.allows(*listing):
                del parsed["Tags"]

        session.events.register("before-parameter-build.*.*", remember)
        session.events.register_first("before-send.*.*", authorise)
        session.events.register("after-call.lambda.GetFunction", tags_only_where_listable)
