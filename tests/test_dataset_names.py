"""Dataset-name lookups: fail-fast per dataset, each event's own host, only when rules need them."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from switchboard.clowder import ClowderClient, ClowderUnreachable
from switchboard.dataset_names import DatasetNameLookup, rules_need_dataset_names
from switchboard.delays import DELAY_COUNT_HEADER
from switchboard.engine import Engine
from switchboard.errors import ClowderRejected, ClowderUnavailable
from switchboard.events import event_from_record
from switchboard.outgoing import extractor_message
from switchboard.processor import Processor
from switchboard.rules import load_rules
from switchboard.testing import FakeClowder, ListDelivery
from tests.integration.clowder_events import file_added, properties

BAD, GOOD, NEW = (f"{n:024x}" for n in (0xB0, 0xB1, 0xB2))
NAMES = {BAD: "stereoTop - bad", GOOD: "stereoTop - good", NEW: "stereoTop - new"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: connection refused


def event_of(dataset: str, n: int = 1, **body: object):
    record = {"properties": properties(n), "body": {**file_added(n, dataset=dataset), **body}}
    return event_from_record(record)


def lookup_at(url: str, key: str, clock: Clock, **options: object) -> DatasetNameLookup:
    return DatasetNameLookup(
        clowder_url=url, clowder_key=key, retries=0, cooldown_s=30, clock=clock, **options
    )


# --- fail-fast per dataset, per host only for a real outage ------------------------------------


def test_a_dataset_whose_lookup_answers_500_fails_fast_alone_and_other_datasets_are_still_asked():
    clock = Clock()
    with FakeClowder(datasets=NAMES) as fake:
        fake.failing_datasets[BAD] = 500
        lookup = lookup_at(fake.url, fake.api_key, clock)
        with pytest.raises(ClowderUnavailable, match="HTTP 500") as first:
            lookup.dataset_name(BAD)
        assert not isinstance(first.value, ClowderUnreachable)  # Clowder answered
        assert f"Clowder at {fake.url}: " in str(first.value)  # which host, for the operator
        with pytest.raises(ClowderUnavailable, match=f"failed on dataset {BAD} just now"):
            lookup.dataset_name(BAD)
        assert len(fake.requests) == 1  # the second lookup of BAD never reached Clowder
        assert lookup.dataset_name(GOOD) == NAMES[GOOD]
        assert lookup.dataset_name(NEW) == NAMES[NEW]
        del fake.failing_datasets[BAD]
        clock.now = 31.0
        assert lookup.dataset_name(BAD) == NAMES[BAD]


def test_an_unreachable_clowder_fails_fast_for_every_dataset_after_one_attempt():
    clock = Clock()
    made: list[ClowderClient] = []
    calls: list[str] = []

    class Counting(ClowderClient):
        def dataset_name(self, dataset_id: str) -> str:
            calls.append(dataset_id)
            return super().dataset_name(dataset_id)

    def factory(*args, **kwargs) -> ClowderClient:
        made.append(Counting(*args, **kwargs))
        return made[-1]

    lookup = lookup_at(closed_port_url(), "k", clock, client_factory=factory)
    with pytest.raises(ClowderUnreachable):
        lookup.dataset_name(BAD)
    with pytest.raises(ClowderUnreachable, match="unreachable just now"):
        lookup.dataset_name(GOOD)
    assert calls == [BAD]  # one attempt detected the outage for every dataset
    clock.now = 31.0
    with pytest.raises(ClowderUnreachable):
        lookup.dataset_name(GOOD)
    assert calls == [BAD, GOOD]


# --- where names are looked up -------------------------------------------------------------------


def test_without_clowder_url_names_are_looked_up_at_the_events_own_host_with_its_secret_key():
    with FakeClowder(datasets=NAMES, api_key="event-secret") as fake:
        lookup = DatasetNameLookup(clowder_key="our-own-key", retries=0)
        event = event_of(GOOD, host=fake.url, secretKey="event-secret")
        assert lookup.dataset_name(GOOD, event) == NAMES[GOOD]
    [request] = fake.requests
    assert (request.path, request.key) == (f"/api/datasets/{GOOD}", "event-secret")
    assert "our-own-key" not in repr(fake.requests)  # CLOWDER_KEY never goes to event hosts


def test_with_clowder_url_names_are_looked_up_there_whatever_host_the_event_names():
    with FakeClowder(datasets=NAMES) as fake:
        lookup = DatasetNameLookup(clowder_url=fake.url, clowder_key=fake.api_key, retries=0)
        event = event_of(GOOD, host="http://clowder.invalid", secretKey="event-secret")
        assert lookup.dataset_name(GOOD, event) == NAMES[GOOD]
        [request] = fake.requests
        assert request.key == fake.api_key


def test_with_clowder_url_and_no_clowder_key_the_events_secret_key_is_used_as_pyclowder_does():
    with FakeClowder(datasets=NAMES, api_key="event-secret") as fake:
        lookup = DatasetNameLookup(clowder_url=fake.url, retries=0)
        assert lookup.dataset_name(GOOD, event_of(GOOD, secretKey="event-secret")) == NAMES[GOOD]


@pytest.mark.parametrize("host", ["", "file:///etc/passwd", "clowder.example.org", "ftp://x/"])
def test_an_event_without_an_http_host_gets_no_lookup_when_clowder_url_is_not_set(host):
    lookup = DatasetNameLookup(retries=0)
    with pytest.raises(ClowderRejected, match="no http"):
        lookup.dataset_name(GOOD, event_of(GOOD, host=host))


def test_lookups_speak_clowder_v2_when_configured_or_when_the_event_says_so():
    with FakeClowder(datasets=NAMES, api_key="event-secret", api_version=2) as fake:
        configured = DatasetNameLookup(api_version=2, retries=0)
        by_event = DatasetNameLookup(api_version=1, retries=0)
        event = event_of(GOOD, host=fake.url, secretKey="event-secret")
        assert configured.dataset_name(GOOD, event) == NAMES[GOOD]
        v2_event = event_of(NEW, host=fake.url, secretKey="event-secret", clowderVersion="2")
        assert by_event.dataset_name(NEW, v2_event) == NAMES[NEW]
    assert [(r.path, r.key) for r in fake.requests] == [
        (f"/api/v2/datasets/{GOOD}", "event-secret"),
        (f"/api/v2/datasets/{NEW}", "event-secret"),
    ]


def test_the_event_key_never_appears_in_a_lookup_error():
    with FakeClowder(datasets=NAMES, api_key="event-secret") as fake:
        fake.fail_next(1, 500)
        lookup = DatasetNameLookup(retries=0)
        event = event_of(GOOD, host=fake.url, secretKey="event-secret")
        with pytest.raises(ClowderUnavailable) as raised:
            lookup.dataset_name(GOOD, event)
    assert "event-secret" not in str(raised.value)


# --- which rules need names ----------------------------------------------------------------------


def rules_from(tmp_path: Path, text: str, name: str = "r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_rules([str(path)])


SUBMIT = "  submit: {extractor: x.y}\n"


@pytest.mark.parametrize(
    "rule",
    [
        "- name: a\n  when: {dataset.name: {prefix: stereoTop}}\n" + SUBMIT,
        "- name: a\n  when: {any: [{file.name: {suffix: .tif}},"
        " {not: {dataset.name: {exists: true}}}]}\n" + SUBMIT,
        "- name: a\n  submit: {extractor: x.y, parameters: {out: 'Full Field - {dataset.name}'}}\n",
        "- name: a\n  submit: {extractor: 'x.{dataset.name}'}\n",
        "- name: a\n  collect: {key: 'k/{dataset.name}', member: '{file.id}', until: {count: 2}}\n"
        + SUBMIT,
    ],
)
def test_a_yaml_rule_testing_or_templating_dataset_name_needs_names(tmp_path, rule):
    assert rules_need_dataset_names(rules_from(tmp_path, rule))


def test_yaml_rules_that_never_read_dataset_name_need_no_names(tmp_path):
    rules = rules_from(
        tmp_path,
        "- name: a\n  when: {file.name: {suffix: .tif}, dataset.id: {exists: true}}\n"
        "  submit: {extractor: 'x.{file.name}', parameters: {d: '{dataset.id}'}}\n"
        "- name: b\n  enabled: false\n  when: {dataset.name: {prefix: s}}\n" + SUBMIT,
    )
    assert not rules_need_dataset_names(rules)


def test_a_python_rule_may_read_dataset_name_so_it_needs_names(tmp_path):
    path = tmp_path / "py_rules.py"
    path.write_text(
        "from switchboard import rule, submit\n\n\n@rule(on='dataset.file.added')\n"
        "def anything(event, dataset):\n    return None\n"
    )
    assert rules_need_dataset_names(load_rules([str(path)]))


# --- the processor: lookups only when needed; per-dataset delays; the cap ------------------------


def processor_for(store, tmp_path: Path, rules_text: str, names, **kwargs) -> Processor:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text)
    engine = Engine(load_rules([str(path)]))
    return Processor(engine, store, extractor_message, dataset_names=names, **kwargs)


BY_NAME = """\
- name: by-name
  when: {dataset.name: {prefix: "stereoTop - "}}
  submit: {extractor: terra.stereo, resource: file}
