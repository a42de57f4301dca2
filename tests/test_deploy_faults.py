"""`lamed deploy` / `destroy` against a stricter AWS: the fault layer of tests/aws_faults.py on the moto server.

Asynchronous Lambda states, IAM propagation, API Gateway throttling, duplicate permission
statements, runs interrupted before each of their AWS calls and then re-run, the aws-cn
partition, and resources with lamed's names that lamed did not create.
"""

import json
import os
import re

import boto3
import pytest
from click.testing import CliRunner

from aws_faults import FaultyAws, Interrupted, is_read
from lamed.aws.resources import LAMBDA_TRUST_POLICY
from lamed.cli import cli
from lamed.config import DEFAULT_RUNTIME
from test_deploy import EXTRA, REGION, STANDARD, _fresh_aws, _network, aws  # noqa: F401 (aws is a fixture)

ADOPTED = "adopted: tagged managed-by=lamed"


@pytest.fixture
def faults(aws, monkeypatch):
    return FaultyAws().install(monkeypatch)


def snapshot(aws) -> dict:
    """What is deployed, with ids replaced by placeholders, so two accounts can be compared."""
    apis = aws.apigateway.get_rest_apis()["items"]
    ids = {api["id"]: "API" for api in apis}

    def plain(value):
        text = json.dumps(value, sort_keys=True, default=str)
        for real, placeholder in ids.items():
            text = text.replace(real, placeholder)
        return json.loads(text)

    state = {"role": None, "functions": {}, "logs": {}, "apis": []}
    roles = [role for role in aws.iam.list_roles()["Roles"] if role["RoleName"] == "lamed"]
    if roles:
        names = aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"]
        state["role"] = {
            "tags": aws.iam.get_role(RoleName="lamed")["Role"].get("Tags"),
            "policies": {name: aws.iam.get_role_policy(RoleName="lamed", PolicyName=name)["PolicyDocument"] for name in sorted(names)},
        }
    for function in aws.lambda_.list_functions()["Functions"]:
        name = function["FunctionName"]
        live = aws.lambda_.get_function_configuration(FunctionName=name, Qualifier="live")
        policy = json.loads(aws.lambda_.get_policy(FunctionName=name, Qualifier="live")["Policy"])
        state["functions"][name] = {
            "versions": aws.versions(name),
            "live": aws.live(name),
            "settings": {key: live.get(key) for key in ("CodeSha256", "Handler", "Timeout", "Environment", "Role")},
            "tags": aws.lambda_.get_function(FunctionName=name).get("Tags"),
            "permissions": sorted(policy["Statement"], key=lambda item: item["Sid"]),
            "function URL": _function_url(aws, name),
            "reserved concurrency": aws.lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions"),
        }
    for group in aws.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]:
        tags = aws.logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"]
        state["logs"][group["logGroupName"]] = (group.get("retentionInDays"), tags)
    for api in apis:
        resources = aws.apigateway.get_resources(restApiId=api["id"], embed=["methods"])["items"]
        stage = aws.apigateway.get_stage(restApiId=api["id"], stageName="prod")
        deployment = aws.apigateway.get_deployment(restApiId=api["id"], deploymentId=stage["deploymentId"])
        responses = aws.apigateway.get_gateway_responses(restApiId=api["id"])["items"]
        state["apis"].append(
            {
                "tags": api.get("tags"),
                "resources": {item["path"]: item.get("resourceMethods") for item in resources},
                "served": deployment["description"],
                "method settings": stage.get("methodSettings"),
                "gateway responses": {item["responseType"]: item.get("responseParameters") for item in responses},
            }
        )
    plans = aws.apigateway.get_usage_plans()["items"]
    state["usage plans"] = [(plan["name"], plan.get("apiStages"), plan.get("tags")) for plan in plans]
    keys = aws.apigateway.get_api_keys()["items"]
    state["keys"] = [(key["name"], key.get("tags"), [plan["name"] for plan in plans if _bound(aws, plan, key)]) for key in keys]
    return plain(state)


