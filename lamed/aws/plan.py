"""Compare the desired state with what AWS has and emit the steps that close the gap.

A :class:`Step` knows how to describe itself and what to call; the planner only
reads from AWS. Unchanged things are steps too (without a call), so that the
progress shows every resource. Whether a function changed is lamed's own decision,
made before anything is called (so a dry run can tell): its ``live`` version is
compared with the zip's CodeSha256 and the configuration, and an older version that
matches (after a rollback) is pointed at again rather than published anew.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from lamed import __version__
from lamed.aws.apply import Aws, error_code, retry_while_role_propagates
from lamed.aws.deployment import find_api_key, find_rest_api, function_versions, live_alias, published
from lamed.aws.resources import (
    ALIAS,
    API_KEY_NAME,
    API_NAME,
    KEPT_VERSIONS,
    LAMBDA_TRUST_POLICY,
    LOGS_POLICY_NAME,
    MANAGED_TAG,
    PERMISSION_ID,
    ROLE_NAME,
    STAGE,
    USAGE_PLAN_NAME,
    VPC_POLICY_NAME,
    ELASTICACHE_POLICY_NAME,
    DesiredState,
    Function,
    api_source_arn,
    cors_method,
    proxy_method,
    role_arn,
    role_policies,
)

PAST = {"create": "created", "update": "updated", "delete": "deleted", "unchanged": "unchanged"}
POLICY_SUBJECTS = {
    LOGS_POLICY_NAME: "CloudWatch Logs",
    VPC_POLICY_NAME: "VPC network interfaces",
    ELASTICACHE_POLICY_NAME: "ElastiCache IAM auth",
}
# Policies the functions' current versions may still use: removed only after the functions are updated.
REMOVED_AFTER_FUNCTIONS = {
    VPC_POLICY_NAME: "the functions left the VPC",
    ELASTICACHE_POLICY_NAME: "Redis no longer uses IAM auth",
}
# How progress lines name a changed setting; the environment holds the Redis password, so only its name shows.
SETTING_NAMES = {"Environment": "Redis settings"}
NOT_FOUND = ("ResourceNotFoundException", "NotFoundException", "NoSuchEntity")


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


def _read(call, **kwargs):
    """``call(**kwargs)``, or None when AWS says the thing does not exist."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise


def _request(service: str, operation: str, **kwargs) -> Callable[[Aws], None]:
    """A step call that makes one AWS request and reports nothing."""

    def call(aws: Aws) -> None:
        getattr(getattr(aws, service), operation)(**kwargs)

    return call


def _covers(current, desired) -> bool:
    """Whether ``current`` has every key and value of ``desired`` (recursively; extra keys are fine)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(_covers(current.get(key), value) for key, value in desired.items())
    return current == desired


# -- deploy ------------------------------------------------------------------------


def plan_deploy(aws: Aws, desired: DesiredState) -> list[Step]:
    """The steps that make AWS match ``desired``; all unchanged when it already does."""
    role, leftover = _role_steps(aws, desired)
    steps = [role]
    steps += [_function_step(aws, desired, function) for function in desired.functions]
    steps += leftover
    api = find_rest_api(aws.apigateway)
    steps += _api_steps(aws, desired, api)
    steps += [_permission_step(aws, function.name, api) for function in desired.functions]
    steps.append(_stage_step(aws, api, any(step.changes for step in steps)))
    steps += _key_steps(aws, api)
    return steps


def _role_steps(aws: Aws, desired: DesiredState) -> tuple[Step, list[Step]]:
    """The role's step, and the removal of a VPC policy no longer wanted, for after the functions left the VPC."""
    subject = f"role {ROLE_NAME}"
    policies = role_policies(desired, aws.region, aws.account)
    summary = " and ".join(POLICY_SUBJECTS[name] for name in policies)
    role = _read(aws.iam.get_role, RoleName=ROLE_NAME)

    def put_policies(aws, names):
        for name in names:
            aws.iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=name, PolicyDocument=json.dumps(policies[name]))

    if role is None:

        def create(aws):
            aws.iam.create_role(
                RoleName=ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
                Description=f"lamed's Lambda functions: {summary} only",
            )
            put_policies(aws, policies)

        return Step("create", subject, f"{summary} only", create), []

    inline, attached = _role_permissions(aws)
    others = [name for name in inline if name not in policies and name not in REMOVED_AFTER_FUNCTIONS]
    leftover = []
    for name, reason in REMOVED_AFTER_FUNCTIONS.items():
        if name in inline and name not in policies:
            remove = _request("iam", "delete_role_policy", RoleName=ROLE_NAME, PolicyName=name)
            leftover.append(Step("delete", f"role policy {name}", reason, remove))
    trusted = role["Role"]["AssumeRolePolicyDocument"] == LAMBDA_TRUST_POLICY
    stale = [name for name in policies if name not in inline or not _policy_is(aws, name, policies[name])]
    if trusted and not stale and not others and not attached:
        return Step("unchanged", subject, summary), leftover
    changes = ["trust policy"] * (not trusted) + [f"{POLICY_SUBJECTS[name]} policy" for name in stale]
    changes += [f"removed {name}" for name in others + attached]

    def update(aws):
        if not trusted:
            aws.iam.update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
        put_policies(aws, stale)
        _remove_permissions(aws, others, attached)

    return Step("update", subject, "; ".join(changes), update), leftover


