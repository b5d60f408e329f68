"""`RAY_ADDRESS=local`: the private Ray head `switchboard run` starts, submits to and stops."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from .errors import SettingsError
from .settings import Settings

log = logging.getLogger(__name__)
LOCAL = "local"


@contextmanager
def with_local_ray(settings: Settings) -> Iterator[Settings]:
    """The settings to run with: unchanged, or, for RAY_ADDRESS=local, pointing at a private
    head started here (own temp dir, dashboard on 127.0.0.1, free ports, SWITCHBOARD_RAY_NUM_CPUS
    CPUs) and stopped by its process id when the block ends.

    Ray's job client prefers the RAY_ADDRESS variable to the address it is given, so while the
    head runs that variable holds the head's address rather than the word `local`.
    """
    if settings.ray_address != LOCAL:
        yield settings
        return
    if importlib.util.find_spec("ray") is None:
        raise SettingsError("RAY_ADDRESS=local needs Ray: pip install 'switchboard[ray]'")
    from .ray_local import LocalRay, LocalRayError

    head = LocalRay(num_cpus=settings.ray_num_cpus)
    try:
        address = head.start()
    except LocalRayError as exc:
        raise SettingsError(f"RAY_ADDRESS=local: the local Ray head did not start: {exc}") from exc
    log.info("local Ray head started at %s (%d CPUs, pid %s)", address, head.num_cpus, head.pid)
    before = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = address
    try:
        yield replace(settings, ray_address=address)
    finally:
        if before is None:
            os.environ.pop("RAY_ADDRESS", None)
        else:
            os.environ["RAY_ADDRESS"] = before
        head.stop()
        log.info("local Ray head stopped")
