"""Rule controls in `switchboard run` processes: a debounce survives kill -9, and two daemons
enforce one target's max_in_flight together."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pika
import pytest

from switchboard.model import Submission
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.integration.conftest import wait_for
from tests.integration.simulated_extractor import update_body

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
                        {
                            "message_id": job,
                            "delivery_mode": 2,
                            "content_type": "application/json",
                            # as jobs.tracking redirects them: updates come to our status queue
                            "reply_to": f"{wiring.queue}.status",
                            "correlation_id": job,
                        },
                    )
                    for i, job in enumerate(ids)
                ]
            )
    finally:
        store.close()
    return ids


class SimulatedExtractor:
    """Consumes the extractor's queue and keeps count of the jobs it holds (received, not yet
    finished), the most it ever held, and every job id it received. With `answers`, it works
    like pyclowder: once no message has come for a moment it finishes every job it holds, each
    with a `StatusMessage.done` update to the message's reply_to under its correlation id."""

    def __init__(self, wiring, *, answers: bool = False) -> None:
        self.wiring = wiring
        self.answers = answers
        self.received: list[str] = []
        self.held: list[tuple[pika.BasicProperties, dict]] = []
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
            for method, props, body in channel.consume(
                self.wiring.extractor, inactivity_timeout=0.2
            ):
                if self._stop.is_set():
                    break
                if method is None:  # no more arrived for a while: finish all it holds
                    self._finish(channel)
                    continue
                message = json.loads(body)
                self.received.append(message["job_id"])
                self.held.append((props, message))
                self.most_held = max(self.most_held, len(self.held))
                channel.basic_ack(method.delivery_tag)
            channel.cancel()
        finally:
            connection.close()

    def _finish(self, channel) -> None:
        """Report every held job done (no longer held from then on). It takes whatever comes
        before it finishes any, so it would hold more than max_in_flight if it were sent more."""
        if not self.answers:
            return
        done, self.held = self.held, []
        for props, message in done:
            update = update_body(message, "done", "Done", datetime.now(UTC))
            properties = pika.BasicProperties(delivery_mode=2, correlation_id=props.correlation_id)
            channel.basic_publish("", props.reply_to, json.dumps(update).encode(), properties)


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
    assert extractor.most_held == limit  # nothing finished: it holds them all
    assert len(set(extractor.received)) == limit
    admitted = wiring.query("SELECT count(*) FROM submissions WHERE admitted_at IS NOT NULL")
    assert admitted == [(limit,)]


@pytest.mark.timeout(900)
def test_a_nine_thousand_job_batch_never_has_more_than_max_in_flight_at_its_extractor(
    wiring, spawn
):
    count, limit = 9000, 50
    ids = queue_outbox(wiring, count)
    limits = json.dumps({wiring.extractor: {"max_in_flight": limit}})
    env = {
        "SWITCHBOARD_LIMITS": limits,
        "SWITCHBOARD_THROTTLE_RECHECK_S": "0.2",
        "SWITCHBOARD_STATUS_FORWARD": "false",
    }
    with SimulatedExtractor(wiring, answers=True).running() as extractor:
        daemons = [spawn(**env) for _ in range(2)]
        try:
            wait_for(lambda: len(extractor.received) == count, 800, f"all {count} jobs")
            wait_for(
                lambda: (
                    wiring.query("SELECT count(*) FROM jobs WHERE status = 'succeeded'")
                    == [(count,)]
                ),
                120,
                "every job's done update to be recorded",
            )
        except BaseException:
            print(wiring.statuses(), len(extractor.received), extractor.most_held)
            for daemon in daemons:
                print(daemon.output()[-3000:])
            raise
        for daemon in daemons:
            assert daemon.terminate() == 0, daemon.output()
    assert extractor.most_held <= limit
    assert sorted(extractor.received) == ids  # each job once
