"""``lamed configure`` and ``lamed preflight`` through the real CLI, a real Redis and a moto server for STS.

HOME points at a temporary folder in every test, so nothing touches the real ~/.lamed.
"""

import json
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
from click.testing import CliRunner

from lamed.aws.session import aws_error_message
from lamed.cli import cli
from lamed.config import DEFAULT_ARCHITECTURE, DEFAULT_RUNTIME, load_config
from lamed.connection import address, open_store
from lamed.preflight import reachable_from_aws
from lamed.redis_server import RedisServer, free_port
from redis_servers import ADVISED_ACL, replicate
from serve_cli import lamed_command


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME and working directory, and no LAMED_CONFIG."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("LAMED_CONFIG", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    return tmp_path / "home"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def write_config(home, settings: dict, **extra):
    path = home / ".lamed" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"redis": settings, **extra}))
    return path


# -- configure ---------------------------------------------------------------------


def test_configure_creates_a_private_config_from_the_template(home):
    result = run("configure", "--no-edit")
    path = home / ".lamed" / "config.json"
    assert result.exit_code == 0, result.output
    assert f"created {path}" in result.output and "is valid" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    config = load_config(path)
    assert config.redis == {"host": "localhost", "port": 6379, "password": "", "ssl": False}
    assert (config.namespace, config.runtime, config.architecture) == ("alephbet", DEFAULT_RUNTIME, DEFAULT_ARCHITECTURE)
    assert (config.uuid_expiry_seconds, config.extra_wiring, config.warnings) == (86400, [], [])


def test_configure_keeps_an_existing_config_and_says_where_it_is(home):
    path = write_config(home, {"host": "redis.example.com"})
    before = path.read_text()
    result = run("configure", "--no-edit")
    assert result.exit_code == 0, result.output
    assert f"using the existing config {path}" in result.output
    assert path.read_text() == before


def test_configure_writes_where_lamed_config_points(home, tmp_path, monkeypatch):
    named = tmp_path / "elsewhere" / "site.json"
    monkeypatch.setenv("LAMED_CONFIG", str(named))
    result = run("configure", "--no-edit")
    assert result.exit_code == 0, result.output
    assert load_config(named).namespace == "alephbet"
    assert not (home / ".lamed").exists()


def editor(tmp_path, monkeypatch, body: str):
    """Set EDITOR to a Python script that runs ``body`` with ``path`` bound to the edited file."""
    script = tmp_path / "editor.py"
    script.write_text(f"import json, sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\n{body}\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")


