"""Rule regexes run on RE2: no pattern can hang the daemon; unsupported syntax is a load error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.engine import Engine
from switchboard.rules import load_rules
from switchboard.rules.operators import REGEX_MAX_TEXT_CHARS, OperatorError, make_operator
from tests.rules.events import make_event, view_of

CATASTROPHIC = "^(a+)+$"  # with Python's re, 2**n steps on n a's and a mismatch at the end


@pytest.mark.timeout(30)
@pytest.mark.parametrize("length", [41, 5_000, 1_000_000])
def test_a_catastrophic_regex_on_a_long_file_name_finishes_and_does_not_match(
    tmp_path: Path, length: int
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- name: evil\n"
        f"  when: {{file.name: {{regex: '{CATASTROPHIC}'}}}}\n"
        "  submit: {extractor: x}\n"
        "- name: fine\n"
        "  when: {file.name: {suffix: '!'}}\n"
        "  submit: {extractor: y}\n"
    )
    engine = Engine(load_rules([path]))
    try:
        event = make_event("a" * length + "!")  # re would take 2**41 steps on the first one
        evaluation = engine.evaluate(event, view_of(event))
    finally:
        engine.close()
    assert [d.rule for d in evaluation.matched] == ["fine"]
    assert evaluation.failures == []


def test_the_catastrophic_pattern_still_matches_what_it_should() -> None:
    op = make_operator("regex", CATASTROPHIC)
    assert op.test("a" * 41) and not op.test("a" * 41 + "!")


@pytest.mark.parametrize(
    ("pattern", "rest"),
    [
        (r"(a)\1", r"invalid escape sequence: \1"),
        ("^(?=stereo)", "invalid perl operator: (?="),
        ("(?<!x)_left", "invalid perl operator: (?<!"),
        (r"\.tif\Z", r"invalid escape sequence: \Z"),
        ("a++", "bad repetition operator: ++"),
    ],
)
def test_check_refuses_syntax_re2_does_not_support_with_path_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str, rest: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(
        f"- name: a\n  when:\n    file.name: {{regex: '{pattern}'}}\n  submit: {{extractor: x}}\n"
    )
    result = CliRunner().invoke(main, ["check", "r.yaml"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"r.yaml:3: file.name: regex {pattern!r} uses syntax RE2 does not support "
        rf"(backreferences, lookaround, \Z, atomic groups, possessive repeats, (?x)): {rest}"
    )


def test_a_pattern_python_cannot_parse_keeps_pythons_message() -> None:
    with pytest.raises(OperatorError, match="bad regex '\\(\\[': unterminated character set"):
        make_operator("regex", "([")


def test_named_groups_become_captures_with_search_semantics(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- name: day\n"
        "  when:\n"
        r"    dataset.name: {regex: '(?P<date>\d{4}-\d{2}-\d{2})__(?P<hour>\d\d)?'}" + "\n"
        "    file.name: {iregex: '_LEFT\\.TIF$'}\n"
        "  submit: {extractor: 'mosaic-{date}'}\n"
    )
    engine = Engine(load_rules([path]))
    try:
        event = make_event("x_left.tif", dataset_name="RGB GeoTIFFs - 2017-05-01__10-20")
        [submission] = list(engine.evaluate(event, view_of(event)).submissions)
    finally:
        engine.close()
    assert submission.extractor == "mosaic-2017-05-01"


def test_a_group_that_took_no_part_is_not_a_capture() -> None:
    op = make_operator("regex", "(?P<a>x)|(?P<b>y)")
    assert op.search("zzy").groupdict() == {"a": None, "b": "y"}
    assert op.pattern.groupindex == {"a": 1, "b": 2}


def test_iregex_ignores_case_of_non_ascii_letters_too() -> None:
    assert make_operator("iregex", "^ÉTÉ").test("été 2017")
    assert not make_operator("regex", "^ÉTÉ").test("été 2017")


def test_a_regex_searches_only_the_first_64_ki_characters_of_a_value() -> None:
    assert REGEX_MAX_TEXT_CHARS == 65_536
    op = make_operator("regex", "needle")
    assert op.test("x" * (REGEX_MAX_TEXT_CHARS - 6) + "needle")
    assert not op.test("x" * (REGEX_MAX_TEXT_CHARS - 5) + "needle")


def test_the_end_of_a_cut_value_is_not_the_end_of_the_text() -> None:
    long_name = "a" * (REGEX_MAX_TEXT_CHARS + 10)
    assert not make_operator("regex", "a$").test(long_name)
    assert not make_operator("regex", r"a\b").test(long_name)
    assert make_operator("regex", "^a+").test(long_name)


def test_non_ascii_and_lone_surrogates_in_a_value_are_matched_not_errors() -> None:
    op = make_operator("regex", "^(?P<site>.+) - (?P<day>.+)$")
    assert op.search("Zürich ☀ - 2017").groupdict() == {"site": "Zürich ☀", "day": "2017"}
    assert op.test("bad\ud800name - 1")  # a JSON "\ud800" escape parses to a lone surrogate