def _function_url(aws, name) -> dict | None:
    try:
        found = aws.lambda_.get_function_url_config(FunctionName=name, Qualifier="live")
    except aws.lambda_.exceptions.ResourceNotFoundException:
        return None
    return {key: found[key] for key in ("AuthType", "Cors")}


def _bound(aws, plan, key) -> bool:
    return key["id"] in {item["id"] for item in aws.apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]}


# -- a deploy's life through the fault layer ----------------------------------------------


def test_deploy_redeploy_rollback_destroy_through_the_fault_layer(aws, faults):
    aws.write_config(extra_wiring=[EXTRA])
    first = aws.deploy()
    assert ("propagating", "CreateFunction") in faults.events  # Lambda could not use the new role at first
    assert "waiting    for IAM to let Lambda use the role (0 s so far, at most 150 s)" in first
    pending_reads = [op for _, op, _ in faults.calls if op == "GetFunctionConfiguration"]
    assert len(pending_reads) > len(STANDARD) + 1  # functions were awaited while Pending
    assert not [event for event in faults.events if event[0] == "conflict"]  # lamed waited before changing them
    url = aws.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")
    assert f"track URL:       {url['FunctionUrl']}  (Lambda function URL)" in first
    granted = {params["StatementId"] for params in faults.like_aws.added_permissions if params["Principal"] == "*"}
    assert granted == {"lamed-function-url", "lamed-function-url-invoke"}
    assert "no changes" in aws.deploy()

    aws.write_config(extra_wiring=[EXTRA], uuid_expiry_seconds=600)
    out = aws.deploy()
    assert out.count("published v2, live -> v2") == len(STANDARD) + 1
    assert aws.lamed("rollback").exit_code == 0
    assert {aws.live(name) for name in STANDARD} == {"1"}
    assert out.count("live -> v2") == len(STANDARD) + 1 and "published" not in aws.deploy().replace("live -> v2", "")

    destroyed = aws.lamed("destroy", "--yes")
    assert destroyed.exit_code == 0, destroyed.output
    assert aws.lambda_.list_functions()["Functions"] == [] and aws.iam.list_roles()["Roles"] == []
    assert aws.apigateway.get_rest_apis()["items"] == [] and aws.logs.describe_log_groups()["logGroups"] == []


def test_changes_wait_for_an_update_still_in_progress_and_retry_a_concurrent_one(aws, faults):
    aws.deploy()
    faults.busy["lamed-track"] = ("InProgress", faults.now + 20)  # an update from an earlier run
    faults.conflicts = 2  # and someone else's, invisible to reads
    aws.write_config(uuid_expiry_seconds=60)
    out = aws.deploy()
    assert out.count("published v2, live -> v2") == len(STANDARD)
    assert faults.events.count(("conflict", "UpdateFunctionConfiguration")) == 2
    start = faults.now
    assert "no changes" in aws.deploy() and faults.now - start < 10


def test_iam_propagation_is_awaited_150_s_at_most_then_the_error_is_one_line(aws, faults):
    faults.propagation_seconds = 1000
    result = aws.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1
    assert result.output.count("waiting    for IAM") == 6  # at once, then every 30 s
    last = result.output.strip().splitlines()[-1]
    assert last == (
        "Error: AWS error in CreateFunction: InvalidParameterValueException: "
        "The role defined for the function cannot be assumed by Lambda."
    )
    assert 150 <= faults.now < 200


def test_a_failed_function_is_recreated_with_its_alias_and_permission(aws, faults):
    aws.deploy()
    faults.failed.add("lamed-track")
    out = aws.deploy()
    assert "updated    function lamed-track (v1, live -> v1)" in out
    assert "created    permission lamed-track:live (invoke from this API only)" in out
    assert "created    function URL lamed-track:live" in out and out.count("created    permission lamed-track:live lamed-function-url") == 2
    assert aws.versions("lamed-track") == ["$LATEST", "1"] and aws.live("lamed-track") == "1"
    statement = apigateway_statement(aws, "lamed-track")
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":{aws.api_id()}/*")
    assert "no changes" in aws.deploy()


