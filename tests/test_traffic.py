"""Recorded traffic: JSON Lines records read back exactly as written, bad lines named by line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from switchboard.errors import MalformedEvent
from switchboard.events import event_from_record
from switchboard.model import EventKind
from switchboard.traffic import dumps_record, read_records, write_records

FIXTURE = Path(__file__).parent / "fixtures" / "v1_dataset_file_added.json"


def a_record(number: int = 0) -> dict:
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    body = fixture["body"] | {"msgid": f"msg-{number}"}
    return {
        "properties": fixture["properties"],
        "routing_key": "our.queue",
        "dataset_name": "stereoTop - 2017-05-01__10-20-30-123",
        "body": body,
    }


def test_records_written_are_read_back_equal_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    records = [a_record(n) for n in range(3)]
    assert write_records(path, records) == 3
    assert list(read_records(path)) == [(1, records[0]), (2, records[1]), (3, records[2])]


def test_each_record_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    write_records(path, [a_record(1), a_record(2)])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert lines[0] == dumps_record(a_record(1))


def test_non_ascii_text_is_written_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    record = a_record() | {"dataset_name": "Feld Ärger Mai"}
    write_records(path, [record])
    assert "Feld Ärger Mai" in path.read_text(encoding="utf-8")
    assert next(read_records(path))[1] == record


def test_blank_lines_are_skipped_but_still_counted(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_text("\n" + dumps_record(a_record()) + "\n\n", encoding="utf-8")
    assert [number for number, _ in read_records(path)] == [2]


def test_records_can_be_written_to_an_open_stream() -> None:
    stream = io.StringIO()
    assert write_records(stream, [a_record()]) == 1
    assert json.loads(stream.getvalue()) == a_record()


def test_writing_replaces_an_existing_file_completely(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    write_records(path, [a_record(n) for n in range(5)])
    write_records(path, [a_record(9)])
    assert [r["body"]["msgid"] for _, r in read_records(path)] == ["msg-9"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traffic.jsonl"]


def test_a_record_read_back_parses_into_an_event(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    write_records(path, [a_record(4)])
    _, record = next(read_records(path))
    event = event_from_record(record)
    assert event.kind is EventKind.FILE_ADDED
    assert event.message_id == "msg-4"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not valid JSON: Expecting property name enclosed in double quotes"),
        (b"[1, 2]", "a record must be a JSON object"),
        (b'{"properties": {}}', 'a record needs a "body" object'),
        (b'{"body": "text"}', 'a record needs a "body" object'),
        (b'{"body": {}, "properties": []}', '"properties" must be an object'),
        (b'{"body": {}, "routing_key": 5}', '"routing_key" must be a string'),
        (b'{"body": {"a": "\xff"}}', "not UTF-8"),
    ],
)
def test_a_bad_line_is_refused_naming_path_and_line(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(dumps_record(a_record()).encode() + b"\n" + line + b"\n")
    records = read_records(path)
    assert next(records)[0] == 1
    with pytest.raises(MalformedEvent) as caught:
        next(records)
    assert caught.value.reason.startswith(f"{path}:2: {reason}")


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(MalformedEvent, match=r"absent\.jsonl: cannot read"):
        list(read_records(path))