def _policy_is(aws: Aws, name: str, document: dict) -> bool:
    current = _read(aws.iam.get_role_policy, RoleName=ROLE_NAME, PolicyName=name)
    return current is not None and current["PolicyDocument"] == document


def _role_permissions(aws: Aws) -> tuple[list[str], list[str]]:
    """The role's inline policy names and the ARNs of the managed policies attached to it."""
    pages = aws.iam.get_paginator("list_role_policies").paginate(RoleName=ROLE_NAME)
    inline = [name for page in pages for name in page["PolicyNames"]]
    pages = aws.iam.get_paginator("list_attached_role_policies").paginate(RoleName=ROLE_NAME)
    attached = [policy["PolicyArn"] for page in pages for policy in page["AttachedPolicies"]]
    return inline, attached


def _remove_permissions(aws: Aws, inline: list[str], attached: list[str]) -> None:
    for name in inline:
        aws.iam.delete_role_policy(RoleName=ROLE_NAME, PolicyName=name)
    for arn in attached:
        aws.iam.detach_role_policy(RoleName=ROLE_NAME, PolicyArn=arn)


def _function_step(aws: Aws, desired: DesiredState, function: Function) -> Step:
    subject = f"function {function.name}"
    wanted = function.configuration(role_arn(aws.account))
    versions = function_versions(aws.lambda_, function.name)
    if versions is None:
        summary = f"{function.runtime}, {function.architecture}, {function.memory} MB, {function.timeout} s"
        if function.vpc:
            summary += f", VPC subnets {', '.join(function.vpc.subnet_ids)}"
        return Step("create", subject, summary, lambda aws: _create_function(aws, desired, function))

    def matches(version: dict) -> bool:
        return version["CodeSha256"] == desired.code_sha256 and _covers(_settings(version), wanted)

    alias = live_alias(aws.lambda_, function.name)
    live = alias["FunctionVersion"] if alias else None
    if live in versions and matches(versions[live]):
        return Step("unchanged", subject, f"{ALIAS} v{live}")
    numbers = published(versions)
    same = [number for number in numbers if matches(versions[str(number)])]
    if same:
        # rolled back earlier, or a run stopped halfway: the wanted version exists
        target = str(same[-1])

        def move(aws):
            _point_alias(aws, function.name, alias, target)

        return Step("update", subject, f"{ALIAS} -> v{target}", move)
    latest = _settings(versions["$LATEST"])
    changed = [key for key, value in wanted.items() if latest.get(key) != value]
    code_changed = latest["CodeSha256"] != desired.code_sha256 or "Architectures" in changed
    settings_changed = set(changed) - {"Architectures"}
    obsolete = [number for number in numbers[: max(0, len(numbers) - (KEPT_VERSIONS - 1))] if str(number) != live]

    def publish(aws):
        client = aws.lambda_
        if code_changed:
            client.update_function_code(
                FunctionName=function.name, ZipFile=desired.package, Architectures=wanted["Architectures"]
            )
            client.get_waiter("function_updated_v2").wait(FunctionName=function.name)
        if settings_changed:
            retry_while_role_propagates(
                lambda: client.update_function_configuration(
                    FunctionName=function.name,
                    **{key: value for key, value in wanted.items() if key != "Architectures"},  # set with the code
                )
            )
            client.get_waiter("function_updated_v2").wait(FunctionName=function.name)
        version = client.publish_version(FunctionName=function.name, CodeSha256=desired.code_sha256)["Version"]
        _point_alias(aws, function.name, alias, version)
        for number in obsolete:
            client.delete_function(FunctionName=function.name, Qualifier=str(number))
        pruned = f", deleted v{', v'.join(map(str, obsolete))}" if obsolete else ""
        return f"published v{version}, {ALIAS} -> v{version}{pruned}"

    named = [SETTING_NAMES.get(key, key) for key in changed]
    what = ", ".join(["code"] * (latest["CodeSha256"] != desired.code_sha256) + named) or "new version"
    return Step("update", subject, f"{what}; publish a version", publish)


