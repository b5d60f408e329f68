"""load_rules: files and folders, skipped names, duplicate names across files, one error for all."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.errors import RuleLoadError
from switchboard.rules import RuleSet, load_rules

REPO_RULES = Path(__file__).resolve().parents[2] / "rules"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folders_load_recursively_in_sorted_order_skipping_private_files(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", "- {name: b, submit: {extractor: x}}\n")
    write(tmp_path / "a" / "z.yml", "- {name: az, submit: {extractor: x}}\n")
    write(tmp_path / "c.py", "from switchboard import rule\n@rule\ndef c(e, d):\n    return None\n")
    write(tmp_path / "_draft.yaml", "- {name: draft, submit: {extractor: x}}\n")
    write(tmp_path / "__pycache__" / "x.yaml", "- {name: cached, submit: {extractor: x}}\n")
    write(tmp_path / "notes.txt", "not rules")
    rules = load_rules([tmp_path])
    assert isinstance(rules, RuleSet)
    assert rules.names() == ["az", "b", "c"]


def test_duplicate_names_across_files_are_reported_at_the_second_definition(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "- {name: same, submit: {extractor: x}}\n")
    write(tmp_path / "b.yaml", "# comment\n- {name: same, submit: {extractor: y}}\n")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([tmp_path])
    assert str(caught.value) == (
        f"{tmp_path}/b.yaml:2: duplicate rule name 'same' (first defined at {tmp_path}/a.yaml:1)"
    )


def test_problems_of_every_file_and_missing_paths_come_in_one_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "- {name: a}\n")
    write(tmp_path / "b.py", "raise RuntimeError('no')\n")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([tmp_path, tmp_path / "missing.yaml"])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/a.yaml:1: rule 'a' has no submit target",
        f"{tmp_path}/b.py:1: cannot import: RuntimeError: no",
        f"{tmp_path}/missing.yaml:0: no such file or directory",
    ]


def test_a_file_named_twice_loads_once(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", "- {name: a, submit: {extractor: x}}\n")
    assert load_rules([tmp_path, path]).names() == ["a"]


def test_the_example_rules_in_the_repository_load() -> None:
    rules = load_rules([REPO_RULES])
    assert "stereo-bin2tif" in rules
    assert {"yaml", "python"} <= {r.kind for r in rules}


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_a_file_nested_too_deeply_is_a_located_problem_not_a_crash(tmp_path, opener) -> None:
    path = write(tmp_path / "deep.yaml", "- name: deep\n  when: " + opener * 5000 + "\n")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    assert [str(p) for p in caught.value.problems] == [f"{path}:2: invalid YAML: nested too deeply"]


def test_a_duplicate_name_is_reported_even_when_the_first_rule_of_that_name_has_an_error(
    tmp_path: Path,
) -> None:
    write(tmp_path / "a.yaml", "- name: same\n  colour: blue\n  submit: {extractor: x}\n")
    write(tmp_path / "b.yaml", "- name: same\n  submit: {extractor: y}\n")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([tmp_path])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/a.yaml:2: unknown key 'colour' in rule 'same'",
        f"{tmp_path}/b.yaml:1: duplicate rule name 'same' (first defined at {tmp_path}/a.yaml:1)",
    ]


def test_two_broken_rules_of_one_name_in_one_file_are_also_a_duplicate(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", "- name: same\n- name: same\n  submit: {extractor: ''}\n")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1: rule 'same' has no submit target",
        f"{path}:2: duplicate rule name 'same' (first defined at {path}:1)",
        f"{path}:3: rule 'same': submit needs a non-empty extractor",
    ]
