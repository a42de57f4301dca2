"""AWS's real wordings and lost answers, through the fault layer (tests/aws_faults.py): API Gateway's
concurrent modifications are retried, a create whose answer was lost is read back instead of made twice,
a failed function update stops with its reason and `live` unmoved, a published version is awaited Active."""

from aws_faults import FaultyAws
from lamed.aws.client import Aws
from test_deploy import STANDARD, aws  # noqa: F401 (aws is a fixture)

LOST_CREATES = {"CreateFunction", "CreateRestApi", "CreateApiKey", "CreateUsagePlan"}


def test_api_gateway_s_concurrent_modification_is_retried(aws, monkeypatch):
    faults = FaultyAws(api_conflicts=4).install(monkeypatch)
    aws.deploy()
    assert sum(event[0] == "concurrent modification" for event in faults.events) == 4
    assert len(aws.apigateway.get_rest_apis()["items"]) == 1
    assert "no changes" in aws.deploy()


def test_creates_whose_answers_are_lost_converge_without_a_duplicate(aws, monkeypatch):
    faults = FaultyAws(lost=set(LOST_CREATES)).install(monkeypatch)
    out = aws.deploy()
    assert {operation for kind, operation in faults.events if kind == "lost"} == LOST_CREATES
    assert len(aws.apigateway.get_rest_apis()["items"]) == 1
    assert len(aws.apigateway.get_usage_plans()["items"]) == 1
    assert len(aws.apigateway.get_api_keys()["items"]) == 1
    assert {f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"]} == set(STANDARD)
    assert all(aws.versions(name) == ["$LATEST", "1"] and aws.live(name) == "1" for name in STANDARD)
    assert "retrying" not in out  # each was found where the lost call had made it
    assert "no changes" in aws.deploy()


def test_create_function_s_real_conflict_wording_is_not_a_busy_function():
    """CreateFunction on an existing name answers "Function already exist: NAME" (no s), as LocalStack's
    AWS-parity Lambda provider does: not a function being updated, so not retried for 3 minutes."""

    class Http:
        status_code = 409

    exists = {"Error": {"Code": "ResourceConflictException", "Message": "Function already exist: lamed-track"}}
    busy = {"Error": {"Code": "ResourceConflictException", "Message": "An update is in progress for resource: lamed-track"}}
    assert Aws._retry_reason("lambda", "CreateFunction", (Http, exists), None) is None
    assert Aws._retry_reason("lambda", "UpdateFunctionCode", (Http, busy), None) == "function busy"


def test_a_failed_update_stops_with_its_reason_and_live_unmoved(aws, monkeypatch):
    faults = FaultyAws().install(monkeypatch)
    aws.deploy()
    faults.failing_updates["lamed-track"] = "Lambda was unable to create a network interface: ENI limit reached"
    aws.write_config(uuid_expiry_seconds=60)
    result = aws.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1
    assert "the update of function lamed-track failed (Lambda was unable to create a network interface: ENI limit reached)" in result.output
    assert aws.live("lamed-track") == "1" and aws.versions("lamed-track") == ["$LATEST", "1"]
    again = aws.deploy()  # the earlier failure does not block a new update
    assert "published v2, live -> v2" in again and aws.live("lamed-track") == "2"


def test_live_moves_to_a_published_version_only_once_it_is_active(aws, monkeypatch):
    faults = FaultyAws().install(monkeypatch)
    aws.deploy()
    moved = []
    faults.reactions["UpdateAlias"] = lambda layer: moved.append(
        layer.now >= layer.versions_pending[(layer.current[2]["FunctionName"], layer.current[2]["FunctionVersion"])]
    )
    aws.write_config(uuid_expiry_seconds=60)
    aws.deploy()
    assert moved == [True] * len(STANDARD)
