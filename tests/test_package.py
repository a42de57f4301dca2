"""The Lambda zip: code only (no config, no secret), its determinism, and that it runs alone against Redis."""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from lamed.aws.package import build_package
from lamed.cli import cli
from lamed.config import load_config

RUNTIME = {
    f"lamed/{name}"
    for name in ("__init__.py", "cluster_store.py", "config.py", "connection.py", "declared.py", "handlers.py", "iam_auth.py", "names.py", "store.py")
}
CLI_STACK = ("boto3", "botocore", "click", "jinja2", "requests", "tests", "moto", "s3transfer", "urllib3")


def write_config(folder: Path, raw: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(raw))
    return path


PASSWORD = "zip-must-not-hold-Pa55w0rd-7q3"


@pytest.fixture
def config(tmp_path, redis_server):
    raw = {
        "redis": {"host": "127.0.0.1", "port": redis_server.port}, "namespace": "zipped", "uuid_expiry_seconds": 600,
        "experiments": {"shape": {"variants": ["round", "square"], "goals": ["buy"]}},
    }  # fmt: skip
    return load_config(write_config(tmp_path / "conf", raw))


@pytest.fixture
def archive():
    return zipfile.ZipFile(io.BytesIO(build_package()))


def test_zip_holds_the_runtime_and_redis_py_and_no_config(archive):
    names = archive.namelist()
    lamed_names = {name for name in names if name.startswith("lamed/")}
    assert lamed_names == RUNTIME
    assert "redis/__init__.py" in names and "redis/client.py" in names and "redis/py.typed" in names
    assert any(name.endswith(".dist-info/METADATA") for name in names)
    assert not [name for name in names if name.endswith(".json")]
    tops = {name.split("/")[0] for name in names}
    assert not tops & set(CLI_STACK)
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", ".so", "RECORD"))]
    assert archive.read("lamed/handlers.py") == (Path(__file__).parents[1] / "lamed" / "handlers.py").read_bytes()


def test_zip_entries_are_sorted_with_fixed_times_and_modes(archive):
    infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
    assert archive.testzip() is None


def test_the_zip_is_byte_identical_whatever_the_config_and_holds_no_password(tmp_path, monkeypatch):
    plain = {"redis": {"host": "redis.example.com", "port": 6379}}
    secret = {
        "redis": {"url": f"rediss://lamed:{PASSWORD}@cache.example.com:6380", "cluster": True},
        "namespace": "other",
        "uuid_expiry_seconds": 60,
        "runtime": "python3.13",
    }
    zips = []
    for name, raw in (("plain", plain), ("secret", secret)):
        monkeypatch.setenv("LAMED_CONFIG", str(write_config(tmp_path / name, raw)))
        output = tmp_path / f"{name}.zip"
        result = CliRunner().invoke(cli, ["package", "-o", str(output)])
        assert result.exit_code == 0, result.output
        zips.append(output.read_bytes())
    assert zips[0] == zips[1] == build_package()
    archive = zipfile.ZipFile(io.BytesIO(zips[1]))
    assert PASSWORD.encode() not in zips[1]
    assert not [name for name in archive.namelist() if PASSWORD.encode() in archive.read(name)]


def test_unpacked_zip_runs_alone_without_site_packages(config, tmp_path, redis_client):
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(io.BytesIO(build_package())).extractall(folder)
    script = """
import json, sys
folder = sys.argv[1]
sys.path.insert(0, folder)
assert not [p for p in sys.path if "site-packages" in p or "dist-packages" in p], sys.path
import lamed
flat = {"namespace": "zipped", "experiment": "colour", "variant": "red", "event": "participate", "uuid": "u1"}
assert lamed.track(dict(flat)) is None
assert lamed.track(dict(flat)) is None  # a duplicate: not counted again
proxy = {"httpMethod": "GET", "queryStringParameters": {**flat, "uuid": "u2"}}
tracked = lamed.track(proxy)
goal = lamed.track({**flat, "uuid": "u2", "event": "click"})
results = lamed.all({"httpMethod": "GET", "queryStringParameters": {"namespace": "zipped"}})
flat_results = lamed.all({"namespace": "zipped"})
junk = lamed.track({"httpMethod": "GET", "queryStringParameters": {**flat, "experiment": "shape", "variant": "!"}})
stack = []
for name in ("boto3", "botocore", "click", "jinja2", "requests"):
    try:
        __import__(name)
        stack.append(name)
    except ImportError:
        pass
print(json.dumps({
    "tracked": tracked, "junk": junk, "results": results, "flat_results": flat_results, "stack": stack,
    "files": [lamed.__file__, sys.modules["redis"].__file__],
}))
"""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(folder)],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", **config.runtime_environment()},  # as lamed deploy sets it
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["stack"] == []
    assert all(path.startswith(str(folder)) for path in output["files"])
    assert output["tracked"]["statusCode"] == 200 and json.loads(output["tracked"]["body"]) == {"counted": True}
    assert output["junk"]["statusCode"] == 400  # the declarations travel in LAMED_CONFIG_JSON
    results = json.loads(output["results"]["body"])
    assert results == output["flat_results"]
    assert results[1] == {
        "experiment": "colour",
        "goals": [{"goal": "click", "results": [{"label": "red", "successes": 1, "trials": 2}]}],
        "variants": [{"label": "red", "trials": 2}],
    }
    assert redis_client.get("zipped:counters:colour:participate:red") == "2"


def test_cli_package_needs_no_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAMED_CONFIG", raising=False)
    monkeypatch.delenv("LAMED_CONFIG_JSON", raising=False)
    result = CliRunner().invoke(cli, ["package"])
    assert result.exit_code == 0, result.output
    output = tmp_path / "lamed.zip"
    assert output.read_bytes() == build_package()
    assert result.output == f"wrote lamed.zip ({output.stat().st_size} bytes)\n"
