"""The engine: decisions with reasons, isolation of failing and hanging Python rules, job ids."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from switchboard.engine import Engine
from switchboard.jobids import job_id
from switchboard.model import EventKind, FileInfo, submit
from switchboard.rules import Rule, RuleSet, rule
from switchboard.rules.yaml_rules import rules_from_yaml
from tests.rules.events import make_event, view_of


def yaml_rules(text: str) -> list[Rule]:
    rules, problems = rules_from_yaml("test.yaml", text)
    assert problems == []
    return rules


STEREO = """\
- name: stereo-bin2tif
  when:
    dataset.name: {prefix: "stereoTop - "}
    file.name: {suffix: ".bin"}
  require:
    dataset.files: {where: {name: {suffix: ".bin"}}, count: {gte: 2}}
  submit: {extractor: terra.stereo-rgb.bin2tif, resource: dataset}
- name: left-tif
  on: [dataset.file.added, manual.file]
  when:
    dataset.name: {regex: '^RGB GeoTIFFs - (?P<date>\\d{4}-\\d{2}-\\d{2})__'}
    file.name: {iglob: "*_LEFT.TIF"}
    file.size: {gte: 1000}
  submit:
    extractor: terra.plotclipper
    resource: file
    parameters: {date: "{date}", name: "{file.name}", fixed: [1, "{{x}}"]}
