"""Legacy rulechecker rules: rules.py + rule_extractor_map.json loaded as is, and run end to end."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rule_utils
from switchboard.clowder import ClowderClient
from switchboard.engine import Engine
from switchboard.errors import RuleLoadError
from switchboard.events import parse_event
from switchboard.model import EventKind, FileInfo
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.replay import RecordedDelivery, RecordedNames, ReplaySummary, replay
from switchboard.rules import load_rules
from switchboard.rules.legacy import LegacyContext, rules_from_legacy
from switchboard.rules.legacy_paths import FilePaths
from switchboard.settings import Settings
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from switchboard.testing import FakeClowder
from switchboard.traffic import read_records
from tests.rules.events import make_event, view_of

REPO_RULES = Path(__file__).resolve().parents[1] / "rules"
SHIPPED = REPO_RULES / "legacy"
FIXTURES = Path(__file__).parent / "fixtures"
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


def stamp_of(capture: int) -> str:
    return f"{DATE}__10-{capture // 60:02d}-{capture % 60:02d}-000"


def path_of(capture: int, side: str = "left") -> str:
    """Where TERRA's Clowder kept that GeoTIFF on disk (what its file list reports)."""
    stamp = stamp_of(capture)
    return f"{SITES}/ua-mac/Level_1/rgb_geotiff/{DATE}/{stamp}/{stamp}_{side}.tif"


def clowder_files(capture: int) -> list[dict[str, Any]]:
    """Clowder v1's file list of capture `capture`'s dataset, with paths (an admin's key)."""
    return [
        {
            "id": f"f{capture:05d}{side[0]}",
            "filename": f"{stamp_of(capture)}_{side}.tif",
            "filepath": path_of(capture, side),
            "contentType": "image/tiff",
            "date-created": "Mon May 01 10:20:30 CDT 2017",
            "size": "1024",
        }
        for side in ("left", "right")
    ]


def geotiff(capture: int, side: str = "left", *, message: str | None = None) -> dict[str, Any]:
    """A v1 `dataset.file.added` record for one GeoTIFF of capture `capture` (no path in it)."""
    stamp = stamp_of(capture)
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

    def __init__(
        self,
        url: str,
        rules: Path,
        sites: Path,
        schema: str | None = None,
        file_paths: FilePaths | None = None,
    ) -> None:
        context = LegacyContext(
            mounted_paths={SITES: str(sites)}, extractor_name="switchboard", file_paths=file_paths
        )
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
def clowder() -> Iterator[FakeClowder]:
    """A Clowder whose admin key lists the first 40 captures' files with their paths on disk."""
    with FakeClowder() as fake:
        for capture in range(40):
            fake.dataset_files[f"ds{capture:05d}"] = clowder_files(capture)
        yield fake


def clowder_paths(fake: FakeClowder, template: str = "") -> FilePaths:
    return FilePaths(ClowderClient(fake.url, fake.api_key, retries=0, backoff_s=0), template)


@pytest.fixture
def pipeline_for(tmp_path: Path, sites: Path) -> Iterator[Any]:
    made: list[Pipeline] = []
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    upgrade(url)

    def make(file_paths: FilePaths | None = None, **thresholds: Any) -> Pipeline:
        rules = legacy_folder(tmp_path / f"rules{len(made)}", **thresholds)
        made.append(Pipeline(url, rules, sites, file_paths=file_paths))
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
    assert rule.source.path == str(SHIPPED / "rules.py")
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
    pipeline_for: Any, sites: Path, clowder: FakeClowder
) -> None:
    raw_captures(sites, 4)
    pipeline = pipeline_for(clowder_paths(clowder), min_datasets=3, tolerance_pct=100)
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
    assert json.loads(written.read_text()) == [path_of(n) for n in range(4)]  # sorted


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


# --- files[].filepath: Clowder's file list, the template, or the bare name ----------------------


def day_progress(pipeline: Pipeline) -> dict[str, str]:
    """The day's recorded {file id: file path}, as rule_utils keeps it."""
    with rule_utils.connect(str(pipeline.store.engine.url)):
        return dict(rule_utils.retrieveProgressFromDB(DAY_KEY).get("ids", {}))


