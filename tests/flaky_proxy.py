"""A TCP proxy in front of a server's HTTP port that loses INSERTs or their replies (no tests in here).

``lose_replies``: an INSERT goes through, the proxy waits for the server's reply (so the write is
done) and resets the client's connection instead of passing it on: the client cannot tell this
from a write that never happened. ``refuse_inserts``: the connection is reset before the INSERT
reaches the server (a real failure, nothing written). Other requests (the client's handshake
queries) always pass. A request is an INSERT when its URL or its body holds ``INSERT INTO``
(clickhouse-connect puts the statement in front of the data in the body).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from urllib.parse import unquote_plus

__all__ = ["FlakyProxy"]


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed peer or a middlebox timing out would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _names_an_insert(data: bytes) -> bool:
    """Whether a piece of a request holds an INSERT's text (its URL, or its body's first line)."""
    return b"INSERT INTO" in data.upper() or "INSERT INTO" in unquote_plus(data[:8192].decode("latin-1")).upper()


class FlakyProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.lose_replies = False
        self.refuse_inserts = False
        self.lost = 0  # INSERT replies withheld (each INSERT was written)
        self.refused = 0  # INSERTs that never reached the server
        self.inserts = 0  # INSERTs forwarded
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        """Relay one connection in one thread (a second thread blocked in ``recv`` would keep the
        socket open past the reset)."""
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        insert, new_request = False, True
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [])
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        break
                    if new_request:  # the client sends a request only after the last reply
                        new_request, insert = False, False
                    if not insert and _names_an_insert(data):
                        insert = True
                        if self.refuse_inserts:
                            self.refused += 1
                            break
                        self.inserts += 1
                    upstream.sendall(data)
                if upstream in ready:
                    data = upstream.recv(65536)
                    if not data:
                        break
                    if insert and self.lose_replies:
                        self.lost += 1  # the server answered: the INSERT is written; the client never hears so
                        break
                    new_request = True
                    client.sendall(data)
        except OSError:
            pass
        _reset(client)
        upstream.close()
