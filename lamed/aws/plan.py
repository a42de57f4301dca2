"""Compare the desired state with what AWS has and emit the steps that close the gap.

The planner only reads from AWS; every judgement comes from what AWS has now, never
from what happened in an earlier run, so an interrupted run is finished by the next.
Unchanged things are steps too (without a call), so that the progress shows every
resource. A function's ``live`` version is compared with the zip's CodeSha256 and the
configuration, and an older version that matches (after a rollback) is pointed at again
rather than published anew. The stage's deployment carries a digest of the API it
serves; any other digest redeploys. Resources with lamed's names that are not tagged as
lamed's stop a deploy (unless ``adopt``) and are left alone by destroy. Every name is the
stage's (:class:`~lamed.aws.resources.Names`); of the global role, a region's deploy and
destroy touch only that region's policies.
"""

import json
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from lamed import __version__
from lamed.aws.client import Aws, read
from lamed.aws.deployment import (
    find_api_key,
    find_log_group,
    find_rest_api,
    find_usage_plan,
    function_versions,
    in_vpc,
    live_alias,
    owned,
    published,
)
from lamed.aws.resources import (
    ALIAS,
    ELASTICACHE_POLICY_NAME,
    FUNCTION_URL_CORS,
    FUNCTION_URL_PERMISSIONS,
    GATEWAY_RESPONSES,
    KEPT_VERSIONS,
    LAMBDA_TRUST_POLICY,
    LOGS_POLICY_NAME,
    MANAGED_TAG,
    STAGE,
    TRACK_METHOD,
    TRACK_PATH,
    VPC_POLICY,
    VPC_POLICY_NAME,
    DesiredState,
    Function,
    Names,
    alias_arn,
    api_digest,
    api_source_arn,
    apigateway_arn,
    function_arn,
    log_group_arn,
    log_group_name,
    method_setting_key,
    resource_methods,
    role_arn,
    role_policies,
)
from lamed.aws.role import check_role_size, current_policy, policy_regions, remove_permissions, role_destroy_step, role_permissions
from lamed.aws.steps import Step
from lamed.config import ConfigError

POLICY_SUBJECTS = {
    LOGS_POLICY_NAME: "CloudWatch Logs",
    VPC_POLICY_NAME: "VPC network interfaces",
    ELASTICACHE_POLICY_NAME: "ElastiCache IAM auth",
}
# Policies the functions' current versions may still use: removed only after the functions are updated.
REMOVED_AFTER_FUNCTIONS = {
    VPC_POLICY_NAME: "no kept function version is in the VPC",
    ELASTICACHE_POLICY_NAME: "Redis no longer uses IAM auth",
}
# How progress lines name a changed setting; the environment (the runtime settings: Redis, bounds,
# declared experiments) holds the Redis password, so only its name shows.
SETTING_NAMES = {"Environment": "runtime settings"}
DESCRIPTION = "lamed: A/B-testing backend for AlephBet"
TAG_LIST = [{"Key": key, "Value": value} for key, value in MANAGED_TAG.items()]
ADOPTED = "adopted: tagged managed-by=lamed"


class OwnershipError(Exception):
    """Resources with lamed's names that lamed did not create: a deploy stops unless told to adopt them."""


@dataclass
class Ownership:
    """Which existing resources are not lamed's; with ``adopt`` they are tagged and taken over."""

    adopt: bool
    foreign: list = field(default_factory=list)

    def needs_tag(self, subject: str, tags) -> bool:
        """Whether ``subject`` (existing, with ``tags``) must be tagged to become lamed's."""
        if owned(tags):
            return False
        self.foreign.append(subject)
        return True

    def check(self) -> None:
        if self.foreign and not self.adopt:
            one = len(self.foreign) == 1
            them = "it" if one else "them"
            raise OwnershipError(
                f"{', '.join(self.foreign)} {'exists' if one else 'exist'} but lamed did not create {them} "
                f"(no tag managed-by=lamed), so lamed leaves {them} alone — fix: remove or rename {them}, "
                f"or run `lamed deploy --adopt` to let lamed take {them} over (and change {them} to its needs)"
            )


def _request(service: str, operation: str, **kwargs):
    """A step call that makes one AWS request and reports nothing."""

    def call(aws: Aws) -> None:
        getattr(aws.client(service), operation)(**kwargs)

    return call


def _lambda_request(function: str, operation: str, **kwargs):
    """A step call that makes one change to ``function`` once it is ready for it, and reports nothing."""

    def call(aws: Aws) -> None:
        aws.lambda_call(function, operation, **kwargs)

    return call


