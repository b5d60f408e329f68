"""Re-run policies decide the job id's generation: resubmits when asked, never duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.errors import RuleLoadError
from switchboard.model import submit
from switchboard.rules import load_rules, rule
from switchboard.store.sql import SqlStore
from tests.controls.helpers import EXTRACTOR, copies, events, job_ids, parameters, processor

PER_FILE_PARAMETERS = f"""\
- name: per-dataset
  when: {{file.name: {{suffix: ".tif"}}}}
  {{rerun}}
  submit: {{extractor: {EXTRACTOR}, parameters: {{file: "{{file.name}}"}}}}
"""


def rules_with(rerun: str) -> str:
    return PER_FILE_PARAMETERS.replace("{rerun}", rerun)


def test_once_submits_a_dataset_once_however_many_files_arrive(
    tmp_path: Path, sql_store: SqlStore
) -> None:
    processor(tmp_path, sql_store, rules_with("")).process(events(1, 2, 3))
    assert len(job_ids(sql_store)) == 1
    assert parameters(sql_store) == [{"file": "plot-00001_left.tif"}]


def test_every_event_submits_once_per_event_and_not_again_on_redelivery(
    tmp_path: Path, sql_store: SqlStore
) -> None:
    made = processor(tmp_path, sql_store, rules_with("rerun: every_event"))
    made.process(events(1, 2, 3))
    made.process(events(2, 3, start_tag=10))  # redelivered: same message ids
    assert len(job_ids(sql_store)) == 3
    assert {p["file"] for p in parameters(sql_store)} == {
        "plot-00001_left.tif",
        "plot-00002_left.tif",
        "plot-00003_left.tif",
    }


def test_a_key_policy_submits_once_per_distinct_rendered_key(
    tmp_path: Path, sql_store: SqlStore
) -> None:
    yaml = rules_with('rerun: {key: "{file.name}"}')
    made = processor(tmp_path, sql_store, yaml)
    made.process(events(1, 2))
    # the same file names again under new message ids: same keys, no new job
    result = made.process(copies(1, 2))
    assert result.duplicates == 0 and len(result.committed) == 2
    assert len(job_ids(sql_store)) == 2


def test_on_new_files_makes_a_new_generation_only_when_the_matching_files_grew(
    tmp_path: Path, sql_store: SqlStore
) -> None:
    yaml = f"""\
- name: when-tifs-grow
  rerun: on_new_files
  require: {{dataset.files: {{where: {{name: {{suffix: ".tif"}}}}, count: {{gte: 2}}}}}}
  submit: {{extractor: {EXTRACTOR}}}
"""
    made = processor(tmp_path, sql_store, yaml)
    made.process(events(1))  # one tif: the requirement fails
    assert job_ids(sql_store) == []
    made.process(events(2, start_tag=2))  # two: generation files:2
    made.process(events(3, start_tag=3))  # three: generation files:3
    made.process(copies(3))  # the same file sent again: the set did not grow
    other = events(4, start_tag=5, name="notes.txt")  # a file the require does not match
    made.process(other)
    assert len(job_ids(sql_store)) == 2


def test_a_python_rule_takes_the_same_policies(tmp_path: Path, sql_store: SqlStore) -> None:
    @rule(rerun={"key": "{file.id}"})
    def per_file(event, dataset):
        return submit(EXTRACTOR, resource="dataset")

    from switchboard.engine import Engine
    from switchboard.outgoing import extractor_message
    from switchboard.processor import Processor
    from switchboard.rules import RuleSet

    engine = Engine(RuleSet([per_file]))
    try:
        Processor(engine, sql_store, extractor_message).process(events(1, 2, 2))
    finally:
        engine.close()
    assert len(job_ids(sql_store)) == 2


def test_a_bad_policy_in_python_is_a_value_error_naming_the_rule() -> None:
    with pytest.raises(ValueError, match="rule 'broken': rerun must be once, on_new_files"):

        @rule(name="broken", rerun="sometimes")
        def broken(event, dataset):
            return None


def test_bad_controls_are_refused_at_load_with_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- name: a\n"
        "  rerun: sometimes\n"
        "  debounce: soon\n"
        "  submit: {extractor: x}\n"
        "- name: b\n"
        '  rerun: {key: "{file.nope}"}\n'
        "  submit: {extractor: x}\n"
    )
    with pytest.raises(RuleLoadError) as caught:
        load_rules([str(path)])
    shown = [str(p) for p in caught.value.problems]
    assert shown[0].startswith(f"{path}:2: rule 'a': rerun must be once")
    assert shown[1].startswith(f"{path}:3: rule 'a': debounce: bad duration 'soon'")
    assert shown[2].startswith(f"{path}:6: rule 'b': unknown template field {{file.nope}}")


def test_a_once_rule_whose_parameters_differ_per_event_warns_what_collapses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_with(""))
    [loaded] = load_rules([str(path)])
    [warning] = loaded.warnings
    assert warning.startswith(f"{path}:1: rule 'per-dataset': rerun once: parameters use ")
    assert "{file.name}" in warning and "collapse" in warning
    path.write_text(rules_with("rerun: every_event"))
    assert load_rules([str(path)])["per-dataset"].warnings == ()


def test_a_capture_of_the_dataset_name_does_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- name: by-date\n"
        "  when: {dataset.name: {regex: '^RGB - (?P<date>\\d{4}-\\d{2}-\\d{2})'}}\n"
        '  submit: {extractor: x, parameters: {date: "{date}"}}\n'
    )
    assert load_rules([str(path)])["by-date"].warnings == ()


def test_a_file_rule_may_use_the_file_s_fields_under_once_without_a_warning(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- name: per-file\n"
        '  submit: {extractor: x, resource: file, parameters: {f: "{file.name}"}}\n'
        "- name: per-event\n"
        '  submit: {extractor: x, resource: file, parameters: {m: "{event.message_id}"}}\n'
    )
    loaded = load_rules([str(path)])
    assert loaded["per-file"].warnings == ()
    assert "{event.message_id}" in loaded["per-event"].warnings[0]
    assert "only the first event per file submits" in loaded["per-event"].warnings[0]
