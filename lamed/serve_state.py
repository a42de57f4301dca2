"""Where a running ``lamed serve`` can be read: ``~/.lamed/serve.json`` (mode 0600).

``lamed serve`` writes its experiments URL, API key and pid there once it listens, and
removes the file when it stops; ``lamed results`` and ``lamed dashboard`` read it when no
``--endpoint`` is given. A file left by a serve that was killed names a process that is
gone, and is ignored.
"""

import json
import os
from pathlib import Path

from lamed.config import lamed_home
from lamed.private_files import open_private, private_folder

STATE_FILE = "serve.json"


def state_path() -> Path:
    return lamed_home() / STATE_FILE


def write_state(experiments_url: str, api_key: str) -> Path:
    """Record this process as the running serve (replacing a previous record)."""
    path = private_folder(lamed_home(), lamed_home()) / STATE_FILE
    state = {"pid": os.getpid(), "experiments_url": experiments_url, "api_key": api_key}
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as file:
        json.dump(state, file)
    return path


def _read() -> dict | None:
    try:
        state = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        return None
    return state


def remove_state() -> None:
    """Remove the record if it is this process's (another serve may have written it since)."""
    state = _read()
    if state and state["pid"] == os.getpid():
        state_path().unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: not a serve of ours, but alive
        return True
    return True


def running_serve() -> tuple[str, str] | None:
    """The experiments URL and API key of the running ``lamed serve``, or None."""
    state = _read()
    if not state or not _alive(state["pid"]):
        return None
    url, key = state.get("experiments_url"), state.get("api_key")
    return (url, key) if isinstance(url, str) and isinstance(key, str) else None