def _settings(version: dict) -> dict:
    """A version's configuration with its VpcConfig as :func:`vpc_config` writes it (sorted ids, no VpcId)."""
    vpc = version.get("VpcConfig") or {}
    subnets, groups = sorted(vpc.get("SubnetIds") or []), sorted(vpc.get("SecurityGroupIds") or [])
    return version | {"VpcConfig": {"SubnetIds": subnets, "SecurityGroupIds": groups}}


def _create_function(aws: Aws, desired: DesiredState, function: Function) -> str:
    created = retry_while_role_propagates(
        lambda: aws.lambda_.create_function(
            FunctionName=function.name,
            Code={"ZipFile": desired.package},
            Description="lamed: A/B-testing backend for AlephBet",
            Publish=True,
            Tags=MANAGED_TAG,
            **function.configuration(role_arn(aws.account)),
        )
    )
    aws.lambda_.get_waiter("function_active_v2").wait(FunctionName=function.name)
    version = created["Version"]
    aws.lambda_.create_alias(FunctionName=function.name, Name=ALIAS, FunctionVersion=version)
    return f"v{version}, {ALIAS} -> v{version}"


def _point_alias(aws: Aws, name: str, alias: dict | None, version: str) -> None:
    if alias is None:
        aws.lambda_.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
    else:
        aws.lambda_.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)


def _api_steps(aws: Aws, desired: DesiredState, api: dict | None) -> list[Step]:
    steps = []
    resources = {}
    if api is None:

        def create_api(aws):
            created = aws.apigateway.create_rest_api(
                name=API_NAME,
                description="lamed: A/B-testing backend for AlephBet",
                endpointConfiguration={"types": ["REGIONAL"]},
            )
            aws.values["api_id"] = created["id"]
            aws.values["resources"] = {item["path"]: item["id"] for item in _resources(aws)}
            return created["id"]

        steps.append(Step("create", f"REST API {API_NAME}", call=create_api))
    else:
        aws.values["api_id"] = api["id"]
        resources = {item["path"]: item for item in _resources(aws, embed=True)}
        aws.values["resources"] = {path: item["id"] for path, item in resources.items()}
        steps.append(Step("unchanged", f"REST API {API_NAME}", api["id"]))

    for path in desired.paths():
        wanted = [proxy_method(route, aws.region, aws.account) for route in desired.routes_on(path)] + [cors_method()]
        steps.append(_resource_step(path, resources.get(path), wanted))
    top_level = [path for path in resources if path.count("/") == 1 and path != "/"]
    for path in (path for path in top_level if path not in desired.paths()):
        steps.append(Step("delete", f"route {path}", call=lambda aws, path=path: _delete_resource(aws, path)))
    return steps


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


def _permission_step(aws: Aws, name: str, api: dict | None) -> Step:
    subject = f"permission {name}:{ALIAS}"
    detail = "invoke from this API only"
    if api is not None:
        source = api_source_arn(api["id"], aws.region, aws.account)
        statement = _permission_statement(aws, name)
        if statement is not None and statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") == source:
            return Step("unchanged", subject, detail)

    def grant(aws):
        if api is not None and statement is not None:
            aws.lambda_.remove_permission(FunctionName=name, Qualifier=ALIAS, StatementId=PERMISSION_ID)
        aws.lambda_.add_permission(
            FunctionName=name,
            Qualifier=ALIAS,
            StatementId=PERMISSION_ID,
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=api_source_arn(aws.values["api_id"], aws.region, aws.account),
        )

    action = "update" if api is not None and statement is not None else "create"
    return Step(action, subject, detail, grant)


def _permission_statement(aws: Aws, name: str) -> dict | None:
    policy = _read(aws.lambda_.get_policy, FunctionName=name, Qualifier=ALIAS)
    if policy is None:
        return None
    statements = json.loads(policy["Policy"]).get("Statement", [])
    return next((statement for statement in statements if statement.get("Sid") == PERMISSION_ID), None)