def _covers(current, desired) -> bool:
    """Whether ``current`` has every key and value of ``desired`` (recursively; extra keys are fine)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(_covers(current.get(key), value) for key, value in desired.items())
    return current == desired


def _combine(*calls):
    """One step call that makes several, returning the last outcome that says something."""

    def call(aws: Aws):
        outcome = None
        for each in calls:
            outcome = each(aws) or outcome
        return outcome

    return call


# -- deploy ------------------------------------------------------------------------


@dataclass
class FoundFunction:
    """A function as AWS has it: ``configuration`` of $LATEST and ``tags`` (None when it does not exist)."""

    configuration: dict | None
    tags: dict
    versions: dict
    alias: dict | None

    @classmethod
    def read(cls, aws: Aws, name: str) -> "FoundFunction":
        found = read(aws.lambda_.get_function, FunctionName=name)
        if found is None:
            return cls(None, {}, {}, None)
        versions = function_versions(aws.lambda_, name) or {}
        return cls(found["Configuration"], aws.function_tags(name, found), versions, live_alias(aws.lambda_, name))


def plan_deploy(aws: Aws, desired: DesiredState, adopt: bool = False) -> list[Step]:
    """The steps that make AWS match ``desired``; all unchanged when it already does.

    Raises :class:`OwnershipError` when resources with lamed's names are not lamed's and ``adopt`` is false.
    """
    ownership, names = Ownership(adopt), desired.names
    function_steps, recreated, kept_in_vpc = [], set(), False
    for function in desired.functions:
        found = FoundFunction.read(aws, function.name)
        step, kept = _function_step(aws, desired, function, found, ownership)
        function_steps.append(step)
        if found.configuration is None or found.configuration.get("State") == "Failed":
            recreated.add(function.name)
        kept_in_vpc = kept_in_vpc or any(in_vpc(found.versions[str(number)]) for number in kept)
    role, leftover = _role_steps(aws, desired, ownership, kept_in_vpc)
    steps = [role]
    steps += [_log_group_step(aws, desired, function.name, ownership) for function in desired.functions]
    steps += function_steps + leftover
    api = find_rest_api(aws.apigateway, names.app)
    steps += _api_steps(aws, desired, api, ownership)
    steps += [_permission_step(aws, names, function.name, function.name in recreated) for function in desired.functions]
    if any(function.name == names.track_function for function in desired.functions):
        new_track = names.track_function in recreated
        if desired.function_urls:  # elsewhere Lambda refuses every function URL call, reads included
            steps += _function_url_steps(aws, desired, new_track)
        steps.append(_concurrency_step(aws, desired, new_track))
    steps.append(_stage_step(aws, desired, api))
    if desired.track_rate_limit is not None:
        steps.append(_throttle_step(aws, desired, api))
    steps += _key_steps(aws, names, api, ownership)
    ownership.check()
    return steps


def _role_steps(aws: Aws, desired: DesiredState, ownership: Ownership, kept_in_vpc: bool) -> tuple[Step, list[Step]]:
    """The role's step (this region's policies; other regions' are left as they are), and the removal of
    policies no function version needs any more, for after the functions."""
    names = desired.names
    role_name, subject = names.app, f"role {names.app}"
    policies = role_policies(desired, aws.place)
    if kept_in_vpc:  # a rollback target still runs in the VPC: its network interfaces need the policy
        policies.setdefault(VPC_POLICY_NAME, VPC_POLICY)
    summary = " and ".join(POLICY_SUBJECTS[kind] for kind in policies)
    role = read(aws.iam.get_role, RoleName=role_name)

    def put_policies(aws, kinds):
        for kind in kinds:
            document = json.dumps(policies[kind])
            aws.iam.put_role_policy(RoleName=role_name, PolicyName=names.policy(kind), PolicyDocument=document)

    if role is None:
        check_role_size(aws, names, [], policies)

        def create(aws):
            aws.iam.create_role(
                RoleName=role_name,
                AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
                Description=f"lamed's Lambda functions: {summary} only",
                Tags=TAG_LIST,
            )
            put_policies(aws, policies)

        return Step("create", subject, f"{summary} only", create), []

    adopting = ownership.needs_tag(subject, role["Role"].get("Tags"))
    inline, attached = role_permissions(aws, role_name)
    regions = policy_regions(aws, names, inline)
    others = [name for name in inline if name not in regions]  # not lamed's: the role serves lamed only
    legacy = [name for name in inline if names.legacy_policy(name) and regions[name] == names.region]
    leftover = []
    for kind, reason in REMOVED_AFTER_FUNCTIONS.items():
        name = names.policy(kind)
        if name in inline and kind not in policies:
            remove = _request("iam", "delete_role_policy", RoleName=role_name, PolicyName=name)
            leftover.append(Step("delete", f"role policy {name}", reason, remove))
    trusted = role["Role"]["AssumeRolePolicyDocument"] == LAMBDA_TRUST_POLICY
    stale = [
        kind for kind in policies
        if names.policy(kind) not in inline or current_policy(aws, role_name, names.policy(kind)) != policies[kind]
    ]  # fmt: skip
    if stale:
        check_role_size(aws, names, inline, policies)
    removed = others + legacy
    if trusted and not stale and not removed and not attached and not adopting:
        return Step("unchanged", subject, summary), leftover
    changes = [ADOPTED] * adopting + ["trust policy"] * (not trusted)
    changes += [f"{POLICY_SUBJECTS[kind]} policy" for kind in stale]
    changes += [f"removed {name}" for name in removed + attached]

    def update(aws):
        if adopting:
            aws.iam.tag_role(RoleName=role_name, Tags=TAG_LIST)
        if not trusted:
            aws.iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
        put_policies(aws, stale)
        remove_permissions(aws, role_name, removed, attached)

    return Step("update", subject, "; ".join(changes), update), leftover


def _log_group_step(aws: Aws, desired: DesiredState, function: str, ownership: Ownership) -> Step:
    """A function's log group, made by lamed (so Lambda never makes one without retention)."""
    name, days = log_group_name(function), desired.log_retention_days
    subject, detail = f"log group {name}", f"kept {days} days"
    group = find_log_group(aws.logs, function)
    retain = _request("logs", "put_retention_policy", logGroupName=name, retentionInDays=days)
    if group is None:
        create = _request("logs", "create_log_group", logGroupName=name, tags=MANAGED_TAG)
        return Step("create", subject, detail, _combine(create, retain))
    arn = log_group_arn(function, aws.place)
    adopting = ownership.needs_tag(subject, aws.logs.list_tags_for_resource(resourceArn=arn).get("tags"))
    retained = group.get("retentionInDays") == days
    if retained and not adopting:
        return Step("unchanged", subject, detail)
    tag = _request("logs", "tag_resource", resourceArn=arn, tags=MANAGED_TAG)
    calls = [tag] * adopting + [retain] * (not retained)
    return Step("update", subject, "; ".join([ADOPTED] * adopting + [detail] * (not retained)), _combine(*calls))


