"""A rule's source is one value, path and line, never a `path:line` string cut apart again."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from switchboard.errors import Problem, RuleLoadError
from switchboard.locations import NOWHERE, SourceLocation
from switchboard.rules import load_rules


def test_a_source_location_reads_as_path_colon_line_and_nowhere_reads_empty() -> None:
    assert str(SourceLocation("rules/a.yaml", 7)) == "rules/a.yaml:7"
    assert str(NOWHERE) == "" and not NOWHERE and SourceLocation("x.py", 1)
    assert Problem.at(SourceLocation("a.yaml", 3), "bad").location == SourceLocation("a.yaml", 3)


def test_a_duplicate_rule_in_a_directory_with_colons_is_reported_at_its_own_file_and_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "site:2026:12"
    folder.mkdir()
    rule = "- name: same\n  submit: {extractor: x.y, resource: file}\n"
    (folder / "a.yaml").write_text(rule)
    (folder / "b.yaml").write_text("# another\n" + rule)
    with pytest.raises(RuleLoadError) as caught:
        load_rules([folder])
    (problem,) = caught.value.problems
    assert problem.location == SourceLocation(str(folder / "b.yaml"), 2)
    assert f"first defined at {folder / 'a.yaml'}:1" in problem.reason


def test_python_rules_carry_the_line_of_their_function(tmp_path: Path) -> None:
    path = tmp_path / "my:rules.py"
    path.write_text(
        dedent(
            """
            from switchboard import rule


            @rule(on="dataset.file.added")
            def noop(event, dataset):
                return None
            """
        )
    )
    (loaded,) = load_rules([path])
    assert loaded.source == SourceLocation(str(path), 5)
