"""Generate one deterministic, TERRA-REF-like day of Clowder v1 `dataset.file.added` traffic.

Every record has the shape of `tests/fixtures/v1_dataset_file_added.json` plus two top-level
keys: `routing_key` (the AMQP routing key, here the body's `clowder.dataset.file.added`) and
`dataset_name`, a sidecar the replay uses to seed dataset names (Clowder v1 events do not carry
them; a live daemon asks Clowder's REST API). File events of different datasets interleave, as
uploads from several sensors do. `python -m switchboard.demo_day > switchboard/demo/day.jsonl`
regenerates the committed copy.

Contents of `generate_day()` with the defaults (exact, for rule tests to assert):

- 20 `stereoTop - <date>__HH-MM-SS-mmm` datasets, each with `<ts>_left.bin`, `<ts>_right.bin`
  and `<ts>_metadata.json` (60 events): bin2tif fires 20 times, once per dataset.
- 15 `flirIrCamera - <date>__HH-MM-SS-mmm` datasets, each with `<ts>_ir.bin` and
  `<ts>_metadata.json` (30 events): flir2tif fires 15 times.
- 10 `scanner3DTop - <date>__HH-MM-SS-mmm` datasets, each with `<ts>_west.ply` and
  `<ts>_metadata.json`; 8 of them also get `<ts>_east.ply` (28 events): ply2las fires 8 times,
  and 2 datasets stay incomplete all day.
- 30 `RGB GeoTIFFs - <date>__HH-MM-SS-mmm` datasets, each with `<ts>_left.tif` and
  `<ts>_right.tif` (60 events; 30 left GeoTIFFs for a full-field collection: the mosaic of
  `rules/collections.yaml` fires once).
- 25 unrelated files that no TERRA rule should pick up: 10 `.csv` in `weather - <date>`,
  10 `.json` in `EnvironmentLogger - <date>` and 5 `.txt` in `notes` (25 events).

203 events in all, 78 datasets, every `msgid`, `jobid` and file id unique.
"""

from __future__ import annotations

import argparse
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .traffic import write_records

DAY_PATH = Path(__file__).parent / "demo" / "day.jsonl"

STEREO_DATASETS = 20
FLIR_DATASETS = 15
SCANNER_DATASETS = 10
SCANNER_DATASETS_WITH_EAST = 8
RGB_DATASETS = 30
WEATHER_FILES = 10
ENVIRONMENT_LOGGER_FILES = 10
NOTE_FILES = 5
UNRELATED_FILES = WEATHER_FILES + ENVIRONMENT_LOGGER_FILES + NOTE_FILES
TOTAL_EVENTS = (
    3 * STEREO_DATASETS
    + 2 * FLIR_DATASETS
    + 2 * SCANNER_DATASETS
    + SCANNER_DATASETS_WITH_EAST
    + 2 * RGB_DATASETS
    + UNRELATED_FILES
)
EXPECTED_FIRINGS = {"bin2tif": 20, "flir2tif": 15, "ply2las": 8, "fieldmosaic": 1}

HOST = "https://clowder.example.org"
ROUTING_KEY = "clowder.dataset.file.added"
SECRET_PLACEHOLDER = "REDACTED-API-KEY"
ARIZONA = timezone(timedelta(hours=-7), "MST")  # the Maricopa field site; no daylight saving

_MIME_TYPES = {
    ".bin": "application/octet-stream",
    ".json": "application/json",
    ".ply": "application/octet-stream",
    ".tif": "image/tiff",
    ".csv": "text/csv",
    ".txt": "text/plain",
}


@dataclass(frozen=True)
class _Dataset:
    name: str
    created_at: datetime


@dataclass(frozen=True)
class _Upload:
    at: datetime
    dataset: _Dataset
    filename: str
    size_bytes: int


class _ObjectIds:
    """Mongo ObjectIds as Clowder makes them: creation second, machine bytes, a counter."""

    def __init__(self, rng: random.Random) -> None:
        self._machine = rng.getrandbits(40)
        self._counter = rng.getrandbits(24)

    def at(self, moment: datetime) -> str:
        self._counter = (self._counter + 1) % (1 << 24)
        seconds = int(moment.timestamp())
        return f"{seconds:08x}{self._machine:010x}{self._counter:06x}"