def _function_step(
    aws: Aws, desired: DesiredState, function: Function, found: FoundFunction, ownership: Ownership
) -> tuple[Step, list[int]]:
    """The function's step, and the published versions it leaves in place (the rollback targets)."""
    subject = f"function {function.name}"
    wanted = function.configuration(role_arn(desired.names, aws.place))
    summary = f"{function.runtime}, {function.architecture}, {function.memory} MB, {function.timeout} s"
    if function.vpc:
        summary += f", VPC subnets {', '.join(function.vpc.subnet_ids)}"
    if found.configuration is None:
        return Step("create", subject, summary, lambda aws: _create_function(aws, desired, function)), []
    adopting = ownership.needs_tag(subject, found.tags)
    tag = _request("lambda", "tag_resource", Resource=function_arn(function.name, aws.place), Tags=MANAGED_TAG)
    adopted = [ADOPTED] * adopting
    if found.configuration.get("State") == "Failed":

        def recreate(aws):
            aws.lambda_.delete_function(FunctionName=function.name)  # a Failed function takes no update
            return _create_function(aws, desired, function)

        return Step("update", subject, f"state Failed: recreate; {summary}", recreate), []
    versions, alias = found.versions, found.alias

    def matches(version: dict) -> bool:
        return version["CodeSha256"] == desired.code_sha256 and _covers(_settings(version), wanted)

    live = alias["FunctionVersion"] if alias else None
    numbers = published(versions)
    if live in versions and matches(versions[live]):
        if adopting:
            return Step("update", subject, f"{ADOPTED}; {ALIAS} v{live}", tag), numbers
        return Step("unchanged", subject, f"{ALIAS} v{live}"), numbers
    same = [number for number in numbers if matches(versions[str(number)])]
    if same:
        # rolled back earlier, or a run stopped halfway: the wanted version exists
        target = str(same[-1])

        def move(aws):
            _point_alias(aws, function.name, alias, target)

        calls = [tag] * adopting + [move]
        return Step("update", subject, "; ".join(adopted + [f"{ALIAS} -> v{target}"]), _combine(*calls)), numbers
    latest = _settings(versions.get("$LATEST", found.configuration))
    changed = [key for key, value in wanted.items() if not _covers(latest.get(key), value)]
    code_changed = latest["CodeSha256"] != desired.code_sha256 or "Architectures" in changed
    settings_changed = set(changed) - {"Architectures"}
    obsolete = [number for number in numbers[: max(0, len(numbers) - (KEPT_VERSIONS - 1))] if str(number) != live]

    def publish(aws):
        name = function.name
        if adopting:
            tag(aws)
        if code_changed:
            aws.lambda_call(
                name, "update_function_code", FunctionName=name, ZipFile=desired.package, Architectures=wanted["Architectures"]
            )
        if settings_changed:
            settings = {key: value for key, value in wanted.items() if key != "Architectures"}  # set with the code
            aws.lambda_call(name, "update_function_configuration", FunctionName=name, **settings)
        version = aws.lambda_call(name, "publish_version", FunctionName=name, CodeSha256=desired.code_sha256)["Version"]
        aws.wait_function(name, version)
        _point_alias(aws, name, alias, version)
        for number in obsolete:
            aws.lambda_call(name, "delete_function", FunctionName=name, Qualifier=str(number))
        pruned = f", deleted v{', v'.join(map(str, obsolete))}" if obsolete else ""
        return f"published v{version}, {ALIAS} -> v{version}{pruned}"

    named = [SETTING_NAMES.get(key, key) for key in changed]
    what = ", ".join(adopted + ["code"] * (latest["CodeSha256"] != desired.code_sha256) + named) or "new version"
    kept = [number for number in numbers if number not in obsolete]
    return Step("update", subject, f"{what}; publish a version", publish), kept


