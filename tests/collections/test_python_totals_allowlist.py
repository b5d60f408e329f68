"""`python:` totals in YAML reach only the rules' own files and allowlisted callables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.collections.callables import CallableRefused, resolve
from switchboard.collections.totals import count_files
from switchboard.engine import Engine
from switchboard.errors import RuleLoadError, SettingsError
from switchboard.rules import load_rules
from switchboard.settings import Settings
from tests.rules.events import make_event, view_of


def rule_text(target: str, args: str = "{}") -> str:
    return (
        "- name: total\n"
        "  when: {file.name: {suffix: .tif}}\n"
        "  collect:\n"
        "    key: k\n"
        "    member: '{file.id}'\n"
        "    until:\n"
        "      fraction:\n"
        f"        of: {{python: '{target}', args: {args}}}\n"
        "  submit: {extractor: x}\n"
    )


def problems_of(path: Path, allowlist: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path], python_allowlist=allowlist)
    return [str(p) for p in caught.value.problems]


def test_check_refuses_os_system_with_path_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWITCHBOARD_PYTHON_ALLOWLIST", raising=False)
    (tmp_path / "r.yaml").write_text(rule_text("os:system", "{command: 'id > {file.id}'}"))
    result = CliRunner().invoke(main, ["check", "r.yaml"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "r.yaml:8: rule 'total': collect: python 'os:system' is not allowed: only a file beside "
        "the rule ('helpers.py:function') or a callable listed in SWITCHBOARD_PYTHON_ALLOWLIST "
        "can be used",
        "1 problem(s); no rules loaded",
    ]


def test_a_refused_module_is_never_imported(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "sneaky_module_h7.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "r.yaml"
    path.write_text(rule_text("sneaky_module_h7:anything"))
    [problem] = problems_of(path)
    assert "is not allowed" in problem
    assert "sneaky_module_h7" not in sys.modules


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            "../up.py:total",
            "../up.py must be a path relative to the rule file's folder, without '..'",
        ),
        (
            "/etc/up.py:total",
            "/etc/up.py must be a path relative to the rule file's folder, without '..'",
        ),
        ("link/up.py:total", "link/up.py leads out of the rule file's folder"),
    ],
)
def test_a_python_file_outside_the_rule_files_folder_is_refused(
    tmp_path: Path, target: str, reason: str
) -> None:
    rules, outside = tmp_path / "rules", tmp_path / "outside"
    rules.mkdir()
    outside.mkdir()
    (outside / "up.py").write_text("def total():\n    return 1\n")
    (rules / "link").symlink_to(outside, target_is_directory=True)
    path = rules / "r.yaml"
    path.write_text(rule_text(target))
    assert problems_of(path) == [
        f"{path}:8: rule 'total': collect: python {target!r} is not allowed: {reason}"
    ]


def test_a_helper_file_beside_the_rule_file_works_with_event_data_in_its_arguments(
    tmp_path: Path,
) -> None:
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "expected.py").write_text("def total(name):\n    return len(name)\n")
    path = tmp_path / "r.yaml"
    path.write_text(rule_text("helpers/expected.py:total", "{name: '{file.name}'}"))
    engine = Engine(load_rules([path]))
    try:
        event = make_event("abcd.tif")
        [collected] = engine.evaluate(event, view_of(event)).collects
        assert collected.total.function(**collected.total.args) == 8
    finally:
        engine.close()


def test_count_files_is_allowed_by_default_and_counts(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for n in range(3):
        (raw / f"{n}.bin").write_text("")
    path = tmp_path / "r.yaml"
    path.write_text(
        rule_text("switchboard.collections.totals:count_files", f"{{directory: '{raw}'}}")
    )
    [rule] = load_rules([path])
    total = rule.collect.until.fraction_of
    assert total.function is count_files
    assert total.function(directory=str(raw)) == 3


def test_the_allowlist_setting_allows_exact_functions_and_whole_modules(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(rule_text("json:dumps"))
    assert "is not allowed" in problems_of(path)[0]
    [rule] = load_rules([path], python_allowlist=("json:dumps",))
    assert rule.collect.until.fraction_of.function.__name__ == "dumps"
    [rule] = load_rules([path], python_allowlist=("json:*",))
    assert rule.collect.until.fraction_of.function.__name__ == "dumps"


def test_a_whole_module_entry_does_not_allow_what_the_module_only_imported() -> None:
    # totals imports `resolve` from switchboard.collections.callables: not one of its own
    with pytest.raises(CallableRefused, match=r"not defined in switchboard\.collections\.totals"):
        resolve("switchboard.collections.totals:resolve", "", ("switchboard.collections.totals:*",))


def test_the_allowlist_is_read_from_the_environment_and_bad_entries_are_refused() -> None:
    settings = Settings.from_env({"SWITCHBOARD_PYTHON_ALLOWLIST": "json:dumps, mytotals:*"})
    assert settings.python_allowlist == frozenset({"json:dumps", "mytotals:*"})
    assert Settings().python_allowlist == frozenset()
    with pytest.raises(SettingsError, match="SWITCHBOARD_PYTHON_ALLOWLIST: expected"):
        Settings.from_env({"SWITCHBOARD_PYTHON_ALLOWLIST": "os.system"})


def test_check_reads_the_allowlist_setting(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_PYTHON_ALLOWLIST", "json:dumps")
    (tmp_path / "r.yaml").write_text(rule_text("json:dumps"))
    result = CliRunner().invoke(main, ["check", "r.yaml"])
    assert result.exit_code == 0, result.stderr
