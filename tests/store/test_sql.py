"""SqlStore: the outbox lifecycle and surviving a lost database connection."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from switchboard.errors import StoreError
from switchboard.store.sql import SqlStore
from tests.conftest import START, FakeClock

from .helpers import submission, terminate_backend

BODY = {"datasetId": "ds-1", "secretKey": "not-for-logs", "job_id": "job-1"}
PROPERTIES = {"message_id": "job-1", "delivery_mode": 2}


def _queue(store: SqlStore, *job_ids: str, clock: FakeClock | None = None) -> None:
    for job_id in job_ids:
        with store.unit_of_work() as uow:
            uow.add_submission(submission(job_id), {**BODY, "job_id": job_id}, PROPERTIES)
        if clock is not None:
            clock.advance(1)


def _jobs(rows) -> list[str]:
    return [row.submission.job_id for row in rows]


def test_a_queued_submission_is_due_at_once_with_everything_needed_to_send_it(
    store: SqlStore,
) -> None:
    _queue(store, "job-1")

    [row] = store.due_outbox(10)

    assert row.submission == submission("job-1")
    assert dict(row.submission.parameters) == {"mode": "fast", "nested": {"n": 2}}
    assert row.body == BODY
    assert row.properties == PROPERTIES
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)
    assert row.next_attempt_at == START


def test_listing_the_due_outbox_changes_nothing(store: SqlStore) -> None:
    _queue(store, "job-1")

    assert store.due_outbox(10) == store.due_outbox(10)


def test_claimed_rows_are_not_claimed_again_until_the_lease_ends(
    store: SqlStore, clock: FakeClock
) -> None:
    _queue(store, "job-1", "job-2")

    first = store.claim_due(10, lease_s=30)
    clock.advance(29)
    second = store.claim_due(10, lease_s=30)
    clock.advance(1)
    after_lease = store.claim_due(10, lease_s=30)

    assert _jobs(first) == ["job-1", "job-2"]
    assert second == []
    assert _jobs(after_lease) == ["job-1", "job-2"]
    assert after_lease[0].next_attempt_at == clock.now + timedelta(seconds=30)


def test_claims_take_the_oldest_due_rows_first(store: SqlStore, clock: FakeClock) -> None:
    _queue(store, "job-c", "job-a", "job-b", clock=clock)

    assert _jobs(store.claim_due(2, lease_s=30)) == ["job-c", "job-a"]
    assert _jobs(store.claim_due(2, lease_s=30)) == ["job-b"]


def test_a_sent_row_is_marked_sent_and_never_due_again(store: SqlStore) -> None:
    _queue(store, "job-1")
    store.claim_due(10, lease_s=30)

    store.mark_sent("job-1")

    [row] = store.recent_submissions(10)
    assert (row.status, row.attempts) == ("sent", 1)
    assert store.due_outbox(10, now=START + timedelta(days=1)) == []
    assert store.counts_by_status() == {"pending": 0, "sent": 1, "failed": 0}


def test_many_rows_are_marked_sent_at_once(store: SqlStore) -> None:
    _queue(store, "job-1", "job-2", "job-3")
    claimed = {row.submission.job_id: row for row in store.claim_due(10, lease_s=30)}

    marked = store.mark_sent_many([claimed["job-1"], claimed["job-3"], claimed["job-1"]])
    assert store.mark_sent_many([]) == set()

    assert marked == {"job-1", "job-3"}

    statuses = {
        row.submission.job_id: (row.status, row.attempts) for row in store.recent_submissions(10)
    }
    assert statuses == {"job-1": ("sent", 1), "job-2": ("pending", 0), "job-3": ("sent", 1)}


def test_a_failed_attempt_is_retried_at_the_given_time(store: SqlStore, clock: FakeClock) -> None:
    _queue(store, "job-1")
    store.claim_due(10, lease_s=30)
    retry_at = START + timedelta(seconds=60)

    store.mark_attempt_failed("job-1", "returned: NO_ROUTE", retry_at, give_up=False)

    clock.advance(59)
    assert store.claim_due(10, lease_s=30) == []
    clock.advance(1)
    [row] = store.claim_due(10, lease_s=30)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "returned: NO_ROUTE")


def test_giving_up_marks_the_row_failed_for_good(store: SqlStore, clock: FakeClock) -> None:
    _queue(store, "job-1")
    store.claim_due(10, lease_s=30)

    store.mark_attempt_failed("job-1", "HTTP 404", None, give_up=True)

    clock.advance(86_400)
    assert store.claim_due(10, lease_s=30) == []
    [row] = store.recent_submissions(10)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "HTTP 404")
    assert store.counts_by_status() == {"pending": 0, "sent": 0, "failed": 1}


def test_counts_list_every_status_even_when_empty(store: SqlStore) -> None:
    assert store.counts_by_status() == {"pending": 0, "sent": 0, "failed": 0}


def test_recent_submissions_are_newest_first_and_limited(store: SqlStore, clock: FakeClock) -> None:
    _queue(store, "job-1", "job-2", "job-3", clock=clock)

    assert _jobs(store.recent_submissions(2)) == ["job-3", "job-2"]


@pytest.mark.postgres
def test_a_claim_skips_rows_another_relay_is_claiming(pg_url: str, pg_schema: str) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema, clock=FakeClock())
    try:
        _queue(store, "job-1", "job-2")
        with store.unit_of_work() as other_relay:
            other_relay.session.execute(
                text("SELECT job_id FROM submissions WHERE job_id = 'job-1' FOR UPDATE")
            )
            claimed = store.claim_due(10, lease_s=30)
    finally:
        store.close()

    assert _jobs(claimed) == ["job-2"]


def test_an_unreachable_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'missing-dir' / 'state.db'}")
    try:
        with pytest.raises(StoreError, match="unable to open database file"):
            store.counts_by_status()
    finally:
        store.close()


@pytest.mark.postgres
def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    store = SqlStore("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test")
    try:
        with pytest.raises(StoreError) as failed, store.unit_of_work() as uow:
            uow.already_processed("msg-1")
    finally:
        store.close()

    assert "hunter2" not in str(failed.value)
    assert "postgres:***@127.0.0.1:1/test" in str(failed.value)
    assert failed.value.__cause__ is not None


@pytest.mark.postgres
def test_a_backend_killed_mid_transaction_is_a_store_error_and_the_store_recovers(
    pg_url: str, pg_schema: str
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    try:
        with pytest.raises(StoreError), store.unit_of_work() as uow:
            uow.record_processed("msg-1")
            terminate_backend(uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            uow.record_processed("msg-2")

        with store.unit_of_work() as uow:
            assert not uow.already_processed("msg-1")
            assert uow.record_processed("msg-1")
        with store.unit_of_work() as uow:
            assert uow.already_processed("msg-1")
    finally:
        store.close()


@pytest.mark.postgres
def test_a_pooled_connection_killed_while_idle_is_replaced_unnoticed(
    pg_url: str, pg_schema: str
) -> None:
    from switchboard.store.migrate import upgrade

    upgrade(pg_url, pg_schema)
    store = SqlStore(pg_url, schema=pg_schema)
    pid_query = text("SELECT pg_backend_pid()")
    try:
        with store.unit_of_work() as uow:
            first_pid = uow.session.execute(pid_query).scalar_one()
        terminate_backend(first_pid)

        with store.unit_of_work() as uow:
            assert uow.record_processed("msg-1")
            assert uow.session.execute(pid_query).scalar_one() != first_pid
    finally:
        store.close()


def test_recent_submissions_can_be_limited_to_one_status(store: SqlStore) -> None:
    _queue(store, "job-1", "job-2", "job-3")
    store.mark_attempt_failed("job-2", "HTTP 404", None, give_up=True)
    store.mark_sent("job-3")

    assert _jobs(store.recent_submissions(10, status="failed")) == ["job-2"]
    assert _jobs(store.recent_submissions(10, status="sent")) == ["job-3"]
    assert sorted(_jobs(store.recent_submissions(10))) == ["job-1", "job-2", "job-3"]


# --- claims: only the current holder sends a row or records its outcome ------------------------


def test_each_claim_has_its_own_token_and_an_end(store: SqlStore, clock: FakeClock) -> None:
    _queue(store, "job-1", "job-2")
    [first] = store.claim_due(1, lease_s=30)
    [second] = store.claim_due(1, lease_s=30)
    assert first.claim_token and second.claim_token and first.claim_token != second.claim_token
    assert first.next_attempt_at == START + timedelta(seconds=30)


def test_a_claim_taken_over_after_its_lease_fences_off_the_first_holder(
    store: SqlStore, clock: FakeClock
) -> None:
    _queue(store, "job-1", "job-2")
    stale = store.claim_due(10, lease_s=30)
    clock.advance(31)
    fresh = store.claim_due(10, lease_s=30)
    assert {r.submission.job_id for r in fresh} == {"job-1", "job-2"}

    token = stale[0].claim_token
    assert store.renew_claims(["job-1", "job-2"], token, lease_s=30) == set()
    assert store.mark_sent_many(stale) == set()
    assert not store.mark_attempt_failed("job-1", "late", None, give_up=True, claim_token=token)
    assert not store.mark_sent("job-2", claim_token=token)
    assert {(r.status, r.attempts) for r in store.recent_submissions(10)} == {("pending", 0)}

    assert store.mark_sent_many(fresh) == {"job-1", "job-2"}
    assert {r.status for r in store.recent_submissions(10)} == {"sent"}


def test_renewing_a_claim_keeps_other_relays_off_the_row(store: SqlStore, clock: FakeClock) -> None:
    _queue(store, "job-1")
    [row] = store.claim_due(10, lease_s=30)
    clock.advance(25)
    assert store.renew_claims(["job-1"], row.claim_token, lease_s=30) == {"job-1"}
    clock.advance(25)  # past the first lease, inside the renewed one
    assert store.claim_due(10, lease_s=30) == []
    assert store.mark_sent_many([row]) == {"job-1"}


def test_a_sent_row_cannot_be_marked_failed_by_a_late_outcome(store: SqlStore) -> None:
    _queue(store, "job-1")
    store.claim_due(10, lease_s=30)
    store.mark_sent("job-1")
    assert not store.mark_attempt_failed("job-1", "late timeout", None, give_up=True)
    [row] = store.recent_submissions(10)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)


def test_released_claims_are_due_again_at_once(store: SqlStore, clock: FakeClock) -> None:
    _queue(store, "job-1", "job-2")
    claimed = store.claim_due(10, lease_s=30)
    store.release_claims(["job-2"], claimed[0].claim_token)
    assert _jobs(store.claim_due(10, lease_s=30)) == ["job-2"]


def test_a_claim_can_be_limited_to_some_targets(store: SqlStore) -> None:
    for job, via in [("job-a", "amqp"), ("job-r", "ray"), ("job-c", "clowder-api")]:
        with store.unit_of_work() as uow:
            uow.add_submission(submission(job, via=via), {"job_id": job}, PROPERTIES)
    assert _jobs(store.claim_due(10, lease_s=30, vias=["ray"])) == ["job-r"]
    assert _jobs(store.claim_due(10, lease_s=30, exclude_vias=["amqp"])) == ["job-c"]
    assert _jobs(store.claim_due(10, lease_s=30)) == ["job-a"]


# --- secrets: a row that will never be sent again keeps none -----------------------------------


def _stored_body(store: SqlStore, job_id: str) -> dict:
    with store.engine.connect() as connection:
        return connection.execute(
            text("SELECT body FROM submissions WHERE job_id = :j"), {"j": job_id}
        ).scalar_one()


def _as_dict(value) -> dict:
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_marking_rows_sent_scrubs_the_secret_key_from_their_stored_bodies(store: SqlStore) -> None:
    _queue(store, "job-1", "job-2", "job-3")
    claimed = {r.submission.job_id: r for r in store.claim_due(10, lease_s=30)}
    store.mark_sent_many([claimed["job-1"]])
    store.mark_sent("job-2")
    for job in ("job-1", "job-2"):
        assert _as_dict(_stored_body(store, job)) == {"datasetId": "ds-1", "job_id": job}
    assert _as_dict(_stored_body(store, "job-3"))["secretKey"] == "not-for-logs"  # still to send


def test_giving_up_on_a_row_scrubs_its_secret_key(store: SqlStore) -> None:
    _queue(store, "job-1", "job-2")
    store.claim_due(10, lease_s=30)
    store.mark_attempt_failed("job-1", "HTTP 404", None, give_up=True)
    store.mark_attempt_failed("job-2", "HTTP 503", None, give_up=False)
    assert "secretKey" not in _as_dict(_stored_body(store, "job-1"))
    assert _as_dict(_stored_body(store, "job-2"))["secretKey"] == "not-for-logs"  # will retry
