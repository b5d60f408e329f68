"""One member's record, as the pool's actors build it (no Ray needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switchboard.ray_batch.examples import FileFacts
from switchboard.ray_batch.worker import load_processor, member_record


class Returns:
    def __init__(self, value: Any) -> None:
        self.value = value

    def process_file(self, path: str) -> Any:
        return self.value


MEMBER = {"id": "file-1", "name": "a.tif", "path": "/data/a.tif"}


def test_a_result_that_is_not_a_json_dict_fails_its_member_alone() -> None:
    not_a_dict = member_record(MEMBER, Returns([1, 2]))
    not_json = member_record(MEMBER, Returns({"when": object()}))

    assert not_a_dict["ok"] is False
    assert not_a_dict["error"] == "TypeError: process_file must return a dict, got list"
    assert not_json["ok"] is False and not_json["error"].startswith("TypeError:")
    assert member_record(MEMBER, Returns({"n": 1})) == {
        "member": "file-1",
        "name": "a.tif",
        "path": "/data/a.tif",
        "ok": True,
        "result": {"n": 1},
    }


def test_the_example_processor_loads_by_reference_and_reports_file_facts(tmp_path: Path) -> None:
    here = tmp_path / "plot_left.tif"
    here.write_bytes(b"1234")
    facts = load_processor("switchboard.ray_batch.examples:FileFacts", {})

    assert isinstance(facts, FileFacts)
    assert facts.process_file(str(here)) == {
        "name": "plot_left.tif",
        "suffix": ".tif",
        "size_bytes": 4,
    }
    assert facts.process_file(str(tmp_path / "elsewhere.tif"))["size_bytes"] is None
