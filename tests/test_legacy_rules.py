"""Legacy rulechecker rules: rules.py + rule_extractor_map.json loaded as is, and run end to end."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.engine import Engine
from switchboard.errors import RuleLoadError
from switchboard.outgoing import extractor_message
from switchboard.replay import ReplaySummary, replay
from switchboard.rules import load_rules
from switchboard.rules.legacy import LegacyContext, rules_from_legacy
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.traffic import read_records
from tests.rules.events import make_event, view_of

REPO_RULES = Path(__file__).resolve().parents[1] / "rules"
SHIPPED = REPO_RULES / "legacy"
DEMO_DAY = Path(__file__).resolve().parents[1] / "switchboard" / "demo" / "day.jsonl"
SITES = "/home/clowder/sites"
DATE = "2017-05-01"
MOSAIC = "terra.geotiff.fieldmosaic"
DAY_KEY = f"Full Field -- RGB GeoTIFFs - {DATE}"
_ids = itertools.count(1)


# --- helpers (also used by tests/integration/test_legacy_pg.py) --------------------------------


def legacy_folder(folder: Path, **thresholds: Any) -> Path:
    """A copy of the shipped legacy rules, its map entry carrying `thresholds` if given."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHIPPED / "rules.py", folder / "rules.py")
    rulemap = json.loads((SHIPPED / "rule_extractor_map.json").read_text())
    rulemap["fullFieldMosaicStitcher"].update(thresholds)
    (folder / "rule_extractor_map.json").write_text(json.dumps(rulemap, indent=2))
    return folder


def raw_captures(sites: Path, count: int) -> Path:
    """`count` raw stereoTop captures for DATE under a local copy of the TERRA sites tree."""
    day = sites / "ua-mac" / "raw_data" / "stereoTop" / DATE
    day.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (day / f"{DATE}__10-{n // 60:02d}-{n % 60:02d}-000").mkdir(exist_ok=True)
    return day


def geotiff(capture: int, side: str = "left", *, message: str | None = None) -> dict[str, Any]:
    """A v1 `dataset.file.added` record for one GeoTIFF of capture `capture`, with its path."""
    stamp = f"{DATE}__10-{capture // 60:02d}-{capture % 60:02d}-000"
    filename = f"{stamp}_{side}.tif"
    file_id = f"f{capture:05d}{side[0]}"
    dataset_id = f"ds{capture:05d}"
    return {
        "routing_key": "clowder.dataset.file.added",
        "dataset_name": f"RGB GeoTIFFs - {stamp}",
        "properties": {"content_type": "application/json", "reply_to": "clowder.a1b2c3"},
        "body": {
            "msgid": message or f"msg-{next(_ids)}",
            "id": file_id,
            "datasetId": dataset_id,
            "host": "https://clowder.example.org",
            "secretKey": "event-secret-key",
            "fileSize": "1024",
            "routing_key": "clowder.dataset.file.added",
            "filepath": f"{SITES}/ua-mac/Level_1/rgb_geotiff/{DATE}/{stamp}/{filename}",
            "source": {
                "id": {"resourceType": "'file", "id": file_id},
                "mimeType": "image/tiff",
                "extra": {"filename": filename},
            },
            "target": {"id": {"resourceType": "'dataset", "id": dataset_id}, "extra": {}},
        },
    }


def mosaic_rows(store: SqlStore) -> list[Any]:
    return [r for r in store.recent_submissions(1000) if r.submission.extractor == MOSAIC]


class Pipeline:
    """Processor + engine + store over legacy rules, fed one batch per call."""

    def __init__(self, url: str, rules: Path, sites: Path, schema: str | None = None) -> None:
        context = LegacyContext(mounted_paths={SITES: str(sites)}, extractor_name="switchboard")
        self.engine = Engine(load_rules([rules], legacy=context))
        self.store = SqlStore(url, schema=schema)

    def feed(self, *records: dict[str, Any]) -> ReplaySummary:
        return replay(records, self.engine, self.store, extractor_message, batch_size=1)

    def close(self) -> None:
        self.engine.close()
        self.store.close()


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    return tmp_path / "sites"


@pytest.fixture
def pipeline_for(tmp_path: Path, sites: Path) -> Iterator[Any]:
    made: list[Pipeline] = []
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    upgrade(url)

    def make(**thresholds: Any) -> Pipeline:
        rules = legacy_folder(tmp_path / f"rules{len(made)}", **thresholds)
        made.append(Pipeline(url, rules, sites))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close()


# --- loading -----------------------------------------------------------------------------------


def test_a_rulechecker_module_beside_its_map_loads_as_legacy_rules() -> None:
    rules = load_rules([SHIPPED])
    (rule,) = rules
    assert rule.name == "fullFieldMosaicStitcher"
    assert rule.kind == "legacy"
    assert rule.source.startswith(f"{SHIPPED / 'rules.py'}:")
    assert {k.value for k in rule.kinds} == {"dataset.file.added", "manual.dataset"}


def test_the_whole_rules_folder_still_loads_with_the_legacy_example_in_it() -> None:
    rules = load_rules([REPO_RULES])
    assert "fullFieldMosaicStitcher" in rules
    assert "stereo-bin2tif" in rules


