"""Processors the batch tests run on Ray (copied into each job's working_dir, imported there)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class Probe:
    """Reports what Ray gave it; raises for names in `fail`; kills its actor once per `die`
    and every time for names in `always_die` (a member that always runs out of memory)."""

    def __init__(
        self,
        fail: list[str] | None = None,
        die: list[str] | None = None,
        always_die: list[str] | None = None,
    ) -> None:
        import ray

        self.context = ray.get_runtime_context()
        self.fail = set(fail or ())
        self.die = set(die or ())
        self.always_die = set(always_die or ())
        self.loaded_in = os.getpid()  # __init__ runs once per actor

    def process_file(self, path: str) -> dict[str, Any]:
        name = Path(path).name
        if name in self.fail:
            raise ValueError(f"cannot read {name}")
        if name in self.always_die:
            os._exit(1)
        if name in self.die:
            marker = Path(path).with_suffix(".died")
            if not marker.exists():  # the first time only: the retried batch then succeeds
                marker.write_text("x")
                os._exit(1)
        return {
            "name": name,
            "resources": self.context.get_assigned_resources(),
            "pid": os.getpid(),
            "loaded_in": self.loaded_in,
        }


class Broken:
    """A processor whose model cannot load."""

    def __init__(self) -> None:
        raise RuntimeError("no model file")

    def process_file(self, path: str) -> dict[str, Any]:
        return {}
