"""Find an existing lamed deployment in an AWS account: its API, URLs and API key.

Used by ``lamed status`` and by the commands that read results, so they need no
config beyond AWS credentials and region.
"""

from dataclasses import dataclass

import boto3

API_NAME = "lamed"
STAGE = "prod"
API_KEY_NAME = "lamed"


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
