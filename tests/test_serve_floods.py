"""Issue 17, item 6: `lamed serve` under floods, over raw sockets. Headers are cut while they are
read, so 128 requests of 98 × 64 KB headers leave the real serve's memory flat; at the connection
cap the longest-idle connection is closed for a new one, so 256 idle connections (fresh, or kept
alive after a request) cannot deny service, while connections mid-request still get a 503 beyond it."""

import io
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from lamed.serve import MAX_CONNECTIONS
from lamed.serve_connections import Connections, DeadlineReader
from serve_cli import LamedServe
from test_serve_abuse import serving  # noqa: F401 (a fixture: a local API with the given limits)

API_KEY = "flood-key-0123456789abcdef"
TRACK = "/prod/track?experiment=e&variant=v&event=participate&uuid="
HEADER = b"X-Flood-%d: " + b"a" * 65_000 + b"\r\n"
FLOOD = b"GET /prod/track HTTP/1.1\r\nHost: x\r\n" + b"".join(HEADER % n for n in range(98)) + b"\r\n"


def memory_kb(pid: int) -> dict[str, int]:
    """The process's resident set (VmRSS) and its peak (VmHWM), in kB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


def send_and_read(address, data: bytes) -> bytes:
    """Send ``data`` on a new connection; what came back before the server closed it."""
    with socket.create_connection(address, timeout=30) as connection:
        try:
            connection.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all
        chunks = []
        try:
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:  # what it sent but had not read makes the close a reset
            pass
        return b"".join(chunks)


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads Linux's /proc")
def test_a_header_flood_leaves_the_real_serves_memory_flat(tmp_path):
    with LamedServe(tmp_path, env={"LAMED_API_KEY": API_KEY}) as running:
        pid = running.process.pid
        assert requests.get(f"{running.url}{TRACK}warm", timeout=10).status_code == 200
        before = memory_kb(pid)
        with ThreadPoolExecutor(128) as pool:
            replies = list(pool.map(lambda _: send_and_read(("127.0.0.1", running.port), FLOOD), range(128)))
        after = memory_kb(pid)
        assert requests.get(f"{running.url}{TRACK}after", timeout=10).status_code == 200
    answered = [reply for reply in replies if reply]
    assert answered and all(reply.startswith(b"HTTP/1.1 431 ") for reply in answered)
    print(f"serve RSS: {before['VmRSS'] / 1024:.0f} MB before, peak {after['VmHWM'] / 1024:.0f} MB, {after['VmRSS'] / 1024:.0f} MB after")
    assert after["VmHWM"] - before["VmRSS"] < 40 * 1024, (before, after)  # 128 × 6.4 MB were sent
    assert after["VmRSS"] - before["VmRSS"] < 32 * 1024, (before, after)


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", b"HTTP/1.1 414 "),
        (b"GET /prod/track HTTP/1.1\r\n" + b"X-Big: " + b"a" * 17_000 + b"\r\n\r\n", b"HTTP/1.1 431 "),
        (FLOOD, b"HTTP/1.1 431 "),
    ],
    ids=["long-line", "long-header", "flood"],
)
def test_the_head_is_cut_as_it_is_read(serving, request_bytes, reply):
    answer = send_and_read(serving().server_address[:2], request_bytes)
    assert answer.startswith(reply) and b"longer than" in answer


def until(condition, what: str, seconds: float = 20) -> None:
    """Wait for the server to reach ``condition`` (polled, with a deadline)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_256_idle_connections_cannot_deny_service(serving):
    server = serving()
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS):
            idle.append(socket.create_connection(server.server_address[:2], timeout=10))
        until(lambda: len(server.connections) == MAX_CONNECTIONS, "every idle connection admitted")
        for n in range(3):
            assert requests.get(f"{server.url}{TRACK}real{n}", timeout=10).status_code == 200
        assert idle[0].recv(1) == b""  # the longest idle was closed for the first real request
    finally:
        for connection in idle:
            connection.close()


