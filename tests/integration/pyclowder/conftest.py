"""Fixtures for tests with real pyclowder 3.0.8 extractors: the virtualenv, a Clowder, queues."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from switchboard.fake_clowder import FakeClowder
from tests.integration.clowder_events import DATASET, file_id
from tests.integration.pyclowder.harness import (
    ExtractorProcess,
    declare_queues,
    delete_queues,
    running_extractor,
)
from tests.integration.pyclowder.venv import PyclowderVenvError, cache_key, pyclowder_python

URI = "amqp://guest:guest@127.0.0.1:5672/%2f"
DATASET_NAME = "stereoTop - 2026-12-01__10-20-30-000"
TRIGGER = 7  # the event number (tests.integration.clowder_events) whose file is in the dataset


@pytest.fixture(scope="session")
def pyclowder_interpreter(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The Python of a virtualenv with pyclowder 3.0.8, built on first use and kept in pytest's
    cache folder (a temporary folder when the cache plugin is off); fails, never skips."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir(cache_key()) if cache is not None else tmp_path_factory.mktemp("pyc")
    try:
        return pyclowder_python(Path(folder))
    except PyclowderVenvError as error:
        pytest.fail(str(error))


@pytest.fixture
def clowder() -> Iterator[FakeClowder]:
    """A Clowder v1 REST API knowing one dataset with the triggering file and one other."""
    fake = FakeClowder({DATASET: DATASET_NAME})
    fake.dataset_files[DATASET] = [
        {"id": file_id(TRIGGER), "filename": f"plot-{TRIGGER:05d}_left.tif", "filepath": ""},
        {"id": "65a1f0b9e4b0a1b2c3d4ffff", "filename": "plot-00007_right.tif", "filepath": ""},
    ]
    with fake:
        yield fake


@pytest.fixture
def reply_queue() -> Iterator[str]:
    """A durable queue standing in for Clowder's `clowder.<instance>` reply queue."""
    name = f"clowder.pyc-{uuid.uuid4().hex[:10]}"
    declare_queues(URI, [name])
    yield name
    delete_queues(URI, [name])


ExtractorFactory = Callable[..., AbstractContextManager[ExtractorProcess]]


@pytest.fixture
def extractor(pyclowder_interpreter: Path, tmp_path: Path) -> ExtractorFactory:
    """`extractor("succeeds.py", MAX_RETRY="1", ...)`: a context manager running that script
    of extractors/ on a fresh queue of its own (env overrides pyclowder's settings)."""

    def start(script: str, *, queue: str | None = None, **env: str) -> Any:
        name = queue or f"pyc.{uuid.uuid4().hex[:10]}.{script.removesuffix('.py')}"
        log = tmp_path / f"{name}.log"
        return running_extractor(pyclowder_interpreter, script, uri=URI, queue=name, log=log, **env)

    return start