def _stage_step(aws: Aws, api: dict | None, changed: bool) -> Step:
    subject = f"stage {STAGE}"
    stage = _read(aws.apigateway.get_stage, restApiId=api["id"], stageName=STAGE) if api else None
    deployed = bool(stage and stage.get("deploymentId"))
    if deployed and not changed:
        return Step("unchanged", subject, f"deployment {stage['deploymentId']}")

    def deploy(aws):
        deployment = aws.apigateway.create_deployment(
            restApiId=aws.values["api_id"], stageName=STAGE, description=f"lamed {__version__} deploy"
        )
        return f"deployment {deployment['id']}"

    return Step("update" if deployed else "create", subject, "new deployment", deploy)


def _find_usage_plan(client) -> dict | None:
    pages = client.get_paginator("get_usage_plans").paginate()
    return next((item for page in pages for item in page["items"] if item["name"] == USAGE_PLAN_NAME), None)


def _key_steps(aws: Aws, api: dict | None) -> list[Step]:
    """The usage plan on stage prod of this API, and the API key bound to it."""
    client = aws.apigateway
    plan = _find_usage_plan(client)
    current = [{"apiId": item["apiId"], "stage": item["stage"]} for item in (plan or {}).get("apiStages", [])]
    plan_subject, key_subject = f"usage plan {USAGE_PLAN_NAME}", f"API key {API_KEY_NAME}"

    def ensure_plan(aws):
        wanted = {"apiId": aws.values["api_id"], "stage": STAGE}
        if plan is None:
            created = aws.apigateway.create_usage_plan(name=USAGE_PLAN_NAME, description="lamed", apiStages=[wanted])
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
        in_place = api is not None and current == [{"apiId": api["id"], "stage": STAGE}]
        plan_step = Step("unchanged", plan_subject, f"stage {STAGE}") if in_place else Step(
            "update", plan_subject, f"stage {STAGE}", ensure_plan
        )

    key = find_api_key(client)
    if plan is not None and key is not None and key["id"] in _usage_plan_key_ids(client, plan["id"]):
        return [plan_step, Step("unchanged", key_subject, f"in usage plan {USAGE_PLAN_NAME}")]

    def ensure_key(aws):
        key_id = key["id"] if key else aws.apigateway.create_api_key(name=API_KEY_NAME, enabled=True)["id"]
        aws.apigateway.create_usage_plan_key(usagePlanId=aws.values["usage_plan_id"], keyId=key_id, keyType="API_KEY")

    return [plan_step, Step("update" if key else "create", key_subject, f"in usage plan {USAGE_PLAN_NAME}", ensure_key)]


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
        steps.append(
            Step(
                "update",
                subject,
                f"{ALIAS} v{live} -> v{target}",
                _request("lambda_", "update_alias", FunctionName=name, Name=ALIAS, FunctionVersion=target),
            )
        )
    return steps


# -- destroy -----------------------------------------------------------------------


def plan_destroy(aws: Aws, names: list[str]) -> list[Step]:
    """Delete what deploy creates that exists: usage plan, API key, REST API, functions, role."""
    client = aws.apigateway
    steps = []
    plan = _find_usage_plan(client)
    if plan is not None:

        def delete_plan(aws):
            stages = [_stage_operation("remove", item) for item in plan.get("apiStages", [])]
            if stages:  # a usage plan is deleted only without API stages
                aws.apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=stages)
            aws.apigateway.delete_usage_plan(usagePlanId=plan["id"])

        steps.append(Step("delete", f"usage plan {USAGE_PLAN_NAME}", plan["id"], delete_plan))
    key = find_api_key(client)
    if key is not None:
        delete_key = _request("apigateway", "delete_api_key", apiKey=key["id"])
        steps.append(Step("delete", f"API key {API_KEY_NAME}", key["id"], delete_key))
    api = find_rest_api(client)
    if api is not None:
        delete_api = _request("apigateway", "delete_rest_api", restApiId=api["id"])
        steps.append(Step("delete", f"REST API {API_NAME}", api["id"], delete_api))
    for name in names:
        if function_versions(aws.lambda_, name) is not None:
            delete_function = _request("lambda_", "delete_function", FunctionName=name)
            steps.append(Step("delete", f"function {name}", "all versions", delete_function))
    if _read(aws.iam.get_role, RoleName=ROLE_NAME) is not None:
        steps.append(Step("delete", f"role {ROLE_NAME}", call=_delete_role))
    return steps


def _delete_role(aws: Aws) -> None:
    _remove_permissions(aws, *_role_permissions(aws))
    aws.iam.delete_role(RoleName=ROLE_NAME)