def test_module_functions_the_map_does_not_name_are_not_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.py").write_text(
        "def named(extractor, connector, host, secret_key, resource, rulemap):\n"
        "    return {}\n\n"
        "def helper(extractor, connector, host, secret_key, resource, rulemap):\n"
        "    return {}\n"
    )
    (tmp_path / "rule_extractor_map.json").write_text('{"named": {"extractors": {"x": {}}}}')
    assert load_rules([tmp_path]).names() == ["named"]


GOOD_RULE = "def r(extractor, connector, host, secret_key, resource, rulemap):\n    return {}\n"
GOOD_MAP = '{"r": {"extractors": {"x": {}}}}'
MAP = "rule_extractor_map.json"


@pytest.mark.parametrize(
    ("module", "rulemap", "where", "reason"),
    [
        (GOOD_RULE, '{"r": {"extractors": {"x": {}}},\n  oops}', f"{MAP}:2", "invalid JSON"),
        (GOOD_RULE, "[]", f"{MAP}:1", "must be a JSON object"),
        (GOOD_RULE, '{\n  "r": {"extractors": {}}\n}', f"{MAP}:2", '"extractors" must'),
        (
            GOOD_RULE,
            '{\n  "r": {"extractors": {"x": {}}},\n  "gone": {"extractors": {"y": {}}}\n}',
            f"{MAP}:3",
            "'gone' is not defined in",
        ),
        (
            GOOD_RULE,
            '{"r": {"extractors": {"x": {"extract_level": "plot"}}}}',
            f"{MAP}:1",
            "extract_level must be 'dataset' or 'file'",
        ),
        ("\n\ndef r(resource):\n    return {}\n", GOOD_MAP, "rules.py:3", "must take (extractor,"),
        ("import os\n\ndef r(:\n", GOOD_MAP, "rules.py:3", "cannot import: SyntaxError"),
        ("import no_such_module_anywhere\n", GOOD_MAP, "rules.py:1", "ModuleNotFoundError"),
    ],
)
def test_a_broken_legacy_module_or_map_is_refused_with_path_line_reason(
    tmp_path: Path, module: str, rulemap: str, where: str, reason: str
) -> None:
    (tmp_path / "rules.py").write_text(module)
    (tmp_path / "rule_extractor_map.json").write_text(rulemap)
    with pytest.raises(RuleLoadError) as caught:
        load_rules([tmp_path])
    shown = [str(p) for p in caught.value.problems]
    assert any(s.startswith(f"{tmp_path / where}: ") and reason in s for s in shown), shown


# --- the call: arguments in, submissions out ---------------------------------------------------


def capture_rule(tmp_path: Path, answer: str, *, level: str = "dataset") -> Any:
    """A legacy rule that records its arguments and returns the Python expression `answer`."""
    (tmp_path / "rules.py").write_text(
        "calls = []\n\n"
        "def seen(extractor, connector, host, secret_key, resource, rulemap):\n"
        "    calls.append((extractor, connector, host, secret_key, resource, rulemap))\n"
        f"    return {answer}\n"
    )
    extractors = {"ex.one": {"extract_level": level}, "ex.two": {}}
    (tmp_path / "rule_extractor_map.json").write_text(
        json.dumps({"seen": {"extractors": extractors}})
    )
    context = LegacyContext(
        host="https://clowder.local", secret_key="settings-secret", mounted_paths={"/a": "/b"}
    )
    rules, problems = rules_from_legacy(tmp_path / "rules.py", context)
    assert problems == []
    return rules[0]


def test_a_legacy_rule_gets_pyclowders_dataset_resource_and_the_settings(tmp_path: Path) -> None:
    rule = capture_rule(tmp_path, '{"ex.one": {"process": False, "parameters": {}}}')
    event = make_event("x_left.tif", file_id="f1", dataset_id="ds1", dataset_name="RGB - d")
    assert rule(event, view_of(event)) == []
    ((extractor, connector, host, secret, resource, rulemap),) = rule.function.function.__globals__[
        "calls"
    ]
    assert extractor.extractor_info["name"] == "switchboard"
    assert connector.mounted_paths == {"/a": "/b"}
    assert (host, secret) == ("https://clowder.local", "settings-secret")
    assert rulemap == {"extractors": {"ex.one": {"extract_level": "dataset"}, "ex.two": {}}}
    assert resource["type"] == "dataset"
    assert resource["id"] == "ds1"
    assert resource["dataset_info"] == {"id": "ds1", "name": "RGB - d"}
    assert resource["triggering_file"] == "x_left.tif"
    assert [(f["id"], f["filename"], f["filepath"]) for f in resource["files"]] == [
        ("f1", "x_left.tif", "x_left.tif")
    ]


def test_every_extractor_answered_with_process_true_gets_its_parameters(tmp_path: Path) -> None:
    answer = (
        '{"ex.one": {"process": True, "parameters": {"a": 1}},'
        ' "ex.two": {"process": True, "parameters": "{\\"b\\": 2}"}}'
    )
    rule = capture_rule(tmp_path, answer, level="file")
    event = make_event(file_id="f1", dataset_id="ds1")
    requests = rule(event, view_of(event))
    assert [(r.extractor, r.resource, dict(r.parameters)) for r in requests] == [
        ("ex.one", "file", {"a": 1}),
        ("ex.two", "dataset", {"b": 2}),
    ]


