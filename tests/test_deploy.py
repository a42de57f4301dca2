"""`lamed deploy`, `status`, `rollback` and `destroy`: the real CLI against a moto server over HTTP.

The resulting AWS state is read back through boto3. Redis is never contacted
(``--no-preflight``).
"""

import io
import json
import zipfile

import boto3
import pytest
import requests
from click.testing import CliRunner

import lamed.aws.package
import lamed.aws.session
import lamed.cli
from lamed.aws.package import build_package
from lamed.aws.resources import LAMBDA_TRUST_POLICY, code_sha256
from lamed.cli import cli
from lamed.config import ARCHITECTURES, DEFAULT_ARCHITECTURE, DEFAULT_RUNTIME, load_config
from lamed.redis_server import free_port

from aws_faults import LikeAws
from iam_policy import PolicyCheck

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
STANDARD = {
    # name: (handler, memory, timeout, path, HTTP method, API key required)
    "lamed-track": ("lamed.track", 128, 10, "/track", "GET", False),
    "lamed-all-experiments": ("lamed.all", 128, 29, "/experiments", "GET", True),  # API Gateway's 29 s
    "lamed-delete-experiment": ("lamed.delete", 128, 29, "/delete", "DELETE", True),
    "lamed-experiment": ("lamed.experiment", 128, 29, "/experiment", "GET", True),
}
EXTRA = {
    "lambda": {"FunctionName": "lamed-hello", "Handler": "lamed.track", "MemorySize": 256, "Timeout": 5},
    "api_gateway": {
        "pathPart": "hello",
        "method": {
            "httpMethod": "POST",
            "apiKeyRequired": True,
            "requestParameters": {"method.request.querystring.name": True},
        },
    },
}
def cors(methods: str) -> dict:
    """The CORS headers of a preflight on a resource whose routes have ``methods``."""
    return {
        "method.response.header.Access-Control-Allow-Methods": f"'{methods},OPTIONS'",
        "method.response.header.Access-Control-Allow-Headers": "'Content-Type,X-Api-Key'",
        "method.response.header.Access-Control-Allow-Origin": "'*'",
    }


class Account:
    """boto3 clients on the moto server, and a config file for the CLI."""

    def __init__(self, config_path):
        self.config_path = config_path
        self.write_config()
        session = boto3.Session(region_name=REGION)
        self.lambda_ = session.client("lambda")
        self.apigateway = session.client("apigateway")
        self.iam = session.client("iam")
        self.logs = session.client("logs")

    def write_config(self, **extra):
        config = {"redis": {"host": "redis.example.com", "port": 6379}, **extra}
        self.config_path.write_text(json.dumps(config))

    def lamed(self, *args, input=None):
        return CliRunner().invoke(cli, ["--region", REGION, *args], input=input, catch_exceptions=False)

    def deploy(self, *args):
        result = self.lamed("deploy", "--no-preflight", *args)
        assert result.exit_code == 0, result.output
        return result.output

    def api_id(self):
        (api,) = self.apigateway.get_rest_apis()["items"]
        return api["id"]

    def resources(self):
        items = self.apigateway.get_resources(restApiId=self.api_id(), embed=["methods"])["items"]
        return {item["path"]: item for item in items}

    def versions(self, name):
        return [v["Version"] for v in self.lambda_.list_versions_by_function(FunctionName=name)["Versions"]]

    def live(self, name):
        return self.lambda_.get_alias(FunctionName=name, Name="live")["FunctionVersion"]

    def deployments(self):
        return len(self.apigateway.get_deployments(restApiId=self.api_id())["items"])

    def environment(self, name, qualifier="live"):
        config = self.lambda_.get_function_configuration(FunctionName=name, Qualifier=qualifier)
        return config["Environment"]["Variables"]


def record_calls(patch) -> list[str]:
    """The AWS operations the CLI's clients make from now on, in order, through a botocore event hook."""
    calls = []
    make_session = lamed.aws.session.make_session

    def recording_session(profile, region):
        session = make_session(profile, region)
        session.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        return session

    patch.setattr(lamed.aws.session, "make_session", recording_session)
    return calls


URL_PERMISSIONS = {"lamed-function-url", "lamed-function-url-invoke"}
READS = ("Get", "List", "Describe")


def writes(calls: list[str]) -> list[str]:
    """The operations among ``calls`` that change something."""
    return [name for name in calls if not name.startswith(READS)]


ZIP = build_package(DEFAULT_RUNTIME)  # the same bytes whatever the config but its runtime (test_package): built once


def _fresh_aws(moto_server, patch, folder):
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    patch.setattr(lamed.aws.package, "build_package", lambda runtime: ZIP)
    config_path = folder / "config.json"
    patch.setenv("LAMED_CONFIG", str(config_path))
    patch.setenv("AWS_DEFAULT_REGION", REGION)
    account = Account(config_path)
    account.like_aws = LikeAws(policy=PolicyCheck()).install(patch)  # every call held to docs/iam-policy.json
    return account


@pytest.fixture
def aws(moto_server, monkeypatch, tmp_path):
    """An empty moto account and a config with the standard four functions."""
    return _fresh_aws(moto_server, monkeypatch, tmp_path)


# -- one deploy with extra wiring, inspected from every side -----------------------------


