"""Rule controls in `switchboard run` processes: a debounce survives kill -9, and two daemons
enforce one target's max_in_flight together."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pytest

from switchboard.model import Submission
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

DEBOUNCED = """\
- name: after-the-upload
  when: {{file.name: {{suffix: ".tif"}}}}
  debounce: 6s
  submit:
    extractor: {extractor}
    parameters: {{last: "{{file.name}}"}}
"""


def held(wiring) -> list[tuple]:
    try:
        return wiring.query("SELECT rule, events FROM debounces")
    except Exception:  # not migrated yet
        return []


def test_a_pending_debounce_survives_kill_9_and_submits_once_after_restart(wiring, spawn):
    wiring.rules.write_text(DEBOUNCED.format(extractor=wiring.extractor))
    first = spawn()
    wiring.publish(range(3))
    wait_for(lambda: held(wiring) == [("after-the-upload", 3)], 60, "the burst to be held")
    first.kill()
    assert first.process.returncode == -9
    assert wiring.statuses() == {}, "the debounce fired before the daemon was killed"
    assert held(wiring) == [("after-the-upload", 3)]  # the deadline is in the database
    second = spawn()
    wait_for(lambda: wiring.statuses().get("sent") == 1, 90, "the debounced submission")
    assert held(wiring) == []
    assert second.terminate() == 0, second.output()
    [(_, body)] = wiring.drain(wiring.extractor)
    assert body["parameters"]["last"] == "plot-00002_left.tif"  # the latest event's


def queue_outbox(wiring, count: int) -> list[str]:
    """`count` pending submissions to the test's extractor, as a fired batch leaves them."""
    upgrade(wiring.database_url)
    store = SqlStore(wiring.database_url)
    ids = [f"batch-job-{i:05d}" for i in range(count)]
    try:
        with store.unit_of_work() as uow:
            uow.add_submissions(
                [
                    (
                        Submission(
                            job_id=job,
                            rule="batch",
                            extractor=wiring.extractor,
                            resource_type="file",
                            resource_id=f"file-{i}",
                            via="amqp",
                            parameters={},
                            event_message_id=f"msg-{i}",
                        ),
                        {"job_id": job, "jobid": job, "id": f"file-{i}"},
                        {"message_id": job, "delivery_mode": 2, "content_type": "application/json"},
                    )
                    for i, job in enumerate(ids)
                ]
            )
    finally:
        store.close()
    return ids


class SimulatedExtractor:
    """Consumes the extractor's queue and keeps count of the jobs it holds (received, not yet
    finished), the most it ever held, and every job id it received."""

    def __init__(self, wiring) -> None:
        self.wiring = wiring
        self.received: list[str] = []
        self.most_held = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @contextmanager
    def running(self) -> Iterator[SimulatedExtractor]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=30)

    def _run(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.wiring.uri))
        try:
            channel = connection.channel()
            channel.queue_declare(self.wiring.extractor, durable=True)
            for method, _props, body in channel.consume(
                self.wiring.extractor, inactivity_timeout=0.2
            ):
                if self._stop.is_set():
                    break
                if method is None:
                    continue
                self.received.append(json.loads(body)["job_id"])
                self.most_held = max(self.most_held, len(self.received))
                channel.basic_ack(method.delivery_tag)
            channel.cancel()
        finally:
            connection.close()


def test_two_daemons_never_let_more_than_max_in_flight_reach_one_target(wiring, spawn):
    count, limit = 9000, 50
    queue_outbox(wiring, count)
    limits = json.dumps({wiring.extractor: {"max_in_flight": limit}})
    with SimulatedExtractor(wiring).running() as extractor:
        daemons = [spawn(SWITCHBOARD_LIMITS=limits) for _ in range(2)]

        def settled() -> bool:
            throttled = wiring.query(
                "SELECT count(*) FROM submissions WHERE hold_reason = 'throttled'"
            )[0][0]
            return wiring.statuses().get("sent") == limit and throttled == count - limit

        wait_for(settled, 120, f"{limit} sent and the rest throttled")
        wait_for(lambda: len(extractor.received) == limit, 30, "the extractor to get them")
        # the relays look at every held row again (no job finishes, so none more may go)
        [(since,)] = wiring.query("SELECT now()")

        def looked_at_again() -> bool:
            [(soonest,)] = wiring.query(
                "SELECT min(next_attempt_at) FROM submissions WHERE status = 'pending'"
            )
            return soonest > since

        wait_for(looked_at_again, 120, "every held row to be looked at again")
        assert wiring.statuses() == {"pending": count - limit, "sent": limit}
        for daemon in daemons:
            assert daemon.terminate() == 0, daemon.output()
    assert extractor.most_held == limit
    assert len(set(extractor.received)) == limit
    admitted = wiring.query("SELECT count(*) FROM submissions WHERE admitted_at IS NOT NULL")
    assert admitted == [(limit,)]