def test_a_v1_event_without_a_path_records_the_path_clowder_lists(
    pipeline_for: Any, sites: Path, clowder: FakeClowder
) -> None:
    raw_captures(sites, 10)
    pipeline = pipeline_for(clowder_paths(clowder), min_datasets=10)
    summary = pipeline.feed(geotiff(0), geotiff(1, "right"), geotiff(1))
    assert summary.rule_errors == []
    assert day_progress(pipeline) == {"f00000l": path_of(0), "f00001l": path_of(1)}
    listed = [r for r in clowder.requests if r.path.endswith("/files")]
    assert [r.path for r in listed] == [f"/api/datasets/ds0000{n}/files" for n in (0, 1)]


def test_without_clowder_the_template_gives_the_paths(pipeline_for: Any, sites: Path) -> None:
    raw_captures(sites, 2)
    template = "/mnt/clowder/{dataset_name}/{filename}"
    pipeline = pipeline_for(FilePaths(None, template), min_datasets=2)
    assert pipeline.feed(geotiff(0), geotiff(1)).per_target[MOSAIC] == 1
    (row,) = mosaic_rows(pipeline.store)
    written = json.loads(Path(row.body["parameters"]["file_paths"]).read_text())
    assert written == [
        f"/mnt/clowder/RGB GeoTIFFs - {stamp_of(n)}/{stamp_of(n)}_left.tif" for n in (0, 1)
    ]


def test_a_file_clowder_lists_without_a_path_gets_the_templates(clowder: FakeClowder) -> None:
    clowder.dataset_files["ds1"] = [{"id": "f1", "filename": "a.tif"}]  # not an admin's key
    paths = clowder_paths(clowder, "/data/{dataset_id}/{file_id}/{filename}")
    event = make_event("a.tif", file_id="f1", dataset_id="ds1")
    paths.ensure(event)
    assert paths.path("ds1", "f1", "a.tif", "RGB - d") == "/data/ds1/f1/a.tif"


def test_with_neither_clowder_nor_a_template_other_files_get_their_bare_name(
    tmp_path: Path,
) -> None:
    rule = capture_rule(tmp_path, "{}")
    event = make_event("x_left.tif", file_id="f2", body={"filepath": "/carried/x_left.tif"})
    rule(event, view_of(event, FileInfo("f1", "x_right.tif")))
    resource = rule.function.function.__globals__["calls"][0][4]
    assert [f["filepath"] for f in resource["files"]] == ["x_right.tif", "/carried/x_left.tif"]


def test_a_datasets_listing_is_cached_until_a_file_it_lacks_arrives(clowder: FakeClowder) -> None:
    clowder.dataset_files["ds1"] = [{"id": "f1", "filename": "a.tif", "filepath": "/d/a.tif"}]
    paths = clowder_paths(clowder)
    first = make_event("a.tif", file_id="f1", dataset_id="ds1")
    assert paths.prepare([first, first]) == {}
    assert paths.prepare([first]) == {}
    assert len(clowder.requests) == 1
    clowder.dataset_files["ds1"].append({"id": "f2", "filename": "b.tif", "filepath": "/d/b.tif"})
    assert paths.prepare([make_event("b.tif", file_id="f2", dataset_id="ds1")]) == {}
    assert len(clowder.requests) == 2
    assert paths.path("ds1", "f2", "b.tif", "") == "/d/b.tif"


def test_a_dataset_clowder_cannot_list_is_delayed_and_listed_once_clowder_is_back(
    clowder: FakeClowder,
) -> None:
    clowder.dataset_files["ds1"] = [{"id": "f1", "filename": "a.tif", "filepath": "/d/a.tif"}]
    paths = FilePaths(
        ClowderClient(clowder.url, clowder.api_key, retries=0, backoff_s=0), cooldown_s=0
    )
    event = make_event("a.tif", file_id="f1", dataset_id="ds1")
    clowder.fail_next(1, 503)
    waiting = paths.prepare([event])
    assert list(waiting) == ["ds1"]
    assert "Clowder unavailable" in waiting["ds1"]
    assert paths.path("ds1", "f1", "a.tif", "") is None  # no bare name handed out as a path
    assert paths.prepare([event]) == {}
    assert paths.path("ds1", "f1", "a.tif", "") == "/d/a.tif"


def test_a_dataset_clowder_refuses_falls_back_to_the_template_without_delay(
    clowder: FakeClowder,
) -> None:
    paths = clowder_paths(clowder, "/data/{filename}")
    event = make_event("a.tif", file_id="f1", dataset_id="unknown-to-clowder")
    assert paths.prepare([event]) == {}
    assert paths.path("unknown-to-clowder", "f1", "a.tif", "") == "/data/a.tif"


