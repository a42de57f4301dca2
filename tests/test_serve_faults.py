"""`lamed serve` under load while its parts fail: Redis paused (SIGSTOP) and killed,
serve itself killed with SIGKILL. Clients retry every event until it is answered 200,
as AlephBet does, and the counts must then be exact: nothing lost, nothing doubled.
Also: the embedded redis-server dies with a killed serve, and one left running on the
data folder is stopped before a new one starts."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from lamed.redis_server import RedisServer, find_redis_server, free_port
from serve_cli import LamedServe, participants

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")

API_KEY = "faults-key-0123456789abcdef"
ENV = {"LAMED_API_KEY": API_KEY}
FAULT_TIMEOUT_SECONDS = 30


class RetryingClients:
    """Threads that each send their own uuids' participate events twice (the second is a
    duplicate), retrying every send until it is answered 200."""

    def __init__(self, url: str, clients: int = 8, uuids_per_client: int = 60, experiment: str = "faults"):
        self.url, self.experiment = url, experiment
        self.uuids = [[f"c{client}-{number}" for number in range(uuids_per_client)] for client in range(clients)]
        self.answered = 0  # 200s
        self.refused = 0  # non-200 answers and failed connections, each followed by a retry
        self.counted = 0  # answers {"counted": true}
        self.unexpected: list = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(mine,), daemon=True) for mine in self.uuids]

    def start(self) -> "RetryingClients":
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self._threads), "clients still retrying after 120 s"

    def __enter__(self) -> "RetryingClients":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.join()

    @property
    def distinct(self) -> int:
        return sum(map(len, self.uuids))

    def _client(self, uuids: list[str]) -> None:
        session = requests.Session()
        for uuid in uuids:
            for _ in range(2):
                self._send_until_200(session, uuid)

    def _send_until_200(self, session: requests.Session, uuid: str) -> None:
        query = {"experiment": self.experiment, "variant": "v", "event": "participate", "uuid": uuid}
        while True:
            try:
                response = session.get(f"{self.url}/prod/track", params=query, timeout=15)
            except requests.RequestException:
                response = None
            with self._lock:
                if response is not None and response.status_code == 200:
                    self.answered += 1
                    self.counted += response.json()["counted"]
                    return
                self.refused += 1
                if response is not None and response.status_code != 503:
                    self.unexpected.append((response.status_code, response.text))
            time.sleep(0.02)  # AlephBet waits for its next flush; this spares a busy loop

    def wait_for(self, condition, what: str) -> None:
        """Await ``condition(self)`` (a state of the load, polled) or fail naming ``what``."""
        deadline = time.monotonic() + FAULT_TIMEOUT_SECONDS
        while not condition(self):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            assert any(thread.is_alive() for thread in self._threads), f"the clients finished before {what}"
            time.sleep(0.01)


def assert_exact(load: RetryingClients, running: LamedServe) -> None:
    """Every event answered 200 in the end and counted once; on failure, serve's log is shown."""
    url = running.url
    assert load.unexpected == [], running.output
    assert load.answered == 2 * load.distinct  # every send of every event got its 200 in the end
    assert participants(url, load.experiment, API_KEY) == load.distinct  # each event counted once: none lost, none doubled
    assert load.counted <= load.distinct  # a count whose 200 was lost is answered false on retry


def redis_pid(home: Path) -> int:
    return int((home / ".lamed" / "data" / "redis.pid").read_text())


def is_running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(stat_file.parent.name))
    return found