class TestFirstDeploy:
    @pytest.fixture(scope="class")
    @classmethod
    def deployed(cls, moto_server, tmp_path_factory):
        with pytest.MonkeyPatch.context() as patch:
            aws = _fresh_aws(moto_server, patch, tmp_path_factory.mktemp("first"))
            aws.write_config(extra_wiring=[EXTRA], runtime="python3.13", architecture="arm64")
            aws.output = aws.deploy()
            yield aws

    def test_functions_have_runtime_settings_and_a_live_alias_on_version_1(self, deployed):
        names = {f["FunctionName"] for f in deployed.lambda_.list_functions()["Functions"]}
        assert names == {*STANDARD, "lamed-hello"}
        wanted = {name: spec[:3] for name, spec in STANDARD.items()} | {"lamed-hello": ("lamed.track", 256, 5)}
        for name, (handler, memory, timeout) in wanted.items():
            config = deployed.lambda_.get_function_configuration(FunctionName=name, Qualifier="live")
            assert (config["Handler"], config["MemorySize"], config["Timeout"]) == (handler, memory, timeout)
            assert config["Runtime"] == "python3.13" and config["Architectures"] == ["arm64"]
            assert config["Role"] == f"arn:aws:iam::{ACCOUNT}:role/lamed"
            assert deployed.versions(name) == ["$LATEST", "1"] and deployed.live(name) == "1"

    def test_the_role_may_write_its_logs_and_nothing_else(self, deployed):
        role = deployed.iam.get_role(RoleName="lamed")["Role"]
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert deployed.iam.list_role_policies(RoleName="lamed")["PolicyNames"] == ["lamed-logs-eu-west-1"]
        assert deployed.iam.list_attached_role_policies(RoleName="lamed")["AttachedPolicies"] == []
        policy = deployed.iam.get_role_policy(RoleName="lamed", PolicyName="lamed-logs-eu-west-1")["PolicyDocument"]
        (statement,) = policy["Statement"]
        assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]  # lamed makes the groups
        assert f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/lamed-track:*" in statement["Resource"]
        groups = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/"
        assert all(arn.startswith(groups) for arn in statement["Resource"])

    def test_only_this_api_may_invoke_each_live_alias(self, deployed):
        source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{deployed.api_id()}/*"
        for name in [*STANDARD, "lamed-hello"]:
            policy = json.loads(deployed.lambda_.get_policy(FunctionName=name, Qualifier="live")["Policy"])
            statements = {statement["Sid"]: statement for statement in policy["Statement"]}
            assert set(statements) == {"lamed-apigateway"} | (URL_PERMISSIONS if name == "lamed-track" else set())
            statement = statements["lamed-apigateway"]
            assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
            assert statement["Action"] == "lambda:InvokeFunction"
            assert statement["Resource"].endswith(f":function:{name}:live")
            assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": source}}

    def test_lamed_track_s_live_alias_has_a_public_function_url_with_cors(self, deployed):
        url = deployed.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")
        assert url["AuthType"] == "NONE"
        assert url["Cors"] == {"AllowOrigins": ["*"], "AllowMethods": ["GET"], "AllowHeaders": ["content-type", "x-api-key"]}
        calls = deployed.like_aws.url_calls  # moto ignores the Qualifier: each call must carry it
        assert [name for name, _ in calls if not name.startswith("Get")] == ["CreateFunctionUrlConfig"]
        assert all(params["FunctionName"] == "lamed-track" and params["Qualifier"] == "live" for _, params in calls)
        for name in [*STANDARD, "lamed-hello"]:
            if name != "lamed-track":
                with pytest.raises(deployed.lambda_.exceptions.ResourceNotFoundException):
                    deployed.lambda_.get_function_url_config(FunctionName=name)

    def test_the_function_url_is_granted_both_public_permissions_on_the_alias_only(self, deployed):
        granted = [params for params in deployed.like_aws.added_permissions if params["Principal"] == "*"]
        assert sorted(granted, key=lambda params: params["StatementId"]) == [
            {"FunctionName": "lamed-track", "Qualifier": "live", "StatementId": "lamed-function-url",
             "Action": "lambda:InvokeFunctionUrl", "Principal": "*", "FunctionUrlAuthType": "NONE"},
            {"FunctionName": "lamed-track", "Qualifier": "live", "StatementId": "lamed-function-url-invoke",
             "Action": "lambda:InvokeFunction", "Principal": "*", "InvokedViaFunctionUrl": True},
        ]  # fmt: skip
        policy = json.loads(deployed.lambda_.get_policy(FunctionName="lamed-track", Qualifier="live")["Policy"])
        for statement in policy["Statement"]:
            assert statement["Resource"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:lamed-track:live"

    def test_lamed_track_has_reserved_concurrency_and_get_track_a_stage_throttle(self, deployed):
        concurrency = {name: deployed.lambda_.get_function_concurrency(FunctionName=name) for name in STANDARD}
        assert concurrency["lamed-track"]["ReservedConcurrentExecutions"] == 100
        assert all(not found.get("ReservedConcurrentExecutions") for name, found in concurrency.items() if name != "lamed-track")
        stage = deployed.apigateway.get_stage(restApiId=deployed.api_id(), stageName="prod")
        assert set(stage["methodSettings"]) == {"~1track/GET"}
        setting = stage["methodSettings"]["~1track/GET"]
        assert (setting["throttlingRateLimit"], setting["throttlingBurstLimit"]) == (100.0, 200)

    def test_each_route_is_a_proxy_integration_to_the_live_alias_with_its_key_rule(self, deployed):
        resources = deployed.resources()
        assert set(resources) == {"/", "/track", "/experiments", "/experiment", "/delete", "/hello"}
        routes = {name: spec[3:] for name, spec in STANDARD.items()} | {"lamed-hello": ("/hello", "POST", True)}
        for name, (path, http_method, key_required) in routes.items():
            methods = resources[path]["resourceMethods"]
            assert set(methods) == {http_method, "OPTIONS"}
            method = methods[http_method]
            assert method["apiKeyRequired"] is key_required and method["authorizationType"] == "NONE"
            integration = method["methodIntegration"]
            assert integration["type"] == "AWS_PROXY" and integration["httpMethod"] == "POST"
            alias = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:live"
            invocations = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{alias}/invocations"
            assert integration["uri"] == invocations
        assert resources["/hello"]["resourceMethods"]["POST"]["requestParameters"] == {
            "method.request.querystring.name": True
        }

    def test_every_resource_answers_cors_preflights_for_its_own_methods(self, deployed):
        methods = {path: method for path, method in (spec[3:5] for spec in STANDARD.values())} | {"/hello": "POST"}
        for path, resource in deployed.resources().items():
            if path == "/":
                continue
            options = resource["resourceMethods"]["OPTIONS"]
            assert options["apiKeyRequired"] is False
            assert set(options["methodResponses"]["200"]["responseParameters"]) == set(cors(methods[path]))
            integration = options["methodIntegration"]
            assert integration["type"] == "MOCK"
            assert integration["integrationResponses"]["200"]["responseParameters"] == cors(methods[path])

    def test_api_gateways_own_4xx_and_5xx_answers_carry_the_cors_origin(self, deployed):
        responses = deployed.apigateway.get_gateway_responses(restApiId=deployed.api_id())["items"]
        found = {item["responseType"]: item["responseParameters"] for item in responses}
        origin = {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}
        assert found["DEFAULT_4XX"] == origin and found["DEFAULT_5XX"] == origin

    def test_stage_prod_is_deployed_and_the_key_is_in_its_usage_plan(self, deployed):
        api_id = deployed.api_id()
        stage = deployed.apigateway.get_stage(restApiId=api_id, stageName="prod")
        assert stage["deploymentId"] and deployed.deployments() == 1
        (plan,) = deployed.apigateway.get_usage_plans()["items"]
        assert plan["name"] == "lamed" and plan["apiStages"] == [{"apiId": api_id, "stage": "prod"}]
        (key,) = deployed.apigateway.get_api_keys()["items"]
        assert key["name"] == "lamed" and key["enabled"]
        (bound,) = deployed.apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
        assert bound["id"] == key["id"] and bound["type"] == "API_KEY"

    def test_the_output_shows_progress_urls_and_the_snippet_but_not_the_key(self, deployed):
        out, api_id = deployed.output, deployed.api_id()
        assert "created    role lamed" in out and "created    function lamed-track" in out
        assert "created    stage prod" in out and "no changes" not in out
        track = f"https://{api_id}.execute-api.{REGION}.amazonaws.com/prod/track"
        function_url = deployed.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")["FunctionUrl"]
        assert f"track URL:       {function_url}  (Lambda function URL)\n" in out
        assert f"REST track URL:  {track}  (API Gateway, for pages that already use it)\n" in out
        assert f"https://{api_id}.execute-api.{REGION}.amazonaws.com/prod/experiments" in out
        assert f'"{function_url}"' in out and f'"{track}"' not in out and "alephbet" in out.lower()
        assert "created    function URL lamed-track:live" in out
        assert "created    reserved concurrency lamed-track (100)" in out
        assert "created    throttle GET /track (100 requests/s, burst 200)" in out
        (key,) = deployed.apigateway.get_api_keys(includeValues=True)["items"]
        assert key["value"] not in out

    def test_status_reports_versions_and_hides_the_key_unless_asked(self, deployed):
        result = deployed.lamed("status", "--json")
        assert result.exit_code == 0, result.output
        status = json.loads(result.output)
        assert status["api"]["id"] == deployed.api_id() and status["api"]["stage_deployed"] is True
        assert "api_key" not in status["api"]
        function_url = deployed.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")["FunctionUrl"]
        rest_track = f"https://{deployed.api_id()}.execute-api.{REGION}.amazonaws.com/prod/track"
        assert status["track_url"] == status["function_url"] == function_url
        assert status["api"]["track_url"] == rest_track
        assert status["api"]["track_throttle"] == {"rate": 100.0, "burst": 200}
        track = next(f for f in status["functions"] if f["name"] == "lamed-track")
        assert track == {
            "name": "lamed-track",
            "deployed": True,
            "live_version": "1",
            "versions": [1],
            "runtime": "python3.13",
            "vpc": None,
            "log_group": {"name": "/aws/lambda/lamed-track", "retention_days": 30},
            "reserved_concurrency": 100,
        }
        (key,) = deployed.apigateway.get_api_keys(includeValues=True)["items"]
        assert key["value"] not in deployed.lamed("status").output
        text = deployed.lamed("status", "--show-key").output
        assert f"API key:         {key['value']}" in text
        assert "lamed-hello: live v1, python3.13, kept v1, logs kept 30 days\n" in text
        assert "lamed-track: live v1, python3.13, kept v1, reserved concurrency 100, logs kept 30 days\n" in text
        assert f"track URL:       {function_url}  (Lambda function URL)\n" in text
        assert f"REST track URL:  {rest_track}  (API Gateway, for pages that already use it)  (throttled 100/s, burst 200)\n" in text


# -- idempotence, changes, rollback ------------------------------------------------------


def test_a_second_deploy_changes_nothing(aws, monkeypatch):
    aws.deploy()
    versions = {name: aws.versions(name) for name in STANDARD}
    deployments = aws.deployments()
    calls = record_calls(monkeypatch)
    out = aws.deploy()
    assert "no changes" in out
    assert "GetFunctionUrlConfig" in calls and "GetFunctionConcurrency" in calls and writes(calls) == []
    progress = [line for line in out.splitlines() if line.startswith(("created", "updated", "deleted", "unchanged"))]
    assert progress and all(line.startswith("unchanged") for line in progress)
    assert {name: aws.versions(name) for name in STANDARD} == versions
    assert aws.deployments() == deployments


def test_a_new_architecture_uploads_the_same_code_with_it_once_per_function(aws, monkeypatch):
    """Lambda sets a function's architecture with its code: UpdateFunctionCode's Architectures (botocore's lambda
    service model); each published version keeps its own. moto ignores that parameter, so the calls are checked."""
    other = next(architecture for architecture in ARCHITECTURES if architecture != DEFAULT_ARCHITECTURE)
    uploads = []
    make_session = lamed.aws.session.make_session

    def recording(profile, region):
        session = make_session(profile, region)
        session.events.register("before-parameter-build.lambda.UpdateFunctionCode", lambda params, **_: uploads.append(params))
        return session

    monkeypatch.setattr(lamed.aws.session, "make_session", recording)
    aws.deploy()
    assert uploads == []
    aws.write_config(architecture=other)
    out = aws.deploy()
    assert out.count("published v2, live -> v2") == len(STANDARD)
    assert sorted(upload["FunctionName"] for upload in uploads) == sorted(STANDARD)
    assert all(upload["Architectures"] == [other] and upload["ZipFile"] == ZIP for upload in uploads)


def test_a_config_change_publishes_once_per_function_then_rollback_and_redeploy(aws):
    aws.deploy()
    aws.write_config(uuid_expiry_seconds=3600)  # the functions' environment: same code
    out = aws.deploy()
    assert out.count("published v2, live -> v2") == len(STANDARD)
    assert json.loads(aws.environment("lamed-track")["LAMED_CONFIG_JSON"])["uuid_expiry_seconds"] == 3600
    for name in STANDARD:
        assert aws.versions(name) == ["$LATEST", "1", "2"] and aws.live(name) == "2"
    assert aws.deployments() == 1  # the routes invoke the live aliases: the stage serves the same API

    result = aws.lamed("rollback")
    assert result.exit_code == 0 and result.output.count("live v2 -> v1") == len(STANDARD)
    assert {aws.live(name) for name in STANDARD} == {"1"}
    result = aws.lamed("rollback")
    assert result.exit_code == 1
    assert "Error: nothing to roll back: no function has an earlier version than the live one" in result.output

    url = aws.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")["FunctionUrl"]
    assert f"track URL:       {url}  (Lambda function URL)" in aws.lamed("status").output  # rollback kept it
    url_calls, permissions = len(aws.like_aws.url_calls), len(aws.like_aws.added_permissions)
    out = aws.deploy()  # the config still says 3600: live goes back to v2, nothing is published
    assert out.count("live -> v2") == len(STANDARD) and "published" not in out
    assert "unchanged  function URL lamed-track:live" in out
    assert {name for name, _ in aws.like_aws.url_calls[url_calls:]} == {"GetFunctionUrlConfig"}  # no write
    assert len(aws.like_aws.added_permissions) == permissions
    for name in STANDARD:
        assert aws.versions(name) == ["$LATEST", "1", "2"] and aws.live(name) == "2"


def test_only_the_five_newest_versions_are_kept(aws):
    aws.deploy()
    for number in range(2, 7):  # some history: v2..v6, each with other code
        aws.lambda_.update_function_code(FunctionName="lamed-track", ZipFile=_zip(f"v{number}"))
        aws.lambda_.publish_version(FunctionName="lamed-track")
    aws.lambda_.update_alias(FunctionName="lamed-track", Name="live", FunctionVersion="6")
    aws.write_config(uuid_expiry_seconds=60)
    out = aws.deploy()
    assert "function lamed-track (published v7, live -> v7, deleted v1, v2)" in out
    assert aws.versions("lamed-track") == ["$LATEST", "3", "4", "5", "6", "7"]


def _zip(text):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("version.txt", text)
    return buffer.getvalue()


def test_deploy_stops_when_preflight_fails(aws):
    port = free_port()  # nothing listens there
    aws.config_path.write_text(json.dumps({"redis": {"host": "127.0.0.1", "port": port}}))
    result = aws.lamed("deploy")
    assert result.exit_code == 1
    assert "ok: AWS account" in result.output and f"FAIL: Redis at redis://127.0.0.1:{port} cannot be reached" in result.output
    assert aws.iam.list_roles()["Roles"] == []


def test_a_dry_run_prints_the_plan_and_changes_nothing_without_reaching_redis(aws):
    port = free_port()  # nothing listens there: a VPC Redis, seen from a laptop
    aws.config_path.write_text(json.dumps({"redis": {"url": f"redis://127.0.0.1:{port}"}}))
    result = aws.lamed("deploy", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "ok: AWS account" in result.output
    assert "skipped: Redis not contacted (dry run; `lamed preflight` checks it)" in result.output
    assert "a real deploy refuses it without --force" in result.output  # loopback: said, not fatal in a plan
    assert f"create     function lamed-track ({DEFAULT_RUNTIME}, {DEFAULT_ARCHITECTURE}, 128 MB, 10 s)" in result.output
    assert "create     route /delete (DELETE, OPTIONS)" in result.output
    assert "create     function URL lamed-track:live (public (AuthType NONE), CORS any origin, GET)" in result.output
    assert "create     permission lamed-track:live lamed-function-url (lambda:InvokeFunctionUrl for anyone" in result.output
    assert "create     permission lamed-track:live lamed-function-url-invoke (lambda:InvokeFunction for anyone" in result.output
    assert "create     reserved concurrency lamed-track (100)" in result.output
    assert "create     throttle GET /track (100 requests/s, burst 200)" in result.output
    assert result.output.rstrip().endswith("nothing changed")
    assert aws.lambda_.list_functions()["Functions"] == []
    assert aws.apigateway.get_rest_apis()["items"] == []
    assert aws.iam.list_roles()["Roles"] == []


@pytest.mark.parametrize("redis", [{"host": "localhost"}, {"url": "redis://127.0.0.1:6379"}, {"url": "unix:///run/redis.sock"}])
def test_a_real_deploy_refuses_a_redis_on_this_machine_unless_forced(aws, redis):
    aws.config_path.write_text(json.dumps({"redis": redis}))
    refused = aws.lamed("deploy", "--no-preflight")
    assert refused.exit_code == 1
    assert "is on this machine, which no Lambda can reach — fix: set \"redis\"" in refused.output
    assert refused.output.rstrip().endswith("or pass --force to deploy anyway")
    assert aws.iam.list_roles()["Roles"] == [] and aws.lambda_.list_functions()["Functions"] == []
    forced = aws.lamed("deploy", "--no-preflight", "--force")
    assert forced.exit_code == 0, forced.output
    assert {function["FunctionName"] for function in aws.lambda_.list_functions()["Functions"]} == set(STANDARD)


def test_a_route_dropped_from_extra_wiring_is_deleted(aws):
    aws.write_config(extra_wiring=[EXTRA])
    aws.deploy()
    aws.write_config()
    out = aws.deploy()
    assert "deleted    route /hello" in out
    assert "/hello" not in aws.resources()
    assert aws.live("lamed-hello") == "1"  # its function is left alone: other wiring may use it


def test_an_adopted_original_lamed_roles_extra_permissions_are_removed(aws):
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}]}
    aws.iam.create_role(RoleName="lamed", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    aws.iam.put_role_policy(RoleName="lamed", PolicyName="kinesis", PolicyDocument=json.dumps(wide))
    arn = aws.iam.create_policy(PolicyName="invoke-all", PolicyDocument=json.dumps(wide))["Policy"]["Arn"]
    aws.iam.attach_role_policy(RoleName="lamed", PolicyArn=arn)
    out = aws.deploy("--adopt")
    adopted = "adopted: tagged managed-by=lamed"
    assert f"updated    role lamed ({adopted}; CloudWatch Logs policy; removed kinesis; removed {arn})" in out
    assert aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"] == ["lamed-logs-eu-west-1"]
    assert aws.iam.list_attached_role_policies(RoleName="lamed")["AttachedPolicies"] == []


# -- VPC ----------------------------------------------------------------------------------

ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def _network():
    """A VPC in moto with two subnets and a security group: the ``vpc`` config key's value."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{number}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for number, zone in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="lamed", Description="lamed to Redis", VpcId=vpc)["GroupId"]
    return {"subnet_ids": subnets, "security_group_ids": [group]}


def _vpc_of(aws, name):
    """The live version's subnets and security groups (sorted), empty lists outside any VPC."""
    config = aws.lambda_.get_function_configuration(FunctionName=name, Qualifier="live").get("VpcConfig") or {}
    return sorted(config.get("SubnetIds") or []), sorted(config.get("SecurityGroupIds") or [])


def test_with_vpc_every_function_runs_in_the_subnets_and_the_role_may_manage_their_interfaces(aws):
    network = _network()
    aws.write_config(vpc=network, extra_wiring=[EXTRA])
    subnets = ", ".join(sorted(network["subnet_ids"]))
    plan = aws.lamed("deploy", "--no-preflight", "--dry-run").output
    assert "create     role lamed (CloudWatch Logs and VPC network interfaces only)" in plan
    assert f"create     function lamed-track ({DEFAULT_RUNTIME}, {DEFAULT_ARCHITECTURE}, 128 MB, 10 s, VPC subnets {subnets})" in plan
    assert aws.lambda_.list_functions()["Functions"] == []

    aws.deploy()
    wanted = (sorted(network["subnet_ids"]), network["security_group_ids"])
    for name in [*STANDARD, "lamed-hello"]:
        assert _vpc_of(aws, name) == wanted
    assert aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"] == ["lamed-logs-eu-west-1", "lamed-vpc-eu-west-1"]
    (statement,) = aws.iam.get_role_policy(RoleName="lamed", PolicyName="lamed-vpc-eu-west-1")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    assert ENI_ACTIONS <= set(statement["Action"]) and all(action.startswith("ec2:") for action in statement["Action"])

    status = json.loads(aws.lamed("status", "--json").output)
    track = next(f for f in status["functions"] if f["name"] == "lamed-track")
    assert track["vpc"] == {"subnet_ids": wanted[0], "security_group_ids": wanted[1]}
    assert f"lamed-track: live v1, {DEFAULT_RUNTIME}, kept v1, VPC subnets {subnets}, reserved concurrency 100, logs kept 30 days\n" in aws.lamed(
        "status"
    ).output

    deployments = aws.deployments()
    out = aws.deploy()
    assert "no changes" in out and "unchanged  role lamed (CloudWatch Logs and VPC network interfaces)" in out
    assert {name: aws.versions(name) for name in STANDARD} == {name: ["$LATEST", "1"] for name in STANDARD}
    assert aws.deployments() == deployments


def test_changing_then_removing_vpc_publishes_once_per_function_and_keeps_the_eni_policy_for_rollbacks(aws):
    network = _network()
    first, second = network["subnet_ids"]
    aws.write_config(vpc={**network, "subnet_ids": [first]})
    aws.deploy()
    aws.write_config(vpc={**network, "subnet_ids": [second, first]})
    out = aws.deploy()
    assert out.count("published v2, live -> v2") == len(STANDARD)
    assert "unchanged  role lamed" in out
    for name in STANDARD:
        assert _vpc_of(aws, name) == (sorted([first, second]), network["security_group_ids"])

    aws.write_config()
    plan = aws.lamed("deploy", "--no-preflight", "--dry-run").output
    assert "update     function lamed-track (VpcConfig; publish a version)" in plan
    assert "role policy lamed-vpc-eu-west-1" not in plan  # v1 and v2, rollback targets, still run in the VPC
    out = aws.deploy()
    assert out.count("published v3, live -> v3") == len(STANDARD)
    for name in STANDARD:
        assert _vpc_of(aws, name) == ([], []) and aws.versions(name) == ["$LATEST", "1", "2", "3"]
    assert sorted(aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"]) == ["lamed-logs-eu-west-1", "lamed-vpc-eu-west-1"]
    assert f"lamed-track: live v3, {DEFAULT_RUNTIME}, kept v1, v2, v3, reserved concurrency 100, logs kept 30 days\n" in aws.lamed("status").output
    assert "no changes" in aws.deploy()

    for name in STANDARD:  # once no kept version is in the VPC, the policy goes, after the functions
        for number in ("1", "2"):
            aws.lambda_.delete_function(FunctionName=name, Qualifier=number)
    out = aws.deploy()
    assert "deleted    role policy lamed-vpc-eu-west-1 (no kept function version is in the VPC)" in out
    assert aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"] == ["lamed-logs-eu-west-1"]
    assert "no changes" in aws.deploy()


def test_a_live_version_outside_the_configured_vpc_does_not_count_as_unchanged(aws):
    network = _network()
    aws.write_config(vpc=network)
    aws.deploy()
    outside = {"SubnetIds": [], "SecurityGroupIds": []}
    aws.lambda_.update_function_configuration(FunctionName="lamed-track", VpcConfig=outside)
    aws.lambda_.publish_version(FunctionName="lamed-track")  # v2: the same code, outside the VPC
    aws.lambda_.update_alias(FunctionName="lamed-track", Name="live", FunctionVersion="2")
    out = aws.deploy()
    assert "updated    function lamed-track (live -> v1)" in out and "published" not in out
    assert out.count("unchanged  function lamed-") == len(STANDARD) - 1
    assert aws.live("lamed-track") == "1"
    assert _vpc_of(aws, "lamed-track") == (sorted(network["subnet_ids"]), network["security_group_ids"])


# -- lamed-track's front doors: function URL, reserved concurrency, REST throttle --------------


def test_turning_the_function_url_off_deletes_it_and_its_permissions_and_on_again_recreates_them(aws, monkeypatch):
    aws.deploy()
    aws.write_config(track_function_url=False)
    out = aws.deploy()
    assert "deleted    function URL lamed-track:live (https://" in out
    assert "deleted    permission lamed-track:live lamed-function-url (no function URL)" in out
    assert "deleted    permission lamed-track:live lamed-function-url-invoke (no function URL)" in out
    with pytest.raises(aws.lambda_.exceptions.ResourceNotFoundException):
        aws.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")
    policy = json.loads(aws.lambda_.get_policy(FunctionName="lamed-track", Qualifier="live")["Policy"])
    assert [statement["Sid"] for statement in policy["Statement"]] == ["lamed-apigateway"]
    rest_track = f"https://{aws.api_id()}.execute-api.{REGION}.amazonaws.com/prod/track"
    assert f"track URL:       {rest_track}\n" in out and "REST track URL" not in out and f'"{rest_track}"' in out
    status = json.loads(aws.lamed("status", "--json").output)
    assert status["function_url"] is None and status["track_url"] == rest_track
    calls = record_calls(monkeypatch)
    assert "no changes" in aws.deploy() and writes(calls) == []

    aws.write_config()
    out = aws.deploy()
    assert "created    function URL lamed-track:live" in out and out.count("created    permission lamed-track:live lamed-function-url") == 2
    assert aws.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")["AuthType"] == "NONE"


def test_a_permission_of_the_function_url_that_differs_is_replaced(aws):
    aws.deploy()
    for sid in URL_PERMISSIONS:
        aws.lambda_.remove_permission(FunctionName="lamed-track", Qualifier="live", StatementId=sid)
    aws.lambda_.add_permission(
        FunctionName="lamed-track", Qualifier="live", StatementId="lamed-function-url",
        Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="AWS_IAM",
    )  # fmt: skip
    out = aws.deploy()
    assert "updated    permission lamed-track:live lamed-function-url (" in out
    assert "created    permission lamed-track:live lamed-function-url-invoke (" in out
    assert aws.like_aws.added_permissions[-2]["FunctionUrlAuthType"] == "NONE"
    assert "no changes" in aws.deploy()


def test_reserved_concurrency_follows_the_config_and_null_removes_it(aws):
    aws.deploy()
    aws.write_config(track_max_concurrency=20)
    assert "updated    reserved concurrency lamed-track (20)" in aws.deploy()
    assert aws.lambda_.get_function_concurrency(FunctionName="lamed-track")["ReservedConcurrentExecutions"] == 20
    assert "reserved concurrency 20" in aws.lamed("status").output
    aws.write_config(track_max_concurrency=None)
    assert "deleted    reserved concurrency lamed-track (none: the account's shared pool)" in aws.deploy()
    assert not aws.lambda_.get_function_concurrency(FunctionName="lamed-track").get("ReservedConcurrentExecutions")
    assert "reserved concurrency" not in aws.lamed("status").output
    assert "no changes" in aws.deploy()


def test_on_an_account_limited_to_10_the_reservation_is_skipped_in_one_line_and_the_rest_deployed(aws):
    """New accounts may have a concurrency limit of 10, all of which Lambda keeps unreserved
    (tests/aws_faults.py LikeAws._concurrency has the rule and its sources)."""
    aws.like_aws.concurrency_limit = 10
    out = aws.deploy()
    (line,) = [line for line in out.splitlines() if "reserved concurrency" in line]
    assert line == (
        "unchanged  reserved concurrency lamed-track (skipped 100, none reserved: the account's concurrency limit is 10, "
        "10 unreserved, of which Lambda keeps 10, so at most 0 can be reserved — fix: set \"track_max_concurrency\": null, "
        "or ask AWS (Service Quotas: Lambda, Concurrent executions) for a higher limit)"
    )
    assert aws.apigateway.get_usage_plans()["items"] and aws.apigateway.get_api_keys()["items"]
    assert aws.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")["FunctionUrl"]
    assert "reserved concurrency" not in aws.lamed("status").output
    assert "no changes" in aws.deploy()
    aws.write_config(track_max_concurrency=None)
    assert "unchanged  reserved concurrency lamed-track (none: the account's shared pool)" in aws.deploy()


def test_a_reservation_above_what_the_account_can_spare_keeps_the_current_one(aws):
    aws.write_config(track_max_concurrency=20)
    aws.deploy()
    aws.write_config(track_max_concurrency=950)  # 1000 - 100 kept unreserved: at most 900
    out = aws.deploy()
    assert "(skipped 950, 20 kept: the account's concurrency limit is 1000, 980 unreserved, of which Lambda keeps 100, " \
        "so at most 900 can be reserved — fix: set \"track_max_concurrency\" to at most 900, or null" in out
    assert aws.lambda_.get_function_concurrency(FunctionName="lamed-track")["ReservedConcurrentExecutions"] == 20
    assert "reserved concurrency 20" in aws.lamed("status").output
    aws.write_config(track_max_concurrency=900)
    assert "updated    reserved concurrency lamed-track (900)" in aws.deploy()


def test_the_rest_track_throttle_follows_the_config(aws):
    aws.deploy()
    deployments = aws.deployments()
    aws.write_config(track_rate_limit={"rate": 2.5, "burst": 5})
    out = aws.deploy()
    assert "updated    throttle GET /track (2.5 requests/s, burst 5)" in out
    setting = aws.apigateway.get_stage(restApiId=aws.api_id(), stageName="prod")["methodSettings"]["~1track/GET"]
    assert (setting["throttlingRateLimit"], setting["throttlingBurstLimit"]) == (2.5, 5)
    assert aws.deployments() == deployments  # a stage setting: no new deployment
    assert json.loads(aws.lamed("status", "--json").output)["api"]["track_throttle"] == {"rate": 2.5, "burst": 5}
    assert "(throttled 2.5/s, burst 5)" in aws.lamed("status").output
    assert "no changes" in aws.deploy()


def test_a_malformed_rate_limit_is_one_line_before_any_aws_call(aws):
    aws.write_config(track_rate_limit={"rate": 100})
    result = aws.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and '"track_rate_limit" must be {"rate": R, "burst": B}' in result.output
    assert len(result.output.strip().splitlines()) == 1 and aws.iam.list_roles()["Roles"] == []


# -- destroy and errors --------------------------------------------------------------------


def test_destroy_asks_then_leaves_nothing(aws):
    aws.deploy()
    declined = aws.lamed("destroy", input="n\n")
    assert declined.exit_code == 1 and "delete     REST API lamed" in declined.output
    assert len(aws.apigateway.get_rest_apis()["items"]) == 1

    result = aws.lamed("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted    role lamed" in result.output
    assert aws.lambda_.list_functions()["Functions"] == []
    assert aws.apigateway.get_rest_apis()["items"] == []
    assert aws.apigateway.get_usage_plans()["items"] == []
    assert aws.apigateway.get_api_keys()["items"] == []
    assert aws.iam.list_roles()["Roles"] == []
    with pytest.raises(aws.lambda_.exceptions.ResourceNotFoundException):  # gone with its function
        aws.lambda_.get_function_url_config(FunctionName="lamed-track", Qualifier="live")
    assert aws.lamed("destroy", "--yes").output == f"nothing to destroy in {REGION}\n"
    assert json.loads(aws.lamed("status", "--json").output)["api"] is None


def test_without_a_region_deploy_says_so_in_one_line(aws, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = CliRunner().invoke(cli, ["deploy", "--no-preflight"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ") and "region" in line


# -- Redis settings: in the environment, never printed ----------------------------------------

PASSWORD = "never-print-Zq8-hunter2-77"
SECRET_REDIS = {"url": f"redis://lamed:{PASSWORD}@redis.example.com:6379/0"}
IAM_REDIS = {
    "url": "rediss://cache-abc.serverless.euw1.cache.amazonaws.com:6379",
    "cluster": True,
    "iam": {"user": "lamed-user", "cache": "lamed-cache", "serverless": True},
}


def test_the_functions_get_the_settings_from_their_environment_and_the_zip_holds_none(aws):
    aws.write_config(redis=SECRET_REDIS, uuid_expiry_seconds=900)
    aws.deploy()
    wanted = load_config(aws.config_path).runtime_environment()
    for name in STANDARD:
        assert aws.environment(name) == wanted
        assert aws.environment(name, qualifier="1") == wanted
    assert json.loads(wanted["LAMED_CONFIG_JSON"]) == {"redis": SECRET_REDIS, "uuid_expiry_seconds": 900}
    code = ZIP  # the zip uploaded is the config-free one (test_package: no password in it)
    assert PASSWORD.encode() not in code
    for name in STANDARD:
        sha = aws.lambda_.get_function_configuration(FunctionName=name, Qualifier="live")["CodeSha256"]
        assert sha == code_sha256(code)


def test_a_redis_only_change_updates_configuration_and_publishes_once_without_uploading_code(aws, monkeypatch):
    aws.deploy()
    aws.write_config(redis=SECRET_REDIS)
    plan = aws.lamed("deploy", "--no-preflight", "--dry-run").output
    assert "update     function lamed-track (runtime settings; publish a version)" in plan
    calls = record_calls(monkeypatch)
    out = aws.deploy()
    assert out.count("published v2, live -> v2") == len(STANDARD)
    assert calls.count("UpdateFunctionConfiguration") == len(STANDARD)
    assert calls.count("PublishVersion") == len(STANDARD)
    assert "UpdateFunctionCode" not in calls and "CreateFunction" not in calls
    for name in STANDARD:
        assert aws.versions(name) == ["$LATEST", "1", "2"]
        assert json.loads(aws.environment(name)["LAMED_CONFIG_JSON"])["redis"] == SECRET_REDIS
    status, text = aws.lamed("status", "--json").output, aws.lamed("status").output
    for output in (plan, out, status, text):
        assert PASSWORD not in output
    assert "Redis: redis://redis.example.com:6379, ACL user lamed\n" in text
    assert json.loads(status)["redis"]["address"] == "redis://redis.example.com:6379"
    assert "no changes" in aws.deploy()


def test_declaring_and_stopping_an_experiment_updates_the_configuration_without_uploading_code(aws, monkeypatch):
    aws.deploy()
    for stopped in (False, True):
        aws.write_config(experiments={"button": {"variants": ["control", "red"], "goals": ["signup"], "stopped": stopped}})
        assert "update     function lamed-track (runtime settings; publish a version)" in aws.lamed("deploy", "--no-preflight", "--dry-run").output
        calls = record_calls(monkeypatch)
        aws.deploy()
        assert calls.count("UpdateFunctionConfiguration") == len(STANDARD)
        assert "UpdateFunctionCode" not in calls and "CreateFunction" not in calls
        deployed = json.loads(aws.environment("lamed-track")["LAMED_CONFIG_JSON"])
        assert deployed["experiments"]["button"]["stopped"] is stopped and deployed["namespace"] == "alephbet"
    assert "no changes" in aws.deploy()


def test_settings_over_lambdas_4_kb_environment_limit_are_a_config_error_without_the_password(aws):
    aws.write_config(redis={**SECRET_REDIS, "client_name": "x" * 4100})
    result = aws.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {aws.config_path}: ") and "4096-byte limit" in line and "fix:" in line
    assert PASSWORD not in result.output
    assert aws.lambda_.list_functions()["Functions"] == []


def test_the_elasticache_arns_name_the_cache_and_user_in_lower_case_as_elasticache_stores_them():
    from lamed.aws.resources import Place, elasticache_policy

    policy = elasticache_policy({"user": "App-User", "cache": "My-Cache", "serverless": False}, Place("aws", REGION, ACCOUNT))
    assert policy["Statement"][0]["Resource"] == [
        f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:my-cache",
        f"arn:aws:elasticache:{REGION}:{ACCOUNT}:user:app-user",
    ]


def test_iam_auth_adds_exactly_elasticache_connect_then_removing_it_drops_the_policy(aws):
    aws.write_config(redis=IAM_REDIS)
    plan = aws.lamed("deploy", "--no-preflight", "--dry-run").output
    assert "create     role lamed (CloudWatch Logs and ElastiCache IAM auth only)" in plan
    aws.deploy()
    assert sorted(aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"]) == ["lamed-elasticache-eu-west-1", "lamed-logs-eu-west-1"]
    policy = aws.iam.get_role_policy(RoleName="lamed", PolicyName="lamed-elasticache-eu-west-1")["PolicyDocument"]
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "elasticache:Connect",
                "Resource": [
                    f"arn:aws:elasticache:{REGION}:{ACCOUNT}:serverlesscache:lamed-cache",
                    f"arn:aws:elasticache:{REGION}:{ACCOUNT}:user:lamed-user",
                ],
            }
        ],
    }
    status = json.loads(aws.lamed("status", "--json").output)
    assert status["redis"] == {
        "address": "rediss://cache-abc.serverless.euw1.cache.amazonaws.com:6379",
        "cluster": True,
        "tls": True,
        "auth": "IAM user lamed-user on cache lamed-cache",
    }
    text = aws.lamed("status").output
    line = "Redis: rediss://cache-abc.serverless.euw1.cache.amazonaws.com:6379, cluster, TLS, IAM user lamed-user on cache lamed-cache\n"
    assert line in text

    aws.write_config(redis={**IAM_REDIS, "iam": {**IAM_REDIS["iam"], "serverless": False}})
    out = aws.deploy()
    assert "updated    role lamed (ElastiCache IAM auth policy)" in out
    (statement,) = aws.iam.get_role_policy(RoleName="lamed", PolicyName="lamed-elasticache-eu-west-1")["PolicyDocument"]["Statement"]
    assert statement["Resource"][0] == f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:lamed-cache"

    aws.write_config(redis=SECRET_REDIS)
    out = aws.deploy()
    assert "deleted    role policy lamed-elasticache-eu-west-1 (Redis no longer uses IAM auth)" in out
    assert out.index("deleted    role policy lamed-elasticache-eu-west-1") > out.index("function lamed-experiment (published v3")
    assert aws.iam.list_role_policies(RoleName="lamed")["PolicyNames"] == ["lamed-logs-eu-west-1"]
    assert PASSWORD not in out
    assert "no changes" in aws.deploy()
