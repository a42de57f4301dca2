"""`lamed serve` against hostile and careless clients, over raw sockets: bursts of
connections, trickled requests, connection floods, ambiguous framing, undecodable
URLs, any bytes as a key, control characters for the log, and private files."""

import json
import logging
import os
import socket
import stat
import struct
import sys
import time

import pytest
import requests

from lamed import handlers
from lamed.serve import make_server
from lamed.store import Store
from serve_cli import LamedServe, participants

API_KEY = "test-key-0123456789abcdef"
TRACK = "/prod/track?experiment=e&variant=v&event=participate&uuid="


@pytest.fixture
def serving(redis_server, redis_client):
    """Start a local API with the given limits on a flushed Redis; stopped after the test."""
    started = []

    def start(api_key=API_KEY, **limits):
        server = make_server("127.0.0.1", 0, api_key, Store(redis_server.client()), **limits)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
    handlers.use_store(None)


def connect(server) -> socket.socket:
    return socket.create_connection(server.server_address[:2], timeout=10)


def read_reply(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def exchange(server, data: bytes) -> tuple[int, dict | None, bytes]:
    """Send ``data`` on a new connection and read until the server closes it."""
    with connect(server) as connection:
        connection.sendall(data)
        reply = read_reply(connection)
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body.split(b"HTTP/1.1")[0]) if body else None, reply


# -- finding 2: a backlog for bursts ------------------------------------------------


def accept_queue(listener: socket.socket) -> tuple[int, int]:
    """(connections waiting to be accepted, the most the kernel queues) from TCP_INFO."""
    info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    unacked, sacked = struct.unpack_from("8B6I", info)[12:14]
    return unacked, sacked


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the accept queue through Linux's TCP_INFO")
def test_a_burst_of_64_connections_is_queued_not_dropped(redis_server, redis_client):
    # The server is bound but not accepting, as when every thread is busy: the kernel
    # queues up to the backlog; beyond it, SYNs are dropped and clients wait seconds.
    with make_server("127.0.0.1", 0, API_KEY, Store(redis_server.client())) as idle:
        clients = [socket.socket() for _ in range(64)]
        try:
            for client in clients:
                client.setblocking(False)
                client.connect_ex(idle.server_address)
            deadline = time.monotonic() + 5
            while accept_queue(idle.socket)[0] < 64 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert accept_queue(idle.socket)[0] == 64
            assert accept_queue(idle.socket)[1] >= 128
        finally:
            for client in clients:
                client.close()
    handlers.use_store(None)


# -- finding 3: any bytes as an API key -----------------------------------------------


@pytest.mark.parametrize("sent", [b"\xc3\xa9t\xc3\xa9", b"\xff\xfe", b"cl\xe9", API_KEY.encode() + b"\x80"])
def test_a_non_ascii_key_is_403_never_5xx(serving, sent):
    server = serving()
    status, body, reply = exchange(server, b"GET /prod/experiments HTTP/1.1\r\nx-api-key: " + sent +
                                   b"\r\nConnection: close\r\n\r\n")
    assert (status, body) == (403, {"message": "Forbidden"})


def test_a_non_ascii_configured_key_matches_its_utf8_bytes(serving):
    server = serving(api_key="clé-secrète")
    request = b"GET /prod/experiments HTTP/1.1\r\nx-api-key: %s\r\nConnection: close\r\n\r\n"
    assert exchange(server, request % "clé-secrète".encode("utf-8"))[0] == 200
    assert exchange(server, request % "clé-secrète".encode("latin-1"))[0] == 403
    assert exchange(server, request % b"cle-secrete")[0] == 403


# -- finding 4 and 9: framing --------------------------------------------------------


