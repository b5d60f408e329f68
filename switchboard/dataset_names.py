"""Dataset names events lack: whether the loaded rules need them, and asking Clowder for them.

pyclowder talks to the Clowder that sent the message: its `host` with its `secretKey`, unless
`CLOWDER_URL` overrides the host. Lookups here do the same, so rules on `dataset.name` work
without `CLOWDER_URL` too; `CLOWDER_KEY` is only ever sent to `CLOWDER_URL`, never to a host an
event names. Failures fail fast per dataset (one dataset whose lookup answers 500 delays only its
own events) and per host only when the host gives no answer at all (refused, timed out).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from .clowder import ClowderClient, ClowderUnreachable
from .errors import ClowderRejected, ClowderUnavailable
from .model import Event

log = logging.getLogger(__name__)

NAME_FIELD = "dataset.name"
MAX_CLIENTS = 32  # distinct (host, key, version) clients kept; they hold no connections
MAX_COOLDOWNS = 4096  # cooldown entries kept before expired ones are dropped


def rules_need_dataset_names(rules: Iterable[Any]) -> bool:
    """Whether any enabled rule may read `dataset.name`, so events must wait for it.

    A YAML rule needs it when a condition tests it or a template (extractor, parameters,
    collect key/member/data/totals) renders it. Python and legacy rules are code that may read
    it at any time, so they always need it.
    """
    return any(rule_needs_dataset_name(r) for r in rules if getattr(r, "enabled", True))


def rule_needs_dataset_name(rule: Any) -> bool:
    if getattr(rule, "function", None) is not None:
        return True
    parts = (rule.when, rule.require, rule.submits, rule.collect)
    return _mentions(parts, NAME_FIELD)


def _mentions(root: Any, field_path: str) -> bool:
    """Whether a compiled rule part holds a field test or placeholder reading `field_path`.

    Walks dataclasses, mappings and sequences generically (a condition's `path`, a template
    placeholder's `field`), so new condition or template kinds are covered without a list here.
    """
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, str | bytes | int | float) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, list | tuple | set | frozenset):
            stack.extend(node)
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            for f in dataclasses.fields(node):
                value = getattr(node, f.name, None)
                if f.name in ("path", "field") and value == field_path:
                    return True
                stack.append(value)
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class Where:
    """The Clowder one lookup goes to."""

    base_url: str
    api_key: str = dataclasses.field(repr=False)
    api_version: Literal[1, 2] = 1

    @property
    def display(self) -> str:
        """The host without any credentials in its URL, for logs and reasons."""
        parts = urllib.parse.urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


class DatasetNameLookup:
    """Dataset-name lookups for the processor (implements `processor.DatasetNames`).

    With `clowder_url` every lookup goes there, with `clowder_key` (or, if that is empty, the
    event's `secretKey`, as pyclowder does). Without it each lookup goes to the event's own
    `host` (http or https only) with its `secretKey`, in the API version the event says
    (`clowderVersion`) or `api_version`. An event with neither gets ClowderRejected: it goes on
    without a name.

    Fail-fast: a dataset whose lookup failed with an answer (5xx, 409, 429) fails at once for
    `cooldown_s`, every other dataset is still asked; a host that gave no answer at all
    (ClowderUnreachable) fails at once for every dataset for `cooldown_s`, so a real outage costs
    one timed-out request per host, not one per dataset. `between` runs before each real request
    (the daemon passes the source's keepalive). Thread-safe.
    """

    def __init__(
        self,
        *,
        clowder_url: str = "",
        clowder_key: str = "",
        api_version: Literal[1, 2] = 1,
        timeout_s: float = 5.0,
        retries: int = 1,
        cooldown_s: float = 10.0,
        between: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        client_factory: Callable[..., ClowderClient] = ClowderClient,
    ) -> None:
        self.clowder_url = clowder_url.rstrip("/")
        self._clowder_key = clowder_key
        self.api_version = api_version
        self.timeout_s = timeout_s
        self.retries = retries
        self.cooldown_s = cooldown_s
        self.between = between
        self._clock = clock
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._clients: OrderedDict[Where, ClowderClient] = OrderedDict()
        self._host_down: dict[str, tuple[float, str]] = {}
        self._dataset_down: dict[tuple[str, str], tuple[float, str]] = {}
        self._warned_hosts: set[str] = set()

    def __repr__(self) -> str:
        target = self.clowder_url or "each event's host"
        return f"DatasetNameLookup({target!r}, api_version={self.api_version})"

    def dataset_name(self, dataset_id: str, event: Event | None = None) -> str:
        """The dataset's name from Clowder; ClowderUnavailable (wait) or ClowderRejected (go on
        without it)."""
        where = self.where(event)
        self._refuse_while_down(where, dataset_id)
        if self.between is not None:
            self.between()
        try:
            return self._client(where).dataset_name(dataset_id)
        except ClowderUnreachable as exc:
            self._remember(self._host_down, where.base_url, str(exc))
            raise ClowderUnreachable(f"Clowder at {where.display}: {exc}") from None
        except ClowderUnavailable as exc:
            self._remember(self._dataset_down, (where.base_url, dataset_id), str(exc))
            raise ClowderUnavailable(f"Clowder at {where.display}: {exc}") from None

    def where(self, event: Event | None) -> Where:
        """Where a lookup for `event` goes; ClowderRejected when there is nowhere to ask."""
        body: Mapping[str, Any] = event.body if event is not None else {}
        secret = body.get("secretKey")
        event_key = secret if isinstance(secret, str) else ""
        if self.clowder_url:
            return Where(self.clowder_url, self._clowder_key or event_key, self.api_version)
        host = event.host if event is not None else None
        parts = urllib.parse.urlsplit(host or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            shown = (host or "")[:80]
            if shown not in self._warned_hosts and len(self._warned_hosts) < MAX_COOLDOWNS:
                self._warned_hosts.add(shown)
                log.warning(
                    "CLOWDER_URL is not set and an event's host %r is not an http(s) URL: "
                    "its dataset names cannot be looked up",
                    shown,
                )
            raise ClowderRejected("CLOWDER_URL is not set and the event names no http(s) host")
        return Where(host.rstrip("/"), event_key, _version(body, self.api_version))  # type: ignore[union-attr]

    # --- internals -----------------------------------------------------------------------------

    def _refuse_while_down(self, where: Where, dataset_id: str) -> None:
        now = self._clock()
        with self._lock:
            host = self._host_down.get(where.base_url)
            dataset = self._dataset_down.get((where.base_url, dataset_id))
        if host is not None and now < host[0]:
            raise ClowderUnreachable(
                f"Clowder at {where.display} was unreachable just now: {host[1]}"
            )
        if dataset is not None and now < dataset[0]:
            raise ClowderUnavailable(
                f"Clowder at {where.display} failed on dataset {dataset_id} just now: {dataset[1]}"
            )

    def _remember(self, table: dict[Any, tuple[float, str]], key: Any, problem: str) -> None:
        now = self._clock()
        with self._lock:
            if len(table) >= MAX_COOLDOWNS:
                for stale in [k for k, (until, _) in table.items() if until <= now]:
                    del table[stale]
            table[key] = (now + self.cooldown_s, problem)

    def _client(self, where: Where) -> ClowderClient:
        with self._lock:
            client = self._clients.get(where)
            if client is not None:
                self._clients.move_to_end(where)
                return client
            client = self._client_factory(
                where.base_url,
                where.api_key,
                timeout_s=self.timeout_s,
                retries=self.retries,
                api_version=where.api_version,
            )
            self._clients[where] = client
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
            return client


def _version(body: Mapping[str, Any], default: Literal[1, 2]) -> Literal[1, 2]:
    """pyclowder's rule: the body's `clowderVersion`, else the configured version."""
    value = body.get("clowderVersion")
    if value in (1, "1"):
        return 1
    if value in (2, "2"):
        return 2
    return default