def generate_day(date: str = "2017-05-01", seed: int = 7) -> list[dict[str, Any]]:
    """The day's records in publish order; the same (date, seed) always gives the same list."""
    day = Date.fromisoformat(date)
    rng = random.Random(f"switchboard-demo/{day.isoformat()}/{seed}")
    start = datetime(day.year, day.month, day.day, tzinfo=ARIZONA)
    uploads = [
        *_stereo_top(rng, start),
        *_flir(rng, start),
        *_scanner(rng, start),
        *_rgb_geotiffs(rng, start),
        *_unrelated(rng, start),
    ]
    order = sorted(range(len(uploads)), key=lambda i: (uploads[i].at, i))
    return _records([uploads[i] for i in order], rng)


def _timestamp(moment: datetime) -> str:
    """TERRA's capture stamp: `2017-05-01__10-20-30-123`."""
    return moment.strftime("%Y-%m-%d__%H-%M-%S-") + f"{moment.microsecond // 1000:03d}"


def _captures(
    rng: random.Random, first: datetime, count: int, gap_s: tuple[int, int]
) -> list[datetime]:
    moments, moment = [], first
    for _ in range(count):
        moment += timedelta(seconds=rng.randint(*gap_s), milliseconds=rng.randint(0, 999))
        moments.append(moment)
    return moments


def _delay(rng: random.Random, low_s: int, high_s: int) -> timedelta:
    return timedelta(seconds=rng.randint(low_s, high_s), milliseconds=rng.randint(0, 999))


def _sensor_datasets(
    rng: random.Random,
    sensor: str,
    first: datetime,
    count: int,
    gap_s: tuple[int, int],
) -> list[tuple[_Dataset, str, datetime]]:
    """(dataset, capture stamp, moment the dataset exists) for each capture of one sensor."""
    found = []
    for captured in _captures(rng, first, count, gap_s):
        stamp = _timestamp(captured)
        dataset = _Dataset(f"{sensor} - {stamp}", captured + _delay(rng, 20, 50))
        found.append((dataset, stamp, dataset.created_at))
    return found


def _metadata(
    rng: random.Random,
    dataset: _Dataset,
    stamp: str,
    ready: datetime,
    size: tuple[int, int],
    delay_s: tuple[int, int],
) -> _Upload:
    """A capture's `<stamp>_metadata.json`; draws its size before its delay, as the day needs."""
    metadata_size = rng.randint(*size)
    return _Upload(ready + _delay(rng, *delay_s), dataset, f"{stamp}_metadata.json", metadata_size)


def _stereo_top(rng: random.Random, start: datetime) -> list[_Upload]:
    uploads = []
    for dataset, stamp, ready in _sensor_datasets(
        rng, "stereoTop", start + timedelta(hours=9), STEREO_DATASETS, (90, 200)
    ):
        for suffix, size in (("_left.bin", 8_147_712), ("_right.bin", 8_147_712)):
            uploads.append(_Upload(ready + _delay(rng, 10, 900), dataset, stamp + suffix, size))
        uploads.append(_metadata(rng, dataset, stamp, ready, (5_000, 9_000), (10, 900)))
    return uploads


def _flir(rng: random.Random, start: datetime) -> list[_Upload]:
    uploads = []
    for dataset, stamp, ready in _sensor_datasets(
        rng, "flirIrCamera", start + timedelta(hours=9, minutes=5), FLIR_DATASETS, (150, 300)
    ):
        uploads.append(_Upload(ready + _delay(rng, 10, 900), dataset, f"{stamp}_ir.bin", 614_400))
        uploads.append(_metadata(rng, dataset, stamp, ready, (3_000, 6_000), (10, 900)))
    return uploads


def _scanner(rng: random.Random, start: datetime) -> list[_Upload]:
    found = _sensor_datasets(
        rng, "scanner3DTop", start + timedelta(hours=10), SCANNER_DATASETS, (300, 600)
    )
    without_east = set(
        rng.sample(range(SCANNER_DATASETS), SCANNER_DATASETS - SCANNER_DATASETS_WITH_EAST)
    )
    uploads = []
    for index, (dataset, stamp, ready) in enumerate(found):
        sides = ("west",) if index in without_east else ("west", "east")
        for side in sides:
            size = rng.randint(200_000_000, 520_000_000)
            at = ready + _delay(rng, 120, 1800)
            uploads.append(_Upload(at, dataset, f"{stamp}_{side}.ply", size))
        uploads.append(_metadata(rng, dataset, stamp, ready, (6_000, 12_000), (60, 600)))
    return uploads