"""


@contextmanager
def running(rules: list[Rule], timeout_s: float = 0.5) -> Iterator[Engine]:
    engine = Engine(RuleSet(rules), rule_timeout_s=timeout_s)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine(yaml_rules(STEREO), rule_timeout_s=0.5)
    yield engine
    engine.close()


def test_a_matching_rule_decides_with_reasons_and_rendered_parameters(engine: Engine) -> None:
    event = make_event()
    evaluation = engine.evaluate(event, view_of(event))
    (decision,) = evaluation.matched
    assert decision.rule == "left-tif"
    assert decision.reasons[1] == "file.name iglob '*_LEFT.TIF': held"
    (request,) = decision.requests
    assert request.extractor == "terra.plotclipper"
    assert dict(request.parameters) == {
        "date": "2017-05-01",
        "name": "2017-05-01__10-20-30-123_left.tif",
        "fixed": [1, "{x}"],
    }


def test_a_dataset_requirement_waits_for_enough_files(engine: Engine) -> None:
    first = make_event("a.bin", dataset_name="stereoTop - 2017-05-01")
    assert engine.evaluate(first, view_of(first)).matched == []
    second = make_event("b.bin", dataset_name="stereoTop - 2017-05-01", file_id="file-2")
    evaluation = engine.evaluate(second, view_of(second, first.file))
    assert [d.rule for d in evaluation.matched] == ["stereo-bin2tif"]
    assert "(2 of 2 files match)" in evaluation.matched[0].reasons[-1]


def test_a_failed_condition_says_which_and_why(engine: Engine) -> None:
    event = make_event(size=10)
    assert engine.evaluate(event, view_of(event)).decisions == ()  # the size range rules it out
    decisions = {d.rule: d for d in engine.explain(event, view_of(event)).decisions}
    assert not decisions["left-tif"].matched
    assert decisions["left-tif"].reasons[-1] == "file.size gte 1000: failed (file.size is 10)"


def test_explain_gives_every_rule_a_decision_with_reasons(engine: Engine) -> None:
    event = make_event(kind=EventKind.MANUAL_DATASET)
    decisions = engine.explain(event, view_of(event)).decisions
    assert [d.rule for d in decisions] == ["stereo-bin2tif", "left-tif"]
    assert all(d.reasons and not d.matched for d in decisions)
    assert "is not selected" in decisions[0].reasons[0]


def test_explain_shows_every_condition_even_after_one_failed(engine: Engine) -> None:
    event = make_event("x.tif", dataset_name="flir - 1")
    stereo = engine.explain(event, view_of(event)).decisions[0]
    assert len(stereo.reasons) == 3
    assert all("failed" in r for r in stereo.reasons)


def test_job_ids_are_stable_and_follow_the_resource(engine: Engine) -> None:
    event = make_event()
    first = list(engine.evaluate(event, view_of(event)).submissions)
    again = list(engine.evaluate(event, view_of(event)).submissions)
    assert first == again
    (submission,) = first
    assert submission.resource_type == "file"
    assert submission.resource_id == "file-1"
    assert submission.job_id == job_id("left-tif", "terra.plotclipper", "file", "file-1", "0")


def test_a_manual_submission_gets_a_new_generation_per_message(engine: Engine) -> None:
    one = make_event(kind=EventKind.MANUAL_FILE, message_id="m-1")
    two = make_event(kind=EventKind.MANUAL_FILE, message_id="m-2")
    (a,) = list(engine.evaluate(one, view_of(one)).submissions)
    (b,) = list(engine.evaluate(two, view_of(two)).submissions)
    assert a.job_id == job_id("left-tif", "terra.plotclipper", "file", "file-1", "m-1")
    assert a.job_id != b.job_id


def test_a_file_resource_without_a_file_is_that_rules_error() -> None:
    (r,) = yaml_rules("- {name: f, submit: {extractor: x, resource: file}}\n")
    with running([r]) as engine:
        event = make_event(with_file=False)
        (decision,) = engine.evaluate(event, view_of(event)).decisions
    assert decision.error == "resource: file, but the event has no file"


def test_a_template_field_without_a_value_is_that_rules_error() -> None:
    (r,) = yaml_rules(
        "- {name: p, submit: {extractor: x, parameters: {r: '{parameters.reason}'}}}\n"
    )
    with running([r]) as engine:
        event = make_event()
        (decision,) = engine.evaluate(event, view_of(event)).decisions
    assert decision.error == "template field {parameters.reason} has no value for this event"


@rule
def sends_dataset(event, dataset):
    return submit("terra.ok", resource="dataset", parameters={"n": dataset.count(suffix=".tif")})


@rule
def raises(event, dataset):
    raise KeyError(f"no luck with {event.body['secretKey']}")


@rule
def returns_junk(event, dataset):
    return "terra.x"


def test_a_raising_python_rule_is_isolated_and_secrets_are_redacted() -> None:
    with running([raises, sends_dataset, returns_junk]) as engine:
        event = make_event(body={"secretKey": "s3cr3t-key"})
        decisions = {d.rule: d for d in engine.evaluate(event, view_of(event)).decisions}
    assert decisions["sends_dataset"].matched
    assert decisions["sends_dataset"].requests[0].parameters == {"n": 1}
    error = decisions["raises"].error
    assert error is not None and error.startswith("raised KeyError at ")
    assert "s3cr3t-key" not in error and "<redacted>" in error
    assert decisions["returns_junk"].error == (
        "returned str; expected None, a submit(...) or a list of them"
    )


@rule
def returns_nothing(event, dataset):
    return None


def test_evaluating_many_without_unmatched_keeps_only_the_decisions_that_matched_or_failed() -> (
    None
):
    rules = [*yaml_rules(STEREO), raises, returns_nothing, sends_dataset]
    with running(rules) as engine:
        event = make_event(file_name="x.bin", dataset_name="stereoTop - 2017")
        pairs = [(event, view_of(event))]
        everything = engine.evaluate_many(pairs)[0]
        acted_on = engine.evaluate_many(pairs, unmatched=False)[0]
    assert {d.rule for d in everything.decisions} >= {"stereo-bin2tif", "returns_nothing"}
    assert [d.rule for d in acted_on.decisions] == ["raises", "sends_dataset"]
    assert list(acted_on.submissions) == list(everything.submissions)
    assert len(acted_on.submissions) == 1


@rule
def exits(event, dataset):
    sys.exit(3)


@rule
def interrupts(event, dataset):
    raise KeyboardInterrupt


@rule
def closes_generator(event, dataset):
    raise GeneratorExit


def test_sys_exit_and_keyboard_interrupt_in_a_python_rule_are_its_error_not_the_engines() -> None:
    rules = [exits, interrupts, closes_generator, sends_dataset]
    with running(rules) as engine:
        event = make_event()
        first = {d.rule: d for d in engine.evaluate(event, view_of(event)).decisions}
        second = {d.rule: d for d in engine.evaluate(event, view_of(event)).decisions}
    for decisions in (first, second):
        assert re.fullmatch(
            r"raised SystemExit at \S+test_engine\.py:\d+: 3", decisions["exits"].error or ""
        )
        assert decisions["interrupts"].error is not None
        assert decisions["interrupts"].error.startswith("raised KeyboardInterrupt at ")
        assert decisions["closes_generator"].error is not None
        assert decisions["closes_generator"].error.startswith("raised GeneratorExit at ")
        assert decisions["sends_dataset"].matched


def test_a_hanging_python_rule_times_out_while_the_others_still_decide() -> None:
    release = threading.Event()

    @rule
    def hangs(event, dataset):
        release.wait(30)

    try:
        with running([hangs, sends_dataset], timeout_s=0.2) as engine:
            event = make_event()
            first = {d.rule: d for d in engine.evaluate(event, view_of(event)).decisions}
            second = {d.rule: d for d in engine.evaluate(event, view_of(event)).decisions}
            assert engine.stuck_rules == ["hangs"]
    finally:
        release.set()
    assert first["hangs"].error == "timed out after 0.2 s"
    assert first["sends_dataset"].matched
    assert second["hangs"].error is not None and "still running" in second["hangs"].error
    assert second["sends_dataset"].matched


def test_a_rule_runs_again_once_its_timed_out_call_has_ended() -> None:
    release = threading.Event()
    calls: list[str] = []

    @rule
    def slow_once(event, dataset):
        calls.append(event.message_id)
        if len(calls) == 1:
            release.wait(30)
        return submit("terra.late")

    with running([slow_once], timeout_s=0.2) as engine:
        event = make_event()
        assert engine.evaluate(event, view_of(event)).decisions[0].error is not None
        release.set()
        while engine.stuck_rules:
            threading.Event().wait(0.01)
        assert engine.evaluate(event, view_of(event)).matched


def test_python_rules_see_the_dataset_view_including_this_file() -> None:
    @rule
    def counts(event, dataset):
        assert dataset.count(suffix=".bin") == 2
        return [submit("a"), submit("b", resource="file")]

    with running([counts]) as engine:
        event = make_event("b.bin")
        evaluation = engine.evaluate(event, view_of(event, FileInfo("f0", "a.bin")))
        submissions = list(evaluation.submissions)
    assert [(s.extractor, s.resource_type, s.resource_id) for s in submissions] == [
        ("a", "dataset", "dataset-1"),
        ("b", "file", "file-1"),
    ]


def test_disabled_rules_never_run_but_are_explained() -> None:
    (r,) = yaml_rules("- {name: off, enabled: false, submit: {extractor: x}}\n")
    with running([r]) as engine:
        event = make_event()
        assert engine.evaluate(event, view_of(event)).decisions == ()
        assert engine.explain(event, view_of(event)).decisions[0].reasons == ("rule is disabled",)


def test_python_rules_on_either_side_of_a_hanging_one_decide_in_rule_order() -> None:
    release = threading.Event()

    @rule
    def hangs(event, dataset):
        release.wait(30)

    try:
        with running([raises, hangs, sends_dataset, returns_junk], timeout_s=0.2) as engine:
            event = make_event()
            evaluated = engine.evaluate(event, view_of(event)).decisions
            explained = engine.explain(event, view_of(event)).decisions
    finally:
        release.set()
    assert [d.rule for d in evaluated] == ["raises", "hangs", "sends_dataset", "returns_junk"]
    assert [d.matched for d in evaluated] == [False, False, True, False]
    assert evaluated[0].error is not None and "raised" in evaluated[0].error
    assert evaluated[1].error == "timed out after 0.2 s"
    assert evaluated[3].error is not None and "returned str" in evaluated[3].error
    assert [d.rule for d in explained] == [d.rule for d in evaluated]
    assert explained[1].error is not None and "still running" in explained[1].error
    assert explained[2].matched


def test_evaluating_a_batch_decides_as_evaluating_each_event_in_turn() -> None:
    seen: list[str] = []

    @rule
    def records_order(event, dataset):
        seen.append(event.message_id)
        return submit("terra.seen", resource="file")

    rules = [*yaml_rules(STEREO), records_order, sends_dataset, raises]
    events = [
        make_event(name, message_id=f"msg-{k}", dataset_name="stereoTop - 2017")
        for k, name in enumerate(["a.bin", "b.bin", "c.txt"])
    ]
    views = [view_of(events[0]), view_of(events[1], FileInfo("f0", "a.bin")), view_of(events[2])]
    with running(rules) as engine:
        one_by_one = [engine.evaluate(e, v) for e, v in zip(events, views, strict=True)]
        order_one_by_one = list(seen)
        seen.clear()
        batched = engine.evaluate_many(list(zip(events, views, strict=True)))
    assert batched == one_by_one
    assert seen == order_one_by_one == ["msg-0", "msg-1", "msg-2"]
    assert [d.rule for d in batched[1].matched] == [
        "stereo-bin2tif",
        "records_order",
        "sends_dataset",
    ]


def test_a_hanging_python_rule_in_a_batch_times_out_once_and_is_skipped_after() -> None:
    release = threading.Event()

    @rule
    def hangs(event, dataset):
        release.wait(30)

    try:
        with running([hangs, sends_dataset], timeout_s=0.2) as engine:
            events = [make_event(message_id=f"msg-{k}") for k in range(3)]
            batched = engine.evaluate_many([(e, view_of(e)) for e in events])
    finally:
        release.set()
    hanging = [e.decisions[0].error for e in batched]
    assert hanging[0] == "timed out after 0.2 s"
    assert all(error is not None and "still running" in error for error in hanging[1:])
    assert all(e.decisions[1].matched for e in batched)