def test_a_body_shorter_than_its_content_length_is_400_at_once(serving):
    server = serving()
    with connect(server) as connection:
        connection.sendall(b"POST /prod/track HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        connection.shutdown(socket.SHUT_WR)  # the client has nothing more to send
        reply = read_reply(connection)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"the body ended after 3 of its 10 bytes" in reply and b"Connection: close" in reply


def test_a_body_that_stalls_is_400_at_the_request_deadline(serving):
    server = serving(request_deadline=0.5)
    with connect(server) as connection:
        connection.sendall(b"POST /prod/track HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        reply = read_reply(connection)  # the server answers and closes; no timeout on our side
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"the 10 bytes of the body did not arrive within 0.5 s" in reply


@pytest.mark.parametrize(
    "lengths",
    [(b"0", b"58"), (b"5", b"5"), (b"58", b"0")],
    ids=["smaller-first", "same-twice", "larger-first"],
)
def test_two_content_lengths_are_400_and_nothing_is_smuggled(serving, redis_client, lengths):
    server = serving()
    smuggled = b"GET " + TRACK.encode() + b"smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    request = (b"POST /prod/track HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\nContent-Length: %s\r\n\r\n"
               % lengths + smuggled)
    status, body, reply = exchange(server, request)
    assert (status, body) == (400, {"error": "send one Content-Length header, not several"})
    assert reply.count(b"HTTP/1.1 ") == 1  # one answer: the rest was never read as a request
    assert redis_client.keys("*") == []


# -- finding 6: slowloris and floods -------------------------------------------------


def test_a_request_trickled_byte_by_byte_is_cut_at_the_deadline(serving):
    server = serving(request_deadline=1.0)
    request = b"GET " + TRACK.encode() + b"slow HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
    sent = 0
    with connect(server) as connection:
        try:
            for byte in request:  # about 0.1 s a byte: 9 s in all, far past the deadline
                connection.send(bytes([byte]))
                sent += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_reply(connection)
    assert sent < len(request)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"the request line and headers did not arrive within 1 s" in reply


def test_beyond_the_connection_cap_a_new_connection_gets_503_at_once(serving, redis_client):
    server = serving(max_connections=4)
    stalled = [connect(server) for _ in range(4)]
    try:
        for connection in stalled:
            connection.sendall(b"GET /prod/track?experiment=")  # each holds a slot
        with connect(server) as refused:  # the server answers before any request is sent
            reply = read_reply(refused)
        assert reply.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 1" in reply and b'"error": "too many open connections' in reply
    finally:
        for connection in stalled:
            connection.close()
    deadline = time.monotonic() + 10  # the slots come back as the server sees the closes
    while (status := requests.get(f"{server.url}{TRACK}after", timeout=5).status_code) != 200:
        assert status == 503 and time.monotonic() < deadline
        time.sleep(0.01)
    assert participants(server.url, "e", API_KEY) == 1


# -- finding 8: decoding --------------------------------------------------------------


@pytest.mark.parametrize("uuid", ["%ff", "%fe", "%C3", "%ed%a0%80"])
def test_percent_encoding_that_is_not_utf8_is_400(serving, redis_client, uuid):
    server = serving()
    response = requests.get(f"{server.url}{TRACK}{uuid}", timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": "the query has percent-encoding that is not UTF-8"}
    assert redis_client.keys("*") == []


def test_two_different_undecodable_uuids_never_merge(serving, redis_client):
    server = serving()
    for uuid in ("%ff", "%fe"):
        assert requests.get(f"{server.url}{TRACK}{uuid}", timeout=5).status_code == 400
    for uuid in ("%C3%BF", "%C3%BE"):  # ÿ and þ, properly encoded, count apart
        assert requests.get(f"{server.url}{TRACK}{uuid}", timeout=5).json() == {"counted": True}
    assert participants(server.url, "e", API_KEY) == 2


def test_a_raw_utf8_query_is_decoded_as_utf8_and_invalid_bytes_are_400(serving, redis_client):
    server = serving()
    request = b"GET /prod/track?experiment=caf\xc3\xa9&variant=v&event=participate&uuid=%s HTTP/1.1\r\n" \
              b"Connection: close\r\n\r\n"
    assert exchange(server, request % b"1")[:2] == (200, {"counted": True})
    assert redis_client.smembers("alephbet:experiments") == {"café"}
    status, body, _ = exchange(server, request % b"\xff")
    assert (status, body) == (400, {"error": "the URL is not valid UTF-8"})


# -- finding 5: the log --------------------------------------------------------------


def test_control_characters_from_the_request_are_escaped_in_the_log(serving, caplog):
    server = serving()
    with caplog.at_level(logging.INFO, logger="lamed.serve"):
        exchange(server, b"GET /\x1b[2J\x1b]0;owned\x07\x9b1m HTTP/1.1\r\nConnection: close\r\n\r\n")
        exchange(server, b"\x1b[31mBREW\r\n\r\n")
    lines = [record.getMessage() for record in caplog.records]
    assert any("/\\x1b[2J\\x1b]0;owned\\x07\\x9b1m" in line for line in lines), lines
    assert any("\\x1b[31mBREW" in line for line in lines), lines
    for line in lines:
        assert not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in line), repr(line)


# -- finding 10: ~/.lamed private on every path --------------------------------------


def modes(home) -> dict[str, int]:
    return {
        str(path.relative_to(home)): stat.S_IMODE(path.stat().st_mode)
        for path in [home / ".lamed", *(home / ".lamed").rglob("*")]
    }


@pytest.mark.parametrize("args", [(), ("--api-key", API_KEY)], ids=["generated-key", "given-key"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "left-open-by-an-older-lamed"])
def test_the_lamed_folder_and_its_files_are_private(tmp_path, args, existing):
    if existing:
        (tmp_path / ".lamed" / "data").mkdir(parents=True, mode=0o755)
        (tmp_path / ".lamed").chmod(0o755)
        (tmp_path / ".lamed" / "data").chmod(0o755)
    previous = os.umask(0o022)  # the usual umask, which leaves new files readable by all
    try:
        with LamedServe(tmp_path, *args) as running:
            assert requests.get(f"{running.url}{TRACK}1", timeout=5).status_code == 200
            while_running = modes(tmp_path)
    finally:
        os.umask(previous)
    for found in (while_running, modes(tmp_path)):
        folders = (".lamed", ".lamed/data", ".lamed/data/appendonlydir")
        assert {name: found[name] for name in folders} == dict.fromkeys(folders, 0o700)
        files = {name: mode for name, mode in found.items() if name not in folders}
        assert ".lamed/data/appendonlydir/appendonly.aof.manifest" in files and ".lamed/data/serve.lock" in files
        assert (".lamed/serve.json" in files) == (found is while_running)  # serve's state file, while it runs
        assert ("--api-key" in args) != (".lamed/serve-api-key" in files)
        assert set(files.values()) == {0o600}, files
