"""The README's rule language and command line sections stay true to the code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.engine import Engine
from switchboard.events import event_from_record
from switchboard.model import DatasetView, EventKind
from switchboard.rules import load_rules
from switchboard.rules.condition_compiler import COUNT_OPERATORS, REQUIREMENT_KEYS
from switchboard.rules.fields import EVENT_FIELDS, FILE_FIELDS
from switchboard.rules.operators import OPERATOR_NAMES
from switchboard.rules.yaml_rules import RESOURCES, RULE_KEYS, SUBMIT_KEYS, VIAS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
FIXTURES = Path(__file__).parent / "fixtures"


def section(title: str) -> str:
    """The text of one `## title` section, up to the next `## ` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else len(README)]


RULES_SECTION = section("Writing rules")
CLI_SECTION = section("Command line")


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def quoted(text: str) -> set[str]:
    """Every `backticked` phrase of the prose of `text`, and its head (`count: N` gives count)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    phrases = re.findall(r"`([^`]+)`", prose)
    return set(phrases) | {re.split(r"[:\s]", p, maxsplit=1)[0] for p in phrases}


@pytest.fixture(autouse=True)
def _restore_logging(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, root_logging_restored: None
) -> None:
    """Run in an empty folder; the CLI's logging set-up is undone afterwards."""
    monkeypatch.chdir(tmp_path)


def test_the_rules_section_has_yaml_and_python_examples() -> None:
    assert len(code_blocks(RULES_SECTION, "yaml")) >= 2
    assert len(code_blocks(RULES_SECTION, "python")) == 1


def test_every_example_in_the_rules_section_passes_switchboard_check(tmp_path: Path) -> None:
    examples = code_blocks(RULES_SECTION, "yaml") + code_blocks(RULES_SECTION, "python")
    for number, example in enumerate(code_blocks(RULES_SECTION, "yaml")):
        (tmp_path / f"example{number}.yaml").write_text(example, encoding="utf-8")
    (tmp_path / "example_rules.py").write_text(code_blocks(RULES_SECTION, "python")[0])
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{len(examples)} rule(s) OK"


def test_the_geotiff_example_submits_what_its_templates_say(tmp_path: Path) -> None:
    example = next(b for b in code_blocks(RULES_SECTION, "yaml") if "left-geotiffs" in b)
    (tmp_path / "example.yaml").write_text(example, encoding="utf-8")
    record = json.loads((FIXTURES / "v1_dataset_file_added.json").read_text(encoding="utf-8"))
    event = event_from_record(record)
    view = DatasetView(event.dataset_id or "", "RGB GeoTIFFs - 2017-05-01__10-20-30-123")
    engine = Engine(load_rules([tmp_path]))
    try:
        submissions = list(engine.evaluate(event, view.with_file(event.file)).submissions)
    finally:
        engine.close()
    assert [(s.extractor, s.resource_type, s.via, dict(s.parameters)) for s in submissions] == [
        (
            "terra.plotclipper_tif",
            "file",
            "amqp",
            {"date": "2017-05-01", "source": "2017-05-01__10-20-30-123_left.tif", "priority": 2},
        ),
        ("audit.2017-05-01", "dataset", "clowder-api", {}),
    ]


@pytest.mark.parametrize(
    ("what", "names"),
    [
        ("rule keys", RULE_KEYS),
        ("submit keys", SUBMIT_KEYS),
        ("resources", RESOURCES),
        ("vias", VIAS),
        ("event kinds", [k.value for k in EventKind]),
        ("event fields", list(EVENT_FIELDS)),
        ("file fields", list(FILE_FIELDS)),
        ("operators", OPERATOR_NAMES),
        ("count operators", COUNT_OPERATORS),
        ("requirement keys", REQUIREMENT_KEYS),
    ],
)
def test_the_rules_section_names_every(what: str, names: list[str]) -> None:
    undocumented = [n for n in names if n not in quoted(RULES_SECTION)]
    assert undocumented == [], f"{what} missing from the README: {undocumented}"


def test_the_operator_table_lists_only_real_operators() -> None:
    table = [line for line in RULES_SECTION.splitlines() if line.startswith("| `")]
    listed = {
        name.split(":")[0]
        for line in table
        for name in re.findall(r"`([^`]+)`", line.split("|")[1])
    }
    assert listed == set(OPERATOR_NAMES) | {"all", "any", "not"}


def commands() -> Iterator[tuple[str, click.Command]]:
    for name, command in main.commands.items():
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                yield f"{name} {sub}", subcommand
        else:
            yield name, command


def test_the_command_line_table_documents_every_command_and_option() -> None:
    rows = {
        m[1]: line
        for line in CLI_SECTION.splitlines()
        if (m := re.match(r"\| `switchboard ([a-z-]+(?: [a-z]+)?)\b", line))
    }
    for name, command in commands():
        assert name in rows, f"command {name!r} is not in the README's Command line table"
        usage = rows[name].split("|")[1]
        for param in command.params:
            if isinstance(param, click.Option):
                assert any(o in usage for o in param.opts), f"{name}: {param.opts} undocumented"
    assert set(rows) == {name for name, _ in commands()}


def test_the_configuration_table_names_every_environment_variable() -> None:
    from switchboard.settings import Settings

    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [var for var in Settings._ENV.values() if f"`{var}`" not in table]
    assert not missing, missing


def test_the_quick_start_is_two_commands_that_exist_in_the_repository() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick_start, re.DOTALL)
    assert commands == ["scripts/demo.sh", "scripts/test.sh"]
    for command in commands:
        assert (REPO / command).is_file()
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
