"""The demo day: deterministic, TERRA-shaped, with exactly the counts its docstring promises."""

from __future__ import annotations

import io
import json
import re
from collections import Counter, defaultdict
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from switchboard import demo_day
from switchboard.demo_day import DAY_PATH, generate_day
from switchboard.events import event_from_record
from switchboard.model import EventKind
from switchboard.traffic import dumps_record, read_records

FIXTURE = Path(__file__).parent / "fixtures" / "v1_dataset_file_added.json"
OBJECT_ID = re.compile(r"[0-9a-f]{24}")
STAMP = r"2017-05-01__\d{2}-\d{2}-\d{2}-\d{3}"


@pytest.fixture(scope="module")
def day() -> list[dict]:
    return generate_day()


def files_by_dataset(records: list[dict]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for record in records:
        found[record["dataset_name"]].append(record["body"]["source"]["extra"]["filename"])
    return found


def datasets_of(records: list[dict], sensor: str) -> dict[str, list[str]]:
    return {
        name: files
        for name, files in files_by_dataset(records).items()
        if name.startswith(f"{sensor} - ")
    }


def test_the_committed_day_file_is_exactly_what_the_generator_writes() -> None:
    expected = "".join(dumps_record(record) + "\n" for record in generate_day())
    assert DAY_PATH.read_text(encoding="utf-8") == expected


def test_the_committed_day_file_reads_back_as_the_generated_records() -> None:
    assert [record for _, record in read_records(DAY_PATH)] == generate_day()


def test_the_module_entry_point_prints_the_day_as_json_lines() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert demo_day.main(["--date", "2017-05-01", "--seed", "7"]) == 0
    assert out.getvalue() == DAY_PATH.read_text(encoding="utf-8")


def test_the_same_date_and_seed_give_the_same_day(day: list[dict]) -> None:
    assert generate_day("2017-05-01", 7) == day


def test_another_seed_gives_other_ids_but_the_same_shape(day: list[dict]) -> None:
    other = generate_day("2017-05-01", 8)
    assert len(other) == len(day)
    assert {r["body"]["msgid"] for r in other}.isdisjoint(r["body"]["msgid"] for r in day)


def test_another_date_names_its_datasets_by_that_date() -> None:
    names = {r["dataset_name"] for r in generate_day("2018-06-02")}
    assert "weather - 2018-06-02" in names
    assert all("2017-05-01" not in name for name in names)


def test_the_day_holds_exactly_the_documented_number_of_events(day: list[dict]) -> None:
    assert len(day) == demo_day.TOTAL_EVENTS == 203
    assert len(files_by_dataset(day)) == 78


def test_every_record_has_the_shape_of_the_v1_fixture(day: list[dict]) -> None:
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for record in day:
        assert list(record) == ["properties", "routing_key", "dataset_name", "body"]
        assert list(record["body"]) == list(fixture["body"])
        assert list(record["properties"]) == list(fixture["properties"])
        assert list(record["body"]["source"]) == list(fixture["body"]["source"])
        assert "datasetname" not in record["body"]


def test_every_record_parses_as_a_file_added_event(day: list[dict]) -> None:
    events = [event_from_record(record) for record in day]
    assert {event.kind for event in events} == {EventKind.FILE_ADDED}
    assert all(event.file is not None and event.file.size for event in events)


def test_ids_are_object_ids_and_message_ids_are_unique(day: list[dict]) -> None:
    bodies = [record["body"] for record in day]
    for body in bodies:
        for key in ("msgid", "jobid", "id", "datasetId"):
            assert OBJECT_ID.fullmatch(body[key]), key
        assert body["id"] == body["intermediateId"] == body["source"]["id"]["id"]
        assert body["datasetId"] == body["target"]["id"]["id"]
    assert len({b["msgid"] for b in bodies}) == len(bodies)
    assert len({b["id"] for b in bodies}) == len(bodies)
    all_ids = [b["msgid"] for b in bodies] + [b["jobid"] for b in bodies]
    assert len(set(all_ids)) == len(all_ids)


def test_each_dataset_name_has_one_dataset_id(day: list[dict]) -> None:
    ids_by_name = defaultdict(set)
    for record in day:
        ids_by_name[record["dataset_name"]].add(record["body"]["datasetId"])
    assert all(len(ids) == 1 for ids in ids_by_name.values())
    assert len({next(iter(ids)) for ids in ids_by_name.values()}) == len(ids_by_name)


def test_sizes_are_strings_as_clowder_v1_sends_them(day: list[dict]) -> None:
    assert all(record["body"]["fileSize"].isdigit() for record in day)


def test_twenty_stereo_datasets_each_get_both_bins_and_metadata(day: list[dict]) -> None:
    stereo = datasets_of(day, "stereoTop")
    assert len(stereo) == 20
    for name, files in stereo.items():
        stamp = name.removeprefix("stereoTop - ")
        assert re.fullmatch(STAMP, stamp)
        assert sorted(files) == sorted(
            [f"{stamp}_left.bin", f"{stamp}_right.bin", f"{stamp}_metadata.json"]
        )


def test_fifteen_flir_datasets_each_get_an_ir_bin_and_metadata(day: list[dict]) -> None:
    flir = datasets_of(day, "flirIrCamera")
    assert len(flir) == 15
    for name, files in flir.items():
        stamp = name.removeprefix("flirIrCamera - ")
        assert re.fullmatch(STAMP, stamp)
        assert sorted(files) == sorted([f"{stamp}_ir.bin", f"{stamp}_metadata.json"])


def test_eight_of_ten_scanner_datasets_get_both_ply_files(day: list[dict]) -> None:
    scanner = datasets_of(day, "scanner3DTop")
    assert len(scanner) == 10
    complete = 0
    for name, files in scanner.items():
        stamp = name.removeprefix("scanner3DTop - ")
        assert f"{stamp}_west.ply" in files
        assert f"{stamp}_metadata.json" in files
        complete += f"{stamp}_east.ply" in files
        assert len(files) == len(set(files))
    assert complete == demo_day.EXPECTED_FIRINGS["ply2las"] == 8


def test_thirty_rgb_geotiff_datasets_each_get_a_left_and_right_tif(day: list[dict]) -> None:
    rgb = datasets_of(day, "RGB GeoTIFFs")
    assert len(rgb) == 30
    for name, files in rgb.items():
        stamp = name.removeprefix("RGB GeoTIFFs - ")
        assert sorted(files) == [f"{stamp}_left.tif", f"{stamp}_right.tif"]


def test_unrelated_traffic_is_twenty_five_files_of_other_kinds(day: list[dict]) -> None:
    datasets = files_by_dataset(day)
    unrelated = {
        name: files
        for name, files in datasets.items()
        if name in ("weather - 2017-05-01", "EnvironmentLogger - 2017-05-01", "notes")
    }
    assert sum(len(files) for files in unrelated.values()) == 25
    suffixes = Counter(f.rsplit(".", 1)[1] for files in unrelated.values() for f in files)
    assert suffixes == {"csv": 10, "json": 10, "txt": 5}
    assert all(
        not f.endswith(("_metadata.json", ".bin", ".ply", ".tif"))
        for files in unrelated.values()
        for f in files
    )


def test_file_events_of_different_datasets_interleave(day: list[dict]) -> None:
    positions: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(day):
        positions[record["dataset_name"]].append(index)
    interrupted = [
        name
        for name, at in positions.items()
        if name.startswith("stereoTop") and at[-1] - at[0] + 1 > len(at)
    ]
    assert len(interrupted) >= 10


def test_events_are_in_publish_order(day: list[dict]) -> None:
    seconds = [int(record["body"]["msgid"][:8], 16) for record in day]
    assert seconds == sorted(seconds)


def test_the_left_geotiffs_of_the_day_fill_the_full_field_collection_once(day: list[dict]) -> None:
    from switchboard.rules import load_rules

    rgb = datasets_of(day, "RGB GeoTIFFs")
    lefts = [name for files in rgb.values() for name in files if name.endswith("_left.tif")]
    [mosaic] = load_rules([Path(__file__).parents[1] / "rules" / "collections.yaml"])
    assert mosaic.collect.until.count == len(lefts) == 30
    assert demo_day.EXPECTED_FIRINGS["fieldmosaic"] == 1
