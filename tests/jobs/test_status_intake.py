"""The status route on SQLite and PostgreSQL: updates recorded, forwarded copies queued in the
same transaction, malformed ones returned to be dead-lettered, and the job metrics."""

from __future__ import annotations

import json

from switchboard.amqp_delivery import AmqpDelivery
from switchboard.intake import Router
from switchboard.jobs.forwarding import ForwardingPolicy
from switchboard.jobs.status_intake import StatusHandler, status_route
from switchboard.jobs.store import JobStore
from switchboard.jobs.tracking import redirected
from switchboard.jobs.wiring import job_gauge
from switchboard.metrics import Metrics
from switchboard.store.sql import SqlStore
from tests.conftest import FakeClock
from tests.store.helpers import submission

STATUS_QUEUE = "sb.status"


def _update(word: str, start: str, job_id: str = "job-1") -> bytes:
    return json.dumps(
        {
            "file_id": "f",
            "extractor_id": "x",
            "job_id": job_id,
            "status": f"StatusMessage.{word}: {word} it",
            "start": start,
            "message_type": f"StatusMessage.{word}",
            "message": f"{word} it",
        }
    ).encode()


def _delivery(tag: int, body: bytes, correlation_id: str = "job-1") -> AmqpDelivery:
    return AmqpDelivery(tag, body, {"correlation_id": correlation_id}, STATUS_QUEUE)


def _router(store: SqlStore, metrics: Metrics, **policy: object) -> Router:
    handler = StatusHandler(store.engine, store.clock, ForwardingPolicy(**policy), metrics)  # type: ignore[arg-type]
    return Router([status_route(STATUS_QUEUE, handler)])


def _queue_job(store: SqlStore) -> None:
    props = redirected({"reply_to": "clowder.abc", "correlation_id": "c-1"}, STATUS_QUEUE, "job-1")
    with store.unit_of_work() as uow:
        uow.add_submission(submission("job-1"), {}, props)


def _forwards(store: SqlStore) -> list[tuple]:
    """The queued forwarded copies, in the order the relay will send them."""
    rows = [r for r in store.due_outbox(50) if r.submission.via == "status-relay"]
    return [(r.submission.extractor, dict(r.properties), dict(r.body)) for r in rows]


def test_a_batch_of_updates_is_recorded_and_each_forwarded_once_in_order(
    store: SqlStore, clock: FakeClock
) -> None:
    _queue_job(store)
    metrics = Metrics()
    start, done = (
        _update("start", "2026-01-01T10:00:00+00:00"),
        _update("done", "2026-01-01T10:00:04+00:00"),
    )

    result = _router(store, metrics).process(
        [_delivery(1, start), _delivery(2, done), _delivery(3, done)]
    )

    assert [d.delivery_tag for d in result.committed] == [1, 2, 3]
    assert result.duplicates == 1
    clock.advance(1)  # the copies are due a microsecond apart
    forwards = _forwards(store)
    assert [(queue, body["message"]) for queue, _, body in forwards] == [
        ("clowder.abc", "start it"),
        ("clowder.abc", "done it"),
    ]
    assert {props["correlation_id"] for _, props, _ in forwards} == {"c-1"}
    assert (
        metrics.registry.get_sample_value(
            "switchboard_job_seconds_count", {"target": "terra.stereo-rgb.bin2tif"}
        )
        == 1
    )
    assert (
        metrics.registry.get_sample_value(
            "switchboard_job_seconds_sum", {"target": "terra.stereo-rgb.bin2tif"}
        )
        == 4
    )


def test_forwarding_switched_off_queues_no_copy(store: SqlStore) -> None:
    _queue_job(store)

    _router(store, Metrics(), enabled=False).process(
        [_delivery(1, _update("start", "2026-01-01T10:00:00+00:00"))]
    )

    assert _forwards(store) == []
    assert JobStore(store.engine).job("job-1").status == "started"  # type: ignore[union-attr]


def test_a_malformed_update_is_handed_back_to_be_dead_lettered_and_the_rest_committed(
    store: SqlStore,
) -> None:
    _queue_job(store)

    result = _router(store, Metrics()).process(
        [_delivery(1, b"{not json"), _delivery(2, _update("start", "2026-01-01T10:00:00Z"))]
    )

    assert [(d.delivery_tag, "not UTF-8 JSON" in why) for d, why in result.malformed] == [(1, True)]
    assert [d.delivery_tag for d in result.committed] == [2]


def test_orphans_are_counted_and_the_gauge_counts_jobs_by_target_and_status(
    store: SqlStore,
) -> None:
    _queue_job(store)
    metrics = Metrics()

    _router(store, metrics).process(
        [_delivery(1, _update("start", "2026-01-01T10:00:00Z", "who"), correlation_id="who")]
    )
    job_gauge(store, metrics)()

    assert metrics.registry.get_sample_value("switchboard_orphan_updates_total") == 1
    assert (
        metrics.registry.get_sample_value(
            "switchboard_jobs", {"target": "terra.stereo-rgb.bin2tif", "status": "pending"}
        )
        == 1
    )
