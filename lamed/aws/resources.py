"""The desired state of a lamed deployment: passive models built from the config.

Nothing here talks to AWS. :func:`desired_state` turns a :class:`~lamed.config.Config`,
the Lambda zip and a stage's :class:`Names` into functions, routes and names; the planner
compares them with what AWS has. Every AWS name of a stage comes from :class:`Names`.
API Gateway methods are described in the shape ``get_method`` returns, so one description
serves both the comparison and the calls that create it. ARNs are built from a
:class:`Place` (partition, region, account), never with a literal partition.
"""

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field

from lamed.config import RUNTIME_KEYS, Config, ConfigError

STAGE = "prod"  # API Gateway's stage in every lamed REST API (a lamed stage has its own API)
ALIAS = "live"
KEPT_VERSIONS = 5
TRACK_FUNCTION = "lamed-track"  # the one function behind the open /track: a function URL, reserved concurrency
TRACK_PATH = "/track"
TRACK_METHOD = "GET"
MANAGED_TAG = {"managed-by": "lamed"}  # on everything lamed creates: what destroy may delete
ENVIRONMENT_LIMIT_BYTES = 4096  # Lambda's limit on the total size of a function's environment variables
INTEGRATION_TIMEOUT_SECONDS = 29  # API Gateway ends a REST integration after 29 s

CORS_HEADERS = {
    "Access-Control-Allow-Headers": "Content-Type,X-Api-Key",
    "Access-Control-Allow-Origin": "*",
}
# The function URL's CORS, answered by Lambda itself (preflights included; Lambda's AllowMethods takes
# names of at most 6 characters, so OPTIONS cannot be listed: Lambda answers it for every URL with CORS).
FUNCTION_URL_CORS = {
    "AllowOrigins": ["*"],
    "AllowMethods": ["GET"],
    "AllowHeaders": [name.lower() for name in CORS_HEADERS["Access-Control-Allow-Headers"].split(",")],
}
# A public (AuthType NONE) function URL needs both statements on the alias since October 2025
# (their statement ids carry the stage name: :meth:`Names.url_permission`).
FUNCTION_URL_PERMISSIONS = {
    "lamed-function-url": {
        "Action": "lambda:InvokeFunctionUrl",
        "arguments": {"FunctionUrlAuthType": "NONE"},
        "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
    },
    "lamed-function-url-invoke": {
        "Action": "lambda:InvokeFunction",
        "arguments": {"InvokedViaFunctionUrl": True},
        "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
    },
}
# API Gateway's own answers (403 without a key, 429 throttled, 5xx) carry the CORS origin too,
# so a browser sees the status instead of a CORS error.
GATEWAY_RESPONSES = {
    response_type: {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}
    for response_type in ("DEFAULT_4XX", "DEFAULT_5XX")
}

# -- names -----------------------------------------------------------------------------
# Without a stage, today's names (``lamed``, ``lamed-track``, …); with stage ``dev`` each ends in
# ``-dev`` (``lamed-dev``, ``lamed-track-dev``), so stages never share a resource. The role is
# global (IAM), so its inline policies carry the region too: a region's deploy and destroy touch
# only their own policies, and destroy deletes the role once no region's policy is left.
APP = "lamed"  # the role, REST API, API key and usage plan
PERMISSION_ID = "lamed-apigateway"
LOGS_POLICY_NAME = "lamed-logs"
VPC_POLICY_NAME = "lamed-vpc"
ELASTICACHE_POLICY_NAME = "lamed-elasticache"
POLICY_KINDS = (LOGS_POLICY_NAME, VPC_POLICY_NAME, ELASTICACHE_POLICY_NAME)
# botocore's models: a function name (CreateFunction.FunctionName: "limited to 64 characters",
# [a-zA-Z0-9-_]), a role name (iam roleNameType: 64, [\w+=,.@-], "not distinguished by case"),
# a policy name (policyNameType: 128), a statement id (lambda StatementId: 100, [a-zA-Z0-9-_]).
FUNCTION_NAME_MAX = 64
STAGE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")  # in every name's charset; lower case: IAM ignores case
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
# AWS's "Creating and managing Lambda function URLs" page (docs.aws.amazon.com/lambda/latest/dg/
# urls-configuration.html): "Function URLs are not supported in the following AWS Regions".
NO_FUNCTION_URL_REGIONS = frozenset(
    {
        "ap-south-2", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-east-2",
        "ca-west-1", "eu-south-2", "eu-central-2", "il-central-1", "me-central-1",
    }
)  # fmt: skip


