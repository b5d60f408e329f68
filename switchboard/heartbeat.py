"""pyclowder-style heartbeats, so Clowder registers Switchboard as a WORKFLOW extractor."""

from __future__ import annotations

import json
import logging
import uuid
from importlib import metadata
from typing import Any

import pika

from . import amqp
from .errors import BrokerError

log = logging.getLogger(__name__)

HEARTBEAT_EXCHANGE = "extractors"
REPOSITORY_URL = "https://github.com/clowder-framework/switchboard"


def _version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def extractor_info(queue: str) -> dict[str, Any]:
    """An `extractor_info` Clowder v1 accepts (protocol.md §6) naming `queue`.

    Clowder ignores a heartbeat missing name, version, description, author, contexts or a
    `repository` array. `process.dataset: ["file.added"]` is what makes Clowder v1 send us
    `dataset.file.added` once an admin enables us.
    """
    return {
        "@context": "http://clowder.ncsa.illinois.edu/contexts/extractors.jsonld",
        "name": queue,
        "version": _version(),
        "description": "Switchboard: evaluates rules on every file added to a dataset and "
        "sends work to the extractors that want it.",
        "author": "Switchboard",
        "contexts": [],
        "repository": [{"repType": "git", "repUrl": REPOSITORY_URL}],
        "categories": ["WORKFLOW"],
        "process": {"dataset": ["file.added"]},
    }


class Heartbeat:
    """Publishes one heartbeat per `beat()` to the durable fanout exchange `extractors`.

    The daemon calls `beat()` every `interval_s` seconds. The message is pyclowder's
    `{"id", "queue", "owner", "extractor_info"}`, with one id per process. A failed beat is
    logged and reported as False: registration is best effort and must not stop the daemon.
    """

    def __init__(
        self,
        uri: str,
        queue: str,
        interval_s: float = 300.0,
        *,
        owner: str = "",
        info: dict[str, Any] | None = None,
        exchange: str = HEARTBEAT_EXCHANGE,
        client_name: str = "switchboard-heartbeat",
    ) -> None:
        self.uri = uri
        self.queue = queue
        self.interval_s = interval_s
        self.owner = owner
        self.info = info if info is not None else extractor_info(queue)
        self.exchange = exchange
        self.id = str(uuid.uuid4())
        self._link = amqp.LazyConnection(uri, client_name=client_name)
        self._declared_generation = -1
        self._channel: Any = None

    def message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "owner": self.owner,
            "extractor_info": self.info,
        }

    def beat(self) -> bool:
        """Send one heartbeat; False (and a warning) if the broker could not be reached."""
        try:
            with amqp.translated_errors(f"sending a heartbeat to {self.exchange}", uri=self.uri):
                channel = self._ready_channel()
                channel.basic_publish(
                    self.exchange,
                    "",
                    json.dumps(self.message()).encode("utf-8"),
                    pika.BasicProperties(content_type="application/json", delivery_mode=2),
                )
        except BrokerError as exc:
            log.warning("heartbeat not sent: %s", exc)
            self._link.drop()
            self._channel = None
            return False
        return True

    def _ready_channel(self) -> Any:
        connection = self._link.get()
        if self._declared_generation != self._link.generation or not (
            self._channel is not None and self._channel.is_open
        ):
            self._channel = connection.channel()
            # Exactly as Clowder v1 and pyclowder declare it; any other type would be refused.
            self._channel.exchange_declare(
                exchange=self.exchange, exchange_type="fanout", durable=True
            )
            self._declared_generation = self._link.generation
        return self._channel

    def close(self) -> None:
        self._link.drop()
        self._channel = None
