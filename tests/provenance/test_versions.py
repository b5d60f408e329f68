"""Rule-set versions: one per content, stored once, every activation recorded, loadable again."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from switchboard.cli import main
from switchboard.provenance.archive import EventArchive
from switchboard.provenance.explain_past import version_rules
from switchboard.provenance.version_store import activations_of, history, load_version
from switchboard.provenance.versions import version_of
from switchboard.rules import load_rules
from switchboard.settings import Settings
from switchboard.store.migrate import upgrade
from switchboard.store.sql import SqlStore
from tests.provenance.helpers import RULES

RULE = """\
- name: tif-to-plotclipper
  when: {file.name: {suffix: ".tif"}}
  submit: {extractor: terra.plotclipper}
"""


def test_the_same_rule_files_are_one_version_and_an_edit_is_another(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULE)
    first = version_of([str(tmp_path)])
    assert version_of([str(tmp_path)]).version == first.version
    (tmp_path / "a.yaml").write_text(RULE.replace(".tif", ".tiff"))
    assert version_of([str(tmp_path)]).version != first.version


def test_a_helper_module_beside_the_rules_is_part_of_the_version(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULE)
    before = version_of([str(tmp_path)])
    (tmp_path / "_helpers.py").write_text("LIMIT = 3\n")
    after = version_of([str(tmp_path)])
    assert before.version != after.version
    assert [f.path.rsplit("/", 1)[-1] for f in after.files] == ["_helpers.py", "a.yaml"]


def test_a_version_is_stored_once_and_each_activation_is_recorded(store: SqlStore) -> None:
    archive = EventArchive(store)
    version = version_of([str(RULES)], ["x"])
    archive.activate(version, "start")
    archive.activate(version, "reload")
    with store.engine.connect() as connection:
        stored = history(connection)
        activations = activations_of(connection)
    assert [v.version for v in stored] == [version.version]
    assert stored[0].activations == 2
    assert [(v, reason) for _, v, reason in activations] == [
        (version.version, "start"),
        (version.version, "reload"),
    ]


def test_a_stored_version_loads_the_same_rules_again(store: SqlStore, tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    EventArchive(store).activate(version_of([str(copy)]), "start")
    shutil.rmtree(copy)  # the files are gone; the database still has their text
    with store.engine.connect() as connection:
        (stored,) = history(connection)
        version = load_version(connection, stored.version[:6])
    with version_rules(version, Settings()) as ruleset:
        assert ruleset.names() == load_rules([str(RULES)]).names()


def test_rules_history_lists_versions_and_show_prints_their_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sb.db'}"
    upgrade(url)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.yaml").write_text(RULE)
    store = SqlStore(url)
    try:
        version = version_of([str(tmp_path / "r")], ["tif-to-plotclipper"])
        EventArchive(store).activate(version, "start")
    finally:
        store.close()
    runner = CliRunner()
    listed = runner.invoke(main, ["rules", "history", "--database", url])
    assert listed.exit_code == 0, listed.output
    assert version.version in listed.output
    assert "start" in listed.output
    shown = runner.invoke(main, ["rules", "show", version.version, "--database", url])
    assert shown.exit_code == 0, shown.output
    assert "rules: tif-to-plotclipper" in shown.output
    assert 'suffix: ".tif"' in shown.output
    unknown = runner.invoke(main, ["rules", "show", "ffffffff", "--database", url])
    assert unknown.exit_code == 1
    assert "no rule version 'ffffffff'" in unknown.output
