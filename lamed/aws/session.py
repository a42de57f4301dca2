"""AWS sessions for the CLI: the standard credential chain, clear setup errors, one-line AWS errors.

Every message here is one line naming the problem and the fix, so the CLI can print
it as is. ``AWS_ENDPOINT_URL`` is honoured by boto3 itself (an emulator can stand in).
"""

import boto3
import botocore
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

from lamed import __version__

FIX_REGION = "pass --region, set AWS_REGION, or run `aws configure set region <region>`"
BOTO3_MINIMUM = "1.40.50"  # setup.py's: botocore 1.40.50 is the first to know AddPermission's InvokedViaFunctionUrl
FIX_CREDENTIALS = "run `aws configure` (or `aws sso login`), set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --profile"

ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
BAD_CREDENTIALS = {
    "UnrecognizedClientException",
    "UnrecognizedClient",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthFailure",
}
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
}


class AwsSetupError(Exception):
    """AWS cannot be used as set up (no region, no credentials, unknown profile); one line with the fix."""


def make_session(profile: str | None, region: str | None) -> boto3.Session:
    """A boto3 session for ``profile`` and ``region`` (None: the standard chain), checked before use.

    Its clients retry in botocore's ``standard`` mode and identify themselves as lamed.
    Raises :class:`AwsSetupError` when the profile is unknown, or no region or no
    credentials can be found.
    """
    core = botocore.session.get_session()
    core.user_agent_extra = f"lamed/{__version__}"
    core.set_default_client_config(BotoConfig(retries={"mode": "standard"}))
    try:
        session = boto3.Session(botocore_session=core, profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise AwsSetupError(f"AWS profile {profile!r} not found — fix: check --profile / AWS_PROFILE against `aws configure list-profiles`") from None
    if not session.region_name:
        raise AwsSetupError(f"no AWS region configured — fix: {FIX_REGION}")
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise AwsSetupError(aws_error_message(exc)) from exc
    if credentials is None:
        raise AwsSetupError(f"no AWS credentials found — fix: {FIX_CREDENTIALS}")
    return session


def aws_error_message(exc: BotoCoreError | ClientError) -> str:
    """One line for an AWS failure: what went wrong and how to fix it."""
    if isinstance(exc, ClientError):
        return _client_error_message(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"no usable AWS credentials ({exc}) — fix: {FIX_CREDENTIALS}"
    if isinstance(exc, NoRegionError):
        return f"no AWS region configured — fix: {FIX_REGION}"
    if isinstance(exc, TokenRetrievalError | SSOError):
        return f"AWS SSO credentials could not be loaded ({exc}) — fix: run `aws sso login` for this profile"
    if isinstance(exc, ProfileNotFound):
        return f"{exc} — fix: check --profile / AWS_PROFILE against `aws configure list-profiles`"
    if isinstance(exc, ParamValidationError):  # an older botocore than lamed needs (setup.py's minimum)
        return (
            f"this botocore ({botocore.__version__}) cannot send what lamed asks ({' '.join(str(exc).split())}) — fix: "
            f"pip install --upgrade 'boto3>={BOTO3_MINIMUM}'"
        )
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach AWS at {exc.kwargs.get('endpoint_url')} — fix: check the network and the region, "
            "and AWS_ENDPOINT_URL if you set it"
        )
    return f"AWS error: {exc}"


def _client_error_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    detail = error.get("Message") or code
    operation = exc.operation_name
    if code in ACCESS_DENIED:
        return (
            f"AWS denied {operation}: {detail} — fix: grant these credentials that permission "
            "(see docs/deploy.md, IAM permissions the deploying user needs), or use another --profile"
        )
    if code in BAD_CREDENTIALS:
        return f"AWS did not accept the credentials ({code}) — fix: {FIX_CREDENTIALS}"
    if code in EXPIRED:
        return "the AWS credentials have expired — fix: refresh them (`aws sso login`, or a new session token) and retry"
    if code in THROTTLED:
        return (
            f"AWS kept throttling {operation} after retries — fix: wait a minute and run it again "
            "(for status and results, AWS_MAX_ATTEMPTS raises the retry count)"
        )
    return f"AWS error in {operation}: {code}: {detail}"
