"""TLS, ACL users and ElastiCache IAM authentication against a real TLS-only redis-server
(a CA made by trustme, ``default`` user disabled), through the store, the handlers,
``lamed preflight`` and ``lamed serve``; and each mistake as one line with its fix."""

import datetime
import json
import logging
import subprocess
import sys

import botocore.auth
import botocore.session
import pytest
import redis
import requests
import trustme
from botocore.model import ServiceId
from botocore.signers import RequestSigner
from click.testing import CliRunner

import lamed
from conftest import TLS_PASSWORD, TLS_USER
from lamed import handlers
from lamed.cli import cli
from lamed.connection import explain, is_retryable, open_store, redis_client
from lamed.iam_auth import RENEW_AFTER_SECONDS, ElastiCacheIamProvider, IamAuthError
from serve_cli import LamedServe

TRACK = {"httpMethod": "GET", "queryStringParameters": {"experiment": "e", "variant": "a", "event": "participate", "uuid": "u"}}
SERVE_ON_IT = {"serve": {"use_config_redis": True}}  # `lamed serve` on the config's Redis, not its embedded one


def tls_url(server, user=TLS_USER, password=TLS_PASSWORD) -> str:
    return f"rediss://{user}:{password}@127.0.0.1:{server.port}"


def ca_file(server) -> str:
    return server.client_kwargs["ssl_ca_certs"]


@pytest.fixture
def clean_tls(tls_redis):
    tls_redis.client().flushall()
    return tls_redis


@pytest.mark.parametrize("style", ["url", "kwargs"])
def test_a_tls_redis_with_an_acl_user_counts(clean_tls, style):
    if style == "url":
        settings = {"url": tls_url(clean_tls), "ssl_ca_certs": ca_file(clean_tls)}
    else:
        settings = {
            "host": "127.0.0.1", "port": clean_tls.port, "ssl": True, "ssl_ca_certs": ca_file(clean_tls),
            "username": TLS_USER, "password": TLS_PASSWORD,
        }  # fmt: skip
    store = open_store(settings, 86400)
    assert store.track("ns", "e", "a", "participate", "u") is True
    assert store.track("ns", "e", "a", "participate", "u") is False
    assert clean_tls.client().get("ns:counters:e:participate:a") == b"1"


def test_ssl_cert_reqs_none_skips_verification(clean_tls):
    store = open_store({"url": tls_url(clean_tls), "ssl_cert_reqs": "none"}, 86400)
    assert store.track("ns", "e", "a", "participate", "u") is True


def failure(settings) -> redis.RedisError:
    with pytest.raises(redis.RedisError) as raised:
        redis_client(settings).ping()
    return raised.value


def test_a_wrong_ca_is_one_line_naming_ssl_ca_certs_and_not_retryable(clean_tls, tmp_path):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    exc = failure({"url": tls_url(clean_tls), "ssl_ca_certs": str(other)})
    line = explain(exc, {"url": tls_url(clean_tls)}, "config.json")
    assert "TLS certificate is not trusted" in line and "fix: set redis.ssl_ca_certs in config.json" in line
    assert TLS_PASSWORD not in line and not is_retryable(exc)


def test_tls_against_a_plain_redis_and_plain_against_tls_name_the_scheme(redis_server, clean_tls):
    settings = {"url": f"rediss://127.0.0.1:{redis_server.port}", "socket_connect_timeout": 0.5}
    assert "(that it speaks TLS (else use redis://))" in explain(failure(settings), settings)
    settings = {"url": f"redis://{TLS_USER}:{TLS_PASSWORD}@127.0.0.1:{clean_tls.port}"}
    assert "(rediss:// if it needs TLS)" in explain(failure(settings), settings)


def test_a_refused_acl_user_is_one_line_and_a_500(clean_tls, caplog):
    settings = {"url": tls_url(clean_tls, password="wrong"), "ssl_ca_certs": ca_file(clean_tls)}
    line = explain(failure(settings), settings, "config.json")
    assert "refused the credentials" in line and "fix: set redis.username and redis.password" in line
    assert "wrong" not in line
    handlers.use_store(open_store(settings, 86400), settings)
    try:
        with caplog.at_level(logging.ERROR, logger="lamed"):
            responses = [lamed.track(TRACK) for _ in range(3)]
    finally:
        handlers.use_store(None)
    assert {response["statusCode"] for response in responses} == {500}
    assert len(caplog.records) == 1 and "refused the credentials" in caplog.records[0].getMessage()


