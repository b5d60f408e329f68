"""A TCP server for tests that accepts connections and never answers: a hung HTTP target."""

from __future__ import annotations

import contextlib
import socket
import threading


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers (a hung
    Ray dashboard or Clowder). `close()` stops listening and drops every connection, so a
    request hanging on it fails at once."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted = threading.Event()
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    connection.close()
                    return
                self._held.append(connection)
            self.accepted.set()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            held, self._held = self._held, []
        with contextlib.suppress(OSError):  # wakes the accept() in the thread
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(10)
        for connection in held:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
