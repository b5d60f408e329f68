"""Status traffic for bench/pipeline.py: a simulated pyclowder extractor and a simulated Clowder.

`SimulatedExtractor` stands in for pipeline.py's `Collector` (same `received`, `count()`,
`close()`): it reads every submission from the extractor queues and, while `answering` is on,
answers each with the two updates a pyclowder 3.0.8 extractor sends for a job that does nothing
(`start`, then `done`) to the message's `reply_to` with its `correlation_id`, shaped as
tests/integration/pyclowder/captured_status_updates.json shows. Whatever `reply_to` the daemon
sets is answered: the events' own (Clowder's) queue until the daemon has a status queue of its
own, then that one. It also consumes the events' reply queue, `<run>.clowder`, as Clowder would,
and counts the updates arriving there (forwarded by the daemon, or straight from the extractor
when the daemon passes Clowder's reply_to through), so a phase with status traffic is finished
only once every answered job's updates reached Clowder.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import time
from dataclasses import dataclass, field

import pika

UPDATES_PER_JOB = 2  # start, done


def clowder_queue(run: str) -> str:
    """The events' reply_to in a status-traffic run, standing for Clowder's `clowder.<id>`."""
    return f"{run}.clowder"


def event_properties(run: str) -> pika.BasicProperties:
    """Clowder's AMQP properties on the benchmark's events, with this run's reply queue."""
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        reply_to=clowder_queue(run),
        correlation_id="bench",
    )


def pyclowder_time() -> str:
    """pyclowder 3.0.8's `iso8601time()`, quirks kept: local time to the second, the offset
    from `altzone` whenever the zone has daylight saving time, `-00:00` in UTC."""
    offset_s = time.timezone if time.daylight == 0 else time.altzone
    zone = f"{-offset_s / 3600:+06.2f}".replace(".", ":")
    return datetime.datetime.now().replace(microsecond=0).isoformat() + zone


def status_update(body: dict, queue: str, step: str, message: str) -> bytes:
    """The body pyclowder 3.0.8 publishes for one step of the job in `body`."""
    dataset = ".dataset." in str(body.get("routing_key", "")) or body.get("id") == body.get(
        "datasetId"
    )
    status = f"StatusMessage.{step}"
    return json.dumps(
        {
            "file_id": body.get("datasetId") if dataset else body.get("id"),
            "extractor_id": queue,
            "job_id": body.get("jobid", body.get("job_id")),
            "status": f"{status}: {message}",
            "start": pyclowder_time(),
            "message_type": status,
            "message": message,
        }
    ).encode("utf-8")


@dataclass
class Tally:
    """Per phase: jobs answered, updates published, updates Clowder received (and when last)."""

    answered: int = 0
    published: int = 0
    reached_clowder: int = 0
    last_reached_s: float = 0.0
    events_through_s: float = 0.0  # the phase's end before waiting for its updates
    reply_to: set[str] = field(default_factory=set)


