"""A TCP proxy in front of the local DynamoDB that can be switched to fail: refuse connections
(the server is gone), accept and never answer (the server hangs), or answer nonsense."""

from __future__ import annotations

import socket
import threading


class FaultProxy:
    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self._mode = "pass"
        self._held: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def up(self) -> None:
        self._mode = "pass"
        self._release_held()

    def refuse(self) -> None:
        """New connections are closed at once, as by a server that is not there."""
        self._mode = "refuse"

    def hang(self) -> None:
        """New connections are accepted and never answered."""
        self._mode = "hang"

    def garble(self) -> None:
        """New connections get a well-formed HTTP answer whose body is not DynamoDB's JSON."""
        self._mode = "garble"

    def close(self) -> None:
        self._listener.close()
        self._release_held()

    def _release_held(self) -> None:
        for connection in self._held:
            connection.close()
        self._held.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._mode == "refuse":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
            elif self._mode == "hang":
                self._held.append(client)
            elif self._mode == "garble":
                threading.Thread(target=self._garbled_answer, args=(client,), daemon=True).start()
            else:
                threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _garbled_answer(client: socket.socket) -> None:
        try:
            client.recv(65536)
            body = b"not json!"
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                           b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            client.close()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
