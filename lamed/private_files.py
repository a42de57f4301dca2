"""Files only their owner can read: folders 0700 and files 0600, whatever the umask.

``~/.lamed`` holds the local API key, the embedded Redis's data and the config (with
its Redis password), so every folder lamed makes there, and every file, is private,
including a folder an older lamed left more open.
"""

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path, base: Path) -> Path:
    """Create ``path`` and every folder from ``base`` down to it with mode 0700
    (tightening ones that exist); folders above ``base`` are left as they are."""
    path, base = Path(path), Path(base)
    for folder in [*reversed(path.relative_to(base).parents), path.relative_to(base)]:
        target = base / folder
        target.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        if target.stat().st_mode & 0o777 != FOLDER_MODE:
            target.chmod(FOLDER_MODE)
    return path


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with mode 0600 for a new file, and an existing one tightened to 0600."""
    descriptor = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor
