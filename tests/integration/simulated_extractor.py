"""A simulated pyclowder 3.0.8 extractor for job tests: takes a message from its queue and
publishes status updates the way pyclowder does (protocol.md §3.6)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pika

EXTRACTOR_NAME = "it.simulated"


class SimulatedExtractor:
    """Status updates go to the message's `reply_to`, exchange "", persistent, with its
    `correlation_id` (none if it had none); a retry republishes the body to the extractor's
    own queue with `retry_count + 1`, the same `reply_to` and no correlation_id."""

    def __init__(self, uri: str, queue: str) -> None:
        self.uri = uri
        self.queue = queue

    def take(self, timeout_s: float = 30) -> tuple[pika.BasicProperties, dict[str, Any]]:
        """The next message from the extractor's queue (acked)."""
        give_up = time.monotonic() + timeout_s
        connection = pika.BlockingConnection(pika.URLParameters(self.uri))
        try:
            channel = connection.channel()
            channel.queue_declare(self.queue, durable=True)
            while time.monotonic() < give_up:
                method, props, body = channel.basic_get(self.queue, auto_ack=True)
                if method is not None:
                    return props, json.loads(body)
                time.sleep(0.1)
        finally:
            connection.close()
        raise AssertionError(f"no message reached {self.queue} within {timeout_s:.0f} s")

    def report(
        self,
        props: pika.BasicProperties,
        message: dict[str, Any],
        steps: list[tuple[str, str, datetime]],
    ) -> list[bytes]:
        """Publish one update per (StatusMessage name, message, time); the bodies sent."""
        sent = []
        connection = pika.BlockingConnection(pika.URLParameters(self.uri))
        try:
            channel = connection.channel()
            for word, text, at in steps:
                body = json.dumps(update_body(message, word, text, at)).encode("utf-8")
                properties = pika.BasicProperties(
                    delivery_mode=2, correlation_id=props.correlation_id
                )
                channel.basic_publish("", props.reply_to, body, properties)
                sent.append(body)
        finally:
            connection.close()
        return sent

    def resubmit(self, props: pika.BasicProperties, message: dict[str, Any]) -> None:
        """pyclowder's `resubmit` after an exception under the retry limit."""
        again = {**message, "retry_count": int(message.get("retry_count", 0)) + 1}
        connection = pika.BlockingConnection(pika.URLParameters(self.uri))
        try:
            properties = pika.BasicProperties(delivery_mode=2, reply_to=props.reply_to)
            connection.channel().basic_publish(
                "", self.queue, json.dumps(again).encode(), properties
            )
        finally:
            connection.close()


def update_body(message: dict[str, Any], word: str, text: str, at: datetime) -> dict[str, Any]:
    """pyclowder's status update body for `message` (`StatusMessage.<word>: <text>`)."""
    status = f"StatusMessage.{word}"
    return {
        "file_id": message["id"],
        "extractor_id": EXTRACTOR_NAME,
        "job_id": message.get("jobid") or message.get("job_id"),
        "status": f"{status}: {text}",
        "start": at.isoformat(),
        "message_type": status,
        "message": text,
    }
