"""Events/s of the warm track handler against Lamed's original per-event protocol.

Both run against a real redis-server, directly and through a TCP proxy that adds a
delay to every turnaround (each request the client sends, and each new connection,
which on a real network costs a TCP handshake). The proxy also counts turnarounds,
and Redis's INFO counts commands and connections, so the table shows where the time
goes, not just how much.

    python benchmarks/track.py [--events 2000] [--delay-ms 1]
"""

import argparse
import hashlib
import json
import socket
import threading
import time
import uuid as uuids
import warnings

import redis

import lamed
from lamed import handlers
from lamed.connection import redis_client
from lamed.redis_server import RedisServer
from lamed.store import Store


class DelayProxy:
    """A loopback TCP proxy adding ``delay`` seconds per turnaround and per new connection."""

    def __init__(self, upstream_port: int, delay: float):
        self.upstream_port = upstream_port
        self.delay = delay
        self.turnarounds = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self._listener.accept()
            with self._lock:
                self.connections += 1
            time.sleep(self.delay)  # the handshake's round trip
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source, target, is_request):
        try:
            while chunk := source.recv(65536):
                if is_request:
                    with self._lock:
                        self.turnarounds += 1
                    time.sleep(self.delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def lamed_original_track(port, namespace, experiment, variant, event, uuid, expiry=86400):
    """Lamed's per-event protocol as it runs with today's redis-py: a new client per
    event, the index SADDs in a MULTI pipeline, then WATCH, GET and MULTI/SETEX/INCR/EXEC."""
    client = redis.StrictRedis(host="127.0.0.1", port=port)
    key = f"{namespace}:counters:{experiment}:{event}:{variant}"
    with client.pipeline() as pipe:
        pipe.sadd(f"{namespace}:experiments", experiment)
        pipe.sadd(f"{namespace}:counter_keys", key)
        pipe.sadd(f"{namespace}:{experiment}:counter_keys", key)
        pipe.execute()
        flag = hashlib.sha1(f"{key} {uuid}".encode()).hexdigest()
        while True:
            try:
                pipe.watch(flag)
                if pipe.get(flag) is not None:
                    break
                pipe.multi()
                with warnings.catch_warnings(action="ignore", category=DeprecationWarning):
                    pipe.setex(flag, expiry, 1)  # redis-py 8 deprecates SETEX; Lamed uses it
                pipe.incr(key)
                pipe.execute()
                break
            except redis.WatchError:
                continue
    client.close()


def lamed_warm_track(event):
    response = lamed.track(event, None)
    assert response["statusCode"] == 200, response


def proxy_event(params):
    return {"httpMethod": "GET", "path": "/track", "queryStringParameters": params, "requestContext": {"stage": "prod"}}


def measure(name, send, events, stats_client, proxy, experiment):
    info = stats_client.info("stats")
    turnarounds = proxy.turnarounds if proxy else 0
    connections = int(info["total_connections_received"])
    commands = int(info["total_commands_processed"])
    started = time.perf_counter()
    for n in range(events):
        send({"namespace": "bench", "experiment": experiment, "variant": "a", "event": "participate",
              "uuid": f"{experiment}-{n}"})
    elapsed = time.perf_counter() - started
    info = stats_client.info("stats")
    counted = int(stats_client.get(f"bench:counters:{experiment}:participate:a"))
    assert counted == events, f"{name}: counted {counted} of {events}"
    return {
        "name": name,
        "events_per_s": events / elapsed,
        "commands_per_event": (int(info["total_commands_processed"]) - commands - 1) / events,
        "new_connections_per_event": (int(info["total_connections_received"]) - connections) / events,
        "turnarounds_per_event": (proxy.turnarounds - turnarounds) / events if proxy else None,
    }


def run(events: int, delay_ms: float):
    rows = []
    with RedisServer() as server:
        stats_client = server.client()
        for label, delay in (("direct", None), (f"+{delay_ms:g} ms/turnaround", delay_ms / 1000)):
            proxy = DelayProxy(server.port, delay) if delay is not None else None
            port = proxy.port if proxy else server.port
            count = events if delay is None else max(events // 4, 100)
            handlers.use_store(Store(redis_client({"host": "127.0.0.1", "port": port})))
            lamed_warm_track(proxy_event({"experiment": "warm-up", "variant": "a", "event": "participate",
                                          "uuid": str(uuids.uuid4())}))
            tag = label.split()[0].strip("+")
            baseline = measure(f"Lamed original, {label}",
                               lambda p: lamed_original_track(port, **p), count, stats_client, proxy, f"orig-{tag}")
            ours = measure(f"lamed warm handler, {label}",
                           lambda p: lamed_warm_track(proxy_event(p)), count, stats_client, proxy, f"warm-{tag}")
            ours["speedup"] = ours["events_per_s"] / baseline["events_per_s"]
            rows += [baseline, ours]
        handlers.use_store(None)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per direct run (a quarter via the proxy)")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="delay the proxy adds per turnaround")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    rows = run(args.events, args.delay_ms)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'':44} {'events/s':>9} {'cmds/ev':>8} {'conns/ev':>9} {'turns/ev':>9} {'speedup':>8}")
    for row in rows:
        turns = f"{row['turnarounds_per_event']:.2f}" if row["turnarounds_per_event"] is not None else "-"
        speedup = f"{row['speedup']:.2f}x" if "speedup" in row else ""
        print(f"{row['name']:44} {row['events_per_s']:9.0f} {row['commands_per_event']:8.2f} "
              f"{row['new_connections_per_event']:9.2f} {turns:>9} {speedup:>8}")


if __name__ == "__main__":
    main()