class SimulatedExtractor:
    """Reads the extractor queues (auto-ack, like the Collector) and, while `answering`, sends
    start + done for each job; also drains `<run>.clowder`. All on one connection and thread."""

    def __init__(self, uri: str, queues: list[str], run: str, keep: bool = False) -> None:
        self.received: list[tuple[float, bytes]] = []
        self.answering = False
        self.tallies: dict[str, Tally] = {}
        self._phase_of_job: dict[str, str] = {}
        self._clowder = clowder_queue(run)
        self._keep = keep
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(uri, queues), daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the simulated extractor did not start: {self._error}")

    def _run(self, uri: str, queues: list[str]) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(uri))
            channel = connection.channel()
            channel.queue_declare(self._clowder, durable=True)  # as Clowder declares its own
            channel.basic_consume(self._clowder, self._on_update, auto_ack=True)
            for queue in queues:
                channel.basic_consume(queue, self._on_submission, auto_ack=True)
        except BaseException as exc:  # reported to the main thread by __init__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.05)
            if not self._keep:
                channel.queue_delete(self._clowder)
        except BaseException as exc:  # reported by count()
            self._error = exc
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def _on_submission(self, channel, method, properties, raw: bytes) -> None:
        self.received.append((time.time(), raw))
        if not self.answering or not properties.reply_to:
            return
        body = json.loads(raw)
        phase = str(body.get("bench_phase"))
        tally = self.tallies.setdefault(phase, Tally())
        job = body.get("jobid", body.get("job_id"))
        if job is not None:
            self._phase_of_job[str(job)] = phase
        update = pika.BasicProperties(delivery_mode=2, correlation_id=properties.correlation_id)
        for step, message in (("start", "Started processing."), ("done", "Done processing.")):
            channel.basic_publish(
                "",
                properties.reply_to,
                status_update(body, method.routing_key, step, message),
                update,
            )
            tally.published += 1
        tally.answered += 1
        tally.reply_to.add(properties.reply_to)

    def _on_update(self, _channel, _method, _properties, raw: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            job = json.loads(raw).get("job_id")
            tally = self.tallies.get(self._phase_of_job.get(str(job), ""))
            if tally is not None:
                tally.reached_clowder += 1
                tally.last_reached_s = time.time()

    def count(self) -> int:
        if self._error is not None:
            raise RuntimeError(f"the simulated extractor failed: {self._error!r}")
        return len(self.received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_until_clowder_has_every_update(
    extractor: SimulatedExtractor, phase, timeout_s: float
) -> Tally:
    """Wait until Clowder received both updates of every job answered in `phase` (a
    pipeline.Phase), then move the phase's end to the last one's arrival; its Tally."""
    tally = extractor.tallies.setdefault(phase.name, Tally())
    tally.events_through_s = phase.finished
    give_up = time.monotonic() + timeout_s
    while tally.reached_clowder < UPDATES_PER_JOB * tally.answered:
        extractor.count()  # raises if the consumer thread died
        if time.monotonic() > give_up:
            raise RuntimeError(
                f"timed out after {timeout_s:.0f} s: Clowder received {tally.reached_clowder} "
                f"of {UPDATES_PER_JOB * tally.answered} status updates of phase {phase.name}"
            )
        time.sleep(0.05)
    phase.finished = max(phase.finished, tally.last_reached_s)
    return tally


def report(without, with_status, tally: Tally) -> list[str]:
    """The lines pipeline.py prints for a status-traffic run (pipeline.Phase objects, whose
    `cpu_s` is what the daemons, their child processes and their PostgreSQL backends spent)."""
    ratio = with_status.rate / without.rate
    events_only = with_status.events / max(
        1e-9, tally.events_through_s - with_status.first_published
    )
    lines = [
        f"status traffic: {tally.answered:,} jobs answered with start + done "
        f"({tally.published:,} updates to {', '.join(sorted(tally.reply_to)) or 'nobody'}), "
        f"{tally.reached_clowder:,} reached Clowder",
        f"events/s without status traffic {without.rate:,.0f}, with {with_status.rate:,.0f} "
        f"(until the last update reached Clowder): ratio {ratio:.2f}  (target >= 0.8)",
        f"with status traffic the events alone were through at {events_only:,.0f}/s "
        f"(ratio {events_only / without.rate:.2f}); the updates took "
        f"{tally.last_reached_s - tally.events_through_s:,.1f} s longer",
    ]
    if without.cpu_s and with_status.cpu_s:
        per_k = [1000 * p.cpu_s / p.events for p in (without, with_status)]
        lines.append(
            f"CPU s per 1000 events (daemons + their PostgreSQL backends): without "
            f"{per_k[0]:.2f}, with {per_k[1]:.2f}: events per CPU second ratio "
            f"{per_k[0] / per_k[1]:.2f}"
        )
    return lines