def test_an_answer_naming_an_unlisted_extractor_is_that_rules_error(tmp_path: Path) -> None:
    rule = capture_rule(tmp_path, '{"ex.typo": {"process": True, "parameters": {}}}')
    engine = Engine([rule])
    event = make_event()
    (decision,) = engine.evaluate(event, view_of(event)).decisions
    engine.close()
    assert not decision.matched
    assert "ex.typo" in (decision.error or "")


def test_a_secret_in_a_legacy_rules_exception_is_not_reported(tmp_path: Path) -> None:
    (tmp_path / "rules.py").write_text(
        "def leaky(extractor, connector, host, secret_key, resource, rulemap):\n"
        "    raise ValueError('could not log in with ' + secret_key)\n"
    )
    (tmp_path / "rule_extractor_map.json").write_text('{"leaky": {"extractors": {"x": {}}}}')
    context = LegacyContext(secret_key="settings-secret-1234")
    engine = Engine(load_rules([tmp_path], legacy=context))
    event = make_event()
    (decision,) = engine.evaluate(event, view_of(event)).decisions
    engine.close()
    assert "settings-secret-1234" not in (decision.error or "")
    assert "<redacted>" in (decision.error or "")
    assert f"{tmp_path / 'rules.py'}:2" in (decision.error or "")


# --- the shipped full-field rule, end to end (SQLite store, processor, engine) ----------------


def test_the_mosaic_waits_for_the_tolerance_then_fires_once_with_the_sorted_paths(
    pipeline_for: Any, sites: Path
) -> None:
    raw_captures(sites, 4)
    pipeline = pipeline_for(min_datasets=3, tolerance_pct=100)
    summary = pipeline.feed(*(geotiff(n) for n in (3, 1, 2)))
    assert summary.rule_errors == []
    assert summary.per_target[MOSAIC] == 0  # 3 of 4 raw captures is 75 %
    summary = pipeline.feed(geotiff(0))
    assert summary.rule_errors == []
    assert summary.per_target[MOSAIC] == 1
    (row,) = mosaic_rows(pipeline.store)
    assert row.body["rulechecked"] is True
    parameters = row.body["parameters"]
    assert parameters["output_dataset"] == f"Full Field - {DATE}"
    written = Path(parameters["file_paths"])
    assert written.parent == sites / "ua-mac" / "Level_1" / "fullfield" / DATE
    paths = json.loads(written.read_text())
    assert paths == sorted(paths)
    assert [Path(p).name for p in paths] == [
        f"{DATE}__10-00-{n:02d}-000_left.tif" for n in range(4)
    ]


def test_the_minimum_count_holds_back_a_day_that_is_already_complete(
    pipeline_for: Any, sites: Path
) -> None:
    raw_captures(sites, 2)
    pipeline = pipeline_for(min_datasets=3, tolerance_pct=100)
    assert pipeline.feed(geotiff(0), geotiff(1)).per_target[MOSAIC] == 0
    assert pipeline.feed(geotiff(2)).per_target[MOSAIC] == 1


def test_later_events_of_a_fired_day_submit_nothing_more(pipeline_for: Any, sites: Path) -> None:
    raw_captures(sites, 2)
    pipeline = pipeline_for(min_datasets=2, tolerance_pct=100)
    first, second = geotiff(0), geotiff(1)
    assert pipeline.feed(first, second).per_target[MOSAIC] == 1
    again = pipeline.feed(second)  # redelivered: the same message id
    assert again.duplicates == 1
    resent = geotiff(1)  # the same file announced again under a new message id
    later = pipeline.feed(resent, geotiff(0, "right"), geotiff(1, "right"))
    assert later.rule_errors == []
    assert later.per_target[MOSAIC] == 0
    assert len(mosaic_rows(pipeline.store)) == 1


def test_an_empty_raw_directory_is_the_rules_error_and_the_member_is_still_kept(
    pipeline_for: Any, sites: Path
) -> None:
    pipeline = pipeline_for(min_datasets=1, tolerance_pct=100)
    summary = pipeline.feed(geotiff(0))
    assert summary.per_target[MOSAIC] == 0
    assert len(summary.rule_errors) == 1
    assert "no raw data in" in summary.rule_errors[0]
    raw_captures(sites, 1)  # the filesystem is back: the day's next event completes it
    assert pipeline.feed(geotiff(0, "right")).per_target[MOSAIC] == 1


def test_the_shipped_rule_sends_nothing_on_the_demo_day(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    pipeline = Pipeline(url, SHIPPED, tmp_path / "sites")
    try:
        records = [record for _, record in read_records(DEMO_DAY)]
        summary = replay(records, pipeline.engine, pipeline.store, extractor_message)
    finally:
        pipeline.close()
    assert summary.rule_errors == []
    assert sum(summary.per_target.values()) == 0
