"""`pip install tox && tox` on a machine with one supported Python: the others are skipped, and said so;
CI's settings (the TOX_* line of .ci/run) make the same missing Python a failure.

tox runs the project's tox.ini with a PATH holding only the Python running this test, and with
each environment's commands replaced by a one-liner (no package, no suite run inside the suite).
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIS = f"py{sys.version_info.major}{sys.version_info.minor}"
QUICK = ["-x", "testenv.package=skip", "-x", "testenv.extras=", "-x", "testenv.commands=python -c 'print(\"tox ran me\")'"]


def envlist() -> list[str]:
    line = re.search(r"^envlist\s*=\s*(.+)$", (ROOT / "tox.ini").read_text(), re.MULTILINE).group(1)
    return [name.strip() for name in line.split(",")]


def ci_tox_variables() -> dict:
    """The TOX* variables .ci/run exports before it runs tox."""
    exports = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("export TOX")]
    assert len(exports) == 1, exports
    return dict(word.split("=", 1) for word in shlex.split(exports[0])[1:])


def run_tox(tmp_path, **variables) -> subprocess.CompletedProcess:
    """tox on tox.ini with PATH = a folder holding only this Python (as python3.X)."""
    only = tmp_path / "bin"
    only.mkdir(exist_ok=True)
    link = only / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not link.exists():
        link.symlink_to(sys.executable)
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("TOX", "VIRTUALENV_", "PIP_", "PYTHON")) and name != "VIRTUAL_ENV"
    }
    env.update(PATH=str(only), **variables)
    command = [sys.executable, "-m", "tox", "-c", str(ROOT / "tox.ini"), "--workdir", str(tmp_path / "tox"), *QUICK]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(autouse=True)
def tox_installed():
    pytest.importorskip("tox", reason="tox is in the test extras: pip install -e '.[test]'")


def test_tox_runs_the_python_it_finds_and_skips_the_others_saying_so(tmp_path):
    names = envlist()
    assert THIS in names and {"py311", "py313"} <= set(names)
    result = run_tox(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "tox ran me" in output
    assert re.search(rf"^  {THIS}: OK", output, re.MULTILINE), output
    for other in set(names) - {THIS}:
        assert f"{other}: skipped because could not find python interpreter" in output
        assert re.search(rf"^  {other}: SKIP", output, re.MULTILINE), output
    assert "congratulations" in output


def test_with_the_ci_settings_a_missing_python_fails(tmp_path):
    variables = ci_tox_variables()
    required = variables["TOXENV"].split(",")
    assert sorted(required) == ["py311", "py313"]
    result = run_tox(tmp_path, **variables)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for other in set(required) - {THIS}:
        assert f"{other}: failed with could not find python interpreter" in output
        assert re.search(rf"^  {other}: FAIL", output, re.MULTILINE), output
    assert "evaluation failed" in output
