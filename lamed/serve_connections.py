"""``lamed serve``'s connections: reads bounded in time and in size, and a cap on open connections.

- A request must arrive whole within a deadline from its first byte (:class:`DeadlineReader`),
  however it trickles.
- Its request line and headers are cut while they are read (:class:`HeadReader`): a client that
  sends megabytes of headers costs the server a few kilobytes, not what it sent.
- At most ``limit`` connections are open (:class:`Connections`); at the cap the one that has been
  idle longest (accepted, or kept alive, and waiting for a request) is closed to admit the new
  one, so idle connections cannot deny service; only when every connection is mid-request does
  a new one get a 503.
"""

import io
import math
import select
import socket
import threading
import time


class RequestTooSlow(Exception):
    """A request did not arrive whole before its deadline."""


class HeadTooLarge(Exception):
    """A request line (``line``) or its headers passed their budget while being read."""

    def __init__(self, line: bool, limit: int):
        super().__init__(f"the {'request line is' if line else 'headers are'} longer than {limit} bytes")
        self.line = line


class DeadlineReader(io.RawIOBase):
    """A connection's reads, each allowed only the time left until ``deadline``.

    A per-read timeout lets a client that sends a byte at a time hold its thread for
    ever; this bounds the whole request however it is spread out.

    While ``awaiting_request`` (set before waiting for a request's first byte), a read marks
    the connection idle in ``connections``, waits until the socket is readable *without
    taking its bytes*, and marks it busy before reading: a request that has arrived is either
    still in the socket (so :meth:`Connections.admit` sees it and spares the connection) or
    its connection is busy, never in between. A read that finds it closed for room meanwhile
    is an end of file.
    """

    def __init__(self, connection: socket.socket, connections: "Connections"):
        self.connection, self.connections = connection, connections
        self.deadline = math.inf
        self.awaiting_request = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.awaiting_request:
            self.connections.idle(self.connection)
            self._await_readable()
            self.awaiting_request = False
            if not self.connections.busy(self.connection):
                return 0
        self.connection.settimeout(self._remaining())
        try:
            return self.connection.recv_into(buffer)
        except TimeoutError:
            raise RequestTooSlow() from None

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTooSlow()
        return remaining

    def _await_readable(self) -> None:
        poller = select.poll()
        poller.register(self.connection, select.POLLIN)
        while not poller.poll(math.ceil(self._remaining() * 1000)):
            pass  # timed out: _remaining() raises once the deadline has passed


class HeadReader(io.BufferedReader):
    """Buffered reads whose lines, while a request's head is read (:meth:`start_head` to
    :meth:`end_head`), are cut at what is left of its budgets: ``line_limit`` bytes for the
    request line, then ``headers_limit`` for all header lines together. The standard library
    reads up to 64 KB a line and 100 lines, all kept until it has parsed them."""

    def __init__(self, raw, line_limit: int, headers_limit: int):
        super().__init__(raw)
        self.line_limit, self.headers_limit = line_limit, headers_limit
        self._left: list[tuple[bool, int]] | None = None  # the budgets not yet used: (the request line?, bytes left)

    def start_head(self) -> None:
        self._left = [(True, self.line_limit), (False, self.headers_limit)]

    def end_head(self) -> None:
        self._left = None

    def readline(self, size=-1) -> bytes:
        if self._left is None:
            return super().readline(size)
        request_line, left = self._left[0]
        line = super().readline(left + 1 if size is None or size < 0 else min(size, left + 1))
        left -= len(line)
        if left < 0:
            raise HeadTooLarge(request_line, self.line_limit if request_line else self.headers_limit)
        self._left[0] = (request_line, left)
        if len(self._left) == 2:  # the request line is read: the rest are header lines
            self._left.pop(0)
        return line


class Connections:
    """The open connections of a server, at most ``limit``, each idle (waiting for a request,
    since when) or busy with one."""

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._idle_since: dict[socket.socket, float | None] = {}  # None: mid-request

    def admit(self, connection: socket.socket) -> bool:
        """Count ``connection`` in, closing the longest-idle one at the cap; False when all are busy."""
        with self._lock:
            if len(self._idle_since) >= self.limit:
                oldest = self._longest_idle()
                if oldest is None:
                    return False
                del self._idle_since[oldest]  # its place is the new one's now; its thread sees the close and ends
                try:
                    oldest.shutdown(socket.SHUT_RDWR)
                except OSError:  # closed meanwhile by its own thread
                    pass
            self._idle_since[connection] = time.monotonic()
            return True

    def _longest_idle(self) -> socket.socket | None:
        """The connection idle longest with nothing sent yet (bytes waiting mean a request its
        thread has not seen yet), or None."""
        idle = sorted(((since, other) for other, since in self._idle_since.items() if since is not None), key=lambda pair: pair[0])
        for _, candidate in idle:
            poller = select.poll()
            try:
                poller.register(candidate, select.POLLIN)
            except (OSError, ValueError):  # closed by its own thread meanwhile
                continue
            if not poller.poll(0):
                return candidate
        return None

    def idle(self, connection: socket.socket) -> None:
        """``connection`` waits for its next request with nothing of it read: idle from now if
        it was busy; one idle since it was admitted stays so (its thread may start after later
        connections' threads)."""
        with self._lock:
            if connection in self._idle_since and self._idle_since[connection] is None:
                self._idle_since[connection] = time.monotonic()

    def busy(self, connection: socket.socket) -> bool:
        """``connection`` has a request coming; False when it was closed to make room meanwhile."""
        with self._lock:
            if connection not in self._idle_since:
                return False
            self._idle_since[connection] = None
            return True

    def remove(self, connection: socket.socket) -> None:
        with self._lock:
            self._idle_since.pop(connection, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle_since)
