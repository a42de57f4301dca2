"""The Lambda zip: code only (no config, no secret), its bytecode for its runtime, its determinism, and that it runs alone against Redis."""

import gzip
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import botocore
import pytest
from click.testing import CliRunner

import lamed.aws.package
from lamed.aws.package import PackageError, build_package, interpreter
from lamed.cli import cli
from lamed.config import DEFAULT_RUNTIME, SUPPORTED_RUNTIMES, load_config

RUNTIME = {
    f"lamed/{name}"
    for name in ("__init__.py", "cluster_store.py", "config.py", "connection.py", "declared.py", "handlers.py", "iam_auth.py", "names.py", "store.py")
}
CLI_STACK = ("boto3", "botocore", "click", "jinja2", "requests", "tests", "moto", "s3transfer", "urllib3")
UNCHECKED_HASH_FLAGS = 0b01  # PEP 552: the .pyc header's flags word, hash-based and not checked against its source


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
    return zipfile.ZipFile(io.BytesIO(build_package(DEFAULT_RUNTIME)))


def runtimes_at_hand() -> list:
    """The supported runtimes, each skipped where this machine has no Python of its version to compile and run it."""
    params = []
    for runtime in SUPPORTED_RUNTIMES:
        try:
            interpreter(runtime)
            params.append(runtime)
        except PackageError as missing:
            params.append(pytest.param(runtime, marks=pytest.mark.skip(reason=str(missing))))
    return params


def cache_tag(runtime: str) -> str:
    return "cpython-" + runtime.removeprefix("python").replace(".", "")


def run_alone(python: str, script: str, folder: Path, config) -> dict:
    """The JSON ``script`` prints, run by ``python`` in ``folder`` (the unpacked zip) with no site-packages and only
    the environment ``lamed deploy`` gives the functions."""
    done = subprocess.run(
        [python, "-I", "-S", "-c", script, str(folder)],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", **config.runtime_environment()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_zip_holds_the_runtime_and_redis_py_and_no_config(archive):
    names = archive.namelist()
    sources = {name for name in names if "__pycache__" not in name}
    assert {name for name in sources if name.startswith("lamed/")} == RUNTIME
    assert "redis/__init__.py" in names and "redis/client.py" in names and "redis/py.typed" in names
    assert any(name.endswith(".dist-info/METADATA") for name in names)
    assert not [name for name in names if name.endswith(".json")]
    tops = {name.split("/")[0] for name in names}
    assert not tops & set(CLI_STACK)
    assert not [name for name in names if name.endswith((".so", "RECORD"))]
    assert archive.read("lamed/handlers.py") == (Path(__file__).parents[1] / "lamed" / "handlers.py").read_bytes()


def test_every_module_has_its_bytecode_for_the_runtime_and_nothing_else_is_compiled(archive):
    names = set(archive.namelist())
    tag = cache_tag(DEFAULT_RUNTIME)
    modules = {name for name in names if name.endswith(".py")}
    expected = {f"{name.rpartition('/')[0]}/__pycache__/{name.rpartition('/')[2][:-3]}.{tag}.pyc" for name in modules}
    assert {name for name in names if name.endswith(".pyc")} == expected
    assert not [name for name in names if "__pycache__" in name and not name.endswith(f".{tag}.pyc")]


def test_supported_runtimes_are_lambda_runtimes():
    """botocore's lambda service model (2015-03-31), shape "Runtime": the runtimes Lambda knows."""
    model = Path(botocore.__file__).parent / "data" / "lambda" / "2015-03-31" / "service-2.json.gz"
    runtimes = json.loads(gzip.decompress(model.read_bytes()))["shapes"]["Runtime"]["enum"]
    assert set(SUPPORTED_RUNTIMES) <= set(runtimes)
    this = "python%d.%d" % sys.version_info[:2]
    assert DEFAULT_RUNTIME == this or this not in SUPPORTED_RUNTIMES  # this Python's, where Lambda offers it


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
        "architecture": "arm64",
    }
    zips = []
    for name, raw in (("plain", plain), ("secret", secret)):
        monkeypatch.setenv("LAMED_CONFIG", str(write_config(tmp_path / name, raw)))
        output = tmp_path / f"{name}.zip"
        result = CliRunner().invoke(cli, ["package", "-o", str(output)])
        assert result.exit_code == 0, result.output
        zips.append(output.read_bytes())
    assert zips[0] == zips[1] == build_package(DEFAULT_RUNTIME)
    archive = zipfile.ZipFile(io.BytesIO(zips[1]))
    assert PASSWORD.encode() not in zips[1]
    assert not [name for name in archive.namelist() if PASSWORD.encode() in archive.read(name)]