def _settings(version: dict) -> dict:
    """A version's configuration with its VpcConfig as :func:`vpc_config` writes it (sorted ids, no VpcId)."""
    vpc = version.get("VpcConfig") or {}
    subnets, groups = sorted(vpc.get("SubnetIds") or []), sorted(vpc.get("SecurityGroupIds") or [])
    environment = {"Variables": (version.get("Environment") or {}).get("Variables") or {}}
    return version | {"VpcConfig": {"SubnetIds": subnets, "SecurityGroupIds": groups}, "Environment": environment}


def _create_function(aws: Aws, desired: DesiredState, function: Function) -> str:
    name = function.name

    def create():
        return aws.lambda_call(
            name,
            "create_function",
            FunctionName=name,
            Code={"ZipFile": desired.package},
            Description=DESCRIPTION,
            Publish=True,
            Tags=MANAGED_TAG,
            **function.configuration(role_arn(desired.names, aws.place)),
        )

    def find():  # what a CreateFunction whose answer was lost made: lamed's, with its version 1
        found = read(aws.lambda_.get_function, FunctionName=name)
        numbers = published(function_versions(aws.lambda_, name) or {}) if found else []
        return {"Version": str(numbers[-1])} if numbers and owned(aws.function_tags(name, found)) else None

    version = aws.create_once("CreateFunction", create, find)["Version"]
    aws.lambda_call(name, "create_alias", FunctionName=name, Name=ALIAS, FunctionVersion=version)
    return f"v{version}, {ALIAS} -> v{version}"


def _lamed_s(found: dict | None) -> dict | None:
    """``found`` (an API Gateway resource) when it carries lamed's tag, else None."""
    return found if found is not None and owned(found.get("tags")) else None


def _point_alias(aws: Aws, name: str, alias: dict | None, version: str) -> None:
    operation = "create_alias" if alias is None else "update_alias"
    aws.lambda_call(name, operation, FunctionName=name, Name=ALIAS, FunctionVersion=version)


def _api_steps(aws: Aws, desired: DesiredState, api: dict | None, ownership: Ownership) -> list[Step]:
    steps = []
    resources, responses = {}, {}
    subject = f"REST API {desired.names.app}"
    if api is None:

        def create_api(aws):
            created = aws.create_once(
                "CreateRestApi",
                lambda: aws.apigateway.create_rest_api(
                    name=desired.names.app, description=DESCRIPTION, endpointConfiguration={"types": ["REGIONAL"]}, tags=MANAGED_TAG
                ),
                lambda: _lamed_s(find_rest_api(aws.apigateway, desired.names.app)),
            )
            aws.values["api_id"] = created["id"]
            aws.values["resources"] = {item["path"]: item["id"] for item in _resources(aws)}
            return created["id"]

        steps.append(Step("create", subject, call=create_api))
    else:
        aws.values["api_id"] = api["id"]
        resources = {item["path"]: item for item in _resources(aws, embed=True)}
        aws.values["resources"] = {path: item["id"] for path, item in resources.items()}
        pages = aws.apigateway.get_paginator("get_gateway_responses").paginate(restApiId=api["id"])
        responses = {item["responseType"]: item for page in pages for item in page["items"]}
        if ownership.needs_tag(subject, api.get("tags")):
            tag = _request("apigateway", "tag_resource", resourceArn=apigateway_arn(f"/restapis/{api['id']}", aws.place), tags=MANAGED_TAG)
            steps.append(Step("update", subject, f"{api['id']}; {ADOPTED}", tag))
        else:
            steps.append(Step("unchanged", subject, api["id"]))

    steps.append(_gateway_responses_step(responses, api is None))
    for path in desired.paths():
        steps.append(_resource_step(path, resources.get(path), resource_methods(desired, path, aws.place)))
    top_level = [path for path in resources if path.count("/") == 1 and path != "/"]
    for path in (path for path in top_level if path not in desired.paths()):
        steps.append(Step("delete", f"route {path}", call=lambda aws, path=path: _delete_resource(aws, path)))
    return steps


