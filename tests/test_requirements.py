"""lamed's boto3 minimum knows every parameter lamed sends, and an older botocore is one line with the fix.

Measured: every AWS call of deploy (with vpc, redis.iam, extra wiring), a redeploy without the function
URL and reservation, status, rollback and destroy, checked against the service models of botocore
1.40.49 and 1.40.50 (their wheels from PyPI): 1.40.50 knows every parameter; 1.40.49 lacks exactly one,
AddPermission's InvokedViaFunctionUrl (so the function URL would be created and never made public).
"""

import re
from pathlib import Path

import botocore
import botocore.session
from botocore.exceptions import ParamValidationError

import lamed.aws.session
from lamed.aws.session import BOTO3_MINIMUM
from test_deploy import aws  # noqa: F401 (a fixture)

SETUP = Path(__file__).resolve().parent.parent / "setup.py"


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_setup_py_requires_the_boto3_whose_botocore_knows_invoked_via_function_url():
    (minimum,) = re.findall(r'"boto3>=([0-9.]+)"', SETUP.read_text())
    assert minimum == BOTO3_MINIMUM == "1.40.50"  # boto3 1.40.50 requires botocore>=1.40.50,<1.41
    assert version(botocore.__version__) >= version(minimum)
    model = botocore.session.get_session().get_service_model("lambda")
    assert "InvokedViaFunctionUrl" in model.operation_model("AddPermission").input_shape.members


def test_a_botocore_that_does_not_know_a_parameter_is_one_line_naming_the_upgrade(aws, monkeypatch):
    make_session = lamed.aws.session.make_session

    def old_botocore(profile, region):
        session = make_session(profile, region)

        def refuse(params, model, **_):
            if "InvokedViaFunctionUrl" in params:  # what botocore 1.40.49 raises
                raise ParamValidationError(report='Unknown parameter in input: "InvokedViaFunctionUrl"')

        session.events.register("before-parameter-build.lambda.AddPermission", refuse)
        return session

    monkeypatch.setattr(lamed.aws.session, "make_session", old_botocore)
    result = aws.lamed("deploy", "--no-preflight")
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "cannot send what lamed asks (Parameter validation failed: Unknown parameter in input" in line and line.endswith(f"pip install --upgrade 'boto3>={BOTO3_MINIMUM}'")
