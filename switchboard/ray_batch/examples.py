"""A ready-made processor (`switchboard.ray_batch.examples:FileFacts`), run by the benchmark."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class FileFacts:
    """Name, extension and size of each member's file (None when the path is not on this node)."""

    def process_file(self, path: str) -> dict[str, Any]:
        try:
            size_bytes: int | None = os.stat(path).st_size
        except OSError:
            size_bytes = None
        return {"name": Path(path).name, "suffix": Path(path).suffix, "size_bytes": size_bytes}
