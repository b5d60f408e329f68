"""Every operator is indexed, and the index still finds exactly the rules that match."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.engine import Engine
from switchboard.model import EventKind
from switchboard.rules.index import RuleIndex, index_note
from switchboard.rules.operators import glob_pieces, regex_required_literals
from switchboard.rules.yaml_rules import rules_from_yaml
from tests.rules.events import make_event, view_of

NAMES = ["stereoTop - 1", "StereoTop - 3", "flir - 1", "RGB - 2017-05-01", "a.c", "\u017ftereo"]
FILES = ["a.bin", "b.BIN", "x_left.tif", "x_LEFT.TIF", "7", "07", "xAy.ply", "\u0131.bin", ""]
MIMES = ["image/tiff", "IMAGE/TIFF", "application/json", ""]
SIZES = [None, 0, 7, 8, 999, 1000]
TAGS = [None, "7", 7, 7.5, True, False, "stereo", ["a"], {"k": 1}, "07", 0]

texts = st.sampled_from(["stereo", "S", ".bin", ".BIN", "_left", "7", "a", "", "ere", "Ay"])
numbers = st.sampled_from([0, 7, 7.5, 8, 999, 1000, -1])
scalars = st.one_of(texts, numbers, st.booleans())
globs = st.sampled_from(["*ere*", "*x?y*", "[ab]*", "*_LEFT*", "*.b[i]n", "*", "?", "a*c", "*[x"])
regexes = st.sampled_from(
    [
        *["ere", r"\.bin$", "left|right", "o+T", "[0-9]", ".*", "(?i)stereo", "^st", "a.c", "E"],
        *[r"x(?P<mid>.)y", "b|.*", "I", r"\.(bin|tif)", "(?:ab)+c", "\u017f", "tere?o", "e{2}"],
    ]
)
bounds = st.sampled_from([[0, 7], [7, 7], [7.5, 1000], [-1, 0], [8, 999]])
TEXT_OPERATORS = ["equals", "prefix", "suffix", "iequals", "iprefix", "isuffix"]
tests = st.one_of(
    *(st.builds(lambda v, op=op: {op: v}, texts) for op in TEXT_OPERATORS),
    st.builds(lambda v: {"glob": v}, globs),
    st.builds(lambda v: {"iglob": v}, globs),
    st.builds(lambda v: {"regex": v}, regexes),
    st.builds(lambda v: {"iregex": v}, regexes),
    st.builds(lambda v: {"in": v}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda v: {"anything-but": v}, st.one_of(scalars, st.lists(scalars, min_size=1))),
    st.builds(lambda v: {"exists": v}, st.booleans()),
    st.builds(lambda v: {"equals": v}, st.one_of(numbers, st.booleans())),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["lt", "lte", "gt", "gte"]), numbers),
    st.builds(lambda v: {"between": v}, bounds),
)
fields = st.sampled_from(["dataset.name", "file.name", "file.mime_type", "file.size", "body.tag"])
leaf = st.builds(lambda field, test: {field: test}, fields, tests)
nested = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
    ),
    max_leaves=5,
)
whens = st.lists(st.one_of(leaf, nested), min_size=1, max_size=3).map(
    lambda items: {k: v for item in items for k, v in item.items()}
)


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    rules = []
    for i in range(draw(st.integers(1, 8))):
        rule: dict = {"name": f"r{i}", "on": "*", "submit": {"extractor": "x"}}
        if draw(st.integers(0, 9)):
            rule["when"] = draw(whens)
        rules.append(rule)
    return json.dumps(rules)


events = st.builds(
    lambda name, file, mime, size, tag, kind: make_event(
        file,
        dataset_name=name,
        mime_type=mime,
        size=size,
        kind=kind,
        body={"tag": tag} if tag is not None else None,
    ),
    st.sampled_from(NAMES),
    st.sampled_from(FILES),
    st.sampled_from(MIMES),
    st.sampled_from(SIZES),
    st.sampled_from(TAGS),
    st.sampled_from([EventKind.FILE_ADDED, EventKind.MANUAL_FILE]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), st.lists(events, min_size=1, max_size=6))
def test_indexed_engine_decides_exactly_what_evaluating_every_rule_decides(
    text: str, sample: list
) -> None:
    rules, problems = rules_from_yaml("generated.yaml", text)
    assert problems == []
    engine = Engine(rules)
    try:
        for event in sample:
            view = view_of(event)
            indexed = engine.evaluate(event, view)
            brute = engine.explain(event, view)
            assert [(d.rule, d.requests) for d in indexed.matched] == [
                (d.rule, d.requests) for d in brute.matched
            ]
    finally:
        engine.close()


crowded_fields = st.sampled_from(["file.name", "body.tag"])
crowded_rules = st.lists(
    st.builds(lambda field, test: {field: test}, crowded_fields, tests), min_size=5, max_size=30
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowded_rules, st.lists(events, min_size=5, max_size=10))
def test_many_rules_crowding_two_fields_match_exactly_what_evaluating_every_rule_matches(
    whens: list, sample: list
) -> None:
    rules, problems = rules_from_yaml(
        "crowded.yaml",
        json.dumps(
            [
                {"name": f"r{i}", "when": w, "submit": {"extractor": "x"}}
                for i, w in enumerate(whens)
            ]
        ),
    )
    assert problems == []
    engine = Engine(rules)
    try:
        for event in sample:
            indexed = engine.evaluate(event, view_of(event))
            brute = engine.explain(event, view_of(event))
            assert [d.rule for d in indexed.matched] == [d.rule for d in brute.matched]
    finally:
        engine.close()


sibling_tests = st.one_of(
    st.builds(lambda v: {"exists": v}, st.booleans()),
    st.builds(lambda v: {"anything-but": v}, scalars),
    st.builds(lambda v: {"equals": v}, scalars),
    st.builds(lambda v: {"lt": v}, numbers),
)
sibling_rules = st.lists(
    st.builds(
        lambda key, test, negate: (
            {"not": {f"body.t.{key}": test}} if negate else {f"body.t.{key}": test}
        ),
        st.sampled_from([*"abcdefghijkl", "0", "1"]),
        sibling_tests,
        st.booleans(),
    ),
    min_size=8,
    max_size=30,
)
sibling_values = st.sampled_from([None, 7, "7", True, "x", ["y"]])
sibling_bodies = st.one_of(
    st.dictionaries(st.sampled_from([*"abcdefghijklmn", "0"]), sibling_values, max_size=14),
    st.lists(sibling_values, max_size=3),
    st.sampled_from([None, "scalar", 7]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sibling_rules, st.lists(sibling_bodies, min_size=3, max_size=8))
def test_many_rules_on_keys_of_one_mapping_match_exactly_what_evaluating_every_rule_matches(
    whens: list, bodies: list
) -> None:
    rules, problems = rules_from_yaml(
        "siblings.yaml",
        json.dumps(
            [
                {"name": f"r{i}", "when": w, "submit": {"extractor": "x"}}
                for i, w in enumerate(whens)
            ]
        ),
    )
    assert problems == []
    engine = Engine(rules)
    try:
        for body in bodies:
            event = make_event(body={"t": body} if body is not None else None)
            indexed = engine.evaluate(event, view_of(event))
            brute = engine.explain(event, view_of(event))
            assert [d.rule for d in indexed.matched] == [d.rule for d in brute.matched], body
    finally:
        engine.close()


regex_tokens = st.sampled_from(
    [
        *["a", "b", "ab", "A", "I", "i", r"\.", ".", "a*", "b+", "(a|b)", "[ab]", "c?", "x{2}"],
        *[
            r"\d",
            "^",
            "$",
            "|",
            "(?P<g>ab)",
            "(?:ba)+",
            "[^a]",
            "b{1,2}?",
            r"\b",
            "(?=a)",
            "a++",
            "\u017f",
        ],
    ]
)
subjects = st.text(alphabet="abcxAB.1iI\u0131\u0130\u017fK", max_size=12)


def _compiles(pattern: str, flags: int = 0) -> bool:
    try:
        re.compile(pattern, flags)
    except re.error:
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(st.lists(regex_tokens, min_size=1, max_size=7).map("".join), subjects)
def test_every_regex_match_contains_one_of_its_required_literals(pattern: str, value: str) -> None:
    if not _compiles(pattern):
        return
    literals = regex_required_literals(pattern)
    if literals is not None and re.search(pattern, value):
        assert any(lit in value for lit in literals), (pattern, value, literals)
    folded = regex_required_literals(pattern, casefold_safe=True)
    if folded is not None and re.search(pattern, value, re.IGNORECASE):
        assert any(lit.casefold() in value.casefold() for lit in folded), (pattern, value)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab*?[]!x", min_size=1, max_size=8), st.text(alphabet="ab[]!x", max_size=8))
def test_every_glob_match_starts_with_its_head_ends_with_its_tail_and_holds_its_middle(
    pattern: str, value: str
) -> None:
    pieces = glob_pieces(pattern)
    if pieces is None or not fnmatch.fnmatchcase(value, pattern):
        return
    head, middle, tail = pieces
    assert value.startswith(head) and value.endswith(tail)
    assert all(m in value for m in middle)


def _rules(shape: str, count: int) -> list:
    text = "".join(
        f"- {{name: r{i}, when: {{{shape.format(i=i)}}}, submit: {{extractor: x}}}}\n"
        for i in range(count)
    )
    rules, problems = rules_from_yaml("many.yaml", text)
    assert problems == []
    return rules


@pytest.mark.parametrize(
    ("shape", "event", "expected"),
    [
        ("file.size: {{between: [{i}0, {i}5]}}", {"size": 4175}, ["r417"]),
        # ranges are filed closed: lt 1997 is a candidate at 1997, the engine's check drops it
        ("file.size: {{lt: {i}}}", {"size": 1997}, ["r1997", "r1998", "r1999"]),
        ("file.size: {{gte: {i}}}", {"size": 1}, ["r0", "r1"]),
        ('file.name: {{regex: "_{i:04d}_[0-9]+"}}', {"file_name": "c_0417_12.bin"}, ["r417"]),
        ('file.name: {{iregex: "-r{i:04d}-"}}', {"file_name": "c-R0417-.bin"}, ["r417"]),
        ('file.name: {{glob: "*_{i:04d}_*"}}', {"file_name": "c_0417_x"}, ["r417"]),
        ('file.name: {{iglob: "*_S{i:04d}_*"}}', {"file_name": "c_s0417_x"}, ["r417"]),
        ('file.name: {{iequals: "N{i}"}}', {"file_name": "n417"}, ["r417"]),
        ('file.name: {{in: ["a{i}", "b{i}"]}}', {"file_name": "b417"}, ["r417"]),
        (
            'any: [{{file.name: "f{i}"}}, {{dataset.name: {{prefix: "d{i} "}}}}]',
            {"file_name": "f417", "dataset_name": "d9 x"},
            ["r9", "r417"],
        ),
        ('not: {{file.name: {{anything-but: "f{i}"}}}}', {"file_name": "f417"}, ["r417"]),
    ],
)
def test_two_thousand_rules_of_one_operator_leave_only_the_matching_candidates(
    shape: str, event: dict, expected: list
) -> None:
    rules = _rules(shape, 2000)
    index = RuleIndex(rules)
    e = make_event(**event)
    assert [rules[i].name for i in index.candidates(view_subject(e))] == expected


def view_subject(event):
    from switchboard.rules.fields import Subject

    return Subject(event, view_of(event))


def test_anything_but_candidates_are_the_rules_not_excluding_the_value() -> None:
    # Rule i excludes every mime type but its own; only the rule for the event's type is left.
    mimes = [f"type/m{k}" for k in range(10)]
    shapes = []
    for i in range(1000):
        excluded = [m for k, m in enumerate(mimes) if k != i % 10 or i >= 10]
        shapes.append(json.dumps({"file.mime_type": {"anything-but": excluded}}))
    text = "".join(
        f"- {{name: r{i}, when: {s}, submit: {{extractor: x}}}}\n" for i, s in enumerate(shapes)
    )
    rules, problems = rules_from_yaml("but.yaml", text)
    assert problems == []
    index = RuleIndex(rules)
    assert [
        rules[i].name for i in index.candidates(view_subject(make_event(mime_type="type/m3")))
    ] == ["r3"]
    other = index.candidates(view_subject(make_event(mime_type="text/plain")))
    assert len(other) == 1000  # excluded by none: every rule matches


def test_exists_rules_are_found_by_presence_and_absence() -> None:
    text = (
        "- {name: present, when: {body.tag: {exists: true}}, submit: {extractor: x}}\n"
        "- {name: missing, when: {body.tag: {exists: false}}, submit: {extractor: x}}\n"
        "- {name: no-other, when: {not: {body.other: {exists: true}}}, submit: {extractor: x}}\n"
    )
    rules, _ = rules_from_yaml("exists.yaml", text)
    index = RuleIndex(rules)
    with_tag = make_event(body={"tag": 1, "other": 2})
    assert [rules[i].name for i in index.candidates(view_subject(with_tag))] == ["present"]
    without = make_event(body={"x": 1})
    assert [rules[i].name for i in index.candidates(view_subject(without))] == [
        "missing",
        "no-other",
    ]
    assert index.unindexed == 0


def test_only_rules_the_index_cannot_narrow_get_a_note_and_a_regex_without_literal_is_named() -> (
    None
):
    text = (
        "- {name: lit, when: {file.name: {regex: 'x[0-9]+_left'}}, submit: {extractor: x}}\n"
        r"- {name: nolit, when: {file.name: {regex: '\d+'}}, submit: {extractor: x}}" + "\n"
        "- {name: bare, submit: {extractor: x}}\n"
        "- {name: notprefix, when: {not: {file.name: {prefix: a}}}, submit: {extractor: x}}\n"
    )
    rules, _ = rules_from_yaml("notes.yaml", text)
    notes = {r.name: index_note(r) for r in rules}
    assert notes["lit"] is None and notes["bare"] is None
    assert (
        notes["nolit"] == r"file.name regex '\\d+' has no literal to index; checked on every event"
    )
    assert notes["notprefix"] == "no condition the index can look up; checked on every event"
