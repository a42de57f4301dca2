"""The Lambda zip: lamed's runtime modules and redis-py, with their bytecode for the function's runtime; code only.

The zip holds no config and no secret: the functions read their settings from their
environment (``LAMED_CONFIG_JSON``, set by ``lamed deploy``), so the zip depends only on
lamed, redis-py and the runtime. Each module's bytecode is compiled by that runtime's
Python (this interpreter, or a ``pythonX.Y`` found on PATH or under pyenv) into
``__pycache__`` with the runtime's cache tag, as unchecked hash-based ``.pyc``: Lambda's
read-only ``/var/task`` then loads them as they are, and no cold start compiles anything.
It is deterministic (sorted entries, fixed timestamps and modes, one compression level,
bytecode compiled with a fixed hash seed and no timestamp), so the same lamed, redis-py
and runtime give byte-identical zips and the same CodeSha256 on AWS. Nothing of the
CLI's stack goes in: the handler path imports only lamed and redis-py.
"""

import functools
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import lamed
from lamed.config import DEFAULT_RUNTIME, THIS_PYTHON

# The modules the handler path imports (lamed.handlers -> lamed.store -> lamed.config).
RUNTIME_MODULES = (
    "__init__.py", "cluster_store.py", "config.py", "connection.py", "declared.py", "handlers.py", "iam_auth.py",
    "names.py", "store.py",
)  # fmt: skip
REDIS_DISTRIBUTION = "redis"
SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
COMPRESSION_LEVEL = 6  # zlib's default: within 1% of 9 in size, twice as fast
# Run by the runtime's interpreter in a folder of sources: compiles each named module (one a
# line on stdin) into its __pycache__ file, named in the module's path as the zip holds it,
# and prints that file's path; a module that does not compile ends it with one line. Hash-based
# and unchecked: /var/task never changes, so the source is never read nor hashed at import (PEP 552).
COMPILE_SCRIPT = """
import importlib.util, py_compile, sys
for name in sys.stdin.read().split():
    cached = importlib.util.cache_from_source(name)
    try:
        py_compile.compile(name, cfile=cached, dfile=name, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError as error:
        sys.exit(f"{name}: {error.exc_type_name} ({error.exc_value})")
    print(cached)
"""
VERSION_SCRIPT = "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"


class PackageError(Exception):
    """The zip cannot be built from what is installed; the message says what to do."""


def build_package(runtime: str) -> bytes:
    """The Lambda zip for ``runtime`` (e.g. ``python3.12``) as bytes: the same inputs always give the same bytes."""
    sources = {**lamed_files(), **redis_files()}
    entries = {**sources, **bytecode(interpreter(runtime), runtime, tuple(sorted(sources.items())))}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=COMPRESSION_LEVEL)
    return buffer.getvalue()


def write_package(path: Path | str, runtime: str) -> int:
    """Write the Lambda zip for ``runtime`` to ``path``; returns the number of bytes written."""
    data = build_package(runtime)
    Path(path).write_bytes(data)
    return len(data)


def lamed_files() -> dict[str, bytes]:
    """lamed's runtime modules, by their path in the zip."""
    folder = Path(lamed.__file__).parent
    return {f"lamed/{name}": (folder / name).read_bytes() for name in RUNTIME_MODULES}


def redis_files() -> dict[str, bytes]:
    """redis-py's files as installed (sources, py.typed, license, metadata), without bytecode."""
    try:
        distribution = importlib.metadata.distribution(REDIS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise PackageError("redis-py is not installed — fix: pip install redis") from None
    files = {}
    for entry in distribution.files or ():
        parts = entry.parts
        if "__pycache__" in parts or entry.suffix == ".pyc" or parts[-1] in SKIPPED_METADATA:
            continue
        if parts[0] != REDIS_DISTRIBUTION and not parts[0].endswith(".dist-info"):
            continue
        if entry.suffix in (".so", ".pyd"):
            raise PackageError(f"redis-py ships a compiled file ({entry}) — fix: install the pure-Python redis wheel")
        files[entry.as_posix()] = entry.read_binary()
    if "redis/__init__.py" not in files:
        raise PackageError("redis-py's files cannot be found in its installed distribution — fix: pip install --force-reinstall redis")
    return files


@functools.lru_cache(maxsize=4)  # a deploy builds the zip once; tests build it for the same sources again and again
def bytecode(python: str, runtime: str, sources: tuple[tuple[str, bytes], ...]) -> dict[str, bytes]:
    """The ``__pycache__`` files of the ``.py`` among ``sources``, compiled by ``python`` (``runtime``'s interpreter)."""
    modules = [name for name, _ in sources if name.endswith(".py")]
    with tempfile.TemporaryDirectory(prefix="lamed-package-") as folder:
        for name, data in sources:
            if name.endswith(".py"):
                path = Path(folder, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        done = subprocess.run(
            [python, "-S", "-s", "-P", "-c", COMPILE_SCRIPT],  # -P: the sources shadow no module it imports
            input="\n".join(modules),
            cwd=folder,
            env={"PYTHONHASHSEED": "0", "PATH": os.defpath},  # the hash seed orders sets in the bytecode
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            problem = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise PackageError(
                f"cannot compile the zip's modules for {runtime}: {problem} — fix: set a \"runtime\" that lamed and redis-py support"
            )
        return {name: Path(folder, name).read_bytes() for name in done.stdout.split()}


@functools.cache
def interpreter(runtime: str) -> str:
    """The path of a Python of ``runtime``'s version: this one, else ``pythonX.Y`` on PATH or under pyenv."""
    version = runtime.removeprefix("python")
    if version == "%d.%d" % sys.version_info[:2]:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installed = sorted(map(str, pyenv.glob(f"{version}.*/bin/python{version}")), reverse=True)
    candidates = [shutil.which(f"python{version}"), *installed]
    for candidate in filter(None, candidates):
        try:
            found = subprocess.run([candidate, "-S", "-c", VERSION_SCRIPT], capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            continue
        reported = found.stdout.split(maxsplit=1) if found.returncode == 0 else []
        if reported[:1] == [version]:
            return reported[1].strip()  # the interpreter itself, not a shim that needs this environment
    fixes = [f"install python{version} on PATH", f"run lamed with Python {version}"]
    if DEFAULT_RUNTIME == THIS_PYTHON != runtime:
        fixes.append(f'set "runtime": "{THIS_PYTHON}" (this Python) in the config')
    raise PackageError(
        f"runtime {runtime} needs Python {version} to compile the zip's bytecode, and none is found — fix: {', or '.join(fixes)}"
    )
