"""Runs the real pyclowder extractors in extractors/ as subprocesses and reads their updates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

EXTRACTORS = Path(__file__).resolve().parent / "extractors"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
# The keys of every status update pyclowder 3.0.8 sends (RabbitMQHandler.status_update).
UPDATE_KEYS = {"file_id", "extractor_id", "job_id", "status", "start", "message_type", "message"}


@dataclass(frozen=True)
class Update:
    """One status update as it arrived: its AMQP properties and its JSON body."""

    correlation_id: str | None
    delivery_mode: int | None
    content_type: str | None
    body: dict[str, Any]

    @property
    def step(self) -> str:
        """`start`, `processing`, `done`, `skip`, `error` or `retry` (from `StatusMessage.x`)."""
        return str(self.body["message_type"]).removeprefix("StatusMessage.")


class ExtractorProcess:
    """One extractor script of extractors/ running under the pyclowder interpreter.

    Listens on `queue` (pyclowder declares it and `error.<queue>`, durable); its output goes to
    `log`. `stop()` ends it by its own process id.
    """

    def __init__(
        self,
        python: Path,
        script: str,
        *,
        uri: str,
        queue: str,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.uri = uri
        self.queue = queue
        self.log = log
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONUNBUFFERED": "1",
            "RABBITMQ_URI": uri,
            "RABBITMQ_QUEUE": queue,
            "CLOWDER_VERSION": "1",
            "MAX_RETRY": "0",
        }
        environment.update(env or {})
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(python), str(EXTRACTORS / script)],
                cwd=EXTRACTORS,  # pyclowder reads extractor_info.json from here
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_until_listening(self) -> None:
        """Return once the extractor consumes its queue; fail with its log if it exits."""
        give_up = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < give_up:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"extractor on {self.queue} exited with {self.process.returncode}:\n"
                    + self.output()
                )
            if consumers(self.uri, self.queue) > 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"extractor on {self.queue} did not listen:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def consumers(uri: str, queue: str) -> int:
    """How many consumers `queue` has (0 when it does not exist yet)."""
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        connection.close()


@contextmanager
def running_extractor(
    python: Path, script: str, *, uri: str, queue: str, log: Path, **env: str
) -> Iterator[ExtractorProcess]:
    """An extractor listening on `queue`; stopped and its two queues deleted afterwards.

    The queue is declared first, as pyclowder declares it (durable, no arguments), so the
    wait for its consumer never asks about a queue that does not exist yet."""
    declare_queues(uri, [queue])
    extractor = ExtractorProcess(python, script, uri=uri, queue=queue, log=log, env=env)
    try:
        extractor.wait_until_listening()
        yield extractor
    finally:
        extractor.stop()
        delete_queues(uri, [queue, f"error.{queue}"])


def declare_queues(uri: str, queues: list[str]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_declare(queue, durable=True)
    finally:
        connection.close()


def delete_queues(uri: str, queues: list[str]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
    finally:
        connection.close()


def read_updates(
    uri: str,
    queue: str,
    *,
    until: Callable[[list[Update]], bool],
    timeout_s: float = 60,
    describe: Callable[[], str] = lambda: "",
) -> list[Update]:
    """Consume `queue` (acking) until `until(updates so far)` holds; fail after `timeout_s`
    with what arrived and `describe()` (the extractor's log, say)."""
    updates: list[Update] = []
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        give_up = time.monotonic() + timeout_s
        for _method, props, body in channel.consume(queue, inactivity_timeout=0.2):
            if body is not None:
                updates.append(
                    Update(
                        props.correlation_id,
                        props.delivery_mode,
                        props.content_type,
                        json.loads(body),
                    )
                )
                channel.basic_ack(_method.delivery_tag)
            if until(updates):
                break
            if time.monotonic() > give_up:
                steps = [u.step for u in updates]
                raise AssertionError(
                    f"timed out after {timeout_s:.0f} s on {queue}; got {steps}\n{describe()}"
                )
        channel.cancel()
    finally:
        connection.close()
    return updates


def ends_with(*steps: str) -> Callable[[list[Update]], bool]:
    """An `until` for read_updates: the last updates are `steps`, in that order."""
    return lambda updates: [u.step for u in updates[-len(steps) :]] == list(steps)


def take_all(uri: str, queue: str) -> list[tuple[pika.BasicProperties, dict[str, Any]]]:
    """Every message now in `queue`, acked: (properties, JSON body)."""
    taken = []
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        for _method, props, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.5):
            if body is None:
                break
            taken.append((props, json.loads(body)))
        channel.cancel()
    finally:
        connection.close()
    return taken