def _rgb_geotiffs(rng: random.Random, start: datetime) -> list[_Upload]:
    uploads = []
    for dataset, stamp, ready in _sensor_datasets(
        rng, "RGB GeoTIFFs", start + timedelta(hours=8, minutes=30), RGB_DATASETS, (60, 180)
    ):
        for side in ("left", "right"):
            size = rng.randint(18_000_000, 26_000_000)
            at = ready + _delay(rng, 10, 600)
            uploads.append(_Upload(at, dataset, f"{stamp}_{side}.tif", size))
    return uploads


def _unrelated(rng: random.Random, start: datetime) -> list[_Upload]:
    day = start.date().isoformat()
    weather = _Dataset(f"weather - {day}", start + timedelta(hours=6))
    logger = _Dataset(f"EnvironmentLogger - {day}", start + timedelta(hours=6, minutes=1))
    notes = _Dataset("notes", start + timedelta(hours=7))
    uploads = []
    for hour in range(WEATHER_FILES):
        at = start + timedelta(hours=7 + hour) + _delay(rng, 60, 900)
        name = f"WeatherStation_SecData_{start:%Y_%m_%d}_{7 + hour:02d}00.csv"
        uploads.append(_Upload(at, weather, name, rng.randint(80_000, 120_000)))
    for hour in range(ENVIRONMENT_LOGGER_FILES):
        at = start + timedelta(hours=7 + hour, minutes=30) + _delay(rng, 0, 600)
        name = f"{start:%Y-%m-%d}_{7 + hour:02d}-30-00_environmentlogger.json"
        uploads.append(_Upload(at, logger, name, rng.randint(400_000, 700_000)))
    for number in range(1, NOTE_FILES + 1):
        at = start + timedelta(hours=8 + 2 * number) + _delay(rng, 0, 3600)
        uploads.append(_Upload(at, notes, f"field-notes-{number:02d}.txt", rng.randint(200, 4_000)))
    return uploads


def _records(uploads: Sequence[_Upload], rng: random.Random) -> list[dict[str, Any]]:
    ids = _ObjectIds(rng)
    reply_to = f"clowder.{rng.getrandbits(40):010x}"
    dataset_ids: dict[str, str] = {}
    records = []
    for upload in uploads:
        dataset = upload.dataset
        if dataset.name not in dataset_ids:
            dataset_ids[dataset.name] = ids.at(dataset.created_at)
        dataset_id = dataset_ids[dataset.name]
        file_id = ids.at(upload.at)
        published = upload.at + timedelta(seconds=1)
        msgid, jobid = ids.at(published), ids.at(published)
        properties = {
            "content_type": "application/json",
            "correlation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "reply_to": reply_to,
            "delivery_mode": 2,
        }
        body = {
            "notifies": [],
            "msgid": msgid,
            "id": file_id,
            "jobid": jobid,
            "intermediateId": file_id,
            "fileSize": str(upload.size_bytes),
            "host": HOST,
            "datasetId": dataset_id,
            "flags": "",
            "secretKey": SECRET_PLACEHOLDER,
            "routing_key": ROUTING_KEY,
            "source": {
                "id": {"resourceType": "'file", "id": file_id},
                "mimeType": _MIME_TYPES[Path(upload.filename).suffix],
                "extra": {"filename": upload.filename},
            },
            "activity": "added",
            "target": {"id": {"resourceType": "'dataset", "id": dataset_id}, "extra": {}},
        }
        records.append(
            {
                "properties": properties,
                "routing_key": ROUTING_KEY,
                "dataset_name": dataset.name,
                "body": body,
            }
        )
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Write the day as JSON Lines to standard output (or `--output PATH`)."""
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m switchboard.demo_day", description=summary)
    parser.add_argument("--date", default="2017-05-01", help="the day, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=7, help="random seed for ids and timings")
    parser.add_argument("--output", default="-", help="file to write (default: standard output)")
    options = parser.parse_args(argv)
    write_records(options.output, generate_day(options.date, options.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