def _gateway_responses_step(current: dict, new_api: bool) -> Step:
    """API Gateway's own 4XX/5XX answers with the CORS origin header."""
    subject, names = "gateway responses", ", ".join(GATEWAY_RESPONSES)
    stale = [
        kind for kind, parameters in GATEWAY_RESPONSES.items()
        if not _covers(current.get(kind, {}).get("responseParameters"), parameters)
    ]  # fmt: skip
    if not stale:
        return Step("unchanged", subject, f"{names} with CORS")

    def put(aws):
        for kind in stale:
            aws.apigateway.put_gateway_response(
                restApiId=aws.values["api_id"], responseType=kind, responseParameters=GATEWAY_RESPONSES[kind]
            )

    return Step("create" if new_api else "update", subject, f"{', '.join(stale)} with CORS", put)


def _resources(aws: Aws, embed: bool = False) -> list[dict]:
    extra = {"embed": ["methods"]} if embed else {}
    pages = aws.apigateway.get_paginator("get_resources").paginate(restApiId=aws.values["api_id"], **extra)
    return [item for page in pages for item in page["items"]]


def _resource_step(path: str, resource: dict | None, wanted: list[dict]) -> Step:
    methods = (resource or {}).get("resourceMethods", {})
    names = ", ".join(method["httpMethod"] for method in wanted)
    subject = f"route {path}"
    stale = [name for name in methods if name not in {method["httpMethod"] for method in wanted}]
    put = [method for method in wanted if not _covers(methods.get(method["httpMethod"]), method)]
    if resource is not None and not put and not stale:
        return Step("unchanged", subject, names)

    def apply(aws):
        api_id, ids = aws.values["api_id"], aws.values["resources"]
        if path not in ids:
            created = aws.apigateway.create_resource(restApiId=api_id, parentId=ids["/"], pathPart=path[1:])
            ids[path] = created["id"]
        for name in stale:
            aws.apigateway.delete_method(restApiId=api_id, resourceId=ids[path], httpMethod=name)
        for method in put:
            if method["httpMethod"] in methods:
                aws.apigateway.delete_method(restApiId=api_id, resourceId=ids[path], httpMethod=method["httpMethod"])
            _put_method(aws.apigateway, api_id, ids[path], method)

    if resource is None:
        return Step("create", subject, names, apply)
    changed = [method["httpMethod"] for method in put] + [f"-{name}" for name in stale]
    return Step("update", subject, ", ".join(changed), apply)


def _put_method(client, api_id: str, resource_id: str, method: dict) -> None:
    """Create ``method`` (in ``get_method``'s shape) with its integration and responses."""
    where = {"restApiId": api_id, "resourceId": resource_id, "httpMethod": method["httpMethod"]}
    client.put_method(
        **where,
        authorizationType=method["authorizationType"],
        apiKeyRequired=method["apiKeyRequired"],
        requestParameters=method.get("requestParameters", {}),
    )
    integration = method["methodIntegration"]
    options = {key: integration[key] for key in ("uri", "requestTemplates") if key in integration}
    if "httpMethod" in integration:
        options["integrationHttpMethod"] = integration["httpMethod"]
    client.put_integration(**where, type=integration["type"], **options)
    for code, response in method.get("methodResponses", {}).items():
        client.put_method_response(**where, statusCode=code, responseParameters=response["responseParameters"])
    for code, response in integration.get("integrationResponses", {}).items():
        client.put_integration_response(**where, statusCode=code, responseParameters=response["responseParameters"])


def _delete_resource(aws: Aws, path: str) -> None:
    resource_id = aws.values["resources"].pop(path)
    aws.apigateway.delete_resource(restApiId=aws.values["api_id"], resourceId=resource_id)


def _permission_step(aws: Aws, names: Names, name: str, new_function: bool) -> Step:
    """API Gateway's right to invoke the ``live`` alias: read, and replaced when it names another API."""
    subject = f"permission {name}:{ALIAS}"
    detail = "invoke from this API only"
    statement = None if new_function else _permission_statements(aws, name).get(names.permission_id)
    if statement is not None and "api_id" in aws.values:
        source = api_source_arn(aws.values["api_id"], aws.place)
        if statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") == source:
            return Step("unchanged", subject, detail)

    def grant(aws):
        _replace_permission(
            aws, name, names.permission_id, statement is not None,
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=api_source_arn(aws.values["api_id"], aws.place),
        )  # fmt: skip

    return Step("create" if statement is None else "update", subject, detail, grant)


def _replace_permission(aws: Aws, name: str, sid: str, present: bool, **permission) -> None:
    """Give the function's ``live`` alias statement ``sid``, removing the one there first (never two)."""
    if present:
        read(aws.lambda_.remove_permission, FunctionName=name, Qualifier=ALIAS, StatementId=sid)
    aws.lambda_call(name, "add_permission", FunctionName=name, Qualifier=ALIAS, StatementId=sid, **permission)


