"""Debounce: a burst of matching events submits once, with the latest event, after the quiet."""

from __future__ import annotations

from pathlib import Path

from switchboard.debounce import DebounceSweeper
from switchboard.store.sql import SqlStore
from tests.conftest import FakeClock
from tests.controls.helpers import EXTRACTOR, events, parameters, processor

DEBOUNCED = f"""\
- name: after-the-burst
  when: {{file.name: {{suffix: ".tif"}}}}
  debounce: 30s
  rerun: every_event
  submit: {{extractor: {EXTRACTOR}, parameters: {{last: "{{file.name}}"}}}}
"""


def held(store: SqlStore) -> list[tuple[str, str, int]]:
    with store.unit_of_work() as uow:
        return [(h.rule, h.key, h.events) for h in uow.debounces.pending()]


def test_a_burst_submits_once_with_the_latest_event_after_the_quiet_period(
    tmp_path: Path, store: SqlStore, clock: FakeClock
) -> None:
    made = processor(tmp_path, store, DEBOUNCED)
    sweeper = DebounceSweeper(made)
    made.process(events(1, 2))
    clock.advance(20)
    made.process(events(3, start_tag=3))  # within 30 s of the last: pushes the deadline back
    clock.advance(20)
    assert sweeper.sweep() == []
    assert held(store) == [("after-the-burst", "dataset:65a1f0a0e4b0a1b2c3d4e500", 3)]
    clock.advance(11)
    assert len(sweeper.sweep()) == 1
    assert parameters(store) == [{"last": "plot-00003_left.tif"}]
    assert held(store) == []
    assert sweeper.sweep() == []  # nothing left to fire


def test_events_of_different_datasets_are_debounced_apart(
    tmp_path: Path, store: SqlStore, clock: FakeClock
) -> None:
    made = processor(tmp_path, store, DEBOUNCED)
    made.process(events(1) + events(2, start_tag=2, dataset="other-dataset"))
    clock.advance(31)
    assert len(DebounceSweeper(made).sweep()) == 2


def test_a_redelivered_event_after_firing_does_not_submit_again(
    tmp_path: Path, store: SqlStore, clock: FakeClock
) -> None:
    made = processor(tmp_path, store, DEBOUNCED)
    made.process(events(1))
    clock.advance(31)
    assert len(DebounceSweeper(made).sweep()) == 1
    result = made.process(events(1, start_tag=9))
    assert result.duplicates == 1
    assert held(store) == []


def test_a_held_submission_whose_rule_lost_its_debounce_is_dropped(
    tmp_path: Path, store: SqlStore, clock: FakeClock
) -> None:
    made = processor(tmp_path, store, DEBOUNCED)
    made.process(events(1))
    changed = processor(tmp_path, store, DEBOUNCED.replace("  debounce: 30s\n", ""))
    clock.advance(31)
    assert DebounceSweeper(changed).sweep() == []
    assert held(store) == []


def test_a_replay_submits_each_held_burst_once_its_recording_ends(
    tmp_path: Path, store: SqlStore
) -> None:
    from switchboard.engine import Engine
    from switchboard.outgoing import extractor_message
    from switchboard.replay import replay
    from switchboard.rules import load_rules
    from tests.integration.clowder_events import record

    (tmp_path / "rules.yaml").write_text(DEBOUNCED)
    engine = Engine(load_rules([str(tmp_path / "rules.yaml")]))
    try:
        records = [record(n) for n in range(5)] + [record(9, dataset="other-dataset")]
        summary = replay(records, engine, store, extractor_message)
    finally:
        engine.close()
    assert summary.per_rule == {"after-the-burst": 2}
    assert held(store) == []


def test_a_python_rule_debounces_the_same_way(
    tmp_path: Path, store: SqlStore, clock: FakeClock
) -> None:
    from switchboard.engine import Engine
    from switchboard.model import submit
    from switchboard.outgoing import extractor_message
    from switchboard.processor import Processor
    from switchboard.rules import RuleSet, rule

    @rule(debounce="10s", rerun="every_event")
    def after_upload(event, dataset):
        return submit(EXTRACTOR, parameters={"files": len(dataset.files)})

    engine = Engine(RuleSet([after_upload]))
    try:
        made = Processor(engine, store, extractor_message)
        made.process(events(1, 2, 3))
        clock.advance(11)
        assert len(DebounceSweeper(made).sweep()) == 1
    finally:
        engine.close()
    assert parameters(store) == [{"files": 3}]
