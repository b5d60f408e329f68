"""The routes: each GET path to its answer, as plain values (the HTTP server only carries them).

Read-only: only GET and HEAD are answered (405 otherwise); unknown paths are 404.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from . import auth
from .job_filters import JobFilter
from .live import Check
from .pages import render_status
from .queries import Page
from .views import Views

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
OPEN_PATHS = ("/healthz", "/readyz")  # probes need no token; they say only ok or not
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_JOB_PATH = re.compile(r"/api/jobs/([^/]+)")
_MANIFEST_PATH = re.compile(r"/api/manifests/([^/]+)")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json(value: Any, status: int = 200) -> Response:
    text = json.dumps(value, indent=1, sort_keys=True, default=str)
    return Response(status, text.encode(), JSON_TYPE)


def _error(status: int, message: str, as_json: bool) -> Response:
    if as_json:
        return _json({"error": message}, status)
    return Response(status, (message + "\n").encode())


@dataclass
class Site:
    """Everything one server answers; `engine` is the store's SQLAlchemy engine.

    /metrics is every registry in `registries`, one after the other: the state gauges live in a
    registry of their own, so reading a counter (`Metrics.value`) never runs their queries.
    """

    views: Views
    engine: Any
    registries: Sequence[CollectorRegistry] = ()
    token: str = ""

    def respond(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        """The answer to one request (`headers` with lower-case names)."""
        parts = urllib.parse.urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        query = dict(urllib.parse.parse_qsl(parts.query))
        wants_json = path.startswith("/api")
        if method not in ("GET", "HEAD"):
            response = _error(405, "read-only: only GET and HEAD are answered", wants_json)
            response.headers["Allow"] = "GET, HEAD"
            return response
        authorized = auth.allowed(self.token, headers)
        if path in OPEN_PATHS:
            return self._probe(path, detailed=authorized)
        if self.token and "token" in query and path == "/":
            return self._login(query["token"])
        if not authorized:
            response = _error(401, "a token is needed: Authorization: Bearer <token>", wants_json)
            response.headers["WWW-Authenticate"] = 'Bearer realm="switchboard"'
            return response
        try:
            return self._route(path, query)
        except ValueError as exc:  # a bad query parameter, said in its own words
            return _error(400, str(exc), wants_json)

    def _route(self, path: str, query: dict[str, str]) -> Response:
        if path == "/metrics":
            if not self.registries:
                return _error(404, "no metrics here", False)
            text = b"".join(generate_latest(registry) for registry in self.registries)
            return Response(200, text, CONTENT_TYPE_LATEST)
        if path == "/":
            return self._page(query)
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        handler = self._api(path)
        if handler is None:
            return _error(404, f"no such page: {path}", path.startswith("/api"))
        return handler(query)

    def _api(self, path: str) -> Callable[[dict[str, str]], Response] | None:
        reads: dict[str, Callable[[Any, dict[str, str]], Any]] = {
            "/api/status": lambda c, q: self.views.header(c),
            "/api/collections": lambda c, q: self.views.collections(c, _page(q)),
            "/api/jobs": lambda c, q: self.views.job_list(c, JobFilter.of(q), _page(q)),
            "/api/rules": lambda c, q: self.views.rules(c, _page(q)),
        }
        if path in reads:
            read = reads[path]
            return lambda q: _json(self._read(lambda c: read(c, q)))
        if path == "/api/dead-letters":
            return self._dead_letters
        match = _JOB_PATH.fullmatch(path)
        if match is not None:
            job_id = urllib.parse.unquote(match.group(1))
            return lambda q: self._job(job_id)
        match = _MANIFEST_PATH.fullmatch(path)
        if match is not None:
            manifest_id = urllib.parse.unquote(match.group(1))
            return lambda q: self._manifest(manifest_id, _page(q))
        return None

    def _dead_letters(self, query: dict[str, str]) -> Response:
        found = self._read(lambda c: self.views.dead_letters(c, _page(query)))
        return _json({**found, "queues": self.views.queues()})

    def _job(self, job_id: str) -> Response:
        job = self._read(lambda c: self.views.job(c, job_id))
        return _json(job) if job is not None else _error(404, f"no job {job_id}", True)

    def _manifest(self, manifest_id: str, page: Page) -> Response:
        found = self._read(lambda c: self.views.manifest(c, manifest_id, page))
        return (
            _json(found) if found is not None else _error(404, f"no manifest {manifest_id}", True)
        )

    def _page(self, query: dict[str, str]) -> Response:
        where = JobFilter.of(query)
        collections_page = Page.of(query.get("c_offset"), query.get("c_limit"))

        def read(connection: Any) -> dict[str, Any]:
            return {
                "header": self.views.header(connection),
                "collections": self.views.collections(connection, collections_page),
                "jobs": self.views.job_groups(connection, where),
                "rules": self.views.rules(connection, Page(0, 500)),
                "dead": self.views.dead_letters(connection, Page(0, 50)),
            }

        context = self._read(read)
        context["dead"]["queues"] = self.views.queues()
        html = render_status(context, where.as_query())
        return Response(200, html.encode(), HTML_TYPE, dict(PAGE_HEADERS))

    def _static(self, name: str) -> Response:
        path = STATIC / name
        kind = STATIC_TYPES.get(path.suffix)
        if "/" in name or kind is None or not path.is_file():
            return _error(404, f"no such file: {name}", False)
        return Response(200, path.read_bytes(), kind, {"Cache-Control": "max-age=300"})

    def _probe(self, path: str, *, detailed: bool) -> Response:
        live = self.views.live
        checks: list[Check] = live.health() if path == "/healthz" else live.readiness()
        ok = all(c.ok for c in checks)
        shown = [
            {"name": c.name, "ok": c.ok, **({"detail": c.detail} if detailed else {})}
            for c in checks
        ]
        return _json({"ok": ok, "checks": shown}, 200 if ok else 503)

    def _login(self, token: str) -> Response:
        """`/?token=…`: keep a right token as a cookie and drop it from the address bar."""
        if not auth.allowed(self.token, {"authorization": f"Bearer {token}"}):
            return _error(401, "wrong token", False)
        return Response(
            303, b"", headers={"Location": "/", "Set-Cookie": auth.cookie_header(token)}
        )

    def _read(self, read: Callable[[Any], Any]) -> Any:
        with self.engine.connect() as connection:
            return read(connection)


def _page(query: dict[str, str]) -> Page:
    return Page.of(query.get("offset"), query.get("limit"))