def _permission_statements(aws: Aws, name: str) -> dict[str, dict]:
    """The statements of the ``live`` alias's resource-based policy, by Sid."""
    policy = read(aws.lambda_.get_policy, FunctionName=name, Qualifier=ALIAS)
    if policy is None:
        return {}
    return {statement.get("Sid"): statement for statement in json.loads(policy["Policy"]).get("Statement", [])}


def _function_url_steps(aws: Aws, desired: DesiredState, new_function: bool) -> list[Step]:
    """lamed-track's function URL on the ``live`` alias (AuthType NONE, CORS) and the two public
    permissions it needs; or, when the config turns it off, their removal."""
    names = desired.names
    name = names.track_function
    subject = f"function URL {name}:{ALIAS}"
    current = None if new_function else read(aws.lambda_.get_function_url_config, FunctionName=name, Qualifier=ALIAS)
    statements = {} if new_function else _permission_statements(aws, name)
    where = {"FunctionName": name, "Qualifier": ALIAS}
    if not desired.track_function_url:
        steps = []
        if current is not None:
            remove = _lambda_request(name, "delete_function_url_config", **where)
            steps.append(Step("delete", subject, f'{current["FunctionUrl"]}: "track_function_url" is false', remove))
        for sid in (names.url_permission(sid) for sid in FUNCTION_URL_PERMISSIONS):
            if sid not in statements:
                continue
            remove = _request("lambda", "remove_permission", StatementId=sid, **where)
            steps.append(Step("delete", f"permission {name}:{ALIAS} {sid}", "no function URL", remove))
        return steps
    wanted = {"AuthType": "NONE", "Cors": FUNCTION_URL_CORS}
    detail = "public (AuthType NONE), CORS any origin, GET"
    if current is None:

        def create(aws):
            return aws.lambda_call(name, "create_function_url_config", **where, **wanted)["FunctionUrl"]

        steps = [Step("create", subject, detail, create)]
    elif _covers(current, wanted):
        steps = [Step("unchanged", subject, current["FunctionUrl"])]
    else:

        def update(aws):
            return aws.lambda_call(name, "update_function_url_config", **where, **wanted)["FunctionUrl"]

        steps = [Step("update", subject, detail, update)]
    return steps + [_url_permission_step(aws, names, kind, statements) for kind in FUNCTION_URL_PERMISSIONS]


def _url_permission_step(aws: Aws, names: Names, kind: str, statements: dict[str, dict]) -> Step:
    """One of the function URL's public permissions on the ``live`` alias: read, and replaced when it differs."""
    name, spec, sid = names.track_function, FUNCTION_URL_PERMISSIONS[kind], names.url_permission(kind)
    statement = statements.get(sid)
    subject = f"permission {name}:{ALIAS} {sid}"
    detail = f"{spec['Action']} for anyone, through the function URL only"
    wanted = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": spec["Action"],
        "Resource": alias_arn(name, aws.place),
        "Condition": spec["Condition"],
    }
    if statement is not None and _covers(statement, wanted):
        return Step("unchanged", subject, detail)

    def grant(aws):
        _replace_permission(aws, name, sid, statement is not None, Action=spec["Action"], Principal="*", **spec["arguments"])

    return Step("create" if statement is None else "update", subject, detail, grant)


def _concurrency_step(aws: Aws, desired: DesiredState, new_function: bool) -> Step:
    """lamed-track's reserved concurrency: the function URL's only throttle (null config: none reserved).
    A reservation the account cannot make is skipped, in one line, before anything is written."""
    name, wanted = desired.names.track_function, desired.track_max_concurrency
    subject = f"reserved concurrency {name}"
    current = None
    if not new_function:
        current = aws.lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    detail = "none: the account's shared pool" if wanted is None else str(wanted)
    if current == wanted:
        return Step("unchanged", subject, detail)
    if wanted is None:
        return Step("delete", subject, detail, _lambda_request(name, "delete_function_concurrency", FunctionName=name))
    most, why = aws.reservable_concurrency(current)
    if wanted > most:
        kept = f"{current} kept" if current is not None else "none reserved"
        lower = f'set "track_max_concurrency" to at most {most}, or null' if most else 'set "track_max_concurrency": null'
        return Step(
            "unchanged", subject,
            f"skipped {wanted}, {kept}: {why}, so at most {most} can be reserved — fix: {lower}, or ask AWS "
            "(Service Quotas: Lambda, Concurrent executions) for a higher limit",
        )  # fmt: skip

    def reserve(aws):
        try:
            aws.lambda_call(name, "put_function_concurrency", FunctionName=name, ReservedConcurrentExecutions=wanted)
        except ClientError as exc:
            if "UnreservedConcurrentExecution" not in str(exc):
                raise
            raise ConfigError(
                f'"track_max_concurrency": {wanted} would leave this account fewer unreserved concurrent executions '
                "than Lambda keeps (another reservation was made meanwhile) — fix: run `lamed deploy` again, or set "
                'a lower "track_max_concurrency" (or null: no reservation)'
            ) from None

    return Step("create" if current is None else "update", subject, detail, reserve)