def test_256_kept_alive_connections_cannot_deny_service(serving):
    server = serving()
    sessions = [requests.Session() for _ in range(MAX_CONNECTIONS)]
    try:
        with ThreadPoolExecutor(32) as pool:  # each makes one request and keeps its connection open
            statuses = list(pool.map(lambda pair: pair[1].get(f"{server.url}{TRACK}s{pair[0]}", timeout=30).status_code, enumerate(sessions)))
        assert statuses == [200] * MAX_CONNECTIONS
        until(lambda: len(server.connections) == MAX_CONNECTIONS, "every kept-alive connection open")
        assert requests.get(f"{server.url}{TRACK}new", timeout=10).status_code == 200
        assert sessions[0].get(f"{server.url}{TRACK}s0-again", timeout=10).status_code == 200  # closed: requests reconnects
    finally:
        for session in sessions:
            session.close()


def test_connections_mid_request_are_never_closed_for_a_new_one(serving):
    server = serving(max_connections=4)
    stalled = [socket.create_connection(server.server_address[:2], timeout=10) for _ in range(4)]
    try:
        for connection in stalled:
            connection.sendall(b"GET /prod/track?experiment=")  # each is mid-request
        with socket.create_connection(server.server_address[:2], timeout=10) as refused:
            assert refused.recv(4096).startswith(b"HTTP/1.1 503 ")
        for connection in stalled[:1]:  # one finishes its request: its answer is whole
            connection.sendall(b"e&variant=v&event=participate&uuid=u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert connection.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for connection in stalled:
            connection.close()


def test_a_connection_closed_for_room_never_loses_a_request_it_sent(serving):
    """A connection whose request is waiting in its socket (its thread has not read it yet) is
    not idle: room is made from connections that have sent nothing."""
    server = serving(max_connections=2)
    sending = socket.create_connection(server.server_address[:2], timeout=10)  # the longer idle
    until(lambda: len(server.connections) == 1, "the first connection admitted")
    quiet = socket.create_connection(server.server_address[:2], timeout=10)
    try:
        until(lambda: len(server.connections) == 2, "both connections admitted")
        sending.sendall(f"GET {TRACK}sent HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert requests.get(f"{server.url}{TRACK}new", timeout=10).status_code == 200
        assert sending.recv(4096).startswith(b"HTTP/1.1 200 ")
        assert quiet.recv(1) == b""
    finally:
        quiet.close()
        sending.close()


def test_the_longest_idle_is_counted_from_admission_whatever_order_the_threads_start():
    """CI found the idle-flood test closing another connection than the first: each thread
    restarted its connection's idle clock when it began, in whatever order threads ran."""
    connections = Connections(limit=2)
    pairs = [socket.socketpair() for _ in range(4)]
    ours, theirs = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    for end in theirs:
        end.settimeout(5)
    try:
        assert connections.admit(ours[0]) and connections.admit(ours[1])
        connections.idle(ours[1])
        connections.idle(ours[0])  # the first connection's thread starts last
        assert connections.admit(ours[2])
        assert theirs[0].recv(1) == b""  # the first admitted was closed for the third
        connections.busy(ours[1])
        connections.idle(ours[1])  # after a request, idle from now: later than the third
        assert connections.admit(ours[3])
        assert theirs[2].recv(1) == b""
        theirs[1].setblocking(False)
        with pytest.raises(BlockingIOError):  # the second is still open
            theirs[1].recv(1)
    finally:
        for pair in pairs:
            for end in pair:
                end.close()


def test_a_request_read_from_the_socket_makes_its_connection_busy_before_anything_can_close_it():
    """Under load CI lost a sent request: its thread had taken the bytes from the socket but not
    yet marked the connection busy, so room was made by closing it. Now the read marks it first."""
    connections = Connections(limit=1)
    ours, theirs = socket.socketpair()
    newcomer, newcomer_peer = socket.socketpair()
    try:
        assert connections.admit(ours)
        reader = DeadlineReader(ours, connections)
        reader.deadline, reader.awaiting_request = time.monotonic() + 10, True
        theirs.sendall(b"GET / HTTP/1.1\r\n")
        buffered = io.BufferedReader(reader)
        assert buffered.peek(1).startswith(b"GET")  # the bytes are out of the socket
        assert connections.admit(newcomer) is False  # busy: not closed for the newcomer
        theirs.settimeout(0)
        with pytest.raises(BlockingIOError):
            theirs.recv(1)  # still open
    finally:
        for end in (ours, theirs, newcomer, newcomer_peer):
            end.close()
