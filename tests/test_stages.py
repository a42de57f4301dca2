"""Stages and regions: several lamed deployments side by side in one account, each deployed, read,
rolled back and destroyed alone; and a region without Lambda function URLs.

The real CLI against the moto server over HTTP (as tests/test_deploy.py), read back through boto3.
"""

import json

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from lamed import report
from lamed.aws import session as aws_session
from lamed.aws.resources import (
    FUNCTION_NAME_MAX,
    FUNCTION_URL_PERMISSIONS,
    POLICY_KINDS,
    STAGE_MAX,
    STANDARD_FUNCTION_NAMES,
    VPC_POLICY,
    Names,
    Place,
    elasticache_policy,
    log_group_name,
)
from lamed.aws.role import ROLE_POLICY_QUOTA, policy_size
from lamed.cli import cli

from test_deploy import ACCOUNT, REGION, STANDARD, _fresh_aws
from test_results import ISOLATED, one_line_error

OTHER_REGION = "us-east-1"
NO_URL_REGION = "ca-west-1"  # AWS's function URL page lists it among the regions without them


def lamed(region, *args, input=None):
    return CliRunner().invoke(cli, ["--region", region, *args], input=input, catch_exceptions=False)


def deploy(region, *args):
    result = lamed(region, "deploy", "--no-preflight", *args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def aws(moto_server, monkeypatch, tmp_path):
    return _fresh_aws(moto_server, monkeypatch, tmp_path)


# -- names -------------------------------------------------------------------------------------


def test_without_a_stage_the_names_are_the_ones_lamed_always_used():
    names = Names(None, REGION)
    assert (names.app, names.track_function, names.permission_id) == ("lamed", "lamed-track", "lamed-apigateway")
    assert [names.url_permission(sid) for sid in FUNCTION_URL_PERMISSIONS] == ["lamed-function-url", "lamed-function-url-invoke"]
    assert [names.staged(name) for name in STANDARD_FUNCTION_NAMES] == list(STANDARD)
    assert [names.policy(kind) for kind in POLICY_KINDS] == [
        "lamed-logs-eu-west-1", "lamed-vpc-eu-west-1", "lamed-elasticache-eu-west-1"
    ]  # fmt: skip
    assert [names.policy_region(names.policy(kind)) for kind in POLICY_KINDS] == [REGION] * 3
    assert names.policy_region("lamed-logs") is None and names.legacy_policy("lamed-logs")
    dev = Names("dev", REGION)
    assert (dev.app, dev.track_function, dev.policy("lamed-logs")) == ("lamed-dev", "lamed-track-dev", "lamed-logs-dev-eu-west-1")
    assert dev.policy_region("lamed-logs-eu-west-1") is None and not dev.legacy_policy("lamed-logs")


def _fits(service: str, shape: str, value: str, maximum: int | None = None) -> bool:
    """Whether ``value`` satisfies the shape's length and pattern in botocore's model (``maximum`` where
    the model's documentation states a lower one than its metadata)."""
    import re

    metadata = botocore.session.get_session().get_service_model(service).shape_for(shape).metadata
    return metadata["min"] <= len(value) <= min(metadata["max"], maximum or metadata["max"]) and bool(
        re.fullmatch(metadata["pattern"], value)
    )


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-7", "us-gov-west-1"])
def test_every_name_of_the_longest_stage_fits_aws_s_limits(region):
    names = Names("a-9" + "x" * (STAGE_MAX - 3), region)
    functions = [names.staged(name) for name in STANDARD_FUNCTION_NAMES]
    # CreateFunction's FunctionName documentation: "If you specify only the function name, it is limited
    # to 64 characters in length"; the model's pattern ends in the name's charset [a-zA-Z0-9-_]
    assert all(_fits("lambda", "FunctionName", name, FUNCTION_NAME_MAX) for name in functions)
    assert max(map(len, functions)) == FUNCTION_NAME_MAX
    assert _fits("iam", "roleNameType", names.app)
    assert all(_fits("iam", "policyNameType", names.policy(kind)) for kind in POLICY_KINDS)
    sids = [names.permission_id, *map(names.url_permission, FUNCTION_URL_PERMISSIONS)]
    assert all(_fits("lambda", "StatementId", sid) for sid in sids)
    assert all(_fits("logs", "LogGroupName", log_group_name(name)) for name in functions)
    assert all(names.policy_region(names.policy(kind)) == region for kind in POLICY_KINDS)


@pytest.mark.parametrize("stage", ["Dev", "dev_1", "-dev", "a" * (STAGE_MAX + 1), "dév", ""])
def test_a_stage_aws_names_cannot_carry_is_one_line_with_the_fix_before_any_aws_call(aws, stage):
    for command in ("deploy", "status", "rollback", "destroy", "results"):
        line = one_line_error(lamed(REGION, command, "--stage", stage))
        assert line.startswith(f"Error: --stage {stage!r} cannot be part of AWS names — fix: use 1 to {STAGE_MAX} lower-case")
    assert aws.iam.list_roles()["Roles"] == []


def test_an_extra_function_whose_staged_name_is_too_long_is_a_config_error(aws):
    extra = {"lambda": {"FunctionName": "f" * 61, "Handler": "lamed.track", "Timeout": 10},
             "api_gateway": {"pathPart": "f", "method": {"httpMethod": "GET"}}}  # fmt: skip
    aws.write_config(extra_wiring=[extra])
    line = one_line_error(lamed(REGION, "deploy", "--no-preflight", "--stage", "dev"))
    assert f"would be named {'f' * 61}-dev in stage dev, over Lambda's 64 characters — fix:" in line
    assert aws.lambda_.list_functions()["Functions"] == []


# -- side by side ------------------------------------------------------------------------------


def inventory() -> set[tuple]:
    """Everything lamed may create, in both regions, as (region, kind, name[, details]) tuples."""
    items = set()
    iam = boto3.client("iam", region_name=REGION)
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        items.add(("global", "role", name))
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            items.add(("global", "role policy", name, policy, json.dumps(document, sort_keys=True)))
    for region in (REGION, OTHER_REGION):
        lambda_ = boto3.client("lambda", region_name=region)
        apigateway = boto3.client("apigateway", region_name=region)
        logs = boto3.client("logs", region_name=region)
        for function in lambda_.list_functions()["Functions"]:
            name = function["FunctionName"]
            live = lambda_.get_function_configuration(FunctionName=name, Qualifier="live")
            policy = json.loads(lambda_.get_policy(FunctionName=name, Qualifier="live")["Policy"])
            items.add((region, "function", name, live["Role"], tuple(sorted(s["Sid"] for s in policy["Statement"]))))
        items |= {(region, "REST API", api["name"], api["id"]) for api in apigateway.get_rest_apis()["items"]}
        items |= {(region, "API key", key["name"]) for key in apigateway.get_api_keys()["items"]}
        items |= {(region, "usage plan", plan["name"]) for plan in apigateway.get_usage_plans()["items"]}
        items |= {(region, "log group", group["logGroupName"]) for group in logs.describe_log_groups()["logGroups"]}
    return items


def roles_in_use(items: set[tuple]) -> set[tuple]:
    """The roles of ``items`` that still have a policy (a role is kept while any region uses it)."""
    return {("global", "role", item[2]) for item in items if item[1] == "role policy"}


DEPLOYMENTS = [(REGION, None), (REGION, "dev"), (OTHER_REGION, None), (OTHER_REGION, "dev")]


def test_two_stages_in_two_regions_side_by_side_each_destroyed_alone(aws):
    added = {}
    for region, stage in DEPLOYMENTS:
        before = inventory()
        deploy(region, *(["--stage", stage] if stage else []))
        added[region, stage] = inventory() - before
        assert added[region, stage], (region, stage)
    everything = inventory()
    apis = {(item[0], item[2]) for item in everything if item[1] == "REST API"}
    assert apis == {(region, "lamed-dev" if stage else "lamed") for region, stage in DEPLOYMENTS}
    functions = {item for item in everything if item[1] == "function"}
    assert {(item[0], item[2], item[3].rsplit("/", 1)[1]) for item in functions} == {
        (region, f"{name}-dev" if stage else name, "lamed-dev" if stage else "lamed")
        for region, stage in DEPLOYMENTS
        for name in STANDARD
    }
    permissions = {item[4] for item in functions if item[2].startswith("lamed-track")}
    assert permissions == {
        ("lamed-apigateway", "lamed-function-url", "lamed-function-url-invoke"),
        ("lamed-apigateway-dev", "lamed-function-url-dev", "lamed-function-url-invoke-dev"),
    }
    policies = {(item[2], item[3]) for item in everything if item[1] == "role policy"}
    assert policies == {("lamed", f"lamed-logs-{REGION}"), ("lamed", f"lamed-logs-{OTHER_REGION}"),
                        ("lamed-dev", f"lamed-logs-dev-{REGION}"), ("lamed-dev", f"lamed-logs-dev-{OTHER_REGION}")}  # fmt: skip
    for document in (item[4] for item in everything if item[1] == "role policy"):  # each region's logs, its own
        resources = json.loads(document)["Statement"][0]["Resource"]
        assert len({arn.split(":")[3] for arn in resources}) == 1

    remaining = everything
    for region, stage in [(REGION, "dev"), (OTHER_REGION, None), (OTHER_REGION, "dev"), (REGION, None)]:
        result = lamed(region, "destroy", "--yes", *(["--stage", stage] if stage else []))
        assert result.exit_code == 0, result.output
        mine = {item for item in added[region, stage] if item[1] != "role"}
        remaining = remaining - mine
        remaining = {item for item in remaining if item[1] != "role"} | roles_in_use(remaining)
        assert inventory() == remaining, (region, stage)
    assert remaining == set()
    checked = {resource for _, resource in aws.like_aws.policy.checked}  # every call held to docs/iam-policy.json
    assert f"arn:aws:iam::{ACCOUNT}:role/lamed-dev" in checked and aws.like_aws.policy.denied == []


def test_a_region_s_destroy_keeps_the_role_another_region_uses_and_says_so(aws):
    deploy(REGION, "--stage", "dev")
    deploy(OTHER_REGION, "--stage", "dev")
    plan = lamed(REGION, "destroy", "--stage", "dev", input="n\n").output
    assert f"update     role lamed-dev (removed lamed-logs-dev-{REGION}; kept: used in {OTHER_REGION})" in plan
    assert f"Delete all of this in {REGION} for stage dev?" in plan
    out = lamed(REGION, "destroy", "--stage", "dev", "--yes").output
    assert f"updated    role lamed-dev (removed lamed-logs-dev-{REGION}; kept: used in {OTHER_REGION})" in out
    assert lamed(REGION, "destroy", "--stage", "dev", "--yes").output == (
        f"unchanged  role lamed-dev (kept: used in {OTHER_REGION})\nnothing to destroy in {REGION} for stage dev\n"
    )
    assert "deleted    role lamed-dev\n" in lamed(OTHER_REGION, "destroy", "--stage", "dev", "--yes").output


def test_a_role_from_before_regions_keeps_its_policies_for_their_region_until_that_region_deploys(aws):
    """lamed once named the policies without their region (``lamed-logs``): they belong to the region
    they name, so a deploy elsewhere leaves them, and a deploy in that region replaces them."""
    iam = aws.iam
    deploy(OTHER_REGION)
    current = f"lamed-logs-{OTHER_REGION}"
    document = iam.get_role_policy(RoleName="lamed", PolicyName=current)["PolicyDocument"]
    iam.put_role_policy(RoleName="lamed", PolicyName="lamed-logs", PolicyDocument=json.dumps(document))
    iam.delete_role_policy(RoleName="lamed", PolicyName=current)  # the role as an earlier lamed left it

    deploy(REGION)
    assert sorted(iam.list_role_policies(RoleName="lamed")["PolicyNames"]) == ["lamed-logs", f"lamed-logs-{REGION}"]
    assert iam.get_role_policy(RoleName="lamed", PolicyName="lamed-logs")["PolicyDocument"] == document
    out = deploy(OTHER_REGION)
    assert "updated    role lamed (CloudWatch Logs policy; removed lamed-logs)" in out
    assert sorted(iam.list_role_policies(RoleName="lamed")["PolicyNames"]) == [f"lamed-logs-{REGION}", f"lamed-logs-{OTHER_REGION}"]
    assert iam.get_role_policy(RoleName="lamed", PolicyName=current)["PolicyDocument"] == document
    assert "no changes" in deploy(OTHER_REGION) and "no changes" in deploy(REGION)


# -- the role's quota on inline policies ---------------------------------------------------------

# Regions a stage might have been deployed to before, each with the policies of a deploy with ``vpc``
# and ``redis.iam`` (logs, network interfaces, ElastiCache's Connect)
FILLER_REGIONS = ["us-west-2", "us-east-2", "eu-west-2", "eu-west-3", "eu-north-1", "eu-central-1", "sa-east-1",
                  "ca-central-1", "ap-northeast-1", "ap-southeast-2", "ap-south-1", "me-south-1", "af-south-1"]  # fmt: skip


def iam_size(document: dict) -> int:
    """IAM's count against the quota: the document's characters but white space (the quotas page)."""
    return len("".join(json.dumps(document).split()))


def test_policy_size_counts_as_iam_does_without_white_space():
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    assert policy_size(document) == iam_size(document) == len(json.dumps(document, separators=(",", ":")))


def _fill_role(iam, logs: dict) -> int:
    """Other regions' policies on role ``lamed`` (first fit) until none more fits IAM's quota; the role's size."""
    names = [*iam.list_role_policies(RoleName="lamed")["PolicyNames"]]
    size = sum(iam_size(iam.get_role_policy(RoleName="lamed", PolicyName=name)["PolicyDocument"]) for name in names)
    for region in FILLER_REGIONS:
        place = Place("aws", region, ACCOUNT)
        policies = {
            "lamed-logs": json.loads(json.dumps(logs).replace(REGION, region)),
            "lamed-vpc": VPC_POLICY,
            "lamed-elasticache": elasticache_policy({"cache": "lamed", "user": "lamed", "serverless": True}, place),
        }
        for kind, document in policies.items():
            if size + iam_size(document) <= ROLE_POLICY_QUOTA:
                iam.put_role_policy(RoleName="lamed", PolicyName=f"{kind}-{region}", PolicyDocument=json.dumps(document))
                size += iam_size(document)
    return size


def test_a_region_that_would_take_the_role_over_iam_s_quota_is_refused_before_any_write(aws):
    """IAM caps a role's inline policies at 10,240 characters, white space not counted; every region's
    policies share the stage's role, so the next region is refused while planning, with the fix."""
    deploy(REGION)
    logs = aws.iam.get_role_policy(RoleName="lamed", PolicyName=f"lamed-logs-{REGION}")["PolicyDocument"]
    size = _fill_role(aws.iam, logs)
    other_logs = json.loads(json.dumps(logs).replace(REGION, OTHER_REGION))
    assert size <= ROLE_POLICY_QUOTA < size + iam_size(other_logs)
    before = inventory()

    line = one_line_error(lamed(OTHER_REGION, "deploy", "--no-preflight"))
    assert f"role lamed's inline policies would be {size + iam_size(other_logs)} characters with {OTHER_REGION}'s" in line
    assert f"over IAM's quota of 10240 (white space not counted) — fix: deploy {OTHER_REGION} under a stage of its own" in line
    assert inventory() == before  # nothing written
    assert one_line_error(lamed(OTHER_REGION, "deploy", "--no-preflight", "--dry-run")) == line

    iam = aws_session.make_session(None, OTHER_REGION).client("iam")  # the stricter AWS refuses it too
    with pytest.raises(ClientError, match="LimitExceeded.*Maximum policy size of 10240 bytes exceeded for role lamed"):
        iam.put_role_policy(RoleName="lamed", PolicyName=f"lamed-logs-{OTHER_REGION}", PolicyDocument=json.dumps(other_logs))
    assert inventory() == before

    assert "no changes" in deploy(REGION)  # the regions deployed keep working
    deploy(OTHER_REGION, "--stage", "dev")  # and the fix works: the stage's own role
    assert lamed(REGION, "destroy", "--yes").exit_code == 0
    assert "created    role" not in deploy(OTHER_REGION)  # and so does the other fix: a region fewer


# -- status, rollback and results per stage ------------------------------------------------------


def test_status_and_rollback_act_on_their_stage_only(aws):
    deploy(REGION)
    assert "(API key: `lamed status --stage dev --show-key`)\n" in deploy(REGION, "--stage", "dev")
    aws.write_config(uuid_expiry_seconds=3600)
    assert deploy(REGION, "--stage", "dev").count("published v2, live -> v2") == len(STANDARD)

    dev = json.loads(lamed(REGION, "status", "--stage", "dev", "--json").output)
    plain = json.loads(lamed(REGION, "status", "--json").output)
    apis = {api["name"]: api["id"] for api in aws.apigateway.get_rest_apis()["items"]}
    assert (dev["stage"], dev["api"]["id"], plain["stage"], plain["api"]["id"]) == ("dev", apis["lamed-dev"], None, apis["lamed"])
    assert {f["name"]: f["live_version"] for f in dev["functions"]} == {f"{name}-dev": "2" for name in STANDARD}
    assert {f["name"]: f["live_version"] for f in plain["functions"]} == {name: "1" for name in STANDARD}
    dev_url = aws.lambda_.get_function_url_config(FunctionName="lamed-track-dev", Qualifier="live")["FunctionUrl"]
    assert dev["track_url"] == dev_url != plain["track_url"]
    text = lamed(REGION, "status", "--stage", "dev").output
    assert f"API {apis['lamed-dev']} in {REGION} for stage dev, API Gateway stage prod: deployed\n" in text
    assert "lamed-track-dev: live v2" in text and "/aws/lambda" not in text

    result = lamed(REGION, "rollback", "--stage", "dev")
    assert result.exit_code == 0 and result.output.count("live v2 -> v1") == len(STANDARD)
    assert all(aws.live(f"{name}-dev") == "1" for name in STANDARD)
    assert lamed(REGION, "rollback").exit_code == 1  # the stage without a name has nothing earlier
    assert all(aws.live(name) == "1" and aws.versions(name) == ["$LATEST", "1"] for name in STANDARD)
    assert "no lamed API in eu-west-1 for stage qa (run `lamed deploy --stage qa`)" in lamed(REGION, "status", "--stage", "qa").output


def test_results_find_the_api_and_key_of_their_stage(aws):
    client = aws.apigateway
    found = {}
    for name in ("lamed", "lamed-dev"):
        api_id = client.create_rest_api(name=name)["id"]
        client.create_api_key(name=name, value=f"{name}-key-0123456789abcdef", enabled=True)
        found[name] = (f"https://{api_id}.execute-api.{REGION}.amazonaws.com/prod/experiments", f"{name}-key-0123456789abcdef")
    assert report.discover_endpoint(None, REGION) == found["lamed"]
    assert report.discover_endpoint(None, REGION, "dev") == found["lamed-dev"]
    for command in ("results", "dashboard"):  # execute-api cannot answer offline: the line names the URL found
        line = one_line_error(CliRunner().invoke(cli, ["--region", REGION, command, "--stage", "dev", "--timeout", "5"], env=ISOLATED))
        assert found["lamed-dev"][0] in line
    line = one_line_error(CliRunner().invoke(cli, ["--region", REGION, "results", "--stage", "qa"], env=ISOLATED))
    assert f"no lamed deployment found in {REGION} for stage qa — run `lamed deploy --stage qa`" in line
    misuse = CliRunner().invoke(cli, ["results", "--stage", "dev", "--endpoint", "http://127.0.0.1:1/experiments"], env=ISOLATED)
    assert misuse.exit_code == 2 and "Error: --stage finds a deployed API through AWS; --endpoint names one" in misuse.output


# -- a region without function URLs ------------------------------------------------------------


def test_in_a_region_without_function_urls_track_goes_through_the_rest_api(aws):
    like_aws = aws.like_aws  # refuses every function URL call there, as AWS does
    out = deploy(NO_URL_REGION)
    note = f"note: {NO_URL_REGION} has no Lambda function URLs (AWS's list): /track is served by the REST API there\n"
    assert out.count(note) == 1
    assert like_aws.url_calls == [] and all(p["Principal"] != "*" for p in like_aws.added_permissions)
    apigateway = boto3.client("apigateway", region_name=NO_URL_REGION)
    (api,) = apigateway.get_rest_apis()["items"]
    track = f"https://{api['id']}.execute-api.{NO_URL_REGION}.amazonaws.com/prod/track"
    assert f"track URL:       {track}\n" in out and "REST track URL" not in out and f'"{track}"' in out  # the snippet
    assert "function URL" not in out.replace(note, "")
    assert "created    reserved concurrency lamed-track (100)" in out

    status = lamed(NO_URL_REGION, "status")
    assert status.exit_code == 0 and note in status.output and f"track URL:       {track}" in status.output
    found = json.loads(lamed(NO_URL_REGION, "status", "--json").output)
    assert found["track_url"] == track and found["function_url"] is None
    assert "no changes" in deploy(NO_URL_REGION) and like_aws.url_calls == []
    destroyed = lamed(NO_URL_REGION, "destroy", "--yes")
    assert destroyed.exit_code == 0 and "deleted    role lamed" in destroyed.output and like_aws.url_calls == []


def test_the_strict_layer_refuses_function_urls_where_aws_has_none(aws):
    from lamed.aws.session import make_session  # as the CLI makes its sessions: with the layer's hooks

    client = make_session(None, NO_URL_REGION).client("lambda")
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.get_function_url_config(FunctionName="lamed-track", Qualifier="live")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