def _throttle_step(aws: Aws, desired: DesiredState, api: dict | None) -> Step:
    """API Gateway's stage throttle on GET /track (the function URL is not behind it)."""
    limit = desired.track_rate_limit
    key = method_setting_key(TRACK_PATH, TRACK_METHOD)
    subject = f"throttle {TRACK_METHOD} {TRACK_PATH}"
    detail = f"{limit['rate']} requests/s, burst {limit['burst']}"
    stage = read(aws.apigateway.get_stage, restApiId=api["id"], stageName=STAGE) if api else None
    current = (stage or {}).get("methodSettings", {}).get(key, {})
    if current.get("throttlingRateLimit") == limit["rate"] and current.get("throttlingBurstLimit") == limit["burst"]:
        return Step("unchanged", subject, detail)

    def throttle(aws):
        operations = [
            {"op": "replace", "path": f"/{key}/throttling/rateLimit", "value": str(limit["rate"])},
            {"op": "replace", "path": f"/{key}/throttling/burstLimit", "value": str(limit["burst"])},
        ]
        aws.apigateway.update_stage(restApiId=aws.values["api_id"], stageName=STAGE, patchOperations=operations)

    return Step("update" if current else "create", subject, detail, throttle)


def _stage_step(aws: Aws, desired: DesiredState, api: dict | None) -> Step:
    """The stage serves a deployment whose description carries the digest of the wanted API, or is redeployed."""
    subject = f"stage {STAGE}"
    digest = api_digest(desired, aws.place)
    stage = read(aws.apigateway.get_stage, restApiId=api["id"], stageName=STAGE) if api else None
    deployment_id = (stage or {}).get("deploymentId")
    if deployment_id:
        deployment = read(aws.apigateway.get_deployment, restApiId=api["id"], deploymentId=deployment_id) or {}
        if deployment.get("description", "").endswith(f"API {digest}"):
            return Step("unchanged", subject, f"deployment {deployment_id}")

    def deploy(aws):
        deployment = aws.apigateway.create_deployment(
            restApiId=aws.values["api_id"], stageName=STAGE, description=f"lamed {__version__}, API {digest}"
        )
        return f"deployment {deployment['id']}"

    return Step("update" if deployment_id else "create", subject, "new deployment", deploy)


def _key_steps(aws: Aws, names: Names, api: dict | None, ownership: Ownership) -> list[Step]:
    """The usage plan on stage prod of this API, and the API key bound to it."""
    client = aws.apigateway
    plan = find_usage_plan(client, names.app)
    current = [{"apiId": item["apiId"], "stage": item["stage"]} for item in (plan or {}).get("apiStages", [])]
    plan_subject, key_subject = f"usage plan {names.app}", f"API key {names.app}"

    def tag(path):
        return _request("apigateway", "tag_resource", resourceArn=apigateway_arn(path, aws.place), tags=MANAGED_TAG)

    def ensure_plan(aws):
        wanted = {"apiId": aws.values["api_id"], "stage": STAGE}
        if plan is None:
            created = aws.create_once(
                "CreateUsagePlan",
                lambda: aws.apigateway.create_usage_plan(
                    name=names.app, description="lamed", apiStages=[wanted], tags=MANAGED_TAG
                ),
                lambda: _lamed_s(find_usage_plan(aws.apigateway, names.app)),
            )
            aws.values["usage_plan_id"] = created["id"]
            return
        operations = [_stage_operation("remove", item) for item in current if item != wanted]
        if wanted not in current:
            operations.append(_stage_operation("add", wanted))
        aws.apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=operations)

    if plan is None:
        plan_step = Step("create", plan_subject, f"stage {STAGE}", ensure_plan)
    else:
        aws.values["usage_plan_id"] = plan["id"]
        adopting = ownership.needs_tag(plan_subject, plan.get("tags"))
        in_place = api is not None and current == [{"apiId": api["id"], "stage": STAGE}]
        calls = [tag(f"/usageplans/{plan['id']}")] * adopting + [ensure_plan] * (not in_place)
        detail = "; ".join([ADOPTED] * adopting + [f"stage {STAGE}"])
        plan_step = Step("update", plan_subject, detail, _combine(*calls)) if calls else Step(
            "unchanged", plan_subject, f"stage {STAGE}"
        )

    key = find_api_key(client, names.app)
    key_adopting = key is not None and ownership.needs_tag(key_subject, key.get("tags"))
    tag_key = [tag(f"/apikeys/{key['id']}")] * key_adopting if key else []
    if plan is not None and key is not None and key["id"] in _usage_plan_key_ids(client, plan["id"]):
        if key_adopting:
            return [plan_step, Step("update", key_subject, ADOPTED, _combine(*tag_key))]
        return [plan_step, Step("unchanged", key_subject, f"in usage plan {names.app}")]

    def ensure_key(aws):
        if key:
            key_id = key["id"]
        else:
            key_id = aws.create_once(
                "CreateApiKey",
                lambda: aws.apigateway.create_api_key(name=names.app, enabled=True, tags=MANAGED_TAG),
                lambda: _lamed_s(find_api_key(aws.apigateway, names.app)),
            )["id"]
        aws.apigateway.create_usage_plan_key(usagePlanId=aws.values["usage_plan_id"], keyId=key_id, keyType="API_KEY")

    detail = "; ".join([ADOPTED] * key_adopting + [f"in usage plan {names.app}"])
    key_step = Step("update" if key else "create", key_subject, detail, _combine(*tag_key, ensure_key))
    return [plan_step, key_step]


