"""The Lambda zip: lamed's runtime modules, redis-py copied from its installed distribution, and config.json.

The zip is deterministic (sorted entries, fixed timestamps and modes, one compression
level), so the same inputs give byte-identical zips and the same CodeSha256 on AWS.
Nothing of the CLI's stack goes in: the handler path imports only lamed and redis-py.
"""

import importlib.metadata
import io
import json
import os
import zipfile
from pathlib import Path

import lamed
from lamed.config import CONFIG_NAME, Config

# The modules the handler path imports (lamed.handlers -> lamed.store -> lamed.config).
RUNTIME_MODULES = ("__init__.py", "cluster_store.py", "config.py", "connection.py", "handlers.py", "iam_auth.py", "store.py")
REDIS_DISTRIBUTION = "redis"
SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
PRIVATE_MODE = 0o600
COMPRESSION_LEVEL = 6  # zlib's default: within 1% of 9 in size, twice as fast


class PackageError(Exception):
    """The zip cannot be built from what is installed; the message says what to do."""


def build_package(config: Config) -> bytes:
    """The Lambda zip for ``config`` as bytes; the same inputs always give the same bytes."""
    entries = {**lamed_files(), **redis_files(), CONFIG_NAME: config_json(config)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=COMPRESSION_LEVEL)
    return buffer.getvalue()


def write_package(config: Config, path: Path | str) -> int:
    """Write the Lambda zip for ``config`` to ``path``; returns the number of bytes written.

    The file is readable by its owner only: its config.json holds the Redis password.
    """
    data = build_package(config)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    os.fchmod(descriptor, PRIVATE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return len(data)


def config_json(config: Config) -> bytes:
    """The config as the Lambda reads it: the loaded file's JSON, keys sorted."""
    return (json.dumps(config.raw, indent=2, sort_keys=True) + "\n").encode()


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