def test_an_unprepared_rule_during_a_clowder_outage_is_that_rules_error(
    tmp_path: Path, clowder: FakeClowder
) -> None:
    (tmp_path / "rules.py").write_text(GOOD_RULE)
    (tmp_path / "rule_extractor_map.json").write_text(GOOD_MAP)
    engine = Engine(load_rules([tmp_path], legacy=LegacyContext(file_paths=clowder_paths(clowder))))
    clowder.fail_next(1, 503)
    event = make_event(file_id="f00000l", dataset_id="ds00000")
    (decision,) = engine.evaluate(event, view_of(event)).decisions
    engine.close()
    assert "cannot list the dataset's file paths" in (decision.error or "")


def test_nothing_is_looked_up_while_no_legacy_rule_is_loaded(
    clowder: FakeClowder, sql_store: SqlStore, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- name: any\n  submit: {extractor: x}\n")
    engine = Engine(load_rules([str(rules)]))
    paths = clowder_paths(clowder)
    processor = Processor(engine, sql_store, extractor_message, file_paths=paths)
    record = json.loads((FIXTURES / "v1_dataset_file_added.json").read_text())
    try:
        result = processor.process([RecordedDelivery.from_record(1, record)])
    finally:
        engine.close()
    assert [d.delivery_tag for d in result.committed] == [1]
    assert clowder.requests == []


def test_only_dataset_events_legacy_rules_see_are_looked_up(clowder: FakeClowder) -> None:
    paths = clowder_paths(clowder)
    body = json.loads((FIXTURES / "v1_dataset_file_added.json").read_text())["body"]
    file_event = make_event(kind=EventKind.FILE_CREATED, dataset_id="ds00001")
    assert paths.prepare([parse_event(json.dumps(body).encode(), {}), file_event]) == {}
    assert [r.path for r in clowder.requests] == [f"/api/datasets/{body['datasetId']}/files"]


def test_an_unknown_placeholder_in_the_template_is_a_load_problem() -> None:
    context = LegacyContext(file_paths=FilePaths(None, "/data/{dataset}/{filename}"))
    with pytest.raises(RuleLoadError) as caught:
        load_rules([SHIPPED], legacy=context)
    (problem,) = caught.value.problems
    assert "SWITCHBOARD_LEGACY_FILE_PATH" in str(problem)
    assert "{dataset}" in str(problem)


def test_settings_choose_clowder_listing_the_template_or_neither() -> None:
    assert LegacyContext.from_settings(Settings()).file_paths is None
    templated = Settings.from_env({"SWITCHBOARD_LEGACY_FILE_PATH": "/data/{filename}"})
    paths = LegacyContext.from_settings(templated).file_paths
    assert paths is not None and paths.listing is None
    assert paths.template == "/data/{filename}"
    with_clowder = Settings(clowder_url="https://clowder.example.org", clowder_key="k")
    paths = LegacyContext.from_settings(with_clowder).file_paths
    assert isinstance(paths, FilePaths) and isinstance(paths.listing, ClowderClient)


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


def test_the_processor_delays_a_legacy_event_until_clowder_can_list_its_dataset(
    pipeline_for: Any, sites: Path, clowder: FakeClowder
) -> None:
    raw_captures(sites, 10)
    paths = FilePaths(
        ClowderClient(clowder.url, clowder.api_key, retries=0, backoff_s=0), cooldown_s=0
    )
    pipeline = pipeline_for(paths, min_datasets=10)
    record = geotiff(0)
    names = RecordedNames({"ds00000": record["dataset_name"]})
    processor = Processor(
        pipeline.engine, pipeline.store, extractor_message, dataset_names=names, file_paths=paths
    )
    delivery = RecordedDelivery.from_record(1, record)

    clowder.fail_next(1, 503)
    first = processor.process([delivery])
    assert [d.delivery_tag for d, _ in first.delayed] == [1]
    assert first.committed == []
    assert day_progress(pipeline) == {}

    second = processor.process([delivery])
    assert second.delayed == []
    assert [d.delivery_tag for d in second.committed] == [1]
    assert day_progress(pipeline) == {"f00000l": path_of(0)}
