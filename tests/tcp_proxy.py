"""A loopback TCP proxy in front of a real server that drops the first connections it is given.

It stands for the network between a function and its Redis when a restart or a failover
happens between two commands: each of the first ``drops`` connections is closed as soon as
the client has spoken (the client reads "connection closed"), and every later connection is
piped to the server, which by then may have lost its script cache.
"""

import socket
import threading


class FirstConnectionsDropped:
    """Listens on loopback; ``port`` is where a client connects instead of ``target_port``."""

    def __init__(self, target_port: int, drops: int):
        self.target_port, self.drops = target_port, drops
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            self._sockets.append(client)
            if self.dropped < self.drops:
                client.recv(65536)  # the client's first command, unanswered
                client.close()
                self.dropped += 1
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets.append(server)
            threading.Thread(target=_pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=_pipe, args=(server, client), daemon=True).start()

    def close(self) -> None:
        self.listener.close()
        for each in self._sockets:
            each.close()

    def __enter__(self) -> "FirstConnectionsDropped":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _pipe(source: socket.socket, destination: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            destination.sendall(data)
    except OSError:
        pass
    finally:
        try:
            destination.shutdown(socket.SHUT_WR)
        except OSError:
            pass
