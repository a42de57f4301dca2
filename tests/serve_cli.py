"""Run the real `lamed serve` command as a child process, for the CLI, browser and fault
tests and the benchmarks, and read an experiment's participants back from it."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from lamed.redis_server import free_port

READY_TIMEOUT_SECONDS = 30
ISOLATED_VARIABLES = ("LAMED_API_KEY", "LAMED_CONFIG", "LAMED_CONFIG_JSON")


def lamed_command() -> list[str]:
    """The installed `lamed` console script beside this Python, else the same entry point."""
    script = shutil.which("lamed", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from lamed.cli import cli; cli()"]


def participants(url: str, experiment: str, api_key: str) -> int:
    """How many uuids took part in ``experiment``, as the lamed API at ``url`` reports."""
    response = requests.get(
        f"{url}/prod/experiment", params={"experiment": experiment}, headers={"x-api-key": api_key}, timeout=30
    )
    response.raise_for_status()
    return sum(variant["trials"] for variant in response.json()["variants"])


class LamedServe:
    """`lamed serve` with HOME at ``home`` (so ~/.lamed is the test's), output in a file;
    ``command`` is another `lamed` to run (default: :func:`lamed_command`)."""

    def __init__(
        self, home: Path, *args: str, port: int | None = None, env: dict | None = None, command: list[str] | None = None
    ):
        self.home = Path(home)
        self.command = command or lamed_command()
        self.port = port or free_port()
        self.args = args
        inherited = {name: value for name, value in os.environ.items() if name not in ISOLATED_VARIABLES}
        self.env = {**inherited, "HOME": str(self.home), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log = self.home / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def launch(self) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [*self.command, "serve", "--port", str(self.port), *self.args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, cwd=self.home,
            )
        return self.process

    def start(self) -> "LamedServe":
        """Launch and wait until the server answers HTTP (a condition, polled with a deadline)."""
        self.launch()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"lamed serve exited with {self.process.returncode}:\n{self.output}")
            try:
                requests.get(f"{self.url}/prod/track", timeout=1)
                return self
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"lamed serve did not answer within {READY_TIMEOUT_SECONDS} s:\n{self.output}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode

    def __enter__(self) -> "LamedServe":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
