"""A loopback TCP proxy in front of real servers: the network between a function and its Redis.

It shows what a restart or a failover does to a client between two commands:
- ``drops``: each of the first connections is closed as soon as the client has spoken (the
  client reads "connection closed"), as a Redis going down would;
- ``target_port`` may be changed at any time: connections made from then on reach the new
  server, as an endpoint's DNS name does after a failover, while open ones stay on the old.
"""

import socket
import threading


class LoopbackProxy:
    """Listens on loopback; ``port`` is where a client connects instead of ``target_port``."""

    def __init__(self, target_port: int, drops: int = 0):
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

    def __enter__(self) -> "LoopbackProxy":
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