def test_the_default_user_is_off(clean_tls):
    exc = failure({"url": f"rediss://127.0.0.1:{clean_tls.port}", "ssl_ca_certs": ca_file(clean_tls)})
    assert isinstance(exc, redis.AuthenticationError) and not is_retryable(exc)


# -- ElastiCache IAM ------------------------------------------------------------------


@pytest.fixture
def aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, "/nonexistent") if name != "AWS_PROFILE" else monkeypatch.delenv(name, raising=False)


@pytest.fixture
def frozen_clock(monkeypatch):
    """botocore's signing clock, moved by the test."""
    now = [datetime.datetime(2026, 11, 24, 12, 0, 0)]
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now[0])
    return now


@pytest.mark.parametrize("serverless", [True, False])
def test_the_token_is_what_botocores_request_signer_presigns(aws_credentials, frozen_clock, serverless):
    token = ElastiCacheIamProvider("app-user", "my-cache", serverless).sign_token()
    session = botocore.session.get_session()
    signer = RequestSigner(
        ServiceId("elasticache"), "eu-west-1", "elasticache", "v4", session.get_credentials(), session.get_component("event_emitter")
    )
    query = "Action=connect&User=app-user" + ("&ResourceType=ServerlessCache" if serverless else "")
    request = {"method": "GET", "url": f"http://my-cache/?{query}", "body": {}, "headers": {}, "context": {}}
    expected = signer.generate_presigned_url(request, operation_name="connect", expires_in=900, region_name="eu-west-1")
    assert token == expected.removeprefix("http://")
    assert token.startswith("my-cache/?Action=connect&User=app-user") and "X-Amz-Expires=900" in token
    assert ("ResourceType=ServerlessCache" in token) is serverless
    assert "X-Amz-Security-Token=session-token" in token


def test_the_token_is_renewed_before_it_expires(aws_credentials, frozen_clock):
    seconds = [0.0]
    provider = ElastiCacheIamProvider("u", "c", True, clock=lambda: seconds[0])
    first = provider.get_credentials()
    frozen_clock[0] += datetime.timedelta(seconds=RENEW_AFTER_SECONDS - 1)
    seconds[0] = RENEW_AFTER_SECONDS - 1
    assert provider.get_credentials() == first
    frozen_clock[0] += datetime.timedelta(seconds=1)
    seconds[0] = RENEW_AFTER_SECONDS
    renewed = provider.get_credentials()
    assert renewed[0] == "u" and renewed[1] != first[1] and "X-Amz-Date=20261124T121000Z" in renewed[1]


def test_redis_accepts_the_token_of_an_iam_user(clean_tls, aws_credentials):
    settings = {
        "url": f"rediss://127.0.0.1:{clean_tls.port}",
        "ssl_ca_certs": ca_file(clean_tls),
        "iam": {"user": "iam-user", "cache": "my-cache", "serverless": True},
    }
    store = open_store(settings, 86400)
    user, token = store.client.connection_pool.connection_kwargs["credential_provider"].get_credentials()
    clean_tls.client().acl_setuser(user, enabled=True, passwords=[f"+{token}"], keys=["*"], commands=["+@all"])
    try:
        assert store.track("ns", "e", "a", "participate", "u") is True
        assert clean_tls.client().acl_whoami() == TLS_USER
        assert store.client.acl_whoami() == "iam-user"
    finally:
        clean_tls.client().acl_deluser(user)


