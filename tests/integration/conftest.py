"""Fixtures for daemon tests on the real RabbitMQ and PostgreSQL: own queues, own schema each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest
from psycopg import sql

from switchboard.app import App, build_app
from switchboard.settings import Settings
from switchboard.store.migrate import upgrade
from tests.conftest import PG_CONNINFO
from tests.integration.clowder_events import RULES_YAML, encoded, properties

URI = "amqp://guest:guest@127.0.0.1:5672/%2f"
SWITCHBOARD = Path(sys.executable).with_name("switchboard")


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll `predicate` until it is truthy; fail naming `what` after `timeout_s`."""
    give_up = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > give_up:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Wiring:
    """One test's queues, schema and settings; helpers to publish, read and inspect."""

    uri: str
    queue: str
    extractor: str
    schema: str
    app_name: str
    rules: Path
    tmp: Path

    @property
    def database_url(self) -> str:
        return (
            "postgresql+psycopg://postgres@127.0.0.1:5432/test"
            f"?options=-csearch_path%3D{self.schema}&application_name={self.app_name}"
        )

    def settings(self, **changes: Any) -> Settings:
        base = Settings(
            rabbitmq_uri=self.uri,
            database_url=self.database_url,
            rules=(str(self.rules),),
            queue=self.queue,
            batch_wait_s=0.02,
            relay_backoff_s=0.2,
            relay_lease_s=3.0,
            clowder_retry_delay_s=1.0,
        )
        return replace(base, **changes)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_URI=self.uri,
            SWITCHBOARD_DATABASE_URL=self.database_url,
            SWITCHBOARD_RULES=str(self.rules),
            SWITCHBOARD_QUEUE=self.queue,
            SWITCHBOARD_RELAY_LEASE_S="3",
        )
        env.update(extra)
        return env

    # --- broker --------------------------------------------------------------------------------

    @contextmanager
    def channel(self) -> Iterator[Any]:
        connection = pika.BlockingConnection(pika.URLParameters(self.uri))
        try:
            yield connection.channel()
        finally:
            connection.close()

    def publish(self, numbers: range | list[int], **kwargs: Any) -> None:
        with self.channel() as channel:
            channel.queue_declare(self.queue, durable=True)
            for n in numbers:
                props = pika.BasicProperties(**properties(n))
                channel.basic_publish("", self.queue, encoded(n, **kwargs), props)

    def publish_raw(self, body: bytes, **props: Any) -> None:
        with self.channel() as channel:
            channel.queue_declare(self.queue, durable=True)
            channel.basic_publish("", self.queue, body, pika.BasicProperties(**props))

    def depth(self, queue: str) -> int:
        with self.channel() as channel:
            try:
                return channel.queue_declare(queue, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker:
                return 0

    def drain(self, queue: str) -> list[tuple[pika.BasicProperties, dict | bytes]]:
        """Take every message from `queue`: (properties, JSON body or raw bytes)."""
        taken: list[tuple[pika.BasicProperties, dict | bytes]] = []
        with self.channel() as channel:
            for _method, props, body in channel.consume(
                queue, auto_ack=True, inactivity_timeout=0.5
            ):
                if body is None:
                    break
                try:
                    taken.append((props, json.loads(body)))
                except ValueError:
                    taken.append((props, body))
            channel.cancel()
        return taken

    # --- database ------------------------------------------------------------------------------

    def query(self, statement: str) -> list[tuple]:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
            connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            return connection.execute(statement).fetchall()

    def statuses(self) -> dict[str, int]:
        try:
            rows = self.query("SELECT status, count(*) FROM submissions GROUP BY status")
        except psycopg.errors.UndefinedTable:
            return {}
        return dict(rows)

    def terminate_backends(self) -> int:
        """pg_terminate_backend every connection the daemon holds (by application_name)."""
        with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (self.app_name,),
            ).fetchall()
        return len(rows)


@pytest.fixture
def wiring(pg_schema: str, tmp_path: Path) -> Iterator[Wiring]:
    tag = uuid.uuid4().hex[:10]
    extractor = f"it.{tag}.ext"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML.format(extractor=extractor, via="amqp"))
    made = Wiring(URI, f"it-{tag}", extractor, pg_schema, f"sbtest-{tag}", rules, tmp_path)
    yield made
    with made.channel() as channel:
        queues = (made.queue, f"error.{made.queue}", f"retry.{made.queue}", f"{made.queue}.status")
        for name in (*queues, extractor):
            channel.queue_delete(name)


@contextmanager
def running(settings: Settings) -> Iterator[App]:
    """The daemon of `settings` running in a thread; stopped and closed on exit."""
    upgrade(settings.database_url)
    app = build_app(settings)
    outcome: list[int] = []
    thread = threading.Thread(target=lambda: outcome.append(app.daemon.run()), daemon=True)
    thread.start()
    try:
        yield app
    finally:
        app.daemon.stop()
        thread.join(timeout=30)
        app.close()
    assert outcome == [0], "the daemon thread did not finish cleanly"


class DaemonProcess:
    """`switchboard run --migrate` as a child process, logging to a file."""

    def __init__(self, wiring: Wiring, **env: str) -> None:
        self.log = wiring.tmp / f"daemon-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(SWITCHBOARD), "run", "--migrate"],
                env=wiring.env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout_s: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ensure_stopped(self) -> None:
        if self.process.poll() is None:
            self.kill()


@pytest.fixture
def spawn(wiring: Wiring) -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemon processes for this test; any still running are killed at the end."""
    started: list[DaemonProcess] = []

    def start(**env: str) -> DaemonProcess:
        process = DaemonProcess(wiring, **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.ensure_stopped()


@pytest.fixture
def vhost(wiring: Wiring) -> Iterator[str]:
    """Move this test's wiring to a RabbitMQ vhost of its own, so it can cut every connection."""
    name = f"sbtest-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
    )
    wiring.uri = f"amqp://guest:guest@127.0.0.1:5672/{name}"
    yield name
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=True)  # and its queues
    wiring.uri = URI