def await_exit(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not is_running(pid)


# -- faults under load ----------------------------------------------------------------


def test_counts_are_exact_after_the_embedded_redis_is_paused_under_load(tmp_path):
    with LamedServe(tmp_path, env=ENV) as running:
        paused = redis_pid(tmp_path)
        with RetryingClients(running.url) as load:
            load.wait_for(lambda state: state.answered >= 100, "the load to start")
            os.kill(paused, signal.SIGSTOP)
            try:
                load.wait_for(lambda state: state.refused >= 8, "503s while Redis is paused")
            finally:
                os.kill(paused, signal.SIGCONT)
        assert_exact(load, running)
        assert load.refused >= 8


def test_counts_are_exact_after_a_configured_redis_is_killed_under_load(tmp_path):
    data = tmp_path / "redis-data"
    first = RedisServer(data_dir=data).start()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"port": first.port}, "serve": {"use_config_redis": True}}))
    second = RedisServer(data_dir=data, port=first.port)
    try:
        with LamedServe(tmp_path, env={**ENV, "LAMED_CONFIG": str(config)}) as running:
            with RetryingClients(running.url) as load:
                load.wait_for(lambda state: state.answered >= 100, "the load to start")
                first.process.kill()  # SIGKILL: no shutdown, the AOF is what was written
                first.process.wait()
                load.wait_for(lambda state: state.refused >= 8, "503s while Redis is down")
                second.start()  # same port, same data folder: the AOF is loaded
            assert_exact(load, running)
    finally:
        first.stop()
        second.stop()


def test_counts_are_exact_after_serve_is_killed_under_load(tmp_path):
    port = free_port()
    killed = LamedServe(tmp_path, port=port, env=ENV).start()
    load = RetryingClients(killed.url).start()
    load.wait_for(lambda state: state.answered >= 100, "the load to start")
    orphan = redis_pid(tmp_path)
    killed.process.kill()
    killed.process.wait()
    load.wait_for(lambda state: state.refused >= 8, "refused connections while serve is down")
    with LamedServe(tmp_path, port=port, env=ENV) as restarted:
        assert not is_running(orphan)
        load.join()
        assert_exact(load, restarted)


# -- the embedded redis-server never outlives serve -----------------------------------


def test_the_embedded_redis_dies_with_serve_killed_by_sigkill(tmp_path):
    running = LamedServe(tmp_path, env=ENV).start()
    embedded = children(running.process.pid)
    try:
        assert len(embedded) == 1
        running.process.kill()
        running.process.wait()
        assert await_exit(embedded[0]), "redis-server outlived `lamed serve` killed with SIGKILL"
    finally:
        for pid in filter(is_running, embedded):  # an orphan left by a failure: not left behind
            os.kill(pid, signal.SIGTERM)
        running.stop()


def test_a_redis_server_left_on_the_data_folder_is_stopped_before_serve_starts_another(tmp_path):
    with LamedServe(tmp_path, env=ENV) as first:
        assert requests.get(f"{first.url}/prod/track?experiment=faults&variant=v&event=participate&uuid=a",
                            timeout=5).json() == {"counted": True}
    data = tmp_path / ".lamed" / "data"
    # A redis-server left running on the folder, as after a SIGKILL of serve on a system
    # without a parent-death signal: it holds the AOF and wrote its pid file.
    leftover = subprocess.Popen(
        [find_redis_server(), "--port", str(free_port()), "--bind", "127.0.0.1", "--dir", str(data),
         "--appendonly", "yes", "--pidfile", str(data / "redis.pid"), "--logfile", str(data / "leftover.log")],
        stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (data / "redis.pid").exists():
            assert time.monotonic() < deadline and leftover.poll() is None, "the leftover redis-server did not start"
            time.sleep(0.02)
        with LamedServe(tmp_path, env=ENV) as second:
            assert leftover.wait(timeout=15) == 0  # stopped with SIGTERM, so it finished its AOF
            assert redis_pid(tmp_path) != leftover.pid
            assert requests.get(f"{second.url}/prod/track?experiment=faults&variant=v&event=participate&uuid=b",
                                timeout=5).json() == {"counted": True}
            assert participants(second.url, "faults", API_KEY) == 2
    finally:
        if leftover.poll() is None:
            leftover.terminate()
            leftover.wait()
