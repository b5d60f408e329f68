"""The material of `switchboard demo --ray`: a few files, their events and a batch rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASET_ID = "5f0000000000000000000001"


def write_demo_files(folder: Path, count: int) -> list[Path]:
    """`count` small plot images (their bytes differ, so their sizes do)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(1, count + 1):
        path = folder / f"plot-{n:02d}_left.tif"
        path.write_bytes(b"\x49\x49\x2a\x00" + bytes(n * 100))
        paths.append(path)
    return paths


def demo_rule(folder: Path, count: int) -> str:
    """A YAML rule: collect the left images of a dataset, then one batch job over them."""
    data_path = json.dumps(f"{folder}/{{file.name}}")
    return f"""\
- name: demo-plot-facts
  when:
    file.name: {{suffix: "_left.tif"}}
  collect:
    key: "demo/{{dataset.id}}"
    member: "{{file.id}}"
    data: {{path: {data_path}, name: "{{file.name}}"}}
    until: {{count: {count}}}
  submit:
    extractor: plot-facts
    via: ray
    resources: {{num_cpus: 0.5}}
    batch:
      processor: "switchboard_ray_batch.examples:FileFacts"
      num_cpus: 0.5
      batch_size: 2
      concurrency: 2
"""


def demo_events(paths: list[Path]) -> list[dict[str, Any]]:
    """One Clowder v1 `dataset.file.added` record per file."""
    records = []
    for n, path in enumerate(paths, 1):
        file_id = f"5f{n:022x}"
        body = {
            "notifies": [],
            "msgid": f"5e{n:022x}",
            "id": file_id,
            "intermediateId": file_id,
            "fileSize": str(path.stat().st_size),
            "host": "https://clowder.example.org",
            "datasetId": DATASET_ID,
            "flags": "",
            "secretKey": "demo",
            "routing_key": "clowder.dataset.file.added",
            "source": {
                "id": {"resourceType": "'file", "id": file_id},
                "mimeType": "image/tiff",
                "extra": {"filename": path.name},
            },
            "activity": "added",
            "target": {"id": {"resourceType": "'dataset", "id": DATASET_ID}, "extra": {}},
        }
        records.append(
            {
                "properties": {"content_type": "application/json", "delivery_mode": 2},
                "routing_key": "clowder.dataset.file.added",
                "body": body,
            }
        )
    return records
