"""``lamed configure``: create the config file from its template, private to its owner."""

import os
from pathlib import Path

import jinja2

from lamed.config import (
    CONFIG_NAME,
    DEFAULT_ARCHITECTURE,
    DEFAULT_NAMESPACE,
    DEFAULT_RUNTIME,
    DEFAULT_UUID_EXPIRY_SECONDS,
    find_config_path,
    lamed_home,
)
from lamed.private_files import FOLDER_MODE, open_private

TEMPLATE_NAME = "config.json.j2"


def config_target() -> Path:
    """The config file lamed uses, or ``~/.lamed/config.json`` when there is none yet."""
    return find_config_path() or lamed_home() / CONFIG_NAME


def render_config_template() -> str:
    """The starting config: a local Redis and every lamed default spelled out."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("lamed", "templates"), keep_trailing_newline=True)
    return environment.get_template(TEMPLATE_NAME).render(
        redis_host="localhost",
        redis_port=6379,
        uuid_expiry_seconds=DEFAULT_UUID_EXPIRY_SECONDS,
        namespace=DEFAULT_NAMESPACE,
        runtime=DEFAULT_RUNTIME,
        architecture=DEFAULT_ARCHITECTURE,
    )


def create_config(path: Path) -> bool:
    """Write the template to ``path`` (mode 0600, a new parent folder 0700); False when it already exists."""
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    try:
        descriptor = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(render_config_template())
    return True
