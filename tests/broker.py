"""The test RabbitMQ at 127.0.0.1:5672: its URI, a side channel, and a way to drop our links."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pika
from pika.adapters.blocking_connection import BlockingChannel

from switchboard import amqp

URI = "amqp://guest:guest@127.0.0.1:5672/%2f"


@contextmanager
def side_channel() -> Iterator[BlockingChannel]:
    """A channel on a connection of the test's own, closed however the block ends."""
    connection = pika.BlockingConnection(pika.URLParameters(URI))
    try:
        yield connection.channel()
    finally:
        amqp.close_quietly(connection)


def close_connections_named(name: str) -> int:
    """Have the broker close our connections called `name` (and nobody else's)."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
    )
    closed = 0
    for line in listing.stdout.splitlines():
        pid, _, props = line.partition("\t")
        if f'{{"connection_name","{name}"}}' in props:
            subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test"], check=True)
            closed += 1
    return closed
