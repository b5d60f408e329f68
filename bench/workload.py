"""The benchmark workload: generated mixed rules and Clowder v1 `dataset.file.added` bodies.

Events come from ten TERRA-like sensors; rules are spread over sixty sensors (the ten plus fifty
that never send anything), so about a sixth of the rules concern the traffic and roughly one
event in six matches one. Every body has the shape of `fixtures/v1_dataset_file_added.json`
plus `datasetname` (so name rules work without a Clowder to ask) and two `bench_*` fields the
benchmark reads back from the extractor queues: the phase and the publish time stamp.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENT_SENSORS = (
    "stereoTop",
    "flirIrCamera",
    "scanner3DTop",
    "VNIR",
    "SWIR",
    "ps2Top",
    "EnvironmentLogger",
    "RGB GeoTIFFs",
    "co2Sensor",
    "ndviSensor",
)
RULE_SENSORS = EVENT_SENSORS + tuple(f"quietSensor{i:02d}" for i in range(50))
SUFFIXES = (
    ".bin",
    "_left.tif",
    "_right.tif",
    ".ply",
    "_ir.bin",
    "_metadata.json",
    ".h5",
    ".nc",
    ".las",
    ".csv",
    ".txt",
    ".png",
)
MIMES = {
    ".bin": "application/octet-stream",
    "_ir.bin": "application/octet-stream",
    "_left.tif": "image/tiff",
    "_right.tif": "image/tiff",
    ".png": "image/png",
    "_metadata.json": "application/json",
    ".h5": "application/x-hdf",
    ".nc": "application/x-netcdf",
}
EXTRACTORS = 10  # distinct target queues the rules submit to
PYTHON_EVERY = 20  # one rule in twenty is a Python rule
FILES_PER_DATASET = 8
OPEN_DATASETS = 40  # datasets receiving files at the same time (events interleave)


def extractor_queue(prefix: str, number: int) -> str:
    return f"{prefix}.x{number % EXTRACTORS}"


def target_queues(prefix: str) -> list[str]:
    return [extractor_queue(prefix, k) for k in range(EXTRACTORS)]


def _mime(suffix: str) -> str:
    return MIMES.get(suffix, "application/octet-stream")


def _yaml_rule(i: int, prefix: str) -> str:
    """Rule `i` in one of eight shapes; shapes mix the index-friendly and the check-only
    operators (prefix, suffix, equals, numeric, regex with captures, any, not, glob, require)."""
    sensor = RULE_SENSORS[i % len(RULE_SENSORS)]
    suffix = SUFFIXES[(i * 7) % len(SUFFIXES)]
    other = SUFFIXES[(i * 7 + 5) % len(SUFFIXES)]
    target = f"submit: {{extractor: {extractor_queue(prefix, i)}, resource: dataset}}"
    shape = (i // len(RULE_SENSORS) + i) % 8
    if shape == 0:
        when = f'dataset.name: {{prefix: "{sensor} - "}}\n    file.name: {{suffix: "{suffix}"}}'
    elif shape == 1:
        when = (
            f'dataset.name: {{prefix: "{sensor} - "}}\n    file.mime_type: "{_mime(suffix)}"\n'
            f"    file.size: {{gte: {(i * 37) % 900}}}"
        )
    elif shape == 2:
        when = (
            f"dataset.name: {{regex: '^{sensor} - (?P<date>\\d{{4}}-\\d{{2}}-\\d{{2}})__'}}\n"
            f'    file.name: {{isuffix: "{suffix}"}}'
        )
        target = (
            f"submit: {{extractor: {extractor_queue(prefix, i)}, resource: file, "
            'parameters: {date: "{date}", file: "{file.name}"}}'
        )
    elif shape == 3:
        when = (
            f'dataset.name: {{prefix: "{sensor} - "}}\n    file.name: {{suffix: "{suffix}"}}\n'
            f'  require:\n    dataset.files:\n      where: {{name: {{suffix: "{suffix}"}}}}\n'
            "      count: {gte: 2}"
        )
    elif shape == 4:
        when = (
            f'dataset.name: {{iprefix: "{sensor.upper()} - "}}\n'
            f'    any:\n      - file.name: {{suffix: "{suffix}"}}\n'
            f'      - file.name: {{suffix: "{other}"}}'
        )
    elif shape == 5:
        when = (
            f'dataset.name: {{prefix: "{sensor} - "}}\n    file.name: {{glob: "*{suffix}"}}\n'
            '    not: {file.name: {glob: "*_b*"}}'
        )
    elif shape == 6:
        when = (
            f'dataset.name: {{prefix: "{sensor} - "}}\n'
            f'    file.name: {{suffix: "{suffix}"}}\n'
            f"    file.size: {{between: [{(i * 13) % 500}, 100000]}}"
        )
    else:
        when = (
            f'dataset.name: {{prefix: "{sensor} - "}}\n'
            f'    file.mime_type: {{in: ["{_mime(suffix)}", "image/png"]}}\n'
            f'    file.name: {{suffix: "{suffix}"}}\n'
            f'    file.id: {{anything-but: ["{"0" * 24}"]}}'
        )
    return f"- name: bench-{i:04d}\n  on: dataset.file.added\n  when:\n    {when}\n  {target}\n"


def _python_rule(i: int, prefix: str) -> str:
    sensor = RULE_SENSORS[i % len(RULE_SENSORS)]
    suffix = SUFFIXES[(i * 7) % len(SUFFIXES)]
    return f'''

@rule(on="dataset.file.added", name="bench-py-{i:04d}")
def bench_py_{i:04d}(event, dataset):
    """Send the dataset once two files ending {suffix!r} are in."""
    if not (dataset.name or "").startswith("{sensor} - "):
        return None
    if event.file is None or not event.file.name.endswith("{suffix}"):
        return None
    if dataset.count(suffix="{suffix}") >= 2:
        return submit("{extractor_queue(prefix, i)}", resource="dataset")
    return None
'''


def write_rules(
    folder: Path, count: int, prefix: str, python_every: int = PYTHON_EVERY
) -> tuple[int, int]:
    """Write `count` rules into `folder` (rules.yaml and bench_rules.py), one in `python_every`
    in Python (none if 0); returns the (yaml, python) counts."""
    is_python = [python_every > 0 and i % python_every == python_every - 1 for i in range(count)]
    yaml_rules = [i for i in range(count) if not is_python[i]]
    python_rules = [i for i in range(count) if is_python[i]]
    (folder / "rules.yaml").write_text("".join(_yaml_rule(i, prefix) for i in yaml_rules))
    module = '"""Generated benchmark rules."""\n\nfrom switchboard import rule, submit\n'
    module += "".join(_python_rule(i, prefix) for i in python_rules)
    (folder / "bench_rules.py").write_text(module)
    return len(yaml_rules), len(python_rules)


@dataclass(frozen=True)
class Workload:
    """Deterministic event bodies for one run; `run` keeps ids unique across runs."""

    run: str
    seed: int = 11

    def bodies(self, phase: str, count: int) -> list[dict[str, Any]]:
        """`count` bodies for `phase`, interleaved over OPEN_DATASETS datasets at a time."""
        rng = random.Random(f"{self.seed}-{phase}")
        bodies = []
        datasets = max(1, count // FILES_PER_DATASET)
        for k in range(count):
            window, slot = divmod(k, OPEN_DATASETS * FILES_PER_DATASET)
            number = window * OPEN_DATASETS + slot % OPEN_DATASETS
            number = number % datasets
            bodies.append(self._body(phase, k, number, rng))
        return bodies

    def _body(self, phase: str, k: int, number: int, rng: random.Random) -> dict[str, Any]:
        sensor = EVENT_SENSORS[number % len(EVENT_SENSORS)]
        dataset_id = f"{self.run[-8:]}{_tag(phase)}{number:012x}"
        file_id = f"{self.run[-8:]}{_tag(phase)}f{k:011x}"
        suffix = rng.choice(SUFFIXES)
        filename = f"2017-05-{1 + number % 28:02d}__10-20-30-{k % 1000:03d}{suffix}"
        mime = _mime(suffix)
        return {
            "notifies": [],
            "msgid": f"{self.run}-{phase}-{k}",
            "id": file_id,
            "jobid": f"{self.run}-job-{phase}-{k}",
            "intermediateId": file_id,
            "fileSize": str(rng.randrange(100, 5_000_000)),
            "host": "https://clowder.example.org",
            "datasetId": dataset_id,
            "datasetname": f"{sensor} - 2017-05-{1 + number % 28:02d}__10-20-30-{number:06d}",
            "flags": "",
            "secretKey": "bench-not-a-secret",
            "routing_key": "clowder.dataset.file.added",
            "source": {
                "id": {"resourceType": "'file", "id": file_id},
                "mimeType": mime,
                "extra": {"filename": filename},
            },
            "activity": "added",
            "target": {"id": {"resourceType": "'dataset", "id": dataset_id}, "extra": {}},
            "bench_phase": phase,
        }


def _tag(phase: str) -> str:
    return {"warmup": "a", "measure": "b", "paced": "c"}.get(phase, "d")


def encode(body: dict[str, Any], published_at: float) -> bytes:
    """The body as sent: JSON with the publish time stamp added."""
    body["bench_published_at"] = published_at
    return json.dumps(body, separators=(",", ":")).encode()