def apigateway_statement(aws, name) -> dict:
    """The statement letting API Gateway invoke ``name``'s live alias."""
    statements = json.loads(aws.lambda_.get_policy(FunctionName=name, Qualifier="live")["Policy"])["Statement"]
    (statement,) = [item for item in statements if item["Sid"] == "lamed-apigateway"]
    return statement


def test_a_lost_api_replaces_each_permission_instead_of_duplicating_it(aws, faults):
    aws.deploy()
    aws.apigateway.delete_rest_api(restApiId=aws.api_id())  # an interrupted destroy
    out = aws.deploy()
    assert out.count("updated    permission") == len(STANDARD)
    assert not [event for event in faults.events if event[0] == "duplicate statement"]
    source = f":{aws.api_id()}/*"
    for name in STANDARD:
        statement = apigateway_statement(aws, name)
        assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(source)
    assert "no changes" in aws.deploy()


def test_deploy_destroy_redeploy_in_a_row_outlast_api_gateways_throttling(aws, faults):
    faults.latency = 0.01  # 100 requests/s: above API Gateway's 10/s once its burst is spent
    aws.deploy()
    aws.apigateway.delete_rest_api(restApiId=aws.api_id())
    assert "updated    usage plan lamed" in aws.deploy()  # UpdateUsagePlan: moves the plan to the new API
    destroyed = aws.lamed("destroy", "--yes")  # UpdateUsagePlan again, within API Gateway's 20 s
    assert destroyed.exit_code == 0, destroyed.output
    out = aws.deploy()
    throttled = {operation for kind, operation in faults.events if kind == "throttled"}
    assert "UpdateUsagePlan" in throttled and throttled - {"UpdateUsagePlan"}, throttled  # per call and overall
    assert "created    stage prod" in out
    assert "no changes" in aws.deploy()


def test_status_shows_log_retention_and_destroy_keep_logs_leaves_the_groups(aws):
    aws.write_config(log_retention_days=7)
    aws.deploy()
    groups = {group["logGroupName"]: group for group in aws.logs.describe_log_groups()["logGroups"]}
    assert set(groups) == {f"/aws/lambda/{name}" for name in STANDARD}
    assert {group["retentionInDays"] for group in groups.values()} == {7}
    assert f"lamed-track: live v1, {DEFAULT_RUNTIME}, kept v1, reserved concurrency 100, logs kept 7 days\n" in aws.lamed("status").output
    policy = aws.iam.get_role_policy(RoleName="lamed", PolicyName=f"lamed-logs-{REGION}")["PolicyDocument"]
    arns = {arn.removesuffix(":*") for arn in policy["Statement"][0]["Resource"]}
    assert arns == {group["logGroupArn"] for group in groups.values()}

    aws.write_config(log_retention_days=90)
    assert aws.deploy().count("updated    log group") == len(STANDARD)
    out = aws.lamed("destroy", "--yes", "--keep-logs").output
    assert "log group" not in out and len(aws.logs.describe_log_groups()["logGroups"]) == len(STANDARD)
    assert aws.lamed("destroy", "--yes").output.count("deleted    log group") == len(STANDARD)
    assert aws.logs.describe_log_groups()["logGroups"] == []


@pytest.mark.parametrize(
    "config, words",
    [
        ({"log_retention_days": 10}, '"log_retention_days" must be one of'),
        ({"extra_wiring": [{**EXTRA, "lambda": {**EXTRA["lambda"], "Timeout": 60}}]}, "at most 29"),
    ],
)
def test_settings_lambda_or_cloudwatch_cannot_take_are_one_line(aws, config, words):
    aws.write_config(**config)
    result = aws.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1 and words in result.output and result.output.count("\n") == 1
    assert aws.lambda_.list_functions()["Functions"] == []