class StageError(ValueError):
    """A stage name AWS's names cannot carry; one line with the fix."""


def check_stage(stage: str | None) -> str | None:
    """``stage`` if every name derived from it fits AWS's limits (None: no stage), else :class:`StageError`."""
    if stage is None or (len(stage) <= STAGE_MAX and STAGE_PATTERN.fullmatch(stage)):
        return stage
    raise StageError(
        f"--stage {stage!r} cannot be part of AWS names — fix: use 1 to {STAGE_MAX} lower-case letters, digits "
        "and hyphens, starting with a letter or digit (e.g. --stage dev)"
    )


def function_urls_exist(region: str) -> bool:
    """Whether Lambda offers function URLs in ``region``."""
    return region not in NO_FUNCTION_URL_REGIONS


@dataclass(frozen=True)
class Names:
    """Every name of one stage's resources in one region; ``stage`` None: today's names."""

    stage: str | None
    region: str

    def __post_init__(self):
        check_stage(self.stage)

    def staged(self, name: str) -> str:
        """``name`` as this stage has it: unchanged without a stage, else ``name-STAGE``."""
        return name if self.stage is None else f"{name}-{self.stage}"

    @property
    def app(self) -> str:
        """The name of the role, the REST API, the API key and the usage plan."""
        return self.staged(APP)

    @property
    def track_function(self) -> str:
        return self.staged(TRACK_FUNCTION)

    @property
    def permission_id(self) -> str:
        """The statement id of API Gateway's right to invoke a function."""
        return self.staged(PERMISSION_ID)

    def url_permission(self, statement: str) -> str:
        """The statement id of one of :data:`FUNCTION_URL_PERMISSIONS` on this stage's track function."""
        return self.staged(statement)

    def policy(self, kind: str) -> str:
        """The name of this region's inline policy ``kind`` (one of :data:`POLICY_KINDS`) on the role."""
        return f"{self.staged(kind)}-{self.region}"

    def policy_region(self, name: str) -> str | None:
        """The region whose inline policy ``name`` is, or None when it is not one of lamed's region policies."""
        for kind in POLICY_KINDS:
            region = name.removeprefix(f"{self.staged(kind)}-")
            if region != name and REGION_PATTERN.fullmatch(region):
                return region
        return None

    def legacy_policy(self, name: str) -> bool:
        """Whether ``name`` is an inline policy as lamed named them before regions (``lamed-logs``…)."""
        return self.stage is None and name in POLICY_KINDS


LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}

# What AWSLambdaVPCAccessExecutionRole grants beyond logs: Lambda creates, finds and deletes the
# functions' network interfaces in the subnets with the role (DescribeNetworkInterfaces needs "*").
VPC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": "*",
        }
    ],
}


@dataclass(frozen=True)
class Place:
    """Where a deployment lives: the partition (``aws``, ``aws-cn``, ``aws-us-gov``), region and account."""

    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        where = f"{self.region if region else ''}:{self.account if account else ''}"
        return f"arn:{self.partition}:{service}:{where}:{resource}"


@dataclass(frozen=True)
class Vpc:
    """The subnets and security groups a function runs in; kept sorted, as compared."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    @classmethod
    def from_config(cls, vpc: dict | None) -> "Vpc | None":
        if vpc is None:
            return None
        return cls(tuple(sorted(vpc["subnet_ids"])), tuple(sorted(vpc["security_group_ids"])))


def vpc_config(vpc: Vpc | None) -> dict:
    """Lambda's VpcConfig for ``vpc``; empty lists take a function out of any VPC."""
    if vpc is None:
        return {"SubnetIds": [], "SecurityGroupIds": []}
    return {"SubnetIds": list(vpc.subnet_ids), "SecurityGroupIds": list(vpc.security_group_ids)}


