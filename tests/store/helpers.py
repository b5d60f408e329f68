"""Test helpers for the store: submissions and PostgreSQL session control."""

from __future__ import annotations

import time
from types import MappingProxyType

import psycopg

from switchboard.model import Submission
from tests.conftest import PG_CONNINFO


def submission(job_id: str = "job-1", **changes: object) -> Submission:
    fields: dict[str, object] = {
        "job_id": job_id,
        "rule": "stereo-bin2tif",
        "extractor": "terra.stereo-rgb.bin2tif",
        "resource_type": "dataset",
        "resource_id": "ds-1",
        "via": "amqp",
        "parameters": MappingProxyType({"mode": "fast", "nested": MappingProxyType({"n": 2})}),
        "event_message_id": "msg-1",
    }
    fields.update(changes)
    return Submission(**fields)  # type: ignore[arg-type]


def terminate_backend(pid: int) -> None:
    """Kill one PostgreSQL server process from another connection, as a failover would."""
    with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
        killed = connection.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert killed == (True,)


def wait_until_waiting_on_a_lock(pid: int, deadline_s: float = 60.0) -> None:
    """Block until the backend `pid` is waiting for a lock another transaction holds."""
    give_up_at = time.monotonic() + deadline_s
    with psycopg.connect(PG_CONNINFO, autocommit=True) as connection:
        while time.monotonic() < give_up_at:
            row = connection.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row == ("Lock",):
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited on a lock")