def _stage_operation(op: str, stage: dict) -> dict:
    """A usage plan patch operation that adds or removes one API stage."""
    return {"op": op, "path": "/apiStages", "value": f"{stage['apiId']}:{stage['stage']}"}


def _usage_plan_key_ids(client, plan_id: str) -> set[str]:
    pages = client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan_id)
    return {item["id"] for page in pages for item in page["items"]}


# -- rollback ----------------------------------------------------------------------


def plan_rollback(aws: Aws, names: list[str]) -> list[Step]:
    """Point each function's ``live`` alias at the version before the one it serves."""
    steps = []
    for name in names:
        subject = f"function {name}"
        versions = function_versions(aws.lambda_, name)
        alias = live_alias(aws.lambda_, name) if versions is not None else None
        if alias is None:
            steps.append(Step("unchanged", subject, "not deployed: nothing to roll back"))
            continue
        live = int(alias["FunctionVersion"])
        earlier = [number for number in published(versions) if number < live]
        if not earlier:
            steps.append(Step("unchanged", subject, f"{ALIAS} is v{live}, no earlier version kept to roll back to"))
            continue
        target = str(earlier[-1])

        def move(aws, name=name, target=target, alias=alias):
            _point_alias(aws, name, alias, target)

        steps.append(Step("update", subject, f"{ALIAS} v{live} -> v{target}", move))
    return steps


# -- destroy -----------------------------------------------------------------------

LEFT_ALONE = "not lamed's (no tag managed-by=lamed): left alone"


def plan_destroy(aws: Aws, names: Names, functions: list[str], keep_logs: bool = False) -> list[Step]:
    """Delete what deploy created for the stage of ``names`` in this region that exists and is tagged as lamed's:
    usage plan, API key, REST API, ``functions``, log groups (unless ``keep_logs``), this region's policies on
    the role, and the role once no other region has any (after Lambda released the functions' network interfaces)."""
    client = aws.apigateway
    steps = []

    def lamed_s(subject, resource, tags, detail, call):
        if resource is not None:
            steps.append(Step("delete", subject, detail, call) if owned(tags) else Step("unchanged", subject, LEFT_ALONE))

    plan = find_usage_plan(client, names.app)
    if plan is not None:

        def delete_plan(aws):
            stages = [_stage_operation("remove", item) for item in plan.get("apiStages", [])]
            if stages:  # a usage plan is deleted only without API stages
                aws.apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=stages)
            aws.apigateway.delete_usage_plan(usagePlanId=plan["id"])

        lamed_s(f"usage plan {names.app}", plan, plan.get("tags"), plan["id"], delete_plan)
    key = find_api_key(client, names.app)
    if key is not None:
        delete_key = _request("apigateway", "delete_api_key", apiKey=key["id"])
        lamed_s(f"API key {names.app}", key, key.get("tags"), key["id"], delete_key)
    api = find_rest_api(client, names.app)
    if api is not None:
        delete_api = _request("apigateway", "delete_rest_api", restApiId=api["id"])
        lamed_s(f"REST API {names.app}", api, api.get("tags"), api["id"], delete_api)
    for name in functions:
        found = read(aws.lambda_.get_function, FunctionName=name)
        delete_function = _request("lambda", "delete_function", FunctionName=name)
        lamed_s(f"function {name}", found, found and aws.function_tags(name, found), "all versions", delete_function)
    if not keep_logs:
        for name in functions:
            group = find_log_group(aws.logs, name)
            if group is not None:
                tags = aws.logs.list_tags_for_resource(resourceArn=log_group_arn(name, aws.place)).get("tags")
                delete_group = _request("logs", "delete_log_group", logGroupName=group["logGroupName"])
                lamed_s(f"log group {group['logGroupName']}", group, tags, "its logs", delete_group)
    role = read(aws.iam.get_role, RoleName=names.app)
    if role is not None and not owned(role["Role"].get("Tags")):
        steps.append(Step("unchanged", f"role {names.app}", LEFT_ALONE))
    elif role is not None:
        steps.append(role_destroy_step(aws, names, functions))
    return steps