@dataclass(frozen=True)
class Function:
    """One Lambda function; ``live`` alias serves the version built from the current zip."""

    name: str
    handler: str
    memory: int
    timeout: int
    runtime: str
    architecture: str
    vpc: Vpc | None = None
    environment: dict = field(default_factory=dict, hash=False)  # the runtime settings (a secret: never print)

    def configuration(self, role_arn: str) -> dict:
        """The settings compared with a version's configuration, in Lambda's key names."""
        return {
            "Environment": {"Variables": self.environment},
            "Handler": self.handler,
            "Runtime": self.runtime,
            "MemorySize": self.memory,
            "Timeout": self.timeout,
            "Role": role_arn,
            "Architectures": [self.architecture],
            "VpcConfig": vpc_config(self.vpc),
        }


@dataclass(frozen=True)
class Route:
    """A method on ``/{path_part}`` that invokes a function's ``live`` alias."""

    path_part: str
    http_method: str
    function: str
    api_key_required: bool
    request_parameters: dict = field(default_factory=dict, hash=False)


@dataclass
class DesiredState:
    """Everything ``lamed deploy`` makes exist; ``code_sha256`` is Lambda's CodeSha256 of ``package``."""

    names: Names
    functions: list[Function]
    routes: list[Route]
    package: bytes
    code_sha256: str
    iam: dict | None = None  # the config's redis.iam: the role may then connect to that ElastiCache cache
    log_retention_days: int = 30
    track_function_url: bool = True
    track_max_concurrency: int | None = None
    track_rate_limit: dict | None = None  # {"rate": R, "burst": B} on the stage's GET /track
    function_urls: bool = True  # whether the region has function URLs at all (else none is read or written)

    def paths(self) -> list[str]:
        """The API's resource paths, in route order, each once."""
        return list(dict.fromkeys(f"/{route.path_part}" for route in self.routes))

    def routes_on(self, path: str) -> list[Route]:
        return [route for route in self.routes if f"/{route.path_part}" == path]


STANDARD_FUNCTIONS = (
    # name, handler, memory MB, timeout s, path, HTTP method, API key required
    ("lamed-track", "lamed.track", 128, 10, "track", "GET", False),
    ("lamed-all-experiments", "lamed.all", 128, 29, "experiments", "GET", True),
    ("lamed-delete-experiment", "lamed.delete", 128, 29, "delete", "DELETE", True),
    ("lamed-experiment", "lamed.experiment", 128, 29, "experiment", "GET", True),
)
STANDARD_FUNCTION_NAMES = tuple(entry[0] for entry in STANDARD_FUNCTIONS)
STAGE_MAX = FUNCTION_NAME_MAX - max(map(len, STANDARD_FUNCTION_NAMES)) - 1  # the longest function name, "-", the stage