def run_in_terminal(*args) -> tuple[int, str]:
    """The real `lamed` with a pseudo-terminal as stdin, stdout and stderr: its exit code and output."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen([*lamed_command(), *args], stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: every holder of the terminal's other side has closed it
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    return process.wait(timeout=60), output.decode().replace("\r\n", "\n")


def test_configure_opens_the_config_in_the_editor_and_validates_it(home, tmp_path, monkeypatch):
    editor(tmp_path, monkeypatch, "raw = json.loads(path.read_text()); raw['namespace'] = 'shop'; path.write_text(json.dumps(raw))")
    code, output = run_in_terminal("configure")
    assert code == 0, output
    assert load_config(home / ".lamed" / "config.json").namespace == "shop"
    assert "is valid" in output


def test_configure_reports_a_broken_edit_with_the_line_to_correct(home, tmp_path, monkeypatch):
    editor(tmp_path, monkeypatch, "path.write_text('{\"redis\": ')")
    code, output = run_in_terminal("configure")
    assert code == 1
    path = home / ".lamed" / "config.json"
    assert output.strip().splitlines()[-3:] == [
        f'Error: {path} line 1, column 11: not valid JSON: expected a value: a number, a "string" in double quotes, '
        "true, false, null, {...} or [...]",
        '  1 | {"redis": ',
        "    |           ^",
    ]
    assert "Traceback" not in output


@pytest.mark.parametrize("stdin", ["pipe", "devnull"])
def test_configure_without_a_terminal_opens_no_editor(home, tmp_path, monkeypatch, stdin):
    """Piped, or with stdin from /dev/null, configure behaves as with --no-edit (an editor would hang or fail)."""
    editor(tmp_path, monkeypatch, "Path(sys.argv[1] + '.opened').write_text('')")
    process = subprocess.run(
        [*lamed_command(), "configure"], input="" if stdin == "pipe" else None,
        stdin=subprocess.DEVNULL if stdin == "devnull" else None, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    path = home / ".lamed" / "config.json"
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines() == [
        f"created {path} (readable by you only)",
        "not a terminal: no editor opened (as with --no-edit); edit the file, then run `lamed configure` again",
        f"{path} is valid; next: `lamed preflight`, then `lamed deploy`",
    ]
    assert not Path(f"{path}.opened").exists() and "\x1b" not in process.stdout + process.stderr


def test_configure_does_not_call_a_file_with_an_unknown_key_valid(home):
    path = write_config(home, {"host": "localhost"}, namspace="shop")
    result = run("configure", "--no-edit")
    assert result.exit_code == 0, result.output
    assert f"warning: {path}: unknown key 'namspace' is ignored — did you mean 'namespace'?" in result.output
    assert "is valid" not in result.output
    assert f"{path} loads, with 1 warning above to fix; then `lamed preflight`, then `lamed deploy`" in result.output


# -- preflight ---------------------------------------------------------------------


def test_preflight_passes_with_aws_and_redis(home, moto_server, redis_server):
    path = write_config(home, {"host": "127.0.0.1", "port": redis_server.port})
    result = run("preflight")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok: config {path}",
        "ok: AWS account 123456789012 as arn:aws:sts::123456789012:user/moto, region us-east-1",
        f"ok: Redis at redis://127.0.0.1:{redis_server.port} answers PING (auth: none); warning: a Lambda cannot reach Redis on this machine's "
        "loopback or socket",
    ]


def test_preflight_names_each_failure_with_its_fix(home, moto_server, redis_server, monkeypatch):
    port = free_port()
    write_config(home, {"host": "127.0.0.1", "port": port})
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = run("preflight")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 3 and lines[0].startswith("ok: config")
    assert lines[1].startswith("FAIL: no AWS region configured — fix: pass --region")
    assert lines[2].startswith(f"FAIL: Redis at redis://127.0.0.1:{port} cannot be reached") and "— fix: check the address in" in lines[2]


def test_preflight_says_a_redis_in_the_vpc_is_checked_from_inside_it(home, moto_server):
    vpc = {"subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-0123456789abcdef0"]}
    write_config(home, {"host": "127.0.0.1", "port": free_port()}, vpc=vpc)
    result = run("preflight")
    assert result.exit_code == 1
    redis_line = result.output.splitlines()[2]
    assert redis_line.startswith("FAIL: Redis at") and "`lamed deploy --no-preflight`" in redis_line


def test_preflight_region_option_and_bad_redis_credentials(home, moto_server, redis_server, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    write_config(home, {"host": "127.0.0.1", "port": redis_server.port, "username": "nobody", "password": "x"})
    result = run("--region", "eu-west-1", "preflight")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[1].endswith("region eu-west-1") and lines[1].startswith("ok: AWS account")
    assert lines[2].startswith(f"FAIL: Redis at redis://127.0.0.1:{redis_server.port} refused the credentials")
    assert "— fix: set redis.username and redis.password" in lines[2]


def test_preflight_refuses_a_read_only_replica_with_the_fix(home, moto_server, redis_server):
    with RedisServer() as replica:
        replicate(replica, redis_server)
        write_config(home, {"host": "127.0.0.1", "port": replica.port})
        result = run("preflight")
    assert result.exit_code == 1
    assert result.output.splitlines()[2] == (
        f"FAIL: Redis at redis://127.0.0.1:{replica.port}: this Redis is a read-only replica (a reader endpoint), "
        'where nothing can be counted — fix: set "redis" to the primary endpoint'
    )


def test_an_acl_user_with_the_permissions_lamed_advises_passes_preflight_and_counts(home, moto_server, redis_server, redis_client):
    # The fix lamed prints for a refused command grants no INFO or CONFIG: preflight must not need them.
    redis_client.acl_setuser("counter", enabled=True, passwords=["+secret"], keys=["*"], commands=list(ADVISED_ACL))
    try:
        settings = {"host": "127.0.0.1", "port": redis_server.port, "username": "counter", "password": "secret"}
        write_config(home, settings)
        result = run("preflight")
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[2].startswith(f"ok: Redis at redis://127.0.0.1:{redis_server.port} answers PING (auth: ACL user counter)")
        store = open_store(settings, 60)
        assert store.track("ns", "e", "a", "participate", "u1") is True
        assert store.results("ns")[0]["variants"] == [{"label": "a", "trials": 1}]
    finally:
        redis_client.acl_deluser("counter")


def test_preflight_without_credentials(home, moto_server, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = run("preflight")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("FAIL: config: no config file found")
    assert lines[1].startswith("FAIL: no AWS credentials found — fix: run `aws configure`")
    assert len(lines) == 2


def test_preflight_unknown_profile_and_unreachable_endpoint(home, moto_server, monkeypatch):
    result = run("--profile", "nope", "preflight")
    assert result.exit_code == 1 and "FAIL: AWS profile 'nope' not found — fix:" in result.output
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = run("preflight")
    assert result.exit_code == 1
    assert f"FAIL: cannot reach AWS at {closed}/ — fix: check the network" in result.output


# -- AWS errors as one line ----------------------------------------------------------


def client_error(code, message="details", operation="CreateFunction"):
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    "error, expected",
    [
        (client_error("AccessDeniedException", "not allowed"), "AWS denied CreateFunction: not allowed — fix: grant"),
        (client_error("AccessDenied"), "AWS denied CreateFunction: details — fix: grant"),
        (client_error("UnrecognizedClientException"), "AWS did not accept the credentials (UnrecognizedClientException) — fix:"),
        (client_error("InvalidClientTokenId"), "AWS did not accept the credentials (InvalidClientTokenId) — fix:"),
        (client_error("ExpiredToken"), "the AWS credentials have expired — fix: refresh them"),
        (client_error("ThrottlingException"), "AWS kept throttling CreateFunction after retries — fix: wait"),
        (client_error("TooManyRequestsException"), "AWS kept throttling CreateFunction after retries — fix: wait"),
        (NoCredentialsError(), "no usable AWS credentials (Unable to locate credentials) — fix: run `aws configure`"),
        (NoRegionError(), "no AWS region configured — fix: pass --region"),
        (EndpointConnectionError(endpoint_url="https://lambda.x.amazonaws.com/"), "cannot reach AWS at https://lambda.x"),
        (client_error("ResourceConflictException", "busy"), "AWS error in CreateFunction: ResourceConflictException: busy"),
    ],
)
def test_aws_errors_become_one_line(error, expected):
    message = aws_error_message(error)
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.fixture
def failing_command():
    """A throwaway command that makes a real failing AWS call (IAM GetRole of a missing role)."""

    @cli.command("test-aws-failure")
    def command():
        boto3.client("iam").get_role(RoleName="lamed-no-such-role")

    yield command
    cli.commands.pop("test-aws-failure")


def test_the_cli_prints_aws_errors_as_one_line_unless_debug(moto_server, failing_command):
    result = run("test-aws-failure")
    assert result.exit_code == 1
    assert result.output.startswith("Error: AWS error in GetRole: NoSuchEntity:")
    assert result.output.count("\n") == 1
    result = run("--debug", "test-aws-failure")
    assert isinstance(result.exception, ClientError)


@pytest.mark.parametrize(
    "settings, reachable",
    [
        ({"host": "redis.example.com"}, True),
        ({"host": "10.0.3.7", "port": 6380}, True),
        ({"url": "rediss://user:secret@cache.example.com:6380/0"}, True),
        ({"host": "localhost"}, False),
        ({"host": "::1"}, False),
        ({"url": "redis://127.0.0.1:6379/0"}, False),
        ({"unix_socket_path": "/run/redis.sock"}, False),
    ],
)
def test_loopback_and_sockets_are_flagged_as_unreachable_from_lambda(settings, reachable):
    assert reachable_from_aws(settings) is reachable
    assert "secret" not in address(settings) and "user" not in address(settings)