"""
BY_FILE = """\
- name: by-file
  when: {file.name: {suffix: ".tif"}}
  submit: {extractor: terra.tif, resource: file}
"""


def delivery(tag: int, dataset: str, delays: int = 0, **body: object) -> ListDelivery:
    props = properties(tag)
    if delays:
        props["headers"] = {DELAY_COUNT_HEADER: delays}
    return ListDelivery.from_record(
        tag, {"properties": props, "body": {**file_added(tag, dataset=dataset), **body}}
    )


def test_events_do_not_wait_on_clowder_when_no_loaded_rule_reads_dataset_name(store, tmp_path):
    with FakeClowder(datasets=NAMES) as fake:
        fake.fail_next(100, 500)
        names = DatasetNameLookup(clowder_url=fake.url, clowder_key=fake.api_key, retries=0)
        processor = processor_for(store, tmp_path, BY_FILE, names)
        result = processor.process([delivery(1, GOOD), delivery(2, BAD)])
        processor.engine.close()
    assert [d.delivery_tag for d in result.committed] == [1, 2]
    assert result.delayed == [] and len(result.submissions) == 2
    assert fake.requests == []


def test_without_clowder_url_a_rule_on_dataset_name_routes_by_the_name_from_the_events_host(
    store, tmp_path
):
    with FakeClowder(datasets=NAMES) as fake:
        names = DatasetNameLookup(retries=0)
        processor = processor_for(store, tmp_path, BY_NAME, names)
        result = processor.process([delivery(1, GOOD, host=fake.url, secretKey=fake.api_key)])
        processor.engine.close()
    assert [s.rule for s in result.submissions] == ["by-name"]
    with store.unit_of_work() as uow:
        assert uow.dataset(GOOD).name == NAMES[GOOD]


def test_one_failing_dataset_delays_only_its_own_events_and_new_datasets_still_go_through(
    store, tmp_path
):
    with FakeClowder(datasets=NAMES) as fake:
        fake.failing_datasets[BAD] = 500
        names = DatasetNameLookup(
            clowder_url=fake.url, clowder_key=fake.api_key, retries=0, cooldown_s=600
        )
        processor = processor_for(store, tmp_path, BY_NAME, names)
        first = processor.process([delivery(1, BAD), delivery(2, GOOD)])
        second = processor.process([delivery(3, BAD), delivery(4, NEW)])
        processor.engine.close()
    assert [d.delivery_tag for d, _ in first.delayed] == [1]
    assert [d.delivery_tag for d in first.committed] == [2]
    assert [d.delivery_tag for d, _ in second.delayed] == [3]
    assert [d.delivery_tag for d in second.committed] == [4]  # a new dataset does not wait
    assert len(second.submissions) == 1
    assert [r.path for r in fake.requests].count(f"/api/datasets/{BAD}") == 1  # then fail-fast


def test_an_event_delayed_max_delays_times_is_dead_lettered_with_the_last_reason(store, tmp_path):
    with FakeClowder(datasets=NAMES) as fake:
        fake.failing_datasets[BAD] = 500
        names = DatasetNameLookup(clowder_url=fake.url, clowder_key=fake.api_key, retries=0)
        processor = processor_for(store, tmp_path, BY_NAME, names, max_delays=3)
        result = processor.process([delivery(1, BAD, delays=2), delivery(2, BAD, delays=3)])
        processor.engine.close()
    assert [d.delivery_tag for d, _ in result.delayed] == [1]
    [(dead, reason)] = result.poison
    assert dead.delivery_tag == 2
    assert reason.startswith("delayed 3 times waiting for Clowder: Clowder unavailable looking up")
    assert "HTTP 500" in reason
    assert result.committed == []
    assert json.dumps(reason)  # fits a header
