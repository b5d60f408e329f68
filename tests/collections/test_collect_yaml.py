"""YAML `collect:`: the schema compiles, and every mistake is reported as path:line: reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from textwrap import dedent

import pytest

from switchboard.engine import Engine
from switchboard.errors import RuleLoadError
from switchboard.rules import load_rules
from switchboard.rules.collect import PythonTotal, parse_duration
from tests.rules.events import make_event, view_of

FULL = """\
- name: fullfield-rgb
  when:
    dataset.name: {regex: '^RGB GeoTIFFs - (?P<date>\\d{4}-\\d{2}-\\d{2})__'}
    file.name: {suffix: "_left.tif"}
  collect:
    key: "fullfield-rgb/{date}"
    member: "{file.id}"
    data: {path: "/raw/{date}/{file.name}"}
    until:
      min_count: 2
      fraction: {of: {python: "raw.py:count", args: {day: "{date}"}}, at_least: 0.95}
      quiet_for: 1h30m
    after_fire: next_generation
    manifest_file: true
  submit: {extractor: terra.geotiff.fieldmosaic, resource: dataset}
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(dedent(text))
    (tmp_path / "raw.py").write_text("def count(day):\n    return 10\n")  # FULL's callable
    return load_rules([path])


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RuleLoadError) as caught:
        load(tmp_path, text)
    return [str(p) for p in caught.value.problems]


def test_a_full_collect_rule_compiles(tmp_path: Path) -> None:
    [rule] = load(tmp_path, FULL)
    spec = rule.collect
    assert spec.key.source == "fullfield-rgb/{date}"
    assert spec.until.min_count == 2 and spec.until.at_least == 0.95
    assert spec.until.quiet_for == timedelta(hours=1, minutes=30)
    assert isinstance(spec.until.fraction_of, PythonTotal)
    assert spec.until.fraction_of.base_dir == str(tmp_path)
    assert (spec.after_fire, spec.manifest_file) == ("next_generation", True)


def test_the_engine_renders_a_collect_decision_and_submits_nothing_itself(tmp_path) -> None:
    rules = load(tmp_path, FULL.replace('{python: "raw.py:count", args: {day: "{date}"}}', "9"))
    engine = Engine(rules)
    try:
        event = make_event()
        evaluation = engine.evaluate(event, view_of(event))
        [collected] = evaluation.collects
        assert (collected.key, collected.member) == ("fullfield-rgb/2017-05-01", "file-1")
        assert collected.data == {"path": "/raw/2017-05-01/2017-05-01__10-20-30-123_left.tif"}
        assert collected.total == 9
        assert [r.extractor for r in collected.requests] == ["terra.geotiff.fieldmosaic"]
        assert evaluation.matched[0].rule == "fullfield-rgb"
        assert list(evaluation.submissions) == []
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("collect", "reason"),
    [
        (
            '{key: "k", member: "{file.id}", until: {count: 3}, colour: red}',
            "unknown key 'colour' in collect",
        ),
        ('{key: "k", member: "{file.id}", until: {cuont: 3}}', "did you mean 'count'?"),
        ('{key: "k", member: "{file.id}"}', "needs 'until'"),
        ('{member: "{file.id}", until: {count: 3}}', "needs 'key'"),
        ('{key: "k/{day}", member: "{file.id}", until: {count: 3}}', "unknown template field"),
        ('{key: "k", member: "{file.bogus}", until: {count: 3}}', "unknown template field"),
        ('{key: "k", member: "{file.id}", until: {count: 0}}', "count must be a positive"),
        ('{key: "k", member: "{file.id}", until: {quiet_for: 10 minutes}}', "bad duration"),
        ('{key: "k", member: "{file.id}", until: {quiet_for: -5}}', "must be positive"),
        (
            '{key: "k", member: "{file.id}", until: {fraction: {of: 10, at_least: 95}}}',
            "0.95 means 95%",
        ),
        ('{key: "k", member: "{file.id}", until: {fraction: {at_least: 0.5}}}', "needs 'of'"),
        (
            '{key: "k", member: "{file.id}", until: {fraction: {of: {python: "no colon"}}}}',
            "python must name a callable",
        ),
        ('{key: "k", member: "{file.id}", until: {min_count: 3}}', "min_count alone"),
        ('{key: "k", member: "{file.id}", until: {all_of: []}}', "all_of must be a non-empty"),
        (
            '{key: "k", member: "{file.id}", until: {count: 1}, after_fire: again}',
            "after_fire must be ignore or next_generation",
        ),
        (
            '{key: "k", member: "{file.id}", until: {count: 1}, manifest_file: yes}',
            "manifest_file must be true or false",
        ),
        ('{key: "k", member: "{file.id}", until: {count: 1}, data: [a]}', "data must be"),
    ],
)
def test_collect_mistakes_are_reported_with_their_line(tmp_path, collect, reason) -> None:
    text = (
        "- name: r\n"
        "  when: {file.name: {suffix: .tif}}\n"
        f"  collect: {collect}\n"
        "  submit: {extractor: x}\n"
    )
    found = problems_of(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'rules.yaml'}:3: rule 'r': ")
    assert reason in found[0]


def test_every_mistake_in_a_collect_block_is_reported_at_once(tmp_path) -> None:
    text = """\
    - name: r
      collect:
        key: "{nope}"
        member: "{file.id}"
        until:
          count: many
          quiet_for: soon
      submit: {extractor: x}
    """
    found = problems_of(tmp_path, text)
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in found] == ["3", "6", "7"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("30s", 30), ("10m", 600), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172800)],
)
def test_durations_read_as_an_operator_writes_them(text, seconds) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("nosuchmod:fn", "python 'nosuchmod:fn' is not allowed: only a file beside the rule"),
        ("raw.py:nosuchfn", "'nosuchfn' is not a callable"),
        ("missing.py:fn", "python 'missing.py:fn' cannot be used: FileNotFoundError"),
        ("switchboard.collections.totals:CACHE_S", "python 'switchboard.collections.totals:"),
    ],
)
def test_a_fraction_callable_that_cannot_be_resolved_is_refused_at_load(
    tmp_path, target, reason
) -> None:
    text = (
        "- name: r\n"
        "  when: {file.name: {suffix: .tif}}\n"
        "  collect:\n"
        '    key: "k"\n'
        '    member: "{file.id}"\n'
        f"    until: {{fraction: {{of: {{python: '{target}'}}, at_least: 0.5}}}}\n"
        "  submit: {extractor: x}\n"
    )
    [found] = problems_of(tmp_path, text)
    assert found.startswith(f"{tmp_path / 'rules.yaml'}:6: rule 'r': collect: ")
    assert reason in found


def test_resolving_a_fraction_callable_at_load_never_calls_it(tmp_path) -> None:
    calls = tmp_path / "calls.txt"
    (tmp_path / "counted.py").write_text(
        f"def total():\n    open({str(calls)!r}, 'a').write('called')\n    return 1\n"
    )
    text = FULL.replace('"raw.py:count", args: {day: "{date}"}', '"counted.py:total"')
    [rule] = load(tmp_path, text)
    assert rule.collect.until.fraction_of.target == "counted.py:total"
    assert not calls.exists()


def test_the_readme_callable_resolves() -> None:
    from switchboard.collections.totals import count_files, resolve

    assert resolve("switchboard.collections.totals:count_files") is count_files