def code_sha256(package: bytes) -> str:
    """Lambda's CodeSha256: the base64 of the zip's SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


def desired_state(config: Config, package: bytes, names: Names) -> DesiredState:
    """What to deploy for ``config`` as the stage and region of ``names``: its functions and routes, and the zip."""
    functions, routes = wiring(config, names)
    iam = config.redis.get("iam")
    urls = function_urls_exist(names.region)
    return DesiredState(
        names,
        functions,
        routes,
        package,
        code_sha256(package),
        iam,
        config.log_retention_days,
        config.track_function_url and urls,
        config.track_max_concurrency,
        config.track_rate_limit,
        urls,
    )


def wiring(config: Config, names: Names) -> tuple[list[Function], list[Route]]:
    """The functions and routes for ``config``: the standard four plus ``extra_wiring``, named for the stage."""
    functions, routes = [], []
    vpc = Vpc.from_config(config.vpc)
    environment = function_environment(config)
    for base, handler, memory, timeout, path, method, key_required in STANDARD_FUNCTIONS:
        name = names.staged(base)
        functions.append(Function(name, handler, memory, timeout, config.runtime, config.architecture, vpc, environment))
        routes.append(Route(path, method, name, key_required))
    for entry in config.extra_wiring:
        spec, gateway = entry["lambda"], entry["api_gateway"]
        method = gateway["method"]
        timeout = int(spec.get("Timeout", 30))
        name = names.staged(spec["FunctionName"])
        if len(name) > FUNCTION_NAME_MAX:
            raise ConfigError(
                f'{config.path}: "extra_wiring" function {spec["FunctionName"]} would be named {name} in stage '
                f"{names.stage}, over Lambda's {FUNCTION_NAME_MAX} characters — fix: shorten its name or the stage's"
            )
        if timeout > INTEGRATION_TIMEOUT_SECONDS:
            raise ConfigError(
                f'{config.path}: "extra_wiring" function {spec["FunctionName"]} has "Timeout": {timeout}, but API '
                f"Gateway ends a request after {INTEGRATION_TIMEOUT_SECONDS} s — fix: set a Timeout of at most "
                f"{INTEGRATION_TIMEOUT_SECONDS}"
            )
        functions.append(
            Function(
                name,
                spec["Handler"],
                int(spec.get("MemorySize", 128)),
                min(timeout, INTEGRATION_TIMEOUT_SECONDS),
                config.runtime,
                config.architecture,
                vpc,
                environment,
            )
        )
        routes.append(
            Route(
                gateway["pathPart"].strip("/"),
                method["httpMethod"].upper(),
                name,
                bool(method.get("apiKeyRequired", False)),
                dict(method.get("requestParameters") or {}),
            )
        )
    _check_unique(config, [f.name for f in functions], "function name")
    _check_unique(config, [f"{r.http_method} /{r.path_part}" for r in routes], "route")
    return functions, routes


def function_environment(config: Config) -> dict[str, str]:
    """The functions' environment variables (their runtime settings), checked against Lambda's 4 KB limit."""
    environment = config.runtime_environment()
    size = sum(len(key.encode()) + len(value.encode()) for key, value in environment.items())
    if size > ENVIRONMENT_LIMIT_BYTES:
        raise ConfigError(
            f"{config.path}: the runtime settings ({', '.join(RUNTIME_KEYS)}) take {size} bytes in the functions' "
            f"environment, over Lambda's {ENVIRONMENT_LIMIT_BYTES}-byte limit — fix: shorten the \"redis\" settings "
            '(drop arguments left at their defaults) or the "experiments" declared (shorter names, fewer experiments)'
        )
    return environment


def _check_unique(config: Config, names: list[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError(f'{config.path}: "extra_wiring" repeats the {what} {name}')
        seen.add(name)


def role_policies(desired: DesiredState, place: Place) -> dict[str, dict]:
    """This region's inline policies on the role, by kind (:data:`POLICY_KINDS`): logs always, network
    interfaces when the functions run in a VPC, ElastiCache's Connect when Redis authenticates with IAM."""
    policies = {LOGS_POLICY_NAME: logs_policy(desired.functions, place)}
    if any(function.vpc for function in desired.functions):
        policies[VPC_POLICY_NAME] = VPC_POLICY
    if desired.iam:
        policies[ELASTICACHE_POLICY_NAME] = elasticache_policy(desired.iam, place)
    return policies


def elasticache_policy(iam: dict, place: Place) -> dict:
    """``elasticache:Connect`` on exactly the configured cache and ElastiCache user, in lower case: ElastiCache
    stores both names so (botocore's model: CreateServerlessCache, CreateReplicationGroup, CreateUser), and
    IAM compares ARNs case-sensitively."""
    kind = "serverlesscache" if iam.get("serverless", False) else "replicationgroup"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "elasticache:Connect",
                "Resource": [
                    place.arn("elasticache", f"{kind}:{iam['cache'].lower()}"),
                    place.arn("elasticache", f"user:{iam['user'].lower()}"),
                ],
            }
        ],
    }


