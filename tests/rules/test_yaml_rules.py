"""YAML rules: the schema compiles, and every kind of mistake is reported as path:line: reason."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from switchboard.errors import RuleLoadError
from switchboard.locations import SourceLocation
from switchboard.model import EventKind
from switchboard.rules import load_rules
from switchboard.rules.yaml_rules import rules_from_yaml


def problems_of(tmp_path: Path, text: str, name: str = "rules.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(dedent(text))
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    return [str(p) for p in caught.value.problems]


def test_a_full_rule_compiles_with_its_source_targets_and_kinds(tmp_path: Path) -> None:
    path = tmp_path / "terra.yaml"
    path.write_text(
        dedent("""\
        rules:
          - name: stereo-bin2tif
            description: Convert a capture.
            on: [dataset.file.added, "manual.*"]
            when:
              dataset.name: {prefix: "stereoTop - "}
              file.name: {suffix: ".bin"}
            require:
              dataset.files:
                where: {name: {suffix: ".bin"}}
                count: {gte: 2}
            submit:
              - {extractor: terra.stereo-rgb.bin2tif, resource: dataset}
              - {extractor: ops.audit, resource: file, via: clowder-api}
        """)
    )
    (rule,) = load_rules([path])
    assert rule.name == "stereo-bin2tif"
    assert rule.kind == "yaml"
    assert rule.source == SourceLocation(str(path), 2)
    assert rule.targets == ("terra.stereo-rgb.bin2tif", "ops.audit")
    assert rule.kinds == {EventKind.FILE_ADDED, EventKind.MANUAL_FILE, EventKind.MANUAL_DATASET}
    assert rule.description == "Convert a capture."


def test_on_defaults_to_dataset_file_added_and_yaml_on_is_not_a_boolean() -> None:
    rules, problems = rules_from_yaml("r.yaml", "- {name: a, submit: {extractor: x}}\n")
    assert problems == []
    assert rules[0].on == ("dataset.file.added",)


def test_an_empty_file_holds_no_rules() -> None:
    assert rules_from_yaml("r.yaml", "") == ([], [])


MISTAKES = [
    (
        "unknown rule key",
        """\
        - name: a
          descripton: x
          submit: {extractor: x}
        """,
        "rules.yaml:2: unknown key 'descripton' in rule 'a' (did you mean 'description'?)",
    ),
    (
        "unknown operator",
        """\
        - name: a
          when:
            file.name: {sufix: ".bin"}
          submit: {extractor: x}
        """,
        "rules.yaml:3: file.name: unknown operator 'sufix' (did you mean 'suffix'?)",
    ),
    (
        "bad regex",
        """\
        - name: a
          when:
            dataset.name:
              regex: "([0-9"
          submit: {extractor: x}
        """,
        "rules.yaml:4: dataset.name: bad regex '([0-9': unterminated character set at position 1",
    ),
    (
        "unknown template field",
        """\
        - name: a
          when: {dataset.name: {regex: '^(?P<date>\\d+)'}}
          submit:
            extractor: x
            parameters:
              day: "{day}"
        """,
        "rules.yaml:6: rule 'a': unknown template field {day} "
        "(neither a field nor a named group of a regex in 'when')",
    ),
    (
        "template with a format spec",
        """\
        - name: a
          submit: {extractor: "x-{file.size:>10}"}
        """,
        "rules.yaml:2: rule 'a': bad placeholder {file.size:>10}: use a field name only "
        "(no format specs, conversions, indexing or spaces)",
    ),
    (
        "missing submit",
        """\
        - name: a
          when: {file.name: x}
        """,
        "rules.yaml:1: rule 'a' has no submit target",
    ),
    (
        "empty extractor",
        """\
        - name: a
          submit:
            extractor: ""
        """,
        "rules.yaml:3: rule 'a': submit needs a non-empty extractor",
    ),
    (
        "missing name",
        """\
        - submit: {extractor: x}
        """,
        "rules.yaml:1: rule has no name",
    ),
    (
        "unknown field",
        """\
        - name: a
          when:
            file.title: x
          submit: {extractor: x}
        """,
        "rules.yaml:3: unknown field 'file.title' (known: event.kind, event.routing_key, "
        "event.host, event.message_id, file.id, file.name, file.mime_type, file.size, dataset.id, "
        "dataset.name, parameters.<path>, body.<path>)",
    ),
    (
        "on matching no event kind",
        """\
        - name: a
          on: dataset.fil.added
          submit: {extractor: x}
        """,
        "rules.yaml:2: rule 'a': 'on' 'dataset.fil.added' matches no event kind (known: "
        "dataset.file.added, file.created, metadata.added, manual.file, manual.dataset)",
    ),
    (
        "two operators in one test",
        """\
        - name: a
          when:
            file.name: {prefix: a, suffix: b}
          submit: {extractor: x}
        """,
        "rules.yaml:3: file.name: a test needs exactly one operator, found prefix, suffix",
    ),
    (
        "bad resource",
        """\
        - name: a
          submit:
            extractor: x
            resource: collection
        """,
        "rules.yaml:4: rule 'a': resource must be file or dataset, not 'collection'",
    ),
    (
        "duplicate key in a mapping",
        """\
        - name: a
          when:
            file.name: x
            file.name: y
          submit: {extractor: x}
        """,
        "rules.yaml:4: duplicate key 'file.name'",
    ),
    (
        "invalid YAML",
        """\
        - name: a
          submit: {extractor: x
        """,
        "rules.yaml:3: invalid YAML: while parsing a flow mapping expected ',' or '}', "
        "but got '<stream end>'",
    ),
    (
        "dataset.files outside require",
        """\
        - name: a
          when: {dataset.files: x}
          submit: {extractor: x}
        """,
        "rules.yaml:2: dataset.files can only be tested under 'require'",
    ),
    (
        "requirement without a quantifier",
        """\
        - name: a
          require:
            dataset.files:
              where: {name: {suffix: .bin}}
          submit: {extractor: x}
        """,
        "rules.yaml:4: dataset.files needs exactly one of count, any, all, none "
        "(found none of them)",
    ),
    (
        "not a list of rules",
        """\
        name: a
        """,
        "rules.yaml:1: a rule file is a list of rules, or a mapping with the key 'rules' "
        "(and 'limits')",
    ),
    (
        "a numeric operator given text",
        """\
        - name: a
          when: {file.size: {gte: "1k"}}
          submit: {extractor: x}
        """,
        "rules.yaml:2: file.size: gte needs a number, got '1k'",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_each_loader_mistake_is_reported_at_its_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    problems = problems_of(tmp_path, text)
    assert f"{tmp_path}/{expected}" in problems


def test_every_problem_of_a_file_is_reported_in_one_run(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """\
        - name: a
          when:
            file.name: {sufix: ".bin"}
            dataset.name: {regex: "(["}
          submit: {extractor: ""}
        - name: b
          unknown: 1
          submit: {extractor: "{nope}"}
        - name: ok
          submit: {extractor: fine}
        """,
    )
    lines = sorted(int(p.split(":")[1]) for p in problems)
    assert lines == [3, 4, 5, 7, 8]


def test_captures_under_not_cannot_be_used_in_templates() -> None:
    text = """\
- name: a
  when:
    not: {dataset.name: {regex: '^(?P<date>\\d+)'}}
  submit: {extractor: "x-{date}"}
"""
    _, problems = rules_from_yaml("r.yaml", text)
    assert [p.line for p in problems] == [4]
    assert "unknown template field {date}" in problems[0].reason


def test_yaml_never_constructs_python_objects() -> None:
    _, problems = rules_from_yaml("r.yaml", "- !!python/object/apply:os.system ['true']\n")
    assert problems and "invalid YAML" in problems[0].reason
