"""The HTTP server: the standard library's threading server carrying `Site` answers.

Why the standard library and not Starlette/uvicorn: the daemon is a blocking pika loop on
one thread, so the server must live on threads of its own beside it; a read-only handful of
routes at probe-and-operator traffic needs no async framework, no ASGI server and no new
dependency (prometheus_client serves its own port the same way). Each request gets a thread
(`daemon_threads`, so a slow client never holds up a stop) and a socket timeout.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .site import Response, Site

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0


class _Handler(BaseHTTPRequestHandler):
    server_version = "switchboard"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_S
    site: Site  # set on the subclass each server makes

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _refuse(self) -> None:
        self._answer(send_body=True)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _answer(self, *, send_body: bool) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            response = self.site.respond(self.command, self.path, headers)
        except Exception:  # a bug or the database down: a 500 that says little, logged in full
            log.exception("web: answering %s %s failed", self.command, self.path.split("?")[0])
            response = Response(500, b"internal error; see the daemon's log\n")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web: " + format, *args)  # the query string may hold a token: not at INFO


class _Ipv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class WebServer:
    """One server on `host:port` (port 0: a free one) answering from `site` on its threads."""

    def __init__(self, site: Site, host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"site": site})
        server = _Ipv6Server if ":" in host else ThreadingHTTPServer
        self.httpd = server((host.strip("[]"), port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> WebServer:
        """Serve from a background thread; returns self."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="switchboard-web", daemon=True
        )
        self._thread.start()
        log.info("web: serving on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until `close()` is called from another (`switchboard web`)."""
        log.info("web: serving on %s", self.url)
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()
