"""Find an existing lamed deployment in an AWS account: its API, URLs, key, functions and log groups.

Used by ``lamed status`` and by the commands that read results, so they need no
config beyond AWS credentials, region and stage; and by the planner, which reads the same things.
Every name comes from the stage's :class:`~lamed.aws.resources.Names`.
"""

import json
from dataclasses import dataclass

import boto3

from lamed.aws.client import dns_suffix, read, stage_url
from lamed.aws.resources import (
    ALIAS,
    MANAGED_TAG,
    STAGE,
    TRACK_METHOD,
    TRACK_PATH,
    Names,
    function_urls_exist,
    log_group_name,
    method_setting_key,
)
from lamed.config import CONFIG_JSON_ENV
from lamed.connection import mode


@dataclass
class Deployment:
    """A deployed lamed API: ``api_key`` is the key's value (a secret: print it only when asked).

    ``rest_track_url`` is the REST API's /track; ``function_url`` lamed-track's function URL when
    it has one, which is then *the* track URL.
    """

    api_id: str
    region: str
    stage: str
    rest_track_url: str
    experiments_url: str
    api_key: str | None
    function_url: str | None = None

    @property
    def track_url(self) -> str:
        """The URL pages should track to: the function URL when there is one, else the REST /track."""
        return self.function_url or self.rest_track_url


def owned(tags) -> bool:
    """Whether AWS tags (a dict, or a list of Key/Value pairs) mark a resource as lamed's."""
    if isinstance(tags, list):
        tags = {tag["Key"]: tag["Value"] for tag in tags}
    return all((tags or {}).get(key) == value for key, value in MANAGED_TAG.items())


def find_rest_api(client, name: str) -> dict | None:
    """The REST API called ``name`` (lamed's own first, if there are several), or None."""
    found = [api for page in client.get_paginator("get_rest_apis").paginate() for api in page["items"] if api["name"] == name]
    return next((api for api in found if owned(api.get("tags"))), found[0] if found else None)


def find_api_key(client, name: str, with_value: bool = False) -> dict | None:
    """The API key called ``name``, with its ``value`` when ``with_value``, or None."""
    pages = client.get_paginator("get_api_keys").paginate(nameQuery=name, includeValues=with_value)
    for page in pages:
        for key in page["items"]:
            if key["name"] == name:
                return key
    return None


def find_usage_plan(client, name: str) -> dict | None:
    pages = client.get_paginator("get_usage_plans").paginate()
    return next((item for page in pages for item in page["items"] if item["name"] == name), None)


def find_log_group(client, function: str) -> dict | None:
    """The log group of ``function`` (name, retentionInDays, logGroupArn), or None."""
    name = log_group_name(function)
    pages = client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
    return next((group for page in pages for group in page["logGroups"] if group["logGroupName"] == name), None)


def find_deployment(
    session: boto3.Session, names: Names, clients=None, with_function_url: bool = False
) -> Deployment | None:
    """The deployment of the stage of ``names`` in the session's account and region, or None when there is none.

    ``clients`` (anything with ``client(service)``, such as :class:`~lamed.aws.client.Aws` with its
    pacing and retries) makes the requests; the session's own clients by default. The function URL
    is looked up only ``with_function_url`` (reading results needs API Gateway rights only).
    """
    clients = clients or session
    client = clients.client("apigateway")
    api = find_rest_api(client, names.app)
    if api is None:
        return None
    region = session.region_name
    base = stage_url(api["id"], region, dns_suffix(session), STAGE)
    key = find_api_key(client, names.app, with_value=True)
    return Deployment(
        api_id=api["id"],
        region=region,
        stage=STAGE,
        rest_track_url=f"{base}{TRACK_PATH}",
        experiments_url=f"{base}/experiments",
        api_key=key.get("value") if key else None,
        function_url=find_function_url(clients.client("lambda"), names) if with_function_url else None,
    )


def find_function_url(client, names: Names) -> str | None:
    """The track function's URL on its ``live`` alias, or None (always in a region without function URLs,
    where Lambda refuses even to look)."""
    if not function_urls_exist(names.region):
        return None
    found = read(client.get_function_url_config, FunctionName=names.track_function, Qualifier=ALIAS)
    return found and found["FunctionUrl"]