def test_iam_without_aws_credentials_is_a_500_with_the_fix_and_one_line_from_serve(clean_tls, monkeypatch, caplog, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    settings = {"url": f"rediss://127.0.0.1:{clean_tls.port}", "ssl_ca_certs": ca_file(clean_tls), "iam": {"user": "u", "cache": "c"}}
    with pytest.raises(IamAuthError, match="no AWS credentials"):
        redis_client(settings).ping()
    handlers.use_store(open_store(settings, 86400), settings)
    try:
        with caplog.at_level(logging.ERROR, logger="lamed"):
            response = lamed.track(TRACK)
    finally:
        handlers.use_store(None)
    assert response["statusCode"] == 500
    logged = caplog.records[0].getMessage()
    assert "no AWS credentials to sign the ElastiCache IAM token — fix:" in logged and "refused" not in logged
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": settings, **SERVE_ON_IT}))
    failing = LamedServe(tmp_path, env={"LAMED_CONFIG": str(config)})
    assert failing.launch().wait(timeout=30) == 1
    lines = failing.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot use the Redis configured in")
    assert lines[0].endswith("no AWS credentials to sign the ElastiCache IAM token — fix: run where the role's credentials are (a deployed function has them), or set AWS_PROFILE / AWS_ACCESS_KEY_ID")


def test_botocore_is_imported_only_on_the_iam_path(tmp_path):
    code = (
        "import json, os, sys; os.environ['LAMED_CONFIG_JSON'] = json.dumps({'redis': %r}); "
        "from lamed import handlers; handlers.get_store(); print('botocore' in sys.modules)"
    )
    plain = {"url": "redis://:secret@127.0.0.1:1"}
    iam = {"url": "rediss://127.0.0.1:1", "iam": {"user": "u", "cache": "c"}}
    outputs = [
        subprocess.run([sys.executable, "-c", code % settings], capture_output=True, text=True, check=True).stdout.strip()
        for settings in (plain, iam)
    ]
    assert outputs == ["False", "True"]


# -- the CLI ----------------------------------------------------------------------


def write_config(tmp_path, monkeypatch, settings) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"redis": settings}))
    monkeypatch.setenv("LAMED_CONFIG", str(path))
    return str(path)


def test_preflight_on_tls_with_an_acl_user(clean_tls, moto_server, tmp_path, monkeypatch):
    write_config(tmp_path, monkeypatch, {"url": tls_url(clean_tls), "ssl_ca_certs": ca_file(clean_tls)})
    result = CliRunner().invoke(cli, ["preflight"])
    redis_line = result.output.splitlines()[2]
    assert redis_line.startswith(f"ok: Redis at rediss://127.0.0.1:{clean_tls.port} answers PING (TLS, auth: ACL user {TLS_USER})")
    assert TLS_PASSWORD not in result.output


def test_preflight_signs_an_iam_token_then_names_a_refused_user(clean_tls, moto_server, tmp_path, monkeypatch):
    iam = {"user": "app-user", "cache": "my-cache", "serverless": True}
    write_config(tmp_path, monkeypatch, {"url": f"rediss://127.0.0.1:{clean_tls.port}", "ssl_ca_certs": ca_file(clean_tls), "iam": iam})
    result = CliRunner().invoke(cli, ["preflight"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[2] == "ok: ElastiCache IAM token signed for user app-user on serverless cache my-cache (us-east-1)"
    assert lines[3].startswith("FAIL: Redis at rediss://") and "refused IAM user app-user" in lines[3]
    assert "elasticache:Connect" in lines[3]


def test_preflight_iam_without_credentials(clean_tls, moto_server, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    iam = {"user": "app-user", "cache": "my-cache"}
    write_config(tmp_path, monkeypatch, {"url": f"rediss://127.0.0.1:{clean_tls.port}", "ssl_ca_certs": ca_file(clean_tls), "iam": iam})
    lines = CliRunner().invoke(cli, ["preflight"]).output.splitlines()
    assert lines[2].startswith("FAIL: ElastiCache IAM token: no AWS credentials found — fix:")


def test_lamed_serve_counts_on_a_tls_redis_and_names_a_wrong_password(clean_tls, tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"redis": {"url": tls_url(clean_tls), "ssl_ca_certs": ca_file(clean_tls)}, **SERVE_ON_IT}))
    with LamedServe(tmp_path, env={"LAMED_CONFIG": str(good), "LAMED_API_KEY": "k"}) as running:
        params = {"experiment": "e", "variant": "a", "event": "participate", "uuid": "u"}
        assert requests.get(f"{running.url}/prod/track", params=params, timeout=10).json() == {"counted": True}
    assert f"rediss://127.0.0.1:{clean_tls.port}" in running.output and TLS_PASSWORD not in running.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"redis": {"url": tls_url(clean_tls, password="nope"), "ssl_ca_certs": ca_file(clean_tls)}, **SERVE_ON_IT}))
    failing = LamedServe(tmp_path, env={"LAMED_CONFIG": str(bad)})
    assert failing.launch().wait(timeout=30) == 1
    lines = failing.output.strip().splitlines()
    assert len(lines) == 1 and "refused the credentials" in lines[0] and "nope" not in lines[0]
