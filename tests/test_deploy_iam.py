"""The IAM policy lamed documents (docs/iam-policy.json) is enough: every AWS call of `deploy`, a no-op
redeploy, `status`, `rollback` and `destroy` is evaluated against it (tests/iam_policy.py), plain,
with `vpc`, with `redis.iam`, and through the fault layer; a permission it lacks is named."""

import pytest

from aws_faults import FaultyAws
from iam_policy import Policy, PolicyCheck, arn_matches
from test_deploy import EXTRA, IAM_REDIS, STANDARD, _fresh_aws, _network, aws  # noqa: F401 (aws is a fixture)


@pytest.fixture
def held(aws):
    """The account, its CLI held to the documented policy (as in every test of test_deploy.py)."""
    aws.policy = aws.like_aws.policy
    return aws


def every_command(aws) -> None:
    """Deploy, redeploy unchanged, change, status, rollback, destroy: each must succeed."""
    aws.deploy()
    assert "no changes" in aws.deploy()
    aws.write_config(**aws.extra, uuid_expiry_seconds=3600)
    aws.deploy()
    for command in (["status"], ["status", "--json"], ["rollback"], ["destroy", "--yes"]):
        result = aws.lamed(*command)
        assert result.exit_code == 0, result.output


def config(aws, **extra) -> None:
    aws.extra = extra
    aws.write_config(**extra)


@pytest.mark.parametrize(
    "extra",
    [{}, {"extra_wiring": [EXTRA]}, {"redis": IAM_REDIS}, "vpc"],
    ids=["plain", "extra wiring", "redis.iam", "vpc"],
)
def test_every_call_of_every_command_is_allowed_by_the_documented_policy(held, extra):
    config(held, **({"vpc": _network()} if extra == "vpc" else extra))
    every_command(held)
    assert held.policy.denied == []
    actions = {action for action, _ in held.policy.checked}
    assert {"iam:PassRole", "lambda:ListTags", "lambda:GetAccountSettings"} <= actions


def test_through_the_fault_layer_too(aws, monkeypatch):
    layer = FaultyAws()
    layer.like_aws.policy = PolicyCheck()
    layer.install(monkeypatch)
    config(aws, vpc=_network())
    every_command(aws)
    assert layer.like_aws.policy.denied == []


def test_without_list_tags_the_second_deploy_names_that_permission(held):
    config(held)
    held.deploy()
    held.policy.policy = Policy.load().without("lambda:ListTags")
    for command in (["deploy", "--no-preflight"], ["destroy", "--yes"]):
        result = held.lamed(*command)
        assert result.exit_code == 1
        assert "lambda:ListTags" in result.output and "not lamed's" not in result.output and "did not create" not in result.output
    assert {f["FunctionName"] for f in held.lambda_.list_functions()["Functions"]} == set(STANDARD)  # nothing deleted
    assert held.iam.get_role(RoleName="lamed")


def test_a_denied_call_is_one_line_naming_the_operation(held):
    config(held)
    held.policy.policy = Policy.load().without("lambda:CreateFunction")
    result = held.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1 and "AWS denied CreateFunction" in result.output and "Traceback" not in result.output
    assert held.policy.denied[0][0] == "lambda:CreateFunction"


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        ("arn:aws:lambda:*:*:function:lamed-*", "arn:aws:lambda:eu-west-1:123456789012:function:lamed-track:live", True),
        ("arn:aws:lambda:*:*:function:lamed-*", "arn:aws:lambda:eu-west-1:123456789012:function:other", False),
        ("arn:aws:lambda:*:*:function:lamed-track", "arn:aws:lambda:eu-west-1:123456789012:function:lamed-track:live", False),
        ("arn:aws:iam::*:role/lamed", "arn:aws:iam::123456789012:role/lamed", True),
        ("arn:aws:iam::*:role/lamed", "arn:aws:iam::123456789012:role/lamed-dev", False),
        ("arn:aws:apigateway:*::/restapis/*", "arn:aws:apigateway:eu-west-1::/restapis/a1/stages/prod", True),
        ("arn:aws:apigateway:*::/restapis/*", "arn:aws:apigateway:eu-west-1::/usageplans", False),
    ],
)
def test_iam_s_wildcards(pattern, arn, matches):
    assert arn_matches(pattern, arn) is matches
