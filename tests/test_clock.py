"""Every default clock is `clock.utc_now`: one aware UTC wall clock, not one per module."""

from __future__ import annotations

import inspect
from datetime import timedelta

from switchboard import clock, relay
from switchboard.store import progress, sql


def test_the_relay_the_outbox_and_progress_default_to_the_one_utc_clock() -> None:
    assert relay.utc_now is sql.utc_now is clock.utc_now
    defaults = [
        inspect.signature(relay.Relay.__init__).parameters["clock"].default,
        inspect.signature(sql.SqlStore.__init__).parameters["clock"].default,
        inspect.signature(progress.Progress.__init__).parameters["clock"].default,
    ]
    assert defaults == [clock.utc_now] * 3
    assert clock.utc_now().utcoffset() == timedelta(0)