def test_destroy_waits_for_lambdas_network_interfaces_before_deleting_the_role(aws, faults):
    network = _network()
    aws.write_config(vpc=network)
    assert "waiting    for IAM to let Lambda use the role" in aws.deploy()  # "… CreateNetworkInterface on EC2"
    assert ("propagating", "CreateFunction") in faults.events
    ec2 = boto3.Session(region_name=REGION).client("ec2")
    eni = ec2.create_network_interface(SubnetId=network["subnet_ids"][0], Description="AWS Lambda VPC ENI-lamed-track-9f1")
    polls = []

    def release_later(layer):
        polls.append(layer.now)
        if len(polls) == 3:
            ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterface"]["NetworkInterfaceId"])

    faults.reactions["DescribeNetworkInterfaces"] = release_later
    out = aws.lamed("destroy", "--yes").output
    assert "waiting    for Lambda to release 1 network interface(s) (0 s so far)" in out
    assert len(polls) == 4 and out.endswith("deleted    role lamed\n")
    assert aws.iam.list_roles()["Roles"] == []


# -- interrupted runs converge ---------------------------------------------------------------


def _run_interrupted(faults, args, index) -> str:
    """Run the CLI and stop it before its AWS call number ``index``; the operation it stopped before."""
    faults.abort_before = index
    with pytest.raises(Interrupted) as stopped:
        CliRunner().invoke(cli, ["--region", REGION, *args], catch_exceptions=False)
    return str(stopped.value).removeprefix("interrupted before ")


# AWS's asynchronous states have tests of their own above; here they would only add reads.
INSTANT = {"pending_seconds": 0, "update_seconds": 0, "propagation_seconds": 0}


def stopping_points(calls: list, start: int = 0) -> list[tuple[int, str]]:
    """The calls (index from ``start``, operation) to stop a run before.

    By default each write that follows a kind of write not seen before it: (previous write,
    write) pairs are tested once each, so the four functions' and four routes' identical
    sequences are tested once, every boundary between two kinds of step included. An abort
    before a read leaves AWS as the abort before the next write, and the planner only
    reads. With ``LAMED_EVERY_CALL=1``, literally every call, reads included.
    """
    every = os.environ.get("LAMED_EVERY_CALL") == "1"
    points, seen, previous = [], set(), None
    for index, (_, operation, _) in enumerate(calls[start:]):
        if every:
            points.append((index, operation))
        elif not is_read(operation):
            if (previous, operation) not in seen:
                points.append((index, operation))
            seen.add((previous, operation))
            previous = operation
    return points


def test_a_deploy_interrupted_before_its_writes_converges_on_the_next_run(moto_server, monkeypatch, tmp_path):
    aws = _fresh_aws(moto_server, monkeypatch, tmp_path)
    faults = FaultyAws(**INSTANT).install(monkeypatch)
    aws.deploy()
    reference = snapshot(aws)
    points = stopping_points(faults.calls)
    operations = {operation for _, operation in points}
    assert len(points) > 20 and {"CreateRole", "CreateFunction", "CreateResource", "CreateDeployment"} <= operations
    assert {operation for _, operation, _ in faults.calls if not is_read(operation)} <= operations  # every kind
    for index, operation in points:
        aws = _fresh_aws(moto_server, monkeypatch, tmp_path)
        faults = FaultyAws(**INSTANT).install(monkeypatch)
        assert _run_interrupted(faults, ["deploy", "--no-preflight"], index) == operation
        aws.deploy()
        assert snapshot(aws) == reference, f"after an interruption before {operation} (call {index})"
        assert "no changes" in aws.deploy(), operation