def test_two_builds_in_fresh_processes_are_byte_identical(tmp_path):
    """Each build compiles anew in its own process (any hash seed): the bytecode, and so the zip, are the same."""
    script = "import sys; from lamed.aws.package import write_package; write_package(sys.argv[1], sys.argv[2])"
    built = []
    for seed in ("1", "2"):
        output = tmp_path / f"{seed}.zip"
        environment = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(output), DEFAULT_RUNTIME], env=environment, check=True, timeout=120)
        built.append(output.read_bytes())
    assert built[0] == built[1] == build_package(DEFAULT_RUNTIME)


IMPORT_SCRIPT = """
import importlib._bootstrap_external as external, json, sys
compiled, read = [], []
to_code, get_data = external.SourceLoader.source_to_code, external.FileLoader.get_data
def spy_to_code(self, data, path, **kwargs):
    compiled.append(path)
    return to_code(self, data, path, **kwargs)
def spy_get_data(self, path):
    if path.endswith(".py"):
        read.append(path)
    return get_data(self, path)
external.SourceLoader.source_to_code = spy_to_code
external.FileLoader.get_data = spy_get_data
sys.path.insert(0, sys.argv[1])
import lamed
flat = {"namespace": "zipped", "experiment": "colour", "variant": "red", "event": "participate", "uuid": "u1"}
tracked = lamed.track({"httpMethod": "GET", "queryStringParameters": flat})
ours = {name: module for name, module in sys.modules.items() if name.split(".")[0] in ("lamed", "redis")}
print(json.dumps({
    "compiled": compiled, "read": read, "tracked": tracked, "modules": len(ours),
    "files": sorted({module.__file__ for module in ours.values()}),
    "cached": sorted({module.__spec__.cached for module in ours.values()}),
}))
"""


@pytest.mark.parametrize("runtime", runtimes_at_hand())
def test_the_handler_imports_from_the_read_only_zip_with_its_runtime_compiling_nothing(runtime, config, tmp_path, redis_client):
    """As on Lambda's read-only /var/task: every lamed and redis-py module comes from the zip's .pyc, no source is
    compiled nor even read, and nothing is written (this interpreter's checks of a stale .pyc would rewrite it)."""
    folder = tmp_path / "task"
    zipfile.ZipFile(io.BytesIO(build_package(runtime))).extractall(folder)
    for path in [*folder.rglob("*"), folder]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = sorted(folder.rglob("*"))
    output = run_alone(interpreter(runtime), IMPORT_SCRIPT, folder, config)
    assert output["tracked"]["statusCode"] == 200
    assert output["compiled"] == [] and output["read"] == []
    assert output["modules"] > 50 and all(path.startswith(str(folder)) for path in output["files"])
    tag = cache_tag(runtime)
    assert all("/__pycache__/" in path and path.endswith(f".{tag}.pyc") for path in output["cached"])
    for path in output["cached"]:
        header = Path(path).read_bytes()[:8]
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_FLAGS
    assert sorted(folder.rglob("*")) == before
    for path in [*folder.rglob("*"), folder]:
        path.chmod(0o755)  # so that pytest can remove it


def test_a_runtime_without_its_python_is_one_line_with_the_fix(tmp_path, monkeypatch):
    other = next(runtime for runtime in SUPPORTED_RUNTIMES if runtime != DEFAULT_RUNTIME)
    monkeypatch.setenv("LAMED_CONFIG", str(write_config(tmp_path / "conf", {"redis": {"host": "h"}, "runtime": other})))
    monkeypatch.setenv("PATH", str(tmp_path))  # no pythonX.Y on PATH
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))  # nor under pyenv
    interpreter.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["package", "-o", str(tmp_path / "lamed.zip")])
    finally:
        interpreter.cache_clear()
    version = other.removeprefix("python")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: runtime {other} needs Python {version} to compile the zip's bytecode, and none is found — fix: install "
        f'python{version} on PATH, or run lamed with Python {version}, or set "runtime": "{DEFAULT_RUNTIME}" (this Python) in the config\n'
    )
    assert not (tmp_path / "lamed.zip").exists()


def test_a_module_that_does_not_compile_for_the_runtime_is_one_line(monkeypatch):
    monkeypatch.setattr(lamed.aws.package, "lamed_files", lambda: {"lamed/broken.py": b"def broken(:\n"})
    with pytest.raises(PackageError) as raised:
        build_package(DEFAULT_RUNTIME)
    (line,) = str(raised.value).splitlines()
    assert line.startswith(f"cannot compile the zip's modules for {DEFAULT_RUNTIME}: lamed/broken.py: SyntaxError (")
    assert line.endswith('fix: set a "runtime" that lamed and redis-py support')


def test_unpacked_zip_runs_alone_without_site_packages(config, tmp_path, redis_client):
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(io.BytesIO(build_package(DEFAULT_RUNTIME))).extractall(folder)
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
    output = run_alone(sys.executable, script, folder, config)
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
    assert output.read_bytes() == build_package(DEFAULT_RUNTIME)
    assert result.output == f"wrote lamed.zip ({output.stat().st_size} bytes, bytecode for {DEFAULT_RUNTIME})\n"
