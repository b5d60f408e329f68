"""The README's Rule controls section: its examples load, and `explain` says what it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from switchboard.cli import main
from tests.integration.clowder_events import file_added, properties

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("\n## Rule controls\n", 1)[1].split("\n## ", 1)[0]
EXAMPLES = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, root_logging_restored: None) -> None:
    monkeypatch.chdir(tmp_path)


def explain(tmp_path: Path, rules: str, file_name: str, *with_files: str) -> Result:
    (tmp_path / "rules.yaml").write_text(rules)
    event = tmp_path / "event.json"
    body = file_added(42, name=file_name)
    event.write_text(json.dumps({"properties": properties(42), "body": body}))
    extra = [a for name in with_files for a in ("--with-file", name)]
    args = ["explain", "--rules", str(tmp_path / "rules.yaml"), str(event), *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def example(name: str) -> str:
    [block] = [b for b in EXAMPLES if f"name: {name}" in b]
    start = block.index(f"- name: {name}")
    end = block.find("\n\n- name:", start)
    return block[start : end if end >= 0 else len(block)]


def test_every_example_passes_check(tmp_path: Path) -> None:
    for number, text in enumerate(EXAMPLES):
        (tmp_path / f"example{number}.yaml").write_text(text)
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_explain_shows_the_key_the_readme_shows(tmp_path: Path) -> None:
    result = explain(tmp_path, example("plot-clip-per-plot"), "plot-0042_left.tif")
    shown = [line for line in SECTION.splitlines() if "the next job is key" in line]
    assert shown == ["        rerun key '{plot}': the next job is key '0042'"]
    assert shown[0] in result.output.splitlines()


def test_explain_shows_the_generation_of_on_new_files_and_every_event(tmp_path: Path) -> None:
    grown = explain(tmp_path, example("bin2tif-per-new-file"), "a.bin", "b.bin", "notes.txt")
    assert "rerun on_new_files: the next job is generation 'files:2'" in grown.output
    each = explain(tmp_path, example("thumbnail-each-file"), "a.png")
    assert "rerun every_event: the next job is generation 'event:msg-00000042'" in each.output


def test_explain_says_a_debounced_rule_is_held(tmp_path: Path) -> None:
    result = explain(tmp_path, example("mosaic-after-the-upload"), "x_left.tif")
    assert "rerun on_new_files: the next job is generation 'files:1'" in result.output
    assert "debounce 30 s: held, submitted once with the latest event" in result.output
    assert "-> terra.geotiff.fieldmosaic dataset" in result.output


def test_the_limits_example_loads_its_limits(tmp_path: Path) -> None:
    from switchboard.rules import load_rules
    from switchboard.throttle import TargetLimit

    [block] = [b for b in EXAMPLES if "limits:" in b]
    (tmp_path / "limits.yaml").write_text(block)
    limits = load_rules([tmp_path / "limits.yaml"]).limits
    assert limits == {"terra.plotclipper_tif": TargetLimit(50, 10.0)}
