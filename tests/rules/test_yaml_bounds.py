"""Bounded YAML loading: alias bombs, huge files and recursive aliases are located problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.errors import RuleLoadError
from switchboard.rules import load_rules, yaml_source


def alias_bomb(levels: int) -> str:
    """A rule whose `parameters` nest `levels` lists of nine aliases to the level below."""
    lines = [
        "- name: lol",
        "  submit:",
        "    extractor: x",
        "    parameters:",
        '      l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for n in range(1, levels + 1):
        lines.append(f"      l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def problems(path: Path) -> list[str]:
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    return [str(p) for p in caught.value.problems]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("levels", [6, 9])
def test_a_billion_laughs_alias_bomb_is_refused_quickly_at_the_alias_that_crosses_the_limit(
    tmp_path: Path, levels: int
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(levels))
    assert len(path.read_bytes()) < 1000
    # l1..l3 repeat 90 + 819 + 7,380 nodes; l4's (line 9) first *l3 repeats 7,381 more
    assert problems(path) == [
        f"{path}:9: invalid YAML: aliases repeat more than 10,000 nodes (at *l3); "
        "write the repeated parts out or use fewer aliases"
    ]


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("- name: loop\n  submit:\n    extractor: x\n    parameters: &p {again: *p}\n")
    assert problems(path) == [f"{path}:4: invalid YAML: alias *p is inside its own anchor"]


def test_a_file_over_the_byte_limit_is_refused_at_the_line_where_it_crosses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yaml_source, "MAX_YAML_BYTES", 100)
    path = tmp_path / "big.yaml"
    path.write_text("".join(f"- {{name: r{n}, submit: {{extractor: x}}}}\n" for n in range(10)))
    assert problems(path) == [
        f"{path}:3: file is 370 bytes, more than the 100 a rule file may hold; "
        "split the rules into several files"
    ]


def test_a_file_over_the_node_limit_is_refused_at_the_node_that_crosses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yaml_source, "MAX_YAML_NODES", 20)
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"- {{name: r{n}, submit: {{extractor: x}}}}\n" for n in range(10)))
    # the list, then 7 nodes per rule: the 21st node is the third rule's `extractor` key
    assert problems(path) == [
        f"{path}:3: invalid YAML: more than 20 nodes; split the rules into several files"
    ]


def test_rules_with_a_simple_anchor_and_merge_key_still_load(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(
        "- name: left\n"
        "  when: &stereo\n"
        "    dataset.name: {prefix: 'stereoTop - '}\n"
        "  submit: &bin2tif {extractor: terra.bin2tif, parameters: {mode: left}}\n"
        "- name: right\n"
        "  when: *stereo\n"
        "  submit:\n"
        "    <<: *bin2tif\n"
        "    resource: file\n"
    )
    rules = load_rules([path])
    assert rules.names() == ["left", "right"]
    assert [r.targets for r in rules] == [("terra.bin2tif",), ("terra.bin2tif",)]
    assert rules["right"].submits[0].resource == "file"


def test_the_shipped_rules_stay_far_below_every_limit() -> None:
    folder = Path(__file__).resolve().parents[2] / "rules"
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text()
        loader = yaml_source._RuleLoader(text)
        try:
            loader.get_single_data()
        finally:
            loader.dispose()
        assert len(text.encode()) < yaml_source.MAX_YAML_BYTES // 100
        assert loader._node_count < yaml_source.MAX_YAML_NODES // 100


def test_yaml_text_over_the_byte_limit_is_refused_without_parsing(monkeypatch) -> None:
    monkeypatch.setattr(yaml_source, "MAX_YAML_BYTES", 10)
    data, found = yaml_source.load_yaml("- a\n- b\n- ccccccc\n")
    assert data is None
    assert found == [
        (3, "file is 18 bytes, more than the 10 a rule file may hold; "
         "split the rules into several files")
    ]  # fmt: skip
