"""The Lambda zip: lamed's runtime modules and redis-py copied from its installed distribution; code only.

The zip holds no config and no secret: the functions read their settings from their
environment (``LAMED_CONFIG_JSON``, set by ``lamed deploy``), so the zip is the same
whatever the config. It is deterministic (sorted entries, fixed timestamps and modes,
one compression level), so the same lamed and redis-py give byte-identical zips and the
same CodeSha256 on AWS. Nothing of the CLI's stack goes in: the handler path imports
only lamed and redis-py.
"""

import importlib.metadata
import io
import zipfile
from pathlib import Path

import lamed

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


class PackageError(Exception):
    """The zip cannot be built from what is installed; the message says what to do."""


def build_package() -> bytes:
    """The Lambda zip as bytes: the same lamed and redis-py always give the same bytes."""
    entries = {**lamed_files(), **redis_files()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=COMPRESSION_LEVEL)
    return buffer.getvalue()


def write_package(path: Path | str) -> int:
    """Write the Lambda zip to ``path``; returns the number of bytes written."""
    data = build_package()
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