def test_a_destroy_interrupted_before_its_writes_converges_on_the_next_run(moto_server, monkeypatch, tmp_path):
    aws = _fresh_aws(moto_server, monkeypatch, tmp_path)
    faults = FaultyAws(**INSTANT).install(monkeypatch)
    aws.deploy()
    start = len(faults.calls)
    assert aws.lamed("destroy", "--yes").exit_code == 0
    points = stopping_points(faults.calls, start)
    assert len(points) > 8 and {"DeleteFunction", "DeleteRole", "DeleteLogGroup"} <= {op for _, op in points}
    for index, operation in points:
        aws = _fresh_aws(moto_server, monkeypatch, tmp_path)
        faults = FaultyAws(**INSTANT).install(monkeypatch)
        aws.deploy()
        assert _run_interrupted(faults, ["destroy", "--yes"], len(faults.calls) + index) == operation
        result = aws.lamed("destroy", "--yes")
        assert result.exit_code == 0, result.output
        assert aws.lamed("destroy", "--yes").output.endswith(f"nothing to destroy in {REGION}\n")
        assert snapshot(aws) == {"role": None, "functions": {}, "logs": {}, "apis": [], "usage plans": [], "keys": []}


# -- partitions ------------------------------------------------------------------------------


def test_in_cn_north_1_every_arn_is_aws_cn_and_urls_end_in_amazonaws_com_cn(moto_server, monkeypatch, tmp_path):
    region = "cn-north-1"
    _fresh_aws(moto_server, monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    faults = FaultyAws().install(monkeypatch)
    (tmp_path / "config.json").write_text(json.dumps({"redis": {"url": "rediss://cache:6379", "cluster": True,
        "iam": {"user": "u", "cache": "c", "serverless": True}}}))  # fmt: skip
    result = CliRunner().invoke(cli, ["--region", region, "deploy", "--no-preflight"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    sent = json.dumps([params for _, _, params in faults.calls], default=str)
    partitions = set(re.findall(r"arn:([a-z-]*):", sent))
    assert partitions == {"aws-cn"}, partitions
    assert "arn:aws-cn:elasticache:cn-north-1:" in sent and "arn:aws-cn:logs:cn-north-1:" in sent
    urls = [url for url in re.findall(r"https://\S+", result.output) if "execute-api" in url]
    assert urls and all(".execute-api.cn-north-1.amazonaws.com.cn/prod/" in url for url in urls)
    status = CliRunner().invoke(cli, ["--region", region, "status"]).output
    assert ".execute-api.cn-north-1.amazonaws.com.cn/prod/track" in status


# -- ownership ---------------------------------------------------------------------------------


def test_an_untagged_role_and_api_named_lamed_are_left_alone_unless_adopted(aws, faults):
    other = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    aws.iam.create_role(RoleName="lamed", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    aws.iam.put_role_policy(RoleName="lamed", PolicyName="theirs", PolicyDocument=json.dumps(other))
    api = aws.apigateway.create_rest_api(name="lamed")["id"]
    root = aws.apigateway.get_resources(restApiId=api)["items"][0]["id"]
    aws.apigateway.create_resource(restApiId=api, parentId=root, pathPart="theirs")
    before = snapshot_of_theirs(aws, api)

    result = aws.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: role lamed, REST API lamed exist but lamed did not create them") and "--adopt" in line
    assert aws.lambda_.list_functions()["Functions"] == [] and snapshot_of_theirs(aws, api) == before

    out = aws.lamed("destroy", "--yes").output
    assert "unchanged  role lamed (not lamed's (no tag managed-by=lamed): left alone)" in out
    assert "unchanged  REST API lamed (not lamed's" in out and out.endswith(f"nothing to destroy in {REGION}\n")
    assert snapshot_of_theirs(aws, api) == before

    out = aws.deploy("--adopt")
    assert f"updated    role lamed ({ADOPTED}; CloudWatch Logs policy; removed theirs)" in out
    assert f"updated    REST API lamed ({api}; {ADOPTED})" in out and "deleted    route /theirs" in out
    assert "no changes" in aws.deploy()
    assert aws.lamed("destroy", "--yes").exit_code == 0
    assert aws.iam.list_roles()["Roles"] == [] and aws.apigateway.get_rest_apis()["items"] == []


def snapshot_of_theirs(aws, api) -> tuple:
    policies = aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"]
    paths = sorted(item["path"] for item in aws.apigateway.get_resources(restApiId=api)["items"])
    return policies, paths, aws.iam.get_role(RoleName="lamed")["Role"].get("Tags"), aws.apigateway.get_rest_apis()["items"]
