"""Fixtures of the web tests: a seeded database and the site that reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from switchboard.metrics import Metrics
from switchboard.store.sql import SqlStore
from switchboard.web.daemon_live import DaemonLive
from switchboard.web.live import Check, Live, LoopPulse, StaticLive
from switchboard.web.queue_depths import QueueDepths
from switchboard.web.site import Response, Site
from switchboard.web.tracked_jobs import TrackedJobs
from switchboard.web.views import Views
from tests.conftest import FakeClock
from tests.web.seed import Seeded, seed


@pytest.fixture
def seeded(store: SqlStore) -> Seeded:
    return seed(store)


SiteMaker = Callable[..., Site]


@pytest.fixture
def make_site(store: SqlStore, clock: FakeClock) -> SiteMaker:
    """`make_site(live=..., token=..., depths=..., metrics=...)`: a Site over the test's store."""

    def make(
        live: Live | None = None,
        *,
        token: str = "",
        depths: QueueDepths | None = None,
        metrics: Metrics | None = None,
    ) -> Site:
        shown = live if live is not None else StaticLive("switchboard", started_at=clock())
        views = Views(shown, TrackedJobs(), "sqlite:///test.db", depths, clock=clock)
        registries = (metrics.registry,) if metrics is not None else ()
        return Site(views, store.engine, registries, token=token)

    return make


def daemon_live(
    seeded: Seeded,
    metrics: Metrics,
    *,
    pulse: LoopPulse | None = None,
    max_stall_s: float = 60.0,
    consuming: bool = True,
) -> DaemonLive:
    return DaemonLive(
        queue="switchboard",
        pulse=pulse or LoopPulse(),
        max_stall_s=max_stall_s,
        metrics=metrics,
        rules=lambda: seeded.ruleset,
        consuming=lambda: consuming,
        database=lambda: Check("database", True, "test"),
    )


def get(site: Site, target: str, **headers: str) -> Response:
    return site.respond("GET", target, {k.lower().replace("_", "-"): v for k, v in headers.items()})


def body_json(response: Response) -> Any:
    import json

    assert response.content_type == "application/json", response.content_type
    return json.loads(response.body)