def log_group_name(function: str) -> str:
    """Where Lambda writes a function's logs."""
    return f"/aws/lambda/{function}"


def log_group_arn(function: str, place: Place) -> str:
    return place.arn("logs", f"log-group:{log_group_name(function)}")


def logs_policy(functions: list[Function], place: Place) -> dict:
    """Write to these functions' log groups (lamed creates the groups, with their retention)."""
    groups = [log_group_arn(function.name, place) for function in functions]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [arn for group in groups for arn in (group, f"{group}:*")],
            }
        ],
    }


def role_arn(names: Names, place: Place) -> str:
    return place.arn("iam", f"role/{names.app}", region=False)


def function_arn(function: str, place: Place) -> str:
    return place.arn("lambda", f"function:{function}")


def alias_arn(function: str, place: Place) -> str:
    return f"{function_arn(function, place)}:{ALIAS}"


def method_setting_key(path: str, http_method: str) -> str:
    """How a stage's methodSettings (and its patch paths) name one method: ``~1track/GET``."""
    return f"{path.replace('~', '~0').replace('/', '~1')}/{http_method}"


def apigateway_arn(path: str, place: Place) -> str:
    """The ARN of an API Gateway resource such as ``/restapis/ID`` (for tags)."""
    return place.arn("apigateway", path, account=False)


def api_source_arn(api_id: str, place: Place) -> str:
    """What API Gateway's invocations of this API carry as SourceArn (any stage, method, path)."""
    return place.arn("execute-api", f"{api_id}/*")


def proxy_method(route: Route, place: Place) -> dict:
    """The method of ``route``: an AWS_PROXY integration to the function's ``live`` alias."""
    target = alias_arn(route.function, place)
    method = {
        "httpMethod": route.http_method,
        "authorizationType": "NONE",
        "apiKeyRequired": route.api_key_required,
        "methodIntegration": {
            "type": "AWS_PROXY",
            "httpMethod": "POST",
            "uri": f"arn:{place.partition}:apigateway:{place.region}:lambda:path/2015-03-31/functions/{target}/invocations",
        },
    }
    if route.request_parameters:
        method["requestParameters"] = route.request_parameters
    return method


def cors_method(methods: list[str]) -> dict:
    """The OPTIONS method of a resource: a MOCK integration answering CORS preflights for ``methods``."""
    headers = {"Access-Control-Allow-Methods": ",".join([*methods, "OPTIONS"]), **CORS_HEADERS}
    return {
        "httpMethod": "OPTIONS",
        "authorizationType": "NONE",
        "apiKeyRequired": False,
        "methodResponses": {
            "200": {
                "statusCode": "200",
                "responseParameters": {f"method.response.header.{name}": False for name in headers},
            }
        },
        "methodIntegration": {
            "type": "MOCK",
            "requestTemplates": {"application/json": '{"statusCode": 200}'},
            "integrationResponses": {
                "200": {
                    "statusCode": "200",
                    "responseParameters": {
                        f"method.response.header.{name}": f"'{value}'" for name, value in headers.items()
                    },
                }
            },
        },
    }


def resource_methods(desired: DesiredState, path: str, place: Place) -> list[dict]:
    """The methods of one resource path: each route's proxy method, then the CORS preflight."""
    routes = desired.routes_on(path)
    return [proxy_method(route, place) for route in routes] + [cors_method([route.http_method for route in routes])]


def api_digest(desired: DesiredState, place: Place) -> str:
    """A digest of everything a stage deployment snapshots: resources, methods, gateway responses.

    The stage's deployment carries it in its description, so any difference (whatever
    happened in an earlier run) is seen as a stage to redeploy.
    """
    api = {
        "resources": {path: resource_methods(desired, path, place) for path in desired.paths()},
        "gateway_responses": GATEWAY_RESPONSES,
    }
    return hashlib.sha256(json.dumps(api, sort_keys=True).encode()).hexdigest()[:20]
