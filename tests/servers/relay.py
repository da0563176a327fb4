"""A TCP relay on 127.0.0.1 in front of the test PostgreSQL that counts round trips.

A round trip is the server answering after the client sent something: each burst of bytes from the
server that follows bytes from the client counts one (however many TCP segments the answer takes).
"""

from __future__ import annotations

import select
import socket
import threading


class RoundTripRelay:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.round_trips = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        server_spoke_last = True
        try:
            while True:
                readable, _, _ = select.select([client, server], [], [])
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is server:
                        if not server_spoke_last:
                            with self._lock:
                                self.round_trips += 1
                        server_spoke_last = True
                        client.sendall(data)
                    else:
                        server_spoke_last = False
                        server.sendall(data)
        except (OSError, ValueError):  # closed by close() (select() refuses a closed socket: ValueError)
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
