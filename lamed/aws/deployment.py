"""Find an existing lamed deployment in an AWS account: its API, URLs, key and functions.

Used by ``lamed status`` and by the commands that read results, so they need no
config beyond AWS credentials and region.
"""

import json
from dataclasses import dataclass

import boto3
from lamed.aws.resources import ALIAS, API_KEY_NAME, API_NAME, STAGE
from lamed.config import CONFIG_JSON_ENV
from lamed.connection import mode

REDIS_MODE_FUNCTION = "lamed-track"  # status shows the Redis mode of this function's live version


@dataclass
class Deployment:
    """A deployed lamed API: ``api_key`` is the key's value (a secret: print it only when asked)."""

    api_id: str
    region: str
    stage: str
    track_url: str
    experiments_url: str
    api_key: str | None


def stage_url(api_id: str, region: str, stage: str = STAGE) -> str:
    """The invoke URL of a REST API stage, without a trailing slash."""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


def find_rest_api(client, name: str = API_NAME) -> dict | None:
    """The REST API called ``name`` (the first, if there are several), or None."""
    for page in client.get_paginator("get_rest_apis").paginate():
        for api in page["items"]:
            if api["name"] == name:
                return api
    return None


def find_api_key(client, name: str = API_KEY_NAME, with_value: bool = False) -> dict | None:
    """The API key called ``name``, with its ``value`` when ``with_value``, or None."""
    pages = client.get_paginator("get_api_keys").paginate(nameQuery=name, includeValues=with_value)
    for page in pages:
        for key in page["items"]:
            if key["name"] == name:
                return key
    return None


def find_deployment(session: boto3.Session) -> Deployment | None:
    """The lamed deployment in the session's account and region, or None when there is none."""
    client = session.client("apigateway")
    api = find_rest_api(client)
    if api is None:
        return None
    region = session.region_name
    base = stage_url(api["id"], region)
    key = find_api_key(client, with_value=True)
    return Deployment(
        api_id=api["id"],
        region=region,
        stage=STAGE,
        track_url=f"{base}/track",
        experiments_url=f"{base}/experiments",
        api_key=key.get("value") if key else None,
    )


def deployment_status(session: boto3.Session, function_names: list[str]) -> dict:
    """What is deployed: the API (None when absent), whether its stage is deployed, each function,
    and how the live track function reaches Redis (None when unknown; never a secret)."""
    found = find_deployment(session)
    status = {"region": session.region_name, "api": None, "redis": None, "functions": []}
    if found is not None:
        status["api"] = {
            "id": found.api_id,
            "stage": found.stage,
            "stage_deployed": _stage_deployed(session.client("apigateway"), found.api_id),
            "track_url": found.track_url,
            "experiments_url": found.experiments_url,
            "api_key": found.api_key,
        }
    client = session.client("lambda")
    live = {name: _live_version(client, name) for name in function_names}
    status["functions"] = [_function_status(name, *live[name]) for name in function_names]
    if REDIS_MODE_FUNCTION in live:
        status["redis"] = redis_mode(live[REDIS_MODE_FUNCTION][2])
    return status


def redis_mode(version: dict) -> dict | None:
    """The Redis mode (address, cluster, TLS, auth) of a deployed version's settings, or None without any."""
    variables = (version.get("Environment") or {}).get("Variables") or {}
    try:
        settings = json.loads(variables[CONFIG_JSON_ENV]).get("redis", {})
    except (KeyError, ValueError, AttributeError):
        return None
    return mode(settings) if isinstance(settings, dict) else None


def _stage_deployed(client, api_id: str) -> bool:
    try:
        return bool(client.get_stage(restApiId=api_id, stageName=STAGE).get("deploymentId"))
    except client.exceptions.NotFoundException:
        return False


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
    try:
        return client.get_alias(FunctionName=name, Name=ALIAS)
    except client.exceptions.ResourceNotFoundException:
        return None


def published(versions: dict[str, dict]) -> list[int]:
    """The published version numbers, oldest first."""
    return sorted(int(number) for number in versions if number.isdigit())


def _live_version(client, name: str) -> tuple[dict | None, str | None, dict]:
    """A function's versions (None when it does not exist), its live version number, and that version."""
    versions = function_versions(client, name)
    alias = live_alias(client, name) if versions else None
    live = alias["FunctionVersion"] if alias else None
    return versions, live, (versions or {}).get(live, {})


def _function_status(name: str, versions: dict | None, live: str | None, serving: dict) -> dict:
    return {
        "name": name,
        "deployed": versions is not None,
        "live_version": live,
        "versions": published(versions or {}),
        "runtime": serving.get("Runtime"),
        "vpc": _vpc(serving.get("VpcConfig")),
    }


def _vpc(config: dict | None) -> dict | None:
    """The subnets and security groups of a VpcConfig, or None outside any VPC."""
    subnets = (config or {}).get("SubnetIds") or []
    if not subnets:
        return None
    return {"subnet_ids": sorted(subnets), "security_group_ids": sorted(config.get("SecurityGroupIds") or [])}