def deployment_status(session: boto3.Session, names: Names, function_names: list[str]) -> dict:
    """What the stage of ``names`` has deployed: the API (None when absent), whether its stage is deployed,
    each function with its log group, and how the live track function reaches Redis (None when unknown;
    never a secret)."""
    found = find_deployment(session, names, with_function_url=True)
    client, logs = session.client("lambda"), session.client("logs")
    function_url = found.function_url if found else find_function_url(client, names)
    status = {
        "region": session.region_name,
        "stage": names.stage,
        "track_url": found.track_url if found else function_url,
        "function_url": function_url,
        "api": None,
        "redis": None,
        "functions": [],
    }
    if found is not None:
        stage = read(session.client("apigateway").get_stage, restApiId=found.api_id, stageName=STAGE) or {}
        status["api"] = {
            "id": found.api_id,
            "stage": found.stage,
            "stage_deployed": bool(stage.get("deploymentId")),
            "track_url": found.rest_track_url,
            "track_throttle": _throttle(stage),
            "experiments_url": found.experiments_url,
            "api_key": found.api_key,
        }
    live = {name: _live_version(client, name) for name in function_names}
    status["functions"] = [
        _function_status(name, *live[name], find_log_group(logs, name), _reserved(client, name, live[name][0]))
        for name in function_names
    ]
    if names.track_function in live:  # status shows the Redis mode of this function's live version
        status["redis"] = redis_mode(live[names.track_function][2])
    return status


def redis_mode(version: dict) -> dict | None:
    """The Redis mode (address, cluster, TLS, auth) of a deployed version's settings, or None without any."""
    variables = (version.get("Environment") or {}).get("Variables") or {}
    try:
        settings = json.loads(variables[CONFIG_JSON_ENV]).get("redis", {})
    except (KeyError, ValueError, AttributeError):
        return None
    return mode(settings) if isinstance(settings, dict) else None


def _throttle(stage: dict) -> dict | None:
    """The stage's throttle on GET /track as {"rate", "burst"}, or None when it has none of its own."""
    setting = (stage.get("methodSettings") or {}).get(method_setting_key(TRACK_PATH, TRACK_METHOD)) or {}
    if "throttlingRateLimit" not in setting:
        return None
    return {"rate": setting["throttlingRateLimit"], "burst": setting.get("throttlingBurstLimit")}


def function_versions(client, name: str) -> dict[str, dict] | None:
    """A function's versions by number (``$LATEST`` included), or None when it does not exist."""
    try:
        pages = client.get_paginator("list_versions_by_function").paginate(FunctionName=name)
        versions = {version["Version"]: version for page in pages for version in page["Versions"]}
    except client.exceptions.ResourceNotFoundException:
        return None
    return versions or None  # moto lists no versions instead of raising


def live_alias(client, name: str) -> dict | None:
    """The function's ``live`` alias, or None when the function or the alias does not exist."""
    return read(client.get_alias, FunctionName=name, Name=ALIAS)


def published(versions: dict[str, dict]) -> list[int]:
    """The published version numbers, oldest first."""
    return sorted(int(number) for number in versions if number.isdigit())


def in_vpc(version: dict) -> bool:
    return bool((version.get("VpcConfig") or {}).get("SubnetIds"))


def _live_version(client, name: str) -> tuple[dict | None, str | None, dict]:
    """A function's versions (None when it does not exist), its live version number, and that version."""
    versions = function_versions(client, name)
    alias = live_alias(client, name) if versions else None
    live = alias["FunctionVersion"] if alias else None
    return versions, live, (versions or {}).get(live, {})


def _reserved(client, name: str, versions: dict | None) -> int | None:
    """A deployed function's reserved concurrency, or None (not deployed, or none reserved)."""
    if versions is None:
        return None
    return client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")


def _function_status(
    name: str, versions: dict | None, live: str | None, serving: dict, group: dict | None, reserved: int | None
) -> dict:
    return {
        "name": name,
        "deployed": versions is not None,
        "live_version": live,
        "versions": published(versions or {}),
        "runtime": serving.get("Runtime"),
        "vpc": _vpc(serving.get("VpcConfig")),
        "log_group": {"name": group["logGroupName"], "retention_days": group.get("retentionInDays")} if group else None,
        "reserved_concurrency": reserved,
    }


def _vpc(config: dict | None) -> dict | None:
    """The subnets and security groups of a VpcConfig, or None outside any VPC."""
    subnets = (config or {}).get("SubnetIds") or []
    if not subnets:
        return None
    return {"subnet_ids": sorted(subnets), "security_group_ids": sorted(config.get("SecurityGroupIds") or [])}
